"""`wint3r-ros replay`: a bag's messages reach live subscribers, with /clock in bag time."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from wint3r_ros.errors import BagError  # noqa: E402
from wint3r_ros.offline.replay import ReplayConfig, replay_bag  # noqa: E402

T0 = 1_700_000_000 * 10**9


def _write_bag(path: Path, frames: int = 5) -> None:
    store = get_typestore(Stores.ROS2_JAZZY)
    Img, Header, Time = (store.types[n] for n in
                         ("sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection("/cam0/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i in range(frames):
            stamp = T0 + i * 100_000_000
            msg = Img(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="cam0"),
                      height=2, width=3, encoding="mono8", is_bigendian=0, step=3,
                      data=np.full(6, i, dtype=np.uint8))
            writer.write(conn, stamp, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_replay_delivers_bag_messages_with_sim_time(rclpy_context, spin, tmp_path):
    bag = tmp_path / "bag"
    _write_bag(bag)
    player = rclpy.create_node("player", context=rclpy_context)
    listener = rclpy.create_node("listener", context=rclpy_context,
                                 parameter_overrides=[Parameter("use_sim_time", value=True)])
    received, clock_at_receipt = [], []

    def on_image(msg: Image) -> None:
        received.append(msg)
        clock_at_receipt.append(listener.get_clock().now().nanoseconds)

    listener.create_subscription(Image, "/cam0/image_raw", on_image,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(listener)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "count", replay_bag(ReplayConfig(path=bag, rate=5.0, wait_for_subscribers=10.0), player)))
    thread.start()
    try:
        assert spin(executor, lambda: len(received) == 5, 20.0), f"received {len(received)} of 5"
    finally:
        thread.join(timeout=20)
        executor.shutdown()
    assert result["count"] == 5
    assert [int(m.data[0]) for m in received] == [0, 1, 2, 3, 4]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in received] == \
        [T0 + i * 100_000_000 for i in range(5)]
    # The listener's clock follows /clock: bag time, not wall time.
    assert all(abs(c - (T0 + i * 100_000_000)) <= 100_000_000 for i, c in enumerate(clock_at_receipt))


def test_replay_missing_bag_and_topic_are_named(rclpy_context, tmp_path):
    node = rclpy.create_node("player2", context=rclpy_context)
    with pytest.raises(BagError, match="does not exist"):
        replay_bag(ReplayConfig(path=tmp_path / "nope"), node)
    bag = tmp_path / "bag"
    _write_bag(bag, frames=1)
    with pytest.raises(BagError, match=r"no topic\(s\) \['/missing'\]"):
        replay_bag(ReplayConfig(path=bag, topics=("/missing",)), node)
