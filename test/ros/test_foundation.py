"""Foundation: real rclpy over Fast DDS with the package's generated messages and tf2_msgs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from wint3r_ros.msg import WindowBatch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _image(cam: int, step: int) -> Image:
    msg = Image()
    msg.header.stamp = Time(sec=100 + step, nanosec=1000 * cam)
    msg.header.frame_id = f"cam{cam}_optical_frame"
    msg.height, msg.width, msg.encoding, msg.step = 4, 6, "rgb8", 18
    msg.data = bytes((cam * 31 + step * 7 + i) % 256 for i in range(4 * 18))
    return msg


def _exchange(context, topic: str, msg_type, message, spin, qos: int | QoSProfile = 10):
    """Publish ``message`` from one node and return what a second node receives."""
    pub_node = rclpy.create_node("test_pub", context=context)
    sub_node = rclpy.create_node("test_sub", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(pub_node)
    executor.add_node(sub_node)
    received = []
    sub_node.create_subscription(msg_type, topic, received.append, qos)
    pub = pub_node.create_publisher(msg_type, topic, qos)
    try:
        assert spin(executor, lambda: pub.get_subscription_count() > 0, 10.0), "no DDS discovery"
        pub.publish(message)
        assert spin(executor, lambda: bool(received), 10.0), f"nothing received on {topic}"
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    return received[0]


def test_window_batch_crosses_dds_intact(rclpy_context, spin):
    batch = WindowBatch()
    batch.header.stamp = Time(sec=101, nanosec=5)
    batch.header.frame_id = "base_link"
    batch.window_index, batch.num_cameras, batch.num_steps, batch.overlap, batch.epoch = 7, 2, 2, 1, 3
    batch.camera_names = ["left", "right"]
    batch.frame_ids = ["left_optical_frame", "right_optical_frame"]
    batch.images = [_image(c, t) for t in range(2) for c in range(2)]
    batch.image_stamps = [img.header.stamp for img in batch.images]
    info = CameraInfo(width=6, height=4, distortion_model="plumb_bob")
    info.k = [5.0, 0.0, 3.0, 0.0, 5.0, 2.0, 0.0, 0.0, 1.0]
    batch.camera_infos = [info, CameraInfo()]

    got = _exchange(rclpy_context, "/test/windows", WindowBatch, batch, spin)

    assert (got.window_index, got.num_cameras, got.num_steps, got.overlap, got.epoch) == (7, 2, 2, 1, 3)
    assert got.header.frame_id == "base_link" and got.header.stamp == batch.header.stamp
    assert list(got.camera_names) == ["left", "right"]
    assert list(got.frame_ids) == ["left_optical_frame", "right_optical_frame"]
    assert [s for s in got.image_stamps] == [s for s in batch.image_stamps]
    assert len(got.images) == 4
    for sent, came in zip(batch.images, got.images):
        assert came.header == sent.header
        assert (came.height, came.width, came.encoding, came.step) == (4, 6, "rgb8", 18)
        assert bytes(came.data) == bytes(sent.data)
    assert list(got.camera_infos[0].k) == list(info.k)
    assert got.camera_infos[1].width == 0


def test_tf_message_on_tf_arrives_with_frames_and_stamps(rclpy_context, spin):
    msg = TFMessage()
    for i, child in enumerate(["base_link", "cam0_optical_frame"]):
        t = TransformStamped()
        t.header.stamp = Time(sec=42, nanosec=i)
        t.header.frame_id = "odom" if i == 0 else "base_link"
        t.child_frame_id = child
        t.transform.translation.x = 1.5 * (i + 1)
        t.transform.rotation.w = 1.0
        msg.transforms.append(t)
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

    got = _exchange(rclpy_context, "/tf", TFMessage, msg, spin, qos)

    assert [t.child_frame_id for t in got.transforms] == ["base_link", "cam0_optical_frame"]
    assert [t.header.frame_id for t in got.transforms] == ["odom", "base_link"]
    assert [(t.header.stamp.sec, t.header.stamp.nanosec) for t in got.transforms] == [(42, 0), (42, 1)]
    assert [t.transform.translation.x for t in got.transforms] == [1.5, 3.0]


def test_ament_index_finds_share_dir_with_launch_and_config():
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    share = Path(get_package_share_directory("wint3r_ros"))
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "rig.launch.py").is_file()
    assert (share / "config" / "rig.yaml").is_file()
    assert (share / "config" / "wint3r.yaml").is_file()
    assert Path(get_package_prefix("wint3r_ros")) == share.parents[1]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wint3r_ros.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=REPO)


def test_doctor_passes_in_the_set_up_environment():
    result = _cli("doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout


def test_doctor_names_what_is_missing_without_ament_prefix_path():
    env = {k: v for k, v in os.environ.items() if k != "AMENT_PREFIX_PATH"}
    result = _cli("doctor", env=env)
    assert result.returncode == 1
    assert "[FAIL] AMENT_PREFIX_PATH: not set" in result.stdout
    assert "fix: 'source scripts/env.sh'" in result.stdout
    assert "missing: AMENT_PREFIX_PATH" in result.stdout


def test_cli_help_lists_doctor():
    result = _cli("--help")
    assert result.returncode == 0
    assert "doctor" in result.stdout
