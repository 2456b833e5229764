"""The one message builder: the rclpy messages fusion_node publishes and the rosbags messages
process-bag writes, built from the same output records, serialise to the same bytes."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.serialization import serialize_message  # noqa: E402

from wint3r_ros.core.pipeline.records import (  # noqa: E402
    CameraInfoRecord,
    CloudRecord,
    FrameRecord,
    OutputBatch,
    PathRecord,
    PoseRecord,
    SourceMap,
    StatusRecord,
    TransformRecord,
)
from wint3r_ros.core.pipeline.settings import OutputSettings  # noqa: E402
from wint3r_ros.data.builders import ROSBAGS, output_messages, status_msg  # noqa: E402
from wint3r_ros.data.messages import project_typestore  # noqa: E402
from wint3r_ros.ros.convert import RCLPY  # noqa: E402

T0 = 1_700_000_000_123_456_789


def _pose(k: float) -> np.ndarray:
    c, s = np.cos(0.3 * k), np.sin(0.3 * k)
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = [0.1 * k, -0.2 * k, 0.05]
    return T


def _batch() -> OutputBatch:
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5, (6, 8)).astype(np.float32)
    depth[0, :3] = np.nan
    info = CameraInfoRecord(8, 6, "plumb_bob", (0.1, -0.01, 0.0, 0.0, 0.001),
                            (5.0, 0, 4.0, 0, 5.5, 3.0, 0, 0, 1), (1, 0, 0, 0, 1, 0, 0, 0, 1),
                            (5.0, 0, 4.0, 0, 0, 5.5, 3.0, 0, 0, 0, 1, 0))
    frame = FrameRecord(T0 + 7, 3, "cam0", 0, "cam0_optical_frame", depth,
                        rng.uniform(1, 3, (6, 8)).astype(np.float32), info, _pose(1), True)
    return OutputBatch(
        static=[TransformRecord(T0, "base_link", "cam0_optical_frame", _pose(2))],
        poses=[PoseRecord(T0 + 9, 3, _pose(3), np.array([0.1, 0, 0]), np.array([0, 0, 0.2]))],
        camera_transforms=[TransformRecord(T0 + 5, "base_link", "cam1_optical_frame", _pose(4))],
        frames=[frame, FrameRecord(T0 + 8, 3, "cam1", 1, "cam1_optical_frame", depth,
                                   depth, None, _pose(5), False)],
        path=PathRecord([_pose(0), _pose(3)], [T0 - 100, T0 + 9]),
        cloud=CloudRecord(T0 + 9, rng.normal(size=(5, 3)).astype(np.float32),
                          rng.integers(0, 255, (5, 3)).astype(np.uint8)))


def _cdr(msg) -> bytes:
    return project_typestore().serialize_cdr(msg, msg.__msgtype__).tobytes()


def _cdr_of_rclpy(msg, msgtype: str) -> bytes:
    """rclpy's CDR bytes, read and written again by rosbags (alignment padding is not
    initialised by rclpy's serializer, so the raw bytes can differ there only)."""
    store = project_typestore()
    return _cdr(store.deserialize_cdr(bytes(serialize_message(msg)), msgtype))


def test_rclpy_and_rosbags_messages_of_the_same_records_serialise_identically():
    settings = OutputSettings(pose_covariance=(0.01, 0.02, 0.03, 0.04, 0.05, 0.06))
    bag = list(output_messages(_batch(), settings, ROSBAGS))
    live = list(output_messages(_batch(), settings, RCLPY))
    assert [(m.topic, m.stamp_ns) for m in bag] == [(m.topic, m.stamp_ns) for m in live]
    assert [m.topic for m in bag] == [
        "/tf_static", "/tf", "odometry", "/tf", "cam0/depth", "cam0/camera_info",
        "cam0/confidence", "cam1/depth", "cam1/confidence", "path", "cloud"]
    for a, b in zip(bag, live):
        assert _cdr(a.msg) == _cdr_of_rclpy(b.msg, a.msg.__msgtype__), a.topic
    record = StatusRecord(T0, 4, 0.5, 0.25, 9.5, 30, 24, {"queue_full": 1, "bad_window": 0},
                          36, 0.7, True, 1, "ok")
    a, b = status_msg(record, "odom", ROSBAGS), status_msg(record, "odom", RCLPY)
    assert _cdr(a) == _cdr_of_rclpy(b, a.__msgtype__)


def test_output_settings_choose_the_messages():
    settings = OutputSettings(publish_tf=False, publish_confidence=False, publish_path=False,
                              publish_cloud=False)
    topics = [m.topic for m in output_messages(_batch(), settings)]
    assert topics == ["/tf_static", "odometry", "/tf", "cam0/depth", "cam0/camera_info",
                      "cam1/depth"]


def test_source_size_maps_are_made_one_message_at_a_time_and_equal_arrays():
    """Frames may carry model-size maps (SourceMap): each is made full size only when its message
    is built, so a window's depth images never all exist at once; the messages are the same."""
    made = []

    def upsample(crop):           # a 2x nearest-neighbour "to source" mapping
        made.append(crop.shape)
        return np.repeat(np.repeat(crop, 2, 0), 2, 1)

    crop = np.array([[1.0, np.nan, 2.0, 3.0], [4.0, 5.0, np.nan, 6.0], [7, 8, 9, 10]], np.float32)
    lazy, eager = _batch(), _batch()
    for i, f in enumerate(lazy.frames):
        lazy.frames[i] = FrameRecord(f.stamp_ns, f.set_index, f.camera, f.camera_index,
                                     f.frame_id, SourceMap(crop, (6, 8), upsample),
                                     SourceMap(crop, (6, 8), upsample).with_nan_as(0.0), f.info,
                                     f.world_from_cam, f.metric)
    for i, f in enumerate(eager.frames):
        eager.frames[i] = FrameRecord(f.stamp_ns, f.set_index, f.camera, f.camera_index,
                                      f.frame_id, upsample(crop),
                                      np.nan_to_num(upsample(crop), nan=0.0), f.info,
                                      f.world_from_cam, f.metric)
    made.clear()
    settings = OutputSettings()
    messages = output_messages(lazy, settings)
    seen = []
    for m in messages:
        seen.append(m.topic)
        if m.topic.endswith("/depth") or m.topic.endswith("/confidence"):
            assert len(made) == sum(t.endswith(("/depth", "/confidence")) for t in seen)
    assert len(made) == 4 and lazy.frames[0].depth.shape == (6, 8)
    for a, b in zip(output_messages(lazy, settings), output_messages(eager, settings)):
        assert _cdr(a.msg) == _cdr(b.msg), a.topic
