"""Bad input at the nodes: every bad form is refused with a specific reason, counted in the
status drops, and the node goes on producing output from the good input that follows.

sync_node: wrong encoding, step/size mismatch, a zero-size image, an unstamped image, NaN in
camera_info, a camera disappearing and coming back, stamps out of order and jumping back.
fusion_node: a WindowBatch with inconsistent counts, an undecodable JPEG, mismatched
resolutions (aspect) across a window, NaN in a batch's camera_info. The callbacks are called
directly (what the executor would do) so that each drop is deterministic."""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.cameras import NAMES, make_rig, texture, write_rig  # noqa: E402
from fixtures.graph import fusion_overrides, random_tiny_model, sync_overrides  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from wint3r_ros.core.pipeline.frontend import SyncFrontEnd, SyncSettings  # noqa: E402
from wint3r_ros.core.synchronizer import SyncConfig  # noqa: E402
from wint3r_ros.core.window import WindowConfig  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.batch import build_window_batch  # noqa: E402
from wint3r_ros.ros.fusion_node import FusionNode  # noqa: E402
from wint3r_ros.ros.sync_node import SyncNode  # noqa: E402

torch.set_num_threads(1)
T0 = 5_000_000_000


def _image(cam: int, k: int, ns: int, w: int = 64, h: int = 48):
    return cv.image_from_array(texture(cam, k, w, h), "rgb8", ns, f"{NAMES[cam]}_optical_frame")


def _wait(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# ----------------------------------------------------------------------------------- sync_node


def test_sync_node_counts_each_bad_image_and_camera_info_and_keeps_making_windows(
        rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig))
    try:
        good_info = cv.camera_info_from_camera(make_rig().cameras[1], T0)
        node._on_info(1, good_info)

        def good_set(k, skip=(), t0=T0):
            for c in range(3):
                if c not in skip:
                    node._on_image(c, _image(c, k, t0 + k * 100_000_000 + c * 1000))

        for k in range(4):
            good_set(k)
        assert _wait(lambda: node.published >= 1)
        before = node.published
        # every bad form, each replacing one camera's image of a set
        bad = []
        m = _image(0, 4, T0 + 400_000_000)
        m.encoding = "nv21"
        bad.append((0, m))                                     # unknown encoding
        m = _image(1, 4, T0 + 400_001_000)
        m.step = 10
        bad.append((1, m))                                     # step smaller than a row
        m = _image(2, 4, T0 + 400_002_000)
        m.data = bytes(100)
        bad.append((2, m))                                     # data size != step x height
        m = _image(0, 5, T0 + 500_000_000)
        m.width, m.height, m.step, m.data = 0, 0, 0, b""
        bad.append((0, m))                                     # zero-size image
        bad.append((1, _image(1, 5, 0)))                       # unstamped
        for cam, msg in bad:
            node._on_image(cam, msg)
        nan_info = cv.camera_info_from_camera(make_rig().cameras[1], T0)
        nan_info.k[0] = float("nan")
        node._on_info(1, nan_info)
        inf_info = cv.camera_info_from_camera(make_rig().cameras[1], T0)
        inf_info.d = [float("inf")] * 5
        node._on_info(1, inf_info)
        good_set(5, skip=(0, 1))  # cam2 of set 5 only: its partners were bad
        for k in range(6, 14):
            good_set(k)
        drops = node.status_values()["drops"]
        assert drops["cam0/bad_encoding"] == 1
        assert drops["cam1/bad_image"] == 1 and drops["cam2/bad_image"] == 1
        assert drops["cam0/bad_image"] == 1            # the zero-size one
        assert drops["cam1/zero_stamp"] == 1
        assert drops["cam1/bad_camera_info"] == 2
        assert node._infos[1] is good_info            # the NaN ones were not taken
        # the good sets after the bad input still make windows
        assert _wait(lambda: node.published >= before + 3)
        assert node.front.epoch == 0
        # stamps jump back (a looping bag): a new epoch, windows again
        published = node.published
        for k in range(8):
            good_set(k, t0=T0 - 10_000_000_000)
        assert node.front.epoch == 1
        assert _wait(lambda: node.published >= published + 2)
    finally:
        node.destroy_node()


def test_sync_node_out_of_order_images_and_a_camera_coming_back(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, min_cameras=2, stream_timeout=0.25))
    try:
        order = [2, 0, 1]
        for k in range(6):  # arrival order shuffled within each set: still matched
            for c in order:
                node._on_image(c, _image(c, k, T0 + k * 100_000_000 + c * 1000))
            order = order[1:] + order[:1]
        assert _wait(lambda: node.published >= 2)
        # cam2 disappears for 10 sets: degraded sets of cam0 + cam1 keep windows coming
        published = node.published
        for k in range(6, 16):
            for c in (0, 1):
                node._on_image(c, _image(c, k, T0 + k * 100_000_000 + c * 1000))
        v = node.status_values()
        assert "cam2" in v["state"]
        assert _wait(lambda: node.published >= published + 3)
        # and comes back
        published = node.published
        for k in range(16, 24):
            for c in range(3):
                node._on_image(c, _image(c, k, T0 + k * 100_000_000 + c * 1000))
        assert _wait(lambda: node.published >= published + 3)
        assert node.status_values()["state"] == "ok"
    finally:
        node.destroy_node()


def test_unknown_parameter_names_are_reported_and_bad_values_refused(rclpy_context, tmp_path):
    from rclpy.parameter import Parameter

    from wint3r_ros.errors import ConfigError
    from wint3r_ros.ros.params import unknown_overrides

    rig = write_rig(tmp_path / "rig.yaml")
    node = SyncNode(context=rclpy_context, parameter_overrides=[
        *sync_overrides(rig), Parameter("slopp", value=0.1)],
        cli_args=["--ros-args", "-p", "qos_overrides./x.publisher.depth:=3"])
    try:
        assert unknown_overrides(node) == ["slopp"]  # named in a warning; the node runs
    finally:
        node.destroy_node()
    with pytest.raises(ConfigError, match=r"slop: must be a number, got 'wide'"):
        SyncNode(context=rclpy_context, parameter_overrides=[
            *sync_overrides(rig), Parameter("slop", value="wide")])


# --------------------------------------------------------------------------------- fusion_node


def _batches(n_sets: int = 8, sizes=((64, 48),) * 3, transport: str = "raw", epoch: int = 0,
             t0: int = T0, infos=None):
    front = SyncFrontEnd(list(NAMES), SyncSettings(SyncConfig(slop=0.01), WindowConfig(4, 2)))
    out = []
    for k in range(n_sets):
        for c in range(3):
            ns = t0 + k * 100_000_000 + c * 1000
            w, h = sizes[c]
            for win in front.add(c, ns, _image(c, k, ns, w, h)):
                out.append(build_window_batch(
                    win.window, index=win.index, epoch=epoch, overlap=2, base_frame="base_link",
                    frame_ids=[f"{n}_optical_frame" for n in NAMES],
                    camera_infos=infos or [], transport=transport))
    return out


@pytest.fixture(scope="module")
def tiny_model():
    return random_tiny_model()


def test_fusion_node_drops_bad_windows_with_the_reason_and_processes_the_next(
        rclpy_context, tiny_model, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    node = FusionNode(context=rclpy_context, model=tiny_model,
                      parameter_overrides=fusion_overrides(rig))
    try:
        good = _batches(14)
        assert len(good) >= 5
        node._on_batch(good[0])
        assert _wait(lambda: node.status_values()["windows"] == 1)
        # inconsistent counts: an image missing
        short = _batches(14)[1]
        short.images = list(short.images)[:-1]
        node._on_batch(short)
        # an undecodable JPEG
        jpeg = _batches(14, transport="jpeg")[2]
        jpeg.compressed_images[5].data = bytes(30)
        node._on_batch(jpeg)
        # a camera of another aspect ratio in the window (the model needs one input size)
        odd = _batches(14, sizes=((64, 48), (64, 48), (96, 48)))[3]
        node._on_batch(odd)
        assert _wait(lambda: node.status_values()["drops"]["bad_window"] == 3), node.status_values()
        v = node.status_values()
        assert v["windows"] == 1 and v["drops"]["error"] == 0
        # the stream goes on: the next good windows produce frames
        frames_out = v["frames_out"]
        for b in good[3:5]:
            node._on_batch(b)
        assert _wait(lambda: node.status_values()["windows"] == 3)
        assert node.status_values()["frames_out"] > frames_out
    finally:
        node.destroy_node()


def test_fusion_node_without_rig_refuses_a_nan_camera_info_but_publishes_depth(
        rclpy_context, tiny_model):
    from sensor_msgs.msg import CameraInfo, Image

    rig = make_rig()
    infos = [cv.camera_info_from_camera(c, T0) for c in rig.cameras]
    infos[2].p[0] = float("inf")
    node = FusionNode(context=rclpy_context, model=tiny_model,
                      parameter_overrides=fusion_overrides(None))
    recv = rclpy.create_node("recv", context=rclpy_context)
    got: dict[str, list] = {"depth": [], "info": []}
    recv.create_subscription(Image, "/fusion_node/cam2/depth", got["depth"].append, 50)
    recv.create_subscription(CameraInfo, "/fusion_node/cam2/camera_info", got["info"].append, 50)
    recv.create_subscription(CameraInfo, "/fusion_node/cam0/camera_info", got.setdefault(
        "info0", []).append, 50)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(recv)
    try:
        # publishers appear with the first results; feed windows until the receiver has both
        for i, b in enumerate(_batches(20, infos=infos)):
            node._on_batch(b)
            assert _wait(lambda i=i: node.status_values()["windows"] == i + 1)
            end = time.monotonic() + 1.0
            while time.monotonic() < end and not (got["depth"] and got["info0"]):
                ex.spin_once(timeout_sec=0.05)
            if got["depth"] and got["info0"]:
                break
        v = node.status_values()
        assert v["drops"]["bad_camera_info"] >= 1 and v["drops"]["bad_window"] == 0
        assert got["depth"], "cam2's depth is still published"
        assert got["info0"] and not got["info"], "only cam2's camera_info is held back"
        assert all(np.isfinite(np.asarray(i.k)).all() for i in got["info0"])
    finally:
        ex.shutdown()
        recv.destroy_node()
        node.destroy_node()
