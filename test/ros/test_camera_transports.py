"""sync_node's per-camera image transport: a camera sending CompressedImage (JPEG or PNG, on
<image topic>/compressed) or a Bayer mosaic is taken like a raw rgb8 camera (its images reach
the windows with the same pixels for PNG); an undecodable one is counted as bad_image."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import texture, write_rig  # noqa: E402
from fixtures.graph import sync_overrides  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from wint3r_ros.errors import ConfigError  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.sync_node import SyncNode  # noqa: E402

T0 = 1_700_000_000_000_000_000
PERIOD = 100_000_000


def _compressed(rgb: np.ndarray, kind: str, stamp_ns: int) -> CompressedImage:
    ok, buf = cv2.imencode(f".{'png' if kind == 'png' else 'jpg'}", rgb[..., ::-1])
    assert ok
    msg = CompressedImage(format=kind)
    msg.header.stamp = cv.stamp_from_ns(stamp_ns)
    msg.header.frame_id = "cam0_optical_frame"
    msg.data = buf.reshape(-1).tobytes()
    return msg


def _bayer_rggb(rgb: np.ndarray, stamp_ns: int):
    mosaic = np.empty(rgb.shape[:2], np.uint8)
    for dy, dx, c in ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)):
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, c]
    msg = cv.image_from_array(mosaic, "mono8", stamp_ns, "cam2_optical_frame")
    msg.encoding = "bayer_rggb8"
    return msg


def test_a_compressed_and_a_bayer_camera_feed_the_windows_like_raw_ones(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, image_transports=["compressed", "raw", "raw"]))
    try:
        assert sync.image_topics == ["/cam0/image_raw/compressed", "/cam1/image_raw",
                                     "/cam2/image_raw"]
        subs = {s.topic_name: s.msg_type.__name__ for s in sync.subscriptions}
        assert subs["/cam0/image_raw/compressed"] == "CompressedImage"
        assert subs["/cam1/image_raw"] == subs["/cam2/image_raw"] == "Image"
        sync._stop.set()             # keep the windows in the outbox to look at them
        sync._publisher.join(timeout=5)
        sent = []
        for k in range(4):
            stamp = T0 + k * PERIOD
            rgb = [texture(c, k, 64, 48) for c in range(3)]
            sent.append(rgb)
            sync._on_compressed(0, _compressed(rgb[0], "png", stamp))
            sync._on_image(1, cv.image_from_array(rgb[1], "rgb8", stamp, "cam1_optical_frame"))
            sync._on_image(2, _bayer_rggb(rgb[2], stamp))
        v = sync.status_values()
        assert v["drops"] == {}, v["drops"]
        assert sync.front.sets == 4
        window = sync._outbox[0][0].window
        first = window.camera_frames(0)[0].item        # what goes into the WindowBatch
        assert (first.encoding, first.width, first.height) == ("rgb8", 64, 48)
        np.testing.assert_array_equal(cv.rgb_from_image(first), sent[0][0])   # PNG: lossless
        bayer = window.camera_frames(2)[0].item
        assert bayer.encoding == "bayer_rggb8"
        err = np.abs(cv.rgb_from_image(bayer)[2:-2, 2:-2].astype(int) - sent[0][2][2:-2, 2:-2])
        assert np.median(err) <= 1 and err.mean() < 10   # demosaicing blurs the sharp squares
        jpeg = cv.compressed_from_image(bayer)     # the jpeg transport converts it once
        assert jpeg.format == "bayer_rggb8; jpeg compressed bgr8"
    finally:
        sync.destroy_node()


def test_an_undecodable_compressed_image_is_counted_and_named(rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, image_transports=["compressed", "raw", "raw"]))
    logged = []
    sync._ratelog._log = logged.append
    try:
        msg = _compressed(texture(0, 0, 64, 48), "jpeg", T0)
        msg.data = b"\xff\xd8 broken"
        sync._on_compressed(0, msg)
        assert sync.status_values()["drops"] == {"cam0/bad_image": 1}
        assert "/cam0/image_raw/compressed" in logged[0] and "could not be decoded" in logged[0]
    finally:
        sync.destroy_node()


@pytest.mark.parametrize(("transports", "needle"), [
    (["compressed"], "image_transports has 1 entries for 3 cameras"),
    (["raw", "theora", "raw"], "each must be raw or compressed"),
])
def test_bad_image_transports_are_refused(rclpy_context, tmp_path, transports, needle):
    rig = write_rig(tmp_path / "rig.yaml")
    with pytest.raises(ConfigError, match=needle):
        SyncNode(context=rclpy_context, parameter_overrides=[
            *sync_overrides(rig), Parameter("image_transports", value=transports)])
