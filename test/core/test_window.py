"""Windows: stride, overlap, ordering, degraded sets, flush, validation errors."""
from __future__ import annotations

import pytest

from wint3r_ros.core.sync import ApproximateTimePolicy
from wint3r_ros.core.window import RingBuffer, WindowBuilder, WindowConfig
from wint3r_ros.errors import ConfigError, SyncError

CAMS = ("left", "right", "rear")


def push_sets(builder: WindowBuilder, count: int, start: int = 0):
    windows = []
    for k in range(start, start + count):
        stamps = [k * 0.1 + 0.001 * c for c in range(len(CAMS))]
        w = builder.push([(c, k) for c in range(len(CAMS))], stamps)
        if w is not None:
            windows.append(w)
    return windows


@pytest.mark.parametrize("L,O", [(4, 2), (4, 0), (3, 2), (1, 0), (5, 1)])
def test_windows_advance_by_stride_and_repeat_the_overlap(L, O):
    b = WindowBuilder(CAMS, WindowConfig(L, O))
    windows = push_sets(b, 20)
    stride = L - O
    assert len(windows) == 1 + (20 - L) // stride
    for w in windows:
        assert w.num_steps == L
        assert w.set_indices == tuple(range(w.index * stride, w.index * stride + L))
        assert w.first_new_step == (0 if w.index == 0 else O)
        assert len(w.frames) == L * len(CAMS)
    for a, c in zip(windows, windows[1:]):
        assert a.set_indices[L - O:] == c.set_indices[:O]          # the overlap repeats
    assert [w.index for w in windows] == list(range(len(windows)))


def test_time_major_and_camera_major_orders():
    tw = push_sets(WindowBuilder(CAMS, WindowConfig(2, 0, "time")), 2)[0]
    cw = push_sets(WindowBuilder(CAMS, WindowConfig(2, 0, "camera")), 2)[0]
    assert tw.items == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert cw.items == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert [f.camera for f in cw.frames[:2]] == ["left", "left"]
    assert tw.stamps[1] == pytest.approx((0.1, 0.101, 0.102))
    assert [f.stamp for f in tw.camera_frames("right")] == pytest.approx([0.001, 0.101])
    assert tw.keys[:3] == [(0, 0), (1, 0), (2, 0)]
    assert tw.camera_names == CAMS


def test_window_from_sync_policy_carries_stamps_and_set_indices():
    policy = ApproximateTimePolicy(2, slop=0.01)
    b = WindowBuilder(["a", "b"], WindowConfig(3, 1))
    windows = []
    for k in range(7):
        for s in range(2):
            for synced in policy.add(s, k * 33_333_333 + 2_000_000 * s, f"{s}:{k}"):
                w = b.push(synced)
                if w:
                    windows.append(w)
    assert [w.set_indices for w in windows] == [(0, 1, 2), (2, 3, 4), (4, 5, 6)]
    assert windows[1].stamps[0] == (66_666_666, 68_666_666)  # integer ns, exact
    assert windows[1].new_frames[0].item == "0:3"


def test_degraded_sets_leave_gaps_for_the_missing_camera():
    b = WindowBuilder(CAMS, WindowConfig(2, 0))
    assert b.push([1, None, 3], [0.0, None, 0.0]) is None
    w = b.push([4, 5, 6], [0.1, 0.1, 0.1])
    assert w.items == [1, 3, 4, 5, 6]
    assert w.stamps[0] == (0.0, None, 0.0)
    assert [f.step for f in w.camera_frames(1)] == [1]


def test_flush_emits_the_tail_and_short_streams():
    b = WindowBuilder(CAMS, WindowConfig(4, 2))
    windows = push_sets(b, 7)  # windows at sets 0-3, 2-5; set 6 in none yet
    assert len(windows) == 2
    tail = b.flush()
    assert tail.set_indices == (3, 4, 5, 6) and tail.first_new_step == 3
    assert b.flush() is None
    short = WindowBuilder(CAMS, WindowConfig(4, 2))
    push_sets(short, 2)
    w = short.flush()
    assert w.num_steps == 2 and w.first_new_step == 0


def test_ring_buffers_stay_bounded():
    b = WindowBuilder(CAMS, WindowConfig(4, 2))
    push_sets(b, 1000)
    assert b.stats["buffered"] == {c: 4 for c in CAMS}
    assert b.stats["windows"] == 1 + (1000 - 4) // 2
    r = RingBuffer(2)
    for i in range(5):
        r.append(i)
    assert list(r) == [3, 4] and r.capacity == 2


def test_a_set_older_than_the_previous_restarts_windows():
    b = WindowBuilder(CAMS, WindowConfig(2, 1))
    push_sets(b, 3, start=10)
    assert push_sets(b, 1, start=0) == []   # time jumped back: buffers restart
    assert b.stats["resets"] == 1
    w = push_sets(b, 1, start=1)[0]
    assert w.stamps[0][0] == pytest.approx(0.0) and w.first_new_step == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"size": 4, "overlap": 4}, r"overlap O=4 must be .*0 <= O < L \(window size L=4\)"),
    ({"size": 4, "overlap": -1}, r"O=-1"),
    ({"size": 0, "overlap": 0}, r"window size L=0"),
    ({"size": 4, "overlap": 2, "order": "random"}, r"order='random'"),
])
def test_window_config_errors_name_the_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        WindowConfig(**kwargs)


def test_push_rejects_malformed_sets():
    b = WindowBuilder(CAMS)
    with pytest.raises(SyncError, match="2 items, expected 3"):
        b.push([1, 2], [0.0, 0.0])
    with pytest.raises(SyncError, match="camera 'right'"):
        b.push([1, None, 3], [0.0, 0.0, 0.0])
    with pytest.raises(ConfigError, match="unique"):
        WindowBuilder(["a", "a"])
