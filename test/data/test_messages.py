"""numpy <-> message conversions and the project's typestore."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import get_types_from_msg

from wint3r_ros.core.geometry import pose_from_translation_quat
from wint3r_ros.core.rig import Camera
from wint3r_ros.data import messages as m
from wint3r_ros.errors import InputError

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)

ARRAYS = {
    "mono8": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "8UC1": RNG.integers(0, 256, (5, 7), dtype=np.uint8),
    "rgb8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "bgr8": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "8UC3": RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    "rgba8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "bgra8": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "8UC4": RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    "mono16": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "16UC1": RNG.integers(0, 65536, (5, 7), dtype=np.uint16),
    "32FC1": RNG.normal(2.0, 1.0, (5, 7)).astype(np.float32),
}


@pytest.mark.parametrize("encoding", sorted(ARRAYS))
def test_image_round_trips_every_encoding(encoding):
    a = ARRAYS[encoding]
    msg = m.image_from_array(a, encoding, 1_500_000_123, "cam0_optical")
    assert (msg.width, msg.height, msg.encoding) == (7, 5, encoding)
    assert msg.step == 7 * a.itemsize * (a.shape[2] if a.ndim == 3 else 1)
    assert m.stamp_ns_of(msg) == 1_500_000_123 and msg.header.frame_id == "cam0_optical"
    back = m.array_from_image(msg)
    assert back.dtype == a.dtype and back.shape == a.shape
    np.testing.assert_array_equal(back, a)


def test_image_reader_handles_row_padding_and_big_endian():
    a = ARRAYS["mono16"]
    padded = np.zeros((5, 20), np.uint8)
    padded[:, :14] = a.astype(">u2").view(np.uint8).reshape(5, 14)
    msg = m.image_from_array(a, "mono16", 0, "f")
    msg.is_bigendian, msg.step, msg.data = 1, 20, padded.reshape(-1)
    np.testing.assert_array_equal(m.array_from_image(msg), a)


def test_image_with_wrong_size_or_step_names_the_topic():
    msg = m.image_from_array(ARRAYS["rgb8"], "rgb8", 0, "f")
    msg.data = msg.data[:-3]
    with pytest.raises(InputError, match=r"/cam1/image_raw: data has 102 bytes, expected "
                                         r"step x height = 21 x 5"):
        m.array_from_image(msg, "/cam1/image_raw")
    msg = m.image_from_array(ARRAYS["rgb8"], "rgb8", 0, "f")
    msg.step = 20
    with pytest.raises(InputError, match=r"/cam1/image_raw: step 20 is smaller than a row"):
        m.array_from_image(msg, "/cam1/image_raw")
    msg.encoding = "nv21"   # (yuv422 is a camera input since issue 17)
    with pytest.raises(InputError, match="unsupported image encoding 'nv21'"):
        m.array_from_image(msg, "/cam1/image_raw")
    with pytest.raises(InputError, match=r"/x: encoding rgb8 needs an array \[H, W, 3\]"):
        m.image_from_array(ARRAYS["mono8"], "rgb8", 0, "f", topic="/x")
    with pytest.raises(InputError, match="needs dtype float32"):
        m.image_from_array(ARRAYS["mono16"], "32FC1", 0, "f")


def test_rgb_from_image_converts_colour_orders_and_mono():
    rgb = ARRAYS["rgb8"]
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    bgra = np.concatenate([bgr, np.full((5, 7, 1), 255, np.uint8)], axis=2)
    for enc, a in (("rgb8", rgb), ("bgr8", bgr), ("bgra8", bgra)):
        np.testing.assert_array_equal(m.rgb_from_image(m.image_from_array(a, enc, 0, "f")), rgb)
    mono = m.rgb_from_image(m.image_from_array(ARRAYS["mono8"], "mono8", 0, "f"))
    assert mono.shape == (5, 7, 3) and np.array_equal(mono[..., 1], ARRAYS["mono8"])


def test_camera_info_round_trips_a_calibrated_camera():
    K = np.array([[300.0, 0, 160.5], [0, 301.0, 120.25], [0, 0, 1]])
    T = np.eye(4)
    T[:3, 3] = [0.1, 0.0, 0.0]
    cam = Camera(name="left", topic="/left/image_raw", frame_id="left_optical", width=320,
                 height=240, K=K, distortion_model="plumb_bob",
                 distortion_coefficients=[0.1, -0.05, 0.001, 0.002, 0.01], T_base_camera=T)
    msg = m.camera_info_from_camera(cam, 42, None)
    assert msg.header.frame_id == "left_optical" and list(msg.p[:3]) == [300.0, 0.0, 160.5]
    back = m.camera_from_camera_info(msg, name="left", topic="/left/image_raw", T_base_camera=T)
    assert back == cam
    msg.k = np.zeros(9)
    with pytest.raises(InputError, match="/left/camera_info: camera_info is uncalibrated"):
        m.camera_from_camera_info(msg, name="left", topic="/left/image_raw",
                                  info_topic="/left/camera_info")


def test_transforms_odometry_and_path_round_trip():
    rng = np.random.default_rng(1)
    poses = []
    for _ in range(3):
        q = rng.normal(size=4)
        poses.append(pose_from_translation_quat(rng.normal(size=3), q))
    tf = m.tf_message([m.transform_stamped(poses[0], "map", "base_link", 7),
                       m.transform_stamped(poses[1], "base_link", "cam0", 8)])
    parsed = m.transforms_from_tf_message(tf)
    assert [(p, c, s) for p, c, s, _ in parsed] == [("map", "base_link", 7),
                                                    ("base_link", "cam0", 8)]
    np.testing.assert_allclose(parsed[1][3], poses[1], atol=1e-12)
    odom = m.odometry(poses[2], 9, "odom", "base_link", linear=(1, 2, 3))
    np.testing.assert_allclose(m.pose_from_odometry(odom), poses[2], atol=1e-12)
    assert odom.twist.twist.linear.y == 2.0 and odom.child_frame_id == "base_link"
    path = m.path_msg(poses, [1, 2, 3], "map")
    got, stamps = m.poses_from_path(path)
    np.testing.assert_allclose(got, np.stack(poses), atol=1e-12)
    assert stamps.tolist() == [1, 2, 3] and m.stamp_ns_of(path) == 3


def test_pointcloud_round_trips_points_and_colours():
    pts = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    cols = np.random.default_rng(3).integers(0, 256, (50, 3), dtype=np.uint8)
    msg = m.pointcloud2_from_points(pts, 5, "map", cols)
    assert (msg.width, msg.height, msg.point_step) == (50, 1, 16)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"]
    p2, c2 = m.points_from_pointcloud2(msg)
    np.testing.assert_array_equal(p2, pts)
    np.testing.assert_array_equal(c2, cols)
    p3, c3 = m.points_from_pointcloud2(m.pointcloud2_from_points(pts, 5, "map"))
    np.testing.assert_array_equal(p3, pts)
    assert c3 is None


@pytest.mark.parametrize("name", ["WindowBatch", "ReconstructionStatus"])
def test_embedded_definitions_match_the_package_msg_files(name):
    path = REPO / "msg" / f"{name}.msg"
    msgtype = f"wint3r_ros/msg/{name}"
    from_file = get_types_from_msg(path.read_text(), msgtype)[msgtype]
    embedded = get_types_from_msg(m.PROJECT_MSG_DEFINITIONS[msgtype], msgtype)[msgtype]
    assert embedded == from_file


def test_typestore_has_the_project_messages_and_tf2():
    store = m.project_typestore()
    for t in ("wint3r_ros/msg/WindowBatch", "wint3r_ros/msg/ReconstructionStatus",
              "tf2_msgs/msg/TFMessage", "nav_msgs/msg/Path", "sensor_msgs/msg/PointCloud2"):
        assert t in store.fielddefs
    fields = [f[0] for f in store.fielddefs["wint3r_ros/msg/WindowBatch"][1]]
    assert fields[:3] == ["header", "window_index", "num_cameras"] and fields[-1] == "epoch"


def test_readers_accept_rclpy_messages():
    """The ROS side hands rclpy messages (array.array data) to the same readers."""
    sensor_msgs = pytest.importorskip("sensor_msgs.msg", reason="ROS 2 messages: run 'make test'")
    a = ARRAYS["bgr8"]
    img = sensor_msgs.Image(height=5, width=7, encoding="bgr8", is_bigendian=0, step=21,
                            data=a.tobytes())
    img.header.frame_id = "cam0_optical"
    np.testing.assert_array_equal(m.array_from_image(img, "/cam0/image_raw"), a)
    np.testing.assert_array_equal(m.rgb_from_image(img), a[..., ::-1])
    info = sensor_msgs.CameraInfo(width=7, height=5, distortion_model="plumb_bob",
                                  d=[0.1, 0.0, 0.0, 0.0, 0.0],
                                  k=[5.0, 0, 3.0, 0, 5.0, 2.0, 0, 0, 1.0])
    info.header.frame_id = "cam0_optical"
    cam = m.camera_from_camera_info(info, name="cam0", topic="/cam0/image_raw")
    assert cam.frame_id == "cam0_optical" and cam.fx == 5.0 and cam.distortion_model == \
        "plumb_bob"
