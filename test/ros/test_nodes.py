"""Node behaviour beyond the main stream: the fusion queue and latency budget (drop oldest,
counted, callbacks never wait for the model), sync under a multi-threaded executor, parameter
checks at start-up and at run time, JPEG transport to a fusion node without a rig, and the
warning for a silent topic with a QoS mismatch."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.cameras import NAMES, SyntheticCameras, texture, write_rig  # noqa: E402
from fixtures.graph import (  # noqa: E402
    Recorder,
    fusion_overrides,
    make_graph,
    play,
    random_tiny_model,
    record_all,
    spin_until,
    sync_overrides,
    window_batches,
)
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from wint3r_ros.core.outputs import BASE_FROM_OPTICAL  # noqa: E402
from wint3r_ros.errors import ConfigError  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.fusion_node import FusionNode  # noqa: E402
from wint3r_ros.ros.sync_node import SyncNode  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model():
    return random_tiny_model()


class BlockingModel:
    """The tiny model, held inside step() until released (to fill the fusion queue)."""

    def __init__(self, model) -> None:
        self.model = model
        self.entered = threading.Event()
        self.release = threading.Event()

    def parameters(self):
        return self.model.parameters()

    def new_stream(self):
        return self.model.new_stream()

    def step(self, state, images, keys=None):
        self.entered.set()
        assert self.release.wait(20.0)
        return self.model.step(state, images, keys)


def _batches(n_sets: int = 10):
    return window_batches(n_sets)


def test_full_fusion_queue_drops_the_oldest_and_the_budget_drops_stale_windows(
        rclpy_context, tiny_model, tmp_path):
    model = BlockingModel(tiny_model)
    rig = write_rig(tmp_path / "rig.yaml")
    node = FusionNode(context=rclpy_context, model=model, parameter_overrides=fusion_overrides(
        rig, queue_size=2, latency_budget=0.15))
    try:
        b = _batches()
        assert [cv.ns_from_stamp(x.header.stamp) for x in b] == \
            [5_300_002_000, 5_500_002_000, 5_700_002_000, 5_900_002_000]
        node._on_batch(b[0])
        assert model.entered.wait(20.0), "the worker never started the model"
        t = time.monotonic()
        for x in b[1:]:
            node._on_batch(x)  # returns at once although the model is busy
        queued_in = time.monotonic() - t
        v = node.status_values()
        assert v["drops"]["queue_full"] == 1 and v["queued"] == 2
        model.release.set()
        end = time.monotonic() + 30
        while node.status_values()["windows"] < 2 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
        v = node.status_values()
        # b1 dropped (queue full), b2 dropped (0.2 s behind b3 > 0.15 s budget), b0 and b3 run
        assert (v["windows"], v["drops"]["queue_full"], v["drops"]["latency_budget"]) == (2, 1, 1)
        assert queued_in < 5.0  # sanity only: the callbacks did not wait for the 20 s release
    finally:
        model.release.set()
        node.destroy_node()


def test_held_frames_are_published_when_the_windows_stop_and_never_twice(
        rclpy_context, tiny_model, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    node = FusionNode(context=rclpy_context, model=tiny_model,
                      parameter_overrides=fusion_overrides(rig, hold_timeout=0.5))
    published = []
    real = node._publish
    node._publish = lambda batch: (published.extend(
        (f.set_index, f.camera_index) for f in batch.frames), real(batch))

    def wait_for(frames_out: int) -> dict:
        end = time.monotonic() + 30
        while node.status_values()["frames_out"] < frames_out and time.monotonic() < end:
            time.sleep(0.05)
        return node.status_values()

    try:
        batches = window_batches(12)  # 5 windows: sets 0-3, 2-5, 4-7, 6-9, 8-11
        assert len(batches) == 5
        for b in batches[:4]:
            node._on_batch(b)
        # sets 0-7 come out with the windows; 8 and 9 wait for a window that does not come,
        # and are published hold_timeout after the last one instead of being lost
        v = wait_for(30)
        assert (v["windows"], v["frames_out"]) == (4, 30)
        # the stream goes on after all: sets 8, 9 are not published again, 10, 11 follow
        node._on_batch(batches[4])
        v = wait_for(36)
        assert (v["windows"], v["frames_out"]) == (5, 36)
        assert sorted(published) == [(k, c) for k in range(12) for c in range(3)]
    finally:
        node.destroy_node()


def test_sync_node_works_under_a_multithreaded_executor(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig))
    pub = rclpy.create_node("mt_pub", context=rclpy_context)
    cams = SyntheticCameras(pub)
    rec = Recorder(pub)
    record_all(rec)
    ex = MultiThreadedExecutor(num_threads=3, context=rclpy_context)
    ex.add_node(sync)
    ex.add_node(pub)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        end = time.monotonic() + 10
        while not cams.subscribed() and time.monotonic() < end:
            time.sleep(0.02)
        for k in range(12):
            cams.publish(k)
            time.sleep(0.05)
        end = time.monotonic() + 10
        while len(rec.msgs["/sync_node/windows"]) < 5 and time.monotonic() < end:
            time.sleep(0.05)
        batches = rec.msgs["/sync_node/windows"]
        assert [b.window_index for b in batches] == [0, 1, 2, 3, 4]
        for b in batches:
            stamps = [cv.ns_from_stamp(s) for s in b.image_stamps]
            assert len(stamps) == 12 and len(b.images) == 12
            sets = [stamps[i:i + 3] for i in range(0, 12, 3)]
            assert all(max(s) - min(s) <= 10_000_000 for s in sets)
        firsts = [cv.ns_from_stamp(b.image_stamps[0]) for b in batches]
        assert firsts == sorted(firsts)  # windows leave in order
    finally:
        ex.shutdown()
        spinner.join(timeout=5)
        sync.destroy_node()
        pub.destroy_node()


@pytest.mark.parametrize("overrides,needle", [
    ({"camera_names": ["a", "b"], "image_topics": ["/a"]}, "image_topics has 1 entries for 2"),
    ({"camera_names": ["front", "2nd"]}, "must start with a letter"),
    ({"camera_names": ["a"], "window_length": 2, "window_overlap": 2},
     "window_overlap=2 must be smaller than window_length=2"),
    ({"camera_names": ["a"], "slop": 5.0}, "slop"),
    ({"camera_names": ["a"], "transport": "h264"}, "'h264' is not one of raw, jpeg"),
    ({}, "no cameras configured"),
    ({"rig_file": "/nonexistent/rig.yaml"}, "rig_file"),
])
def test_sync_node_refuses_bad_parameters_with_the_reason(rclpy_context, overrides, needle):
    with pytest.raises(ConfigError) as err:
        SyncNode(context=rclpy_context,
                 parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    assert needle in str(err.value)


def test_sync_node_refuses_unstamped_images_and_says_why(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig))
    logged = []
    sync._ratelog._log = logged.append
    try:
        msg = cv.image_from_array(texture(0, 0, 64, 48), "rgb8", 0, "cam0_optical_frame")
        sync._on_image(0, msg)
        sync._on_image(0, msg)
        v = sync.status_values()
        assert v["drops"] == {"cam0/zero_stamp": 2}
        assert len(logged) == 1 and "image stamp is 0" in logged[0] and "/cam0/image_raw" in logged[0]
    finally:
        sync.destroy_node()


def test_sync_node_run_time_parameters(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig))
    try:
        ok, = sync.set_parameters([Parameter("slop", value=0.03)])
        assert ok.successful and sync.front.policy.slop == 0.03
        ro, = sync.set_parameters([Parameter("window_length", value=6)])
        assert not ro.successful and "read-only" in ro.reason
        bad, = sync.set_parameters([Parameter("jpeg_quality", value=0)])
        assert not bad.successful and "out of range" in bad.reason
        assert sync.describe_parameter("slop").description.startswith("Largest spread")
    finally:
        sync.destroy_node()


def test_jpeg_windows_to_a_fusion_node_without_rig(rclpy_context, tmp_path):
    ex, sync, fusion, cams, rec, pub = make_graph(
        rclpy_context, tmp_path, sync_extra={"transport": "jpeg", "jpeg_quality": 80},
        with_rig_for_fusion=False)
    try:
        play(ex, cams, range(8))
        assert spin_until(ex, lambda: fusion.status_values()["windows"] >= 2, 30.0)
        assert spin_until(ex, lambda: len(rec.msgs["/fusion_node/cam1/camera_info"]) >= 4, 10.0)
        # topics arrive in any order: wait for the camera transforms of the same 4 sets
        assert spin_until(ex, lambda: sum(t.header.frame_id == "base_link" for m in rec.msgs["/tf"]
                                          for t in m.transforms) >= 8, 10.0)
        batch = rec.msgs["/sync_node/windows"][0]
        assert not batch.images and len(batch.compressed_images) == 12
        assert batch.compressed_images[0].format == "rgb8; jpeg compressed bgr8"
        depth = rec.msgs["/fusion_node/cam1/depth"][0]
        info = rec.msgs["/fusion_node/cam1/camera_info"][0]
        assert depth.header == info.header and (info.width, info.height) == (64, 48)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3),
                                   np.asarray(batch.camera_infos[1].k).reshape(3, 3))
        static = {t.child_frame_id: t for t in rec.msgs["/tf_static"][-1].transforms}
        assert list(static) == ["cam0_optical_frame"]  # only camera 0's mount is assumed
        (_, _, _, T), = cv.transforms_from_tf_message(type("M", (), {"transforms": [static["cam0_optical_frame"]]}))
        np.testing.assert_allclose(T, BASE_FROM_OPTICAL, atol=1e-12)
        # the other cameras hang under base_link on /tf, one transform per image at its stamp
        dyn = [t for m in rec.msgs["/tf"] for t in m.transforms if t.header.frame_id == "base_link"]
        assert {t.child_frame_id for t in dyn} == {"cam1_optical_frame", "cam2_optical_frame"}
        cam1 = [cv.ns_from_stamp(t.header.stamp) for t in dyn if t.child_frame_id == "cam1_optical_frame"]
        assert cam1[:4] == [cv.ns_from_stamp(m.header.stamp) for m in rec.msgs["/fusion_node/cam1/depth"][:4]]
        v = fusion.status_values()
        assert not v["metric"] and v["scale"] == 1.0 and v["drops"]["bad_window"] == 0
        assert v["state"] == "ok"  # relative scale is what a rig without calibration gives
    finally:
        ex.shutdown()
        for n in (fusion, sync, pub):
            n.destroy_node()


def test_silent_topic_with_a_qos_mismatch_is_explained(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, input_qos="reliable", silence_timeout=0.3))
    pub = rclpy.create_node("be_camera", context=rclpy_context)
    SyntheticCameras(pub, reliable=False)  # a best-effort camera driver
    ex = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sync)
    ex.add_node(pub)
    try:
        assert spin_until(ex, lambda: len(sync.watchdog.warnings) == 3, 10.0)
        text = sync.watchdog.warnings["/cam0/image_raw"]
        assert "input_qos" in text and ("QoS mismatch" in text or "incompatible" in text)
        assert sync.status_values()["state"] == "waiting: no image received yet"
    finally:
        ex.shutdown()
        sync.destroy_node()
        pub.destroy_node()


def test_checkpoint_loading_default_card_and_the_random_weights_warning(tmp_path, monkeypatch):
    import wint3r_ros.weights as weights
    from wint3r_ros.model.checkpoint import save_checkpoint
    from wint3r_ros.model.loader import DEFAULT_CONFIDENCE_THRESHOLD, confidence_threshold_for
    from wint3r_ros.ros.fusion_node import load_reconstruction_model

    monkeypatch.setattr(weights, "TINY_CHECKPOINT", tmp_path / "missing.safetensors")
    said = []
    model, side, what, threshold = load_reconstruction_model("", "tiny", "cpu", "fp32",
                                                             log=said.append)
    assert what == "random tiny weights (outputs meaningless)" and side == 128
    assert threshold == DEFAULT_CONFIDENCE_THRESHOLD == 1.5
    assert len(said) == 1 and "RANDOMLY INITIALISED" in said[0] and "MEANINGLESS" in said[0]
    path = save_checkpoint(random_tiny_model(), tmp_path / "tiny.safetensors")
    (tmp_path / "tiny.json").write_text('{"input_long_side": 96, "confidence_threshold": 1.1}')
    monkeypatch.setattr(weights, "TINY_CHECKPOINT", path)
    loaded = load_reconstruction_model("", "tiny", "cpu", "fp32", log=said.append)
    model2, side2, what2, threshold2 = loaded
    assert (side2, what2, threshold2, len(said)) == (96, str(path), 1.1, 1)
    # confidence_threshold 0 means the card's value; anything else is taken as given
    assert confidence_threshold_for(0.0, loaded) == 1.1
    assert confidence_threshold_for(2.5, loaded) == 2.5
    assert confidence_threshold_for(0.0, None) == DEFAULT_CONFIDENCE_THRESHOLD
    ref = dict(model.state_dict())
    assert all(torch.equal(v, ref[k]) for k, v in model2.state_dict().items())
    with pytest.raises(ConfigError, match="official needs checkpoint"):
        load_reconstruction_model("", "official", "cpu", "fp32")
    with pytest.raises(ConfigError, match="does not exist"):
        load_reconstruction_model(str(tmp_path / "nope.pth"), "tiny", "cpu", "fp32")


def test_sync_publisher_thread_keeps_callbacks_free_and_bounds_its_outbox(
        rclpy_context, tmp_path, monkeypatch):
    import wint3r_ros.ros.sync_node as sync_module

    release, entered = threading.Event(), threading.Event()
    real = sync_module.build_window_batch

    def slow_build(*args, **kwargs):
        entered.set()
        assert release.wait(20.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(sync_module, "build_window_batch", slow_build)
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig, slop=0.01))
    try:
        for k in range(20):  # 20 sets -> 9 windows while the publisher is stuck on the first
            for c in range(3):
                ns = 7_000_000_000 + k * 100_000_000 + c * 1000
                sync._on_image(c, cv.image_from_array(texture(c, k, 64, 48), "rgb8", ns,
                                                      f"{NAMES[c]}_optical_frame"))
            if k == 4:
                assert entered.wait(10.0)
        v = sync.status_values()
        assert v["stats"]["windows"] >= 8 and v["published"] == 0
        assert v["drops"]["windows/outbox_full"] == v["stats"]["windows"] - 1 - 4
        release.set()
        end = time.monotonic() + 20
        while sync.status_values()["published"] < 5 and time.monotonic() < end:
            time.sleep(0.05)
        assert sync.status_values()["published"] == 5  # the stuck one + the 4 newest
    finally:
        release.set()
        sync.destroy_node()
