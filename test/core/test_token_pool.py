"""Token pool: tagging, bound, 'newest per camera plus keyframes' eviction, per-camera views,
and staying in step with the model's StreamState."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wint3r_ros.core.token_pool import TokenPool
from wint3r_ros.errors import ConfigError, InputError

CAMS = ("a", "b", "c")
torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared 2-core machine


def window_frames(w: int, steps: int = 2, cams=CAMS):
    """Frames of window w (stride 1 step per window, `steps` steps): (camera, stamp)."""
    return [(c, (w + s) * 0.1) for s in range(steps) for c in cams]


def fill(pool: TokenPool, windows: int, steps: int = 2, evict: bool = True):
    for w in range(windows):
        pool.add_window(w, window_frames(w, steps))
        keep = pool.plan_eviction() if evict else None
        if keep is not None:
            pool.keep(keep)


def test_entries_are_tagged_with_camera_stamp_window_and_slot():
    pool = TokenPool(CAMS, keyframe_every=2)
    fill(pool, 3)
    e = pool.entries
    assert len(e) == 18 and [x.slot for x in e] == list(range(18))
    assert (e[7].camera, e[7].stamp, e[7].window_index) == ("b", pytest.approx(0.1), 1)
    assert [x.keyframe for x in e[::6]] == [True, False, True]  # windows 0, 1, 2 with k = 2


def test_unbounded_pool_never_evicts():
    pool = TokenPool(CAMS)
    fill(pool, 50)
    assert len(pool) == 300 and pool.plan_eviction() is None and pool.evicted == 0


def test_bounded_pool_keeps_anchor_newest_per_camera_and_keyframes():
    pool = TokenPool(CAMS, max_entries=24, keyframe_every=4, recent_per_camera=2,
                     frames_per_window=6)
    fill(pool, 30)
    assert len(pool) == 24
    e = pool.entries
    # anchor window 0 (6), newest 2 per camera (window 29), then the newest keyframe windows
    assert [x.window_index for x in e] == [0] * 6 + [24] * 6 + [28] * 6 + [29] * 6
    for cam in CAMS:
        assert [x.window_index for x in e if x.camera == cam][-2:] == [29, 29]
    assert all(x.keyframe for x in e if x.window_index in (24, 28))
    assert pool.evicted == 30 * 6 - 24
    assert pool.stats()["per_camera"] == {c: 8 for c in CAMS}


def test_eviction_plan_drives_the_model_state_in_step():
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    torch.manual_seed(0)
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()
    state = model.new_stream()
    state.max_pool_tokens = None
    pool = TokenPool(["a", "b"], max_entries=8, keyframe_every=2, frames_per_window=4)
    images = torch.randn(4, 3, 32, 32)
    for w in range(4):
        model.step(state, images, keys=[(w, i) for i in range(4)])
        pool.add_window(w, [("a", w), ("b", w), ("a", w + 0.5), ("b", w + 0.5)])
        keep = pool.plan_eviction()
        if keep is not None:
            state.keep_pool(keep)
            pool.keep(keep)
        pool.check_size(state.pool_size())
    assert state.pool_size() == 8
    assert state.pool_windows() == [x.window_index for x in pool.entries] == [0] * 4 + [3] * 4
    views = pool.camera_views(state.pool_tokens(), now=3.5)
    assert views["a"].size == 4 and views["a"].ages == pytest.approx((3.5, 3.0, 0.5, 0.0))
    expected = state.pool_tokens()[0].double().norm().item()
    assert views["a"].token_norms[0] == pytest.approx(expected, rel=1e-6)
    assert views["b"].as_dict()["oldest_age"] == pytest.approx(3.5)


def test_camera_views_check_token_shapes_and_default_now():
    pool = TokenPool(CAMS)
    fill(pool, 2)
    v = pool.camera_views()
    assert v["c"].size == 4 and v["c"].ages[-1] == 0.0 and v["c"].token_norms == ()
    with pytest.raises(InputError, match="do not match"):
        pool.camera_views(np.zeros((5, 4)))
    norms = pool.camera_views(np.ones((12, 4)))["a"].token_norms
    assert norms == pytest.approx((2.0,) * 4)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_entries": 0}, "max_entries=0"),
    ({"keyframe_every": 0}, "keyframe_every=0"),
    ({"max_entries": 10, "frames_per_window": 6}, "cannot hold the anchor"),
])
def test_pool_configuration_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TokenPool(CAMS, **kwargs)


def test_pool_rejects_unknown_cameras_and_bad_keep_indices():
    pool = TokenPool(CAMS)
    with pytest.raises(InputError, match="unknown camera 'x'"):
        pool.add_window(0, [("x", 0.0)])
    fill(pool, 1)
    with pytest.raises(InputError, match="indices"):
        pool.keep([7])
    with pytest.raises(InputError, match="mirror"):
        pool.check_size(5)
