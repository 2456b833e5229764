"""The sync node's logic without DDS (SyncFrontEnd: sets, windows, epochs, counters) and the
WindowBatch round trip (raw and JPEG) back into an engine Window with stable set indices."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import make_rig, texture

from wint3r_ros.core.pipeline.frontend import SyncFrontEnd, SyncSettings
from wint3r_ros.core.pipeline.fusion import WindowAssembler
from wint3r_ros.core.synchronizer import SyncConfig
from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import ConfigError, InputError
from wint3r_ros.ros import convert
from wint3r_ros.ros.batch import build_window_batch, decode_window_batch

NAMES = ["cam0", "cam1", "cam2"]
T0 = 1_700_000_000_000_000_000


def _stream(front, sets, drop=(), start=T0, seed=0, period_ns=100_000_000):
    rng = np.random.default_rng(seed)
    out, stamps = [], {}
    for k in sets:
        for c in rng.permutation(3):
            c = int(c)
            ns = start + k * period_ns + int(rng.integers(-3_000_000, 3_000_000))
            stamps[(c, k)] = ns
            if (c, k) in drop:
                continue
            msg = convert.image_from_array(texture(c, k, 32, 24), "rgb8", ns, f"{NAMES[c]}_optical_frame")
            out.extend(front.add(c, ns, msg))
    return out, stamps


def test_front_end_cuts_windows_counts_drops_and_starts_an_epoch_on_a_jump_back():
    front = SyncFrontEnd(NAMES, SyncSettings(SyncConfig(slop=0.01), WindowConfig(4, 2)))
    wins, stamps = _stream(front, range(12), drop={(1, 4)})
    front.reject(2, "bad_encoding")
    assert [w.index for w in wins] == [0, 1, 2, 3] and {w.epoch for w in wins} == {0}
    assert [w.window.set_indices for w in wins][:2] == [(0, 1, 2, 3), (2, 3, 4, 5)]
    first = wins[0].window
    assert [f.item.header.stamp for f in first.frames] == \
        [convert.stamp_from_ns(stamps[(c, k)]) for k in range(4) for c in range(3)]
    st = front.stats()
    cams = {c["name"]: c for c in st["cameras"]}
    assert cams["cam0"]["dropped"]["no_match"] == 1 and cams["cam2"]["dropped"]["no_match"] == 1
    assert cams["cam1"]["dropped"]["no_match"] == 0
    assert cams["cam2"]["rejected"]["bad_encoding"] == 1
    for c in cams.values():  # nothing disappears uncounted
        assert c["received"] == c["matched"] + sum(c["dropped"].values()) + \
            sum(c["rejected"].values()) + c["pending"]
    # the bag loops: stamps jump back 1.2 s -> the old epoch's last set (in no window yet)
    # gets a last window of its own, then a new epoch, window numbering restarts
    wins2, _ = _stream(front, range(8), start=T0 - 1_200_000_000, seed=1)
    assert (wins2[0].epoch, wins2[0].index) == (0, 4)
    assert wins2[0].window.set_indices[-1] == 10 and wins2[0].window.first_new_step == 3
    assert len(wins2) > 1 and {w.epoch for w in wins2[1:]} == {1} and wins2[1].index == 0
    assert any(e.kind == "time_jump" for e in front.events())
    assert front.stats()["epoch"] == 1


def test_front_end_refuses_more_min_cameras_than_cameras():
    with pytest.raises(ConfigError, match="min_cameras=4"):
        SyncFrontEnd(NAMES, SyncSettings(SyncConfig(min_cameras=4)))


@pytest.mark.parametrize("transport", ["raw", "jpeg"])
def test_window_batch_round_trip_into_engine_windows(transport):
    front = SyncFrontEnd(NAMES, SyncSettings(SyncConfig(slop=0.01), WindowConfig(4, 2)))
    wins, stamps = _stream(front, range(10))
    rig = make_rig(width=32, height=24)
    asm = WindowAssembler("time")
    seen, cache, previous = [], {}, None
    for w in wins[:3]:
        infos = [convert.camera_info_from_camera(c, 0) for c in rig.cameras]
        msg = build_window_batch(w.window, index=w.index, epoch=w.epoch, overlap=2,
                                 base_frame="base_link", frame_ids=[c.frame_id for c in rig.cameras],
                                 camera_infos=infos, transport=transport, jpeg_quality=95,
                                 jpeg_cache=cache)
        if transport == "jpeg":  # the overlap is encoded once: the same objects, a bounded cache
            assert len(cache) == 12
            if previous is not None:
                assert all(a is b for a, b in zip(previous.compressed_images[6:], msg.compressed_images[:6]))
            previous = msg
        assert (msg.num_cameras, msg.num_steps, msg.overlap, msg.header.frame_id) == (3, 4, 2, "base_link")
        assert bool(msg.images) == (transport == "raw") and bool(msg.compressed_images) == (transport == "jpeg")
        last = [stamps[(c, w.window.set_indices[-1])] for c in range(3)]
        assert convert.ns_from_stamp(msg.header.stamp) == max(last)
        batch = decode_window_batch(msg, "/sync_node/windows")
        for t, k in enumerate(w.window.set_indices):
            assert batch.stamps_ns[t] == [stamps[(c, k)] for c in range(3)]
            for c in range(3):
                err = np.abs(batch.images[t][c].astype(int) - texture(c, k, 32, 24).astype(int))
                assert err.max() == 0 if transport == "raw" else err.mean() < 20  # 4:2:0 chroma, 4-px checkers
        seen.append(asm.assemble(batch))
    assert [w.first_new_step for w in seen] == [0, 2, 2]
    assert [w.set_indices for w in seen] == [(0, 1, 2, 3), (2, 3, 4, 5), (4, 5, 6, 7)]
    assert seen[1].frames[0].item.stamp_ns == stamps[(0, 2)]
    # a window that was dropped upstream: nothing is shared, new set indices
    asm2 = WindowAssembler("camera")
    asm2.assemble(decode_window_batch(build_window_batch(
        wins[0].window, index=0, epoch=0, overlap=2, base_frame="b", frame_ids=["a", "b", "c"],
        camera_infos=[])))
    w2 = asm2.assemble(decode_window_batch(build_window_batch(
        wins[2].window, index=2, epoch=0, overlap=2, base_frame="b", frame_ids=["a", "b", "c"],
        camera_infos=[])))
    assert w2.first_new_step == 0 and w2.set_indices == (4, 5, 6, 7)
    assert [f.camera_index for f in w2.frames[:4]] == [0, 0, 0, 0]  # camera-major order


def test_inconsistent_window_batch_is_refused_with_the_reason():
    front = SyncFrontEnd(NAMES, SyncSettings(SyncConfig(slop=0.01)))
    wins, _ = _stream(front, range(6))
    msg = build_window_batch(wins[0].window, index=0, epoch=0, overlap=2, base_frame="b",
                             frame_ids=["a", "b", "c"], camera_infos=[])
    msg.images = list(msg.images)[:-1]
    with pytest.raises(InputError, match="11 images and 12 stamps, expected num_steps x num_cameras"):
        decode_window_batch(msg, "/w")
    msg.images = []
    with pytest.raises(InputError, match="exactly one of images"):
        decode_window_batch(msg, "/w")
