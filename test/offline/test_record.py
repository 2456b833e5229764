"""`wint3r-ros record`: live topics (best effort, reliable, latched, the package's own type) go
into a bag that BagReader reads back, message for message; the CLI stops cleanly on SIGINT."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from wint3r_ros.data import messages as m  # noqa: E402
from wint3r_ros.data.bag import BagReader  # noqa: E402
from wint3r_ros.errors import BagError  # noqa: E402
from wint3r_ros.msg import ReconstructionStatus  # noqa: E402
from wint3r_ros.offline.record import TopicRecorder  # noqa: E402
from wint3r_ros.ros import convert  # noqa: E402

T0 = 1_700_000_000 * 10**9


def _image(k: int) -> Image:
    return convert.image_from_array(np.full((3, 4), k, np.uint8), "mono8",
                                    convert.stamp_from_ns(T0 + k * 10**8), "cam0")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorder_round_trip_of_live_topics(rclpy_context, spin, tmp_path, storage):
    pub_node = rclpy.create_node("rec_pub", context=rclpy_context)
    rec_node = rclpy.create_node("rec", context=rclpy_context)
    images = pub_node.create_publisher(Image, "/cam0/image_raw", qos_profile_sensor_data)
    status = pub_node.create_publisher(ReconstructionStatus, "/fusion_node/status",
                                       QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    latched = pub_node.create_publisher(TFMessage, "/tf_static", QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    latched.publish(TFMessage(transforms=[convert.transform_stamped(
        np.eye(4), "base_link", "cam0", convert.stamp_from_ns(T0))]))
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(pub_node)
    ex.add_node(rec_node)
    bag = tmp_path / "rec"
    topics = ["/cam0/image_raw", "/fusion_node/status", "/tf_static", "/never"]
    rec = TopicRecorder(rec_node, bag, topics, storage)
    try:
        assert spin(ex, lambda: rec.poll_graph() == ["/never"], 10.0), rec.pending
        assert spin(ex, lambda: images.get_subscription_count() and
                    status.get_subscription_count() and rec.counts["/tf_static"] == 1, 10.0)
        for k in range(5):
            images.publish(_image(k))
            msg = ReconstructionStatus(state=f"ok {k}", frames_out=k)
            msg.header.stamp = convert.stamp_from_ns(T0 + k * 10**8)
            status.publish(msg)
            spin(ex, lambda: False, 0.05)
        assert spin(ex, lambda: rec.counts["/cam0/image_raw"] == 5 and
                    rec.counts["/fusion_node/status"] == 5, 10.0), rec.counts
    finally:
        rec.close()
        rec.close()   # idempotent
        ex.shutdown()
    with BagReader(bag) as r:
        assert r.topics == {"/cam0/image_raw": "sensor_msgs/msg/Image",
                            "/fusion_node/status": "wint3r_ros/msg/ReconstructionStatus",
                            "/tf_static": "tf2_msgs/msg/TFMessage"}
        got = list(r.messages())
    imgs = [x for x in got if x.topic == "/cam0/image_raw"]
    assert [int(m.array_from_image(x.msg)[0, 0]) for x in imgs] == [0, 1, 2, 3, 4]
    assert [x.stamp_ns for x in imgs] == [T0 + k * 10**8 for k in range(5)]
    assert [x.msg.state for x in got if x.topic == "/fusion_node/status"] == \
        [f"ok {k}" for k in range(5)]
    (tf,) = [x for x in got if x.topic == "/tf_static"]
    assert m.transforms_from_tf_message(tf.msg)[0][:2] == ("base_link", "cam0")
    assert rec.pending == ["/never"]
    with pytest.raises(BagError, match="already exists"):
        TopicRecorder(rec_node, bag, topics, storage)


def test_record_command_stops_on_sigint_with_a_valid_bag(tmp_path):
    bag = tmp_path / "cli"
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "wint3r_ros.cli", "record", str(bag),
                             "--topics", "/nobody/publishes"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (bag / "metadata.yaml").exists() and \
                not list(bag.glob("*.mcap")):
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "recorded 0 messages" in out and "no publisher seen" in out
    with BagReader(bag) as r:
        assert r.topics == {}
