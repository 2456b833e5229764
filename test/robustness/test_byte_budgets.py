"""Byte budgets on every buffer of images (issue 22 item 8): the sync queues, the window being
built, sync_node's outbox, fusion_node's queue and process-bag. Counts bound these buffers for
small images; `buffer_budget_mb` bounds the bytes for large ones: over it the oldest waiting
image or window is dropped and counted, a window is never cut, and the newest always gets in."""
from __future__ import annotations

import threading
import time

import numpy as np
from fixtures.cameras import NAMES, make_rig, texture, write_rig

from wint3r_ros.cli import main
from wint3r_ros.core.pipeline.frontend import SyncFrontEnd, SyncSettings
from wint3r_ros.core.sync import DROP_REASONS, ApproximateTimePolicy, item_nbytes
from wint3r_ros.core.synchronizer import SyncConfig
from wint3r_ros.core.window import WindowConfig
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagWriter
from wint3r_ros.data.rig_files import save_rig

MS = 1_000_000
PERIOD = 100 * MS
T0 = 1_700_000_000 * 10**9


def _lagging_arrivals(frames: int, lag: int, size: int):
    """Streams 0 and 1 in time; stream 2 delivers each frame ``lag`` frames late (a slow
    driver): the other queues fill while they wait for it. Items: ``size``-byte arrays."""
    out = []
    for k in range(frames + lag):
        for s in (0, 1):
            if k < frames:
                out.append((s, k * PERIOD + s * 1000, np.full(size, k, np.uint8)))
        if k >= lag:
            out.append((2, (k - lag) * PERIOD + 2000, np.full(size, k - lag, np.uint8)))
    return out


def test_item_sizes_come_from_arrays_and_message_data():
    img = m.image_from_array(np.zeros((48, 64, 3), np.uint8), "rgb8", T0, "cam0")
    assert item_nbytes(np.zeros((10, 10), np.float32)) == 400
    assert item_nbytes(img) == 48 * 64 * 3
    assert item_nbytes((np.zeros(5, np.uint8), np.zeros(3, np.uint8))) == 8
    assert item_nbytes(None) == 0 and item_nbytes("a label") == 0


def test_sync_queues_stay_within_their_byte_budget_and_count_what_they_drop():
    size, budget = 1000, 8000
    counts = ApproximateTimePolicy(3, queue_size=100, slop=0.01)
    bytes_ = ApproximateTimePolicy(3, queue_size=100, slop=0.01, max_bytes=budget)
    sets = {"counts": [], "bytes": []}
    for stream, stamp, item in _lagging_arrivals(30, lag=8, size=size):
        sets["counts"] += counts.add(stream, stamp, item)
        sets["bytes"] += bytes_.add(stream, stamp, item)
        assert bytes_.queued_bytes <= budget
    # without the budget the two prompt streams queue 8 frames each (18 kB) and lose nothing
    assert len(sets["counts"]) == 30
    stats = bytes_.stats
    dropped = sum(s.dropped["byte_budget"] for s in stats.streams)
    assert dropped > 0 and stats.streams[2].dropped["byte_budget"] == 0   # the late one kept
    for s in stats.streams:       # every message matched, dropped with a reason, or waiting
        assert s.received == s.matched + sum(s.dropped.values()) + s.pending
    assert "byte_budget" in DROP_REASONS
    # sets still form from what the budget kept: the newest frames of the prompt streams
    kept = [int(st[0][0]) for st in sets["bytes"]]
    assert kept == list(range(30 - len(kept), 30)) and len(kept) >= 3
    assert all(len({int(x[0]) for x in st}) == 1 for st in sets["bytes"])  # same frame k


def test_the_front_end_counts_the_window_being_built_in_its_budget():
    size = 1000
    window = WindowConfig(4, 2)
    budget = 20_000        # the window being built (4 sets x 3 cameras) takes 12 000 of it
    front = SyncFrontEnd(list(NAMES), SyncSettings(SyncConfig(slop=0.01, queue_size=100), window,
                                                   buffer_bytes=budget))
    windows = []
    for stream, stamp, item in _lagging_arrivals(30, lag=8, size=size):
        windows += front.add(stream, stamp, item)
        assert front.held_bytes() <= budget
        assert front.policy.queued_bytes <= budget - front.builder.held_bytes()
    stats = front.stats()
    assert stats["peak_held_bytes"] <= budget and stats["held_bytes"] == front.held_bytes()
    assert windows and sum(c["dropped"]["byte_budget"] for c in stats["cameras"]) > 0
    # a budget below one window: the window is never cut, the queues keep each camera's newest
    tiny = SyncFrontEnd(list(NAMES), SyncSettings(SyncConfig(slop=0.01, queue_size=100), window,
                                                  buffer_bytes=1))
    out = []
    for stream, stamp, item in _lagging_arrivals(30, lag=0, size=size):   # cameras in time
        out += tiny.add(stream, stamp, item)
        assert tiny.held_bytes() <= (4 * 3 + 3) * size
    assert len(out) == 14 and all(len(w.window.frames) == 12 for w in out)


def test_large_image_warning_says_what_the_budget_holds_and_when_a_window_does_not_fit():
    big = m.image_from_array(np.zeros((6000, 8000, 3), np.uint8), "rgb8", T0, "cam0")
    note = m.large_image_warning(big, "/cam0/image_raw", 30, 3, 1024 << 20, 12)
    assert note.startswith("topic /cam0/image_raw: 8000x6000 rgb8 images of 137 MiB: "
                           "buffer_budget_mb (1024 MiB) holds about 7 of them, so images "
                           "waiting for a match are dropped first (byte_budget); one window of 12 "
                           "images and each camera's newest need 2.0 GiB, more than the budget; "
                           "the buffers may hold about 2.0 GiB"), note
    small = m.image_from_array(np.zeros((240, 320, 3), np.uint8), "rgb8", T0, "cam0")
    assert m.large_image_warning(small, "/cam0/image_raw", 30, 3, 1024 << 20, 12) is None
    assert "more than the budget" in m.large_image_warning(small, "/cam0/image_raw", 30, 3,
                                                           1 << 20, 12)


def _big_bag(path, width: int, height: int, sets: int = 8):
    """A 3-camera bag at width x height, 10 Hz, with its rig file beside it."""
    rig = make_rig(width=width, height=height)
    with BagWriter(path) as w:
        for k in range(sets):
            for c, cam in enumerate(rig.cameras):
                msg = m.image_from_array(texture(c, k, width, height), "rgb8",
                                         T0 + k * PERIOD + c * MS, cam.frame_id)
                w.write(cam.topic, msg, T0 + k * PERIOD + c * MS)
    save_rig(rig, path.with_name(path.name + ".rig.yaml"), "test rig")
    return path


def test_process_bag_keeps_its_images_within_the_budget_and_warns_when_a_window_does_not_fit(
        tmp_path, capsys):
    bag = _big_bag(tmp_path / "big", 320, 240)          # 225 KiB images, windows of 2.6 MiB
    image = 320 * 240 * 3
    (tmp_path / "sync.yaml").write_text("sync_node:\n  ros__parameters:\n    buffer_budget_mb: 1\n")
    code = main(["process-bag", str(bag), str(tmp_path / "out"), "--no-progress", "--threads",
                 "1", "--input-long-side", "64", "--sync-config", str(tmp_path / "sync.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "buffer_budget_mb (1 MiB) holds about 4 of them" in err and \
        "one window of 12 images and each camera's newest need" in err, err
    peak = float(out.split("buffers: at most ")[1].split(" MiB")[0]) * 2**20
    assert 12 * image <= peak <= (12 + 3) * image + 2**20 * 0.05, out
    assert "wrote" in out and "24 frames" in out, out     # nothing lost: the bag is in order


# ------------------------------------------------------------------------------- the nodes


def test_sync_node_outbox_and_front_end_stay_within_buffer_budget_mb(rclpy_context, tmp_path,
                                                                     monkeypatch):
    from fixtures.graph import sync_overrides

    import wint3r_ros.ros.sync_node as sync_module
    from wint3r_ros.ros import convert as cv

    release, entered = threading.Event(), threading.Event()
    real = sync_module.build_window_batch

    def slow_build(*args, **kwargs):   # the publisher thread is stuck on the first window
        entered.set()
        assert release.wait(20.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(sync_module, "build_window_batch", slow_build)
    rig = write_rig(tmp_path / "rig.yaml", width=320, height=240)
    image, budget = 320 * 240 * 3, 4 << 20
    sync = sync_module.SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, slop=0.01, buffer_budget_mb=4))
    try:
        for k in range(20):
            for c in range(3):
                ns = 7_000_000_000 + k * PERIOD + c * 1000
                sync._on_image(c, cv.image_from_array(texture(c, k, 320, 240), "rgb8", ns,
                                                      f"{NAMES[c]}_optical_frame"))
                with sync._lock:
                    held = sync.front.held_bytes() + sync._outbox_bytes
                    assert held <= budget or len(sync._outbox) <= 1, (k, c, held)
                    assert sync._outbox_bytes == sum(e[-1] for e in sync._outbox)
            if k == 4:
                assert entered.wait(10.0)
        v = sync.status_values()
        waiting = len(sync._outbox)
        # by count the outbox would keep 4 windows (6 new images each): the budget keeps fewer
        assert waiting < 4 and v["published"] == 0
        assert v["drops"]["windows/outbox_full"] == v["stats"]["windows"] - 1 - waiting
        assert sync._outbox_bytes == waiting * 6 * image
        assert v["buffered_mb"] * 2**20 == sync.front.held_bytes() + sync._outbox_bytes <= budget
        release.set()
        end = time.monotonic() + 20
        while sync.status_values()["published"] < 1 + waiting and time.monotonic() < end:
            time.sleep(0.05)
        assert sync.status_values()["published"] == 1 + waiting and sync._outbox_bytes == 0
    finally:
        release.set()
        sync.destroy_node()


def test_fusion_node_queue_is_bounded_in_bytes_and_counts_byte_budget(rclpy_context, tmp_path):
    from fixtures.graph import fusion_overrides, random_tiny_model, window_batches

    from wint3r_ros.ros.fusion_node import FusionNode, batch_bytes

    model = _Blocking(random_tiny_model())
    rig = write_rig(tmp_path / "rig.yaml", width=320, height=240)
    node = FusionNode(context=rclpy_context, model=model, parameter_overrides=fusion_overrides(
        rig, queue_size=10, buffer_budget_mb=6))
    try:
        batches = window_batches(14, width=320, height=240)     # 6 windows
        size = batch_bytes(batches[0])
        assert size == 12 * 320 * 240 * 3          # 2.6 MiB: two fit in 6 MiB, three do not
        node._on_batch(batches[0])
        assert model.entered.wait(20.0)
        for b in batches[1:]:
            node._on_batch(b)
            with node._cond:
                assert sum(q[2] for q in node._queue) <= 6 << 20
        v = node.status_values()
        assert v["queued"] == 2 and v["drops"]["byte_budget"] == 3 and v["drops"]["queue_full"] == 0
        assert v["queued_mb"] == 2 * size / 2**20
        model.release.set()
        end = time.monotonic() + 30
        while node.status_values()["windows"] < 3 and time.monotonic() < end:
            time.sleep(0.05)
        assert node.status_values()["windows"] == 3     # the first and the two newest
    finally:
        model.release.set()
        node.destroy_node()


class _Blocking:
    """A model held inside step() until released (to fill the fusion queue)."""

    def __init__(self, model) -> None:
        self.model, self.entered, self.release = model, threading.Event(), threading.Event()

    def new_stream(self):
        return self.model.new_stream()

    def step(self, *args, **kwargs):
        self.entered.set()
        self.release.wait(20.0)
        return self.model.step(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)
