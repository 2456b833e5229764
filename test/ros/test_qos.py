"""ros/qos: input profiles by name, and the silence diagnosis that names the likely cause
(no publisher, QoS mismatch, wrong type, missing /clock)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from wint3r_ros.errors import ConfigError
from wint3r_ros.ros import qos
from wint3r_ros.ros.qos import PublisherInfo, explain_silence

IMG = "sensor_msgs/msg/Image"


def _pub(rel, dur=DurabilityPolicy.VOLATILE, type_name=IMG, node="/camera_driver"):
    return PublisherInfo(node, type_name, rel, dur)


def test_input_qos_by_name():
    assert qos.input_qos("sensor_data").reliability == ReliabilityPolicy.BEST_EFFORT
    rel = qos.input_qos("reliable", depth=20)
    assert rel.reliability == ReliabilityPolicy.RELIABLE and rel.depth == 20
    assert qos.input_qos("best_available").reliability == ReliabilityPolicy.BEST_AVAILABLE
    with pytest.raises(ConfigError, match="input_qos='fast'"):
        qos.input_qos("fast")
    assert qos.TF_STATIC.durability == DurabilityPolicy.TRANSIENT_LOCAL and qos.TF_STATIC.depth == 1
    assert qos.describe(qos.TF) == "reliable/volatile, keep last 100"


def test_silence_with_a_best_effort_camera_and_a_reliable_subscription_names_the_fix():
    text = explain_silence("/cam0/image_raw", IMG, qos.input_qos("reliable"),
                           [_pub(ReliabilityPolicy.BEST_EFFORT)])
    assert "QoS mismatch" in text and "/camera_driver publishes /cam0/image_raw best effort" in text
    assert "input_qos:=sensor_data" in text


def test_silence_without_publisher_suggests_similar_topics():
    text = explain_silence("/cam0/image_raw", IMG, qos.SENSOR_DATA, [],
                           similar_topics=["/robot/cam0/image_raw"])
    assert text.startswith("no publisher on /cam0/image_raw")
    assert "/robot/cam0/image_raw" in text


def test_silence_with_sim_time_and_no_clock_says_play_with_clock():
    text = explain_silence("/cam0/image_raw", IMG, qos.SENSOR_DATA,
                           [_pub(ReliabilityPolicy.RELIABLE)], use_sim_time=True, clock_seen=False)
    assert "--clock" in text


def test_silence_with_wrong_type_and_with_compatible_publishers():
    text = explain_silence("/cam0/image_raw", IMG, qos.SENSOR_DATA,
                           [_pub(ReliabilityPolicy.RELIABLE, type_name="sensor_msgs/msg/CompressedImage")])
    assert "as sensor_msgs/msg/CompressedImage, this node expects sensor_msgs/msg/Image" in text
    text = explain_silence("/cam0/image_raw", IMG, qos.SENSOR_DATA, [_pub(ReliabilityPolicy.RELIABLE)])
    assert "compatible QoS" in text and "ROS_DOMAIN_ID" in text


class _Log:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(text)

    info = warning


def test_a_topic_that_stopped_gets_one_line_without_network_advice(rclpy_context):
    import re
    import time

    import rclpy

    node = rclpy.create_node("watchdog_test", context=rclpy_context)
    log = _Log()
    node.get_logger = lambda: log
    try:
        dog = qos.TopicWatchdog(node, timeout=0.1, period=3600.0, repeat=0.0)
        dog.watch("/cam0/image_raw", IMG, qos.SENSOR_DATA)
        dog.watch("/cam1/image_raw", IMG, qos.SENSOR_DATA)
        dog.mark("/cam0/image_raw")              # cam0 delivered, cam1 never did
        time.sleep(0.2)
        for _ in range(3):
            dog.check()
        stopped = [t for t in log.lines if t.startswith("/cam0/image_raw")]
        assert len(stopped) == 1                  # once, not every `repeat` seconds
        assert re.fullmatch(r"/cam0/image_raw: no input for \d+ s; bag ended or cameras stopped\?",
                            stopped[0])
        assert "ROS_DOMAIN_ID" not in stopped[0] and dog.stopped == {"/cam0/image_raw"}
        never = [t for t in log.lines if t.startswith("/cam1/image_raw")]
        assert len(never) == 3 and "nothing received yet" in never[0]
        assert "no publisher on /cam1/image_raw" in never[0]
        dog.mark("/cam0/image_raw")
        dog.check()
        assert dog.stopped == set() and "/cam0/image_raw" not in dog.warnings
        assert "/cam0/image_raw is delivering again" in log.lines
        dog.destroy()
    finally:
        node.destroy_node()
