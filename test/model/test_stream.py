"""Streaming: step-by-step equals the sequence call, the encoder cache, and the bounded pool."""
from __future__ import annotations

import pytest
import torch

from wint3r_ros.errors import InputError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.inference import forward_windows, padded_order, window_starts
from wint3r_ros.model.network import WinT3R


@pytest.fixture(scope="module")
def tiny() -> WinT3R:
    torch.manual_seed(0)
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()


def frames(n: int, h: int = 32, w: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def test_step_by_step_equals_one_sequence_call(tiny):
    images = frames(8)
    with torch.no_grad():
        whole = forward_windows(tiny, images)
    state = tiny.new_stream()
    pts, conf, poses = [], [], []
    for start in window_starts(8, 4, 2):
        out = tiny.step(state, images[start:start + 4], keys=list(range(start, start + 4)))
        pts.append(out.pts_local)
        conf.append(out.conf)
        poses.append(out.raw_pose_enc_iters)
    torch.testing.assert_close(torch.cat(pts), whole["pts_local"], atol=1e-5, rtol=1e-5)
    # conf = 1 + exp(x) reaches the hundreds with random weights: its float error is relative
    torch.testing.assert_close(torch.cat(conf), whole["conf"], atol=1e-5, rtol=1e-4)
    # the window-by-window camera head (cached keys/values) equals one run over the final pool
    torch.testing.assert_close(torch.cat(poses, dim=1), whole["pose_enc_iters"], atol=1e-5, rtol=1e-5)
    assert state.pool_size() == 12 and state.pool_windows() == [0] * 4 + [1] * 4 + [2] * 4


def test_window_output_fields_and_world_origin(tiny):
    state = tiny.new_stream()
    out = tiny.step(state, frames(4, 32, 32))
    assert out.pts_local.shape == (4, 32, 32, 3) and out.conf.shape == (4, 32, 32)
    assert out.pose_enc.shape == (4, 7) and out.cam_to_world.shape == (4, 4, 4)
    assert out.cam_to_world.dtype == torch.float32 and out.window_index == 0
    assert out.pose_enc_iters.shape == (tiny.config.cam_head_iterations, 4, 7)
    torch.testing.assert_close(out.cam_to_world[0], torch.eye(4), atol=1e-5, rtol=0)
    assert bool((out.conf >= 1).all()) and bool((out.pts_local[..., 2] > 0).all())
    rot = out.cam_to_world[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5, rtol=0)
    second = tiny.step(state, frames(3, 32, 32, seed=2))  # any S >= 1
    assert second.window_index == 1 and second.pts_local.shape[0] == 3 and state.pool_size() == 7


def test_encoder_cache_gives_the_same_outputs_as_encoding_every_frame(tiny):
    images = frames(10)
    cached = tiny.online_inference(images)
    from wint3r_ros.model.inference import online_inference

    uncached = online_inference(tiny, images, use_cache=False)
    for name in ("pts_local", "conf", "pose_enc", "pts3d_world"):
        # the parity tolerance (1e-4): encoding a frame alone or in a batch takes other kernels,
        # and conf = 1 + exp(x) reaches the hundreds with random weights
        torch.testing.assert_close(getattr(cached, name), getattr(uncached, name), atol=1e-4, rtol=1e-4)


def test_encoder_cache_reuses_the_overlap_and_never_holds_more_than_a_window(tiny):
    images = frames(12)
    state = tiny.new_stream()
    for start in window_starts(12, 4, 2):
        tiny.step(state, images[start:start + 4], keys=[f"f{i}" for i in range(start, start + 4)])
        assert len(state.encoder_cache) <= 4
    cache = state.encoder_cache
    assert cache.misses == 12 and cache.hits == 2 * 4  # 5 windows: 4 + 2 * 4 new frames
    # a frame that left the window is gone: reusing its key re-encodes it
    tiny.step(state, images[:4], keys=["f0", "f1", "f10", "f11"])
    assert cache.misses == 14 and cache.hits == 10


def test_duplicate_keys_in_one_window_are_encoded_once(tiny):
    state = tiny.new_stream()
    img = frames(1)
    out = tiny.step(state, img.expand(4, -1, -1, -1), keys=[7, 7, 7, 7])
    assert state.encoder_cache.misses == 1 and len(state.encoder_cache) == 1
    assert out.pts_local.shape[0] == 4


def test_bounded_pool_stays_flat_over_200_windows(tiny):
    state = tiny.new_stream(max_pool_tokens=16)
    images = frames(6, 32, 32)
    sizes, nbytes = [], []
    for i in range(200):
        start = 2 * (i % 2)
        tiny.step(state, images[start:start + 4], keys=[(i, j) for j in range(4)])
        sizes.append(state.pool_size())
        nbytes.append(state.nbytes())
    assert max(sizes) == 16 and sizes[-1] == 16
    assert len(set(nbytes[10:])) == 1, "memory must not grow once the pool is full"
    windows = state.pool_windows()
    assert windows[:4] == [0] * 4 and windows[4:] == [197] * 4 + [198] * 4 + [199] * 4
    assert state.pool_tokens().shape == (16, 2 * tiny.config.dec_embed_dim)
    assert state.reference_pose_iters is not None


def test_keep_pool_lets_the_caller_evict_and_stream_continues(tiny):
    state = tiny.new_stream()
    images = frames(8, 32, 32)
    for start in (0, 2, 4):
        tiny.step(state, images[start:start + 4])
    before = state.pool_tokens().clone()
    state.keep_pool([0, 1, 2, 3, 8, 9, 10, 11])
    assert state.pool_size() == 8 and state.kv.size == 8
    torch.testing.assert_close(state.pool_tokens(), before[[0, 1, 2, 3, 8, 9, 10, 11]])
    out = tiny.step(state, images[4:8])
    assert state.pool_size() == 12 and torch.isfinite(out.pose_enc).all()
    with pytest.raises(InputError, match="keep_pool"):
        state.keep_pool([99])


def test_keeping_every_entry_changes_nothing(tiny):
    images = frames(8, 32, 32)
    a, b = tiny.new_stream(), tiny.new_stream()
    for start in (0, 2):
        tiny.step(a, images[start:start + 4])
        tiny.step(b, images[start:start + 4])
    b.keep_pool(range(b.pool_size()))
    torch.testing.assert_close(tiny.step(a, images[4:8]).pose_enc, tiny.step(b, images[4:8]).pose_enc)


def test_padding_follows_the_authors_rule():
    assert padded_order(1, 4, 2) == [0, 0, 0, 0]
    assert padded_order(3, 4, 2) == [0, 1, 2, 2]
    assert padded_order(5, 4, 2) == [0, 1, 2, 3, 4, 4]
    assert padded_order(6, 4, 2) == list(range(6))
    assert window_starts(6, 4, 2) == [0, 2]


def test_short_sequences_run_and_every_frame_gets_an_output(tiny):
    for n in (1, 3, 5):
        out = tiny.online_inference(frames(n, 32, 32))
        assert out.pts_local.shape[0] == n and out.pose_enc.shape == (n, 7)
        torch.testing.assert_close(out.cam_to_world[0], torch.eye(4), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(3, 32, 32), "shape"),
    (torch.zeros(2, 3, 30, 32), "multiples of 16"),
    (torch.zeros(2, 1, 32, 32), "shape"),
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), "normalised"),
])
def test_step_rejects_bad_images_with_a_clear_error(tiny, bad, message):
    with pytest.raises(InputError, match=message):
        tiny.step(tiny.new_stream(), bad)


def test_step_rejects_keys_of_the_wrong_length(tiny):
    with pytest.raises(InputError, match="2 keys for 4 frames"):
        tiny.step(tiny.new_stream(), frames(4, 32, 32), keys=[1, 2])
    with pytest.raises(InputError, match="max_pool_tokens"):
        tiny.new_stream(max_pool_tokens=3)


def test_last_window_skips_the_state_update_without_changing_its_outputs(tiny):
    images = frames(6, 32, 32)
    a, b = tiny.new_stream(), tiny.new_stream()
    tiny.step(a, images[:4]), tiny.step(b, images[:4])
    keep_going = tiny.step(a, images[2:6])
    final = tiny.step(b, images[2:6], last=True)
    assert b.state is None and a.state is not None
    torch.testing.assert_close(final.pts_local, keep_going.pts_local, atol=0, rtol=0)
    torch.testing.assert_close(final.pose_enc, keep_going.pose_enc, atol=0, rtol=0)
    with pytest.raises(InputError, match="ended with last=True"):
        tiny.step(b, images[:4])


def test_pool_bound_too_small_for_the_window_is_refused_before_any_work(tiny):
    state = tiny.new_stream(max_pool_tokens=10)
    tiny.step(state, frames(6, 32, 32))
    with pytest.raises(InputError, match="cannot hold the first window's 6 entries and this window's 6"):
        tiny.step(state, frames(6, 32, 32))
    assert state.pool_size() == 6 and state.windows_done == 1
    tiny.step(state, frames(4, 32, 32))
    assert state.pool_size() == 10 and state.pool_windows() == [0] * 6 + [1] * 4


def test_training_works_after_a_first_forward_under_inference_mode():
    """The RoPE tables cached by a first forward under torch.inference_mode are ordinary
    tensors: a training step afterwards (fine-tuning a loaded model) can backpropagate."""
    torch.manual_seed(0)
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=0)
    images = frames(4, 32, 48)
    with torch.inference_mode():
        model.eval().step(model.new_stream(), images)
    model.train()
    out = model(images)                       # the differentiable training pass
    out["pts_local"].square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
