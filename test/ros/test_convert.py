"""ros/convert: numpy <-> rclpy messages without cv_bridge (images, JPEG, camera_info, poses,
odometry, path, point clouds, exact stamps)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image

from wint3r_ros.core import geometry as g
from wint3r_ros.core.rig import Camera
from wint3r_ros.errors import InputError
from wint3r_ros.ros import convert as cv

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, 1_733_000_123_456_789_123,
                                2**62 + 12345])
def test_stamps_round_trip_exactly_through_integer_nanoseconds(ns):
    t = cv.stamp_from_ns(ns)
    assert 0 <= t.nanosec < 1_000_000_000
    assert cv.ns_from_stamp(t) == ns
    assert cv.ns_from_stamp(cv.stamp_from_ns(cv.ns_from_stamp(t))) == ns
    assert cv.seconds_from_stamp(t) == pytest.approx(ns / 1e9, rel=1e-15)


@pytest.mark.parametrize("encoding,shape,dtype", [
    ("mono8", (5, 7), np.uint8), ("rgb8", (5, 7, 3), np.uint8), ("bgr8", (5, 7, 3), np.uint8),
    ("rgba8", (5, 7, 4), np.uint8), ("bgra8", (5, 7, 4), np.uint8),
    ("mono16", (5, 7), np.uint16), ("32FC1", (5, 7), np.float32)])
def test_image_round_trip_keeps_pixels_header_and_step(encoding, shape, dtype):
    a = (RNG.random(shape) * 60000).astype(dtype) if dtype != np.float32 else \
        RNG.standard_normal(shape).astype(np.float32)
    stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
    msg = cv.image_from_array(a, encoding, stamp, "cam0_optical_frame")
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == a.itemsize * (a.shape[2] if a.ndim == 3 else 1) * 7
    assert msg.header.stamp == stamp and msg.header.frame_id == "cam0_optical_frame"
    np.testing.assert_array_equal(cv.array_from_image(msg), a)


def test_rgb_from_image_orders_channels_for_every_input_encoding():
    rgb = RNG.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    ones = np.full((4, 6, 1), 255, np.uint8)
    cases = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.concatenate([rgb, ones], -1),
             "bgra8": np.concatenate([rgb[..., ::-1], ones], -1)}
    for enc, a in cases.items():
        np.testing.assert_array_equal(cv.rgb_from_image(cv.image_from_array(a, enc, 0, "f")), rgb)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(cv.rgb_from_image(cv.image_from_array(grey, "mono8", 0, "f")),
                                  np.repeat(grey[..., None], 3, 2))
    deep = grey.astype(np.uint16) << 8 | 0x7F
    np.testing.assert_array_equal(cv.rgb_from_image(cv.image_from_array(deep, "mono16", 0, "f")),
                                  np.repeat(grey[..., None], 3, 2))


def test_image_with_row_padding_is_read_without_the_padding():
    a = RNG.integers(0, 255, (3, 4, 3), dtype=np.uint8)
    padded = np.zeros((3, 16), np.uint8)
    padded[:, :12] = a.reshape(3, 12)
    msg = Image(height=3, width=4, encoding="rgb8", step=16, data=padded.tobytes())
    np.testing.assert_array_equal(cv.rgb_from_image(msg, "/cam/image"), a)


@pytest.mark.parametrize("mutate,needle", [
    (lambda m: setattr(m, "encoding", "nv21"), "'nv21' is not supported"),
    (lambda m: setattr(m, "step", 5), "step 5 is smaller than a row"),
    (lambda m: setattr(m, "data", bytes(10)), "data has 10 bytes, expected step x height"),
    (lambda m: setattr(m, "width", 0), "is empty"),
])
def test_malformed_images_raise_input_error_naming_the_topic(mutate, needle):
    msg = cv.image_from_array(np.zeros((3, 4, 3), np.uint8), "rgb8", 0, "f")
    mutate(msg)
    with pytest.raises(InputError, match="topic /left/image_raw") as err:
        cv.rgb_from_image(msg, "/left/image_raw")
    assert needle in str(err.value)


def test_jpeg_round_trip_is_close_and_keeps_the_header():
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)
    for enc, a in (("rgb8", rgb), ("bgr8", rgb[..., ::-1].copy())):
        msg = cv.image_from_array(a, enc, 5_000_000_123, "cam1_optical_frame")
        packed = cv.compressed_from_image(msg, quality=95)
        assert packed.format == f"{enc}; jpeg compressed bgr8"
        assert packed.header == msg.header
        assert len(packed.data) < rgb.nbytes / 3
        back = cv.rgb_from_compressed(packed)
        assert back.shape == rgb.shape and back.dtype == np.uint8
        assert np.abs(back.astype(int) - rgb.astype(int)).mean() < 3.0
    grey = cv.compressed_from_image(cv.image_from_array(rgb[..., 1], "mono8", 0, "f"))
    assert grey.format == "mono8; jpeg compressed mono8"
    assert cv.rgb_from_compressed(grey).shape == (48, 64, 3)
    with pytest.raises(InputError, match="could not be decoded"):
        bad = cv.compressed_from_image(msg)
        bad.data = bytes(20)
        cv.rgb_from_compressed(bad, "/x")


def _camera(w=640, h=480, model="plumb_bob", D=(0.1, -0.05, 0.001, 0.002, 0.01)):
    K = np.array([[500.0, 0, 319.5], [0, 505.0, 239.5], [0, 0, 1]])
    return Camera("cam0", "/cam0/image_raw", "cam0_optical_frame", w, h, K, model, np.array(D))


def test_camera_info_round_trip_through_camera():
    cam = _camera()
    info = cv.camera_info_from_camera(cam, 7_000_000_001)
    assert (info.width, info.height, info.distortion_model) == (640, 480, "plumb_bob")
    assert info.header.frame_id == "cam0_optical_frame" and cv.ns_from_stamp(info.header.stamp) == 7_000_000_001
    np.testing.assert_array_equal(np.asarray(info.k).reshape(3, 3), cam.K)
    np.testing.assert_array_equal(np.asarray(info.p).reshape(3, 4)[:, :3], cam.K)
    back = cv.camera_from_camera_info(info, name="cam0", topic="/cam0/image_raw")
    assert back == cam


def test_camera_info_resized_matches_camera_scaled():
    cam = _camera()
    info = cv.camera_info_from_camera(cam, 0)
    half = cv.camera_info_resized(info, 320, 240, stamp=cv.stamp_from_ns(5), frame_id="x")
    ref = cam.scaled(320, 240)
    np.testing.assert_allclose(np.asarray(half.k).reshape(3, 3), ref.K)
    np.testing.assert_allclose(np.asarray(half.p).reshape(3, 4)[:, :3], ref.K)
    assert (half.width, half.height, half.header.frame_id) == (320, 240, "x")
    assert list(half.d) == list(info.d)


def test_transform_odometry_and_path_carry_the_pose_exactly():
    T = g.pose_from_translation_quat([1.0, -2.0, 0.5], g.quat_normalize([0.1, 0.2, -0.3, 0.9]))
    ts = cv.transform_stamped(T, "odom", "base_link", 42_000_000_007)
    (parent, child, ns, back), = cv.transforms_from_tf_message(type("M", (), {"transforms": [ts]}))
    assert (parent, child, ns) == ("odom", "base_link", 42_000_000_007)
    np.testing.assert_allclose(back, T, atol=1e-12)
    odom = cv.odometry(T, 5, "odom", "base_link", linear=(0.5, 0, 0), angular=(0, 0, 0.1),
                       pose_covariance=[0.01, 0.02, 0.03, 0.001, 0.002, 0.003])
    assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_link"
    np.testing.assert_allclose(cv.pose_from_odometry(odom), T, atol=1e-12)
    cov = np.asarray(odom.pose.covariance).reshape(6, 6)
    np.testing.assert_allclose(np.diag(cov), [0.01, 0.02, 0.03, 0.001, 0.002, 0.003])
    assert odom.twist.twist.linear.x == 0.5 and odom.twist.twist.angular.z == pytest.approx(0.1)
    path = cv.path_msg([np.eye(4), T], [10, 20], "odom")
    poses, stamps = cv.poses_from_path(path)
    assert list(stamps) == [10, 20] and cv.ns_from_stamp(path.header.stamp) == 20
    np.testing.assert_allclose(poses[1], T, atol=1e-12)
    with pytest.raises(InputError, match="6 variances"):
        cv.odometry(T, 0, "odom", "base_link", pose_covariance=[1.0, 2.0])


def test_pointcloud2_packs_xyz_and_rgb_like_pcl():
    pts = RNG.standard_normal((50, 3)).astype(np.float32)
    cols = RNG.integers(0, 255, (50, 3), dtype=np.uint8)
    msg = cv.pointcloud2_from_points(pts, 9, "odom", cols)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"]
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12]
    assert (msg.point_step, msg.row_step, msg.width, msg.height) == (16, 800, 50, 1)
    assert msg.is_dense
    rec = np.frombuffer(msg.data, "<f4").reshape(50, 4)
    packed = rec[:, 3].view(np.uint32)
    assert packed[0] == (int(cols[0, 0]) << 16 | int(cols[0, 1]) << 8 | int(cols[0, 2]))
    back, back_cols = cv.points_from_pointcloud2(msg)
    np.testing.assert_array_equal(back, pts)
    np.testing.assert_array_equal(back_cols, cols)
    empty = cv.pointcloud2_from_points(np.zeros((0, 3)), 9, "odom", np.zeros((0, 3), np.uint8))
    assert empty.width == 0 and len(empty.data) == 0
