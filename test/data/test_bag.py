"""rosbag2 reading and writing: round trips, bags from other writers, stamp order, damage."""
from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from wint3r_ros.core.rig import Camera
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import QOS_SENSOR_DATA, BagReader, BagWriter, qos_profile
from wint3r_ros.errors import BagError

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
CAM = Camera(name="cam0", topic="/cam0/image_raw", frame_id="cam0_optical", width=8, height=6,
             K=[[10.0, 0, 3.5], [0, 10.0, 2.5], [0, 0, 1]], distortion_model="none",
             distortion_coefficients=[], camera_info_topic="/cam0/camera_info")


def _window_batch(stamp: int) -> object:
    WB = m.msg_class("wint3r_ros/msg/WindowBatch")
    img = m.image_from_array(np.full((6, 8, 3), 7, np.uint8), "rgb8", stamp, "cam0_optical")
    return WB(header=m.header(stamp, "base_link"), window_index=3, num_cameras=1, num_steps=1,
              overlap=0, camera_names=["cam0"], frame_ids=["cam0_optical"],
              image_stamps=[m.time_from_ns(stamp)], images=[img], compressed_images=[],
              camera_infos=[m.camera_info_from_camera(CAM, stamp)], epoch=2)


def _status(stamp: int) -> object:
    St = m.msg_class("wint3r_ros/msg/ReconstructionStatus")
    return St(header=m.header(stamp, "map"), window_index=4, latency_sec=0.1, model_sec=0.05,
              fps=30.0, frames_in=12, frames_out=11, drop_reasons=["queue_full"],
              drop_counts=np.array([1], np.uint64), pool_size=8, scale=1.0,
              scale_is_metric=True, resets=0, state="ok")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_of_every_message_kind(tmp_path, storage):
    path = tmp_path / "bag"
    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    depth = np.linspace(0.5, 3, 48, dtype=np.float32).reshape(6, 8)
    T = np.eye(4)
    T[:3, 3] = [1.0, 2.0, 3.0]
    with BagWriter(path, storage) as w:
        w.add_topic("/cam0/image_raw", "sensor_msgs/msg/Image", QOS_SENSOR_DATA)
        for k in range(3):
            s = T0 + k * 100 * MS
            w.write("/cam0/image_raw", m.image_from_array(rgb, "rgb8", s, "cam0_optical"), s)
            w.write("/cam0/camera_info", m.camera_info_from_camera(CAM, s), s)
            w.write("/cam0/depth", m.image_from_array(depth, "32FC1", s, "cam0_optical"), s)
        w.write("/tf_static", m.tf_message([m.transform_stamped(T, "base_link", "cam0_optical",
                                                                T0)]), T0)
        w.write("/tf", m.tf_message([m.transform_stamped(T, "map", "base_link", T0)]), T0)
        w.write("/cloud", m.pointcloud2_from_points(np.ones((4, 3)), T0, "map"), T0)
        w.write("/odom", m.odometry(T, T0, "map", "base_link"), T0)
        w.write("/path", m.path_msg([T, T], [T0, T0 + 1], "map"), T0)
        w.write("/wint3r/window", _window_batch(T0), T0)
        w.write("/wint3r/status", _status(T0), T0)
    assert (path / "metadata.yaml").exists()
    with BagReader(path) as r:
        assert r.topics["/wint3r/window"] == "wint3r_ros/msg/WindowBatch"
        assert r.topics["/tf_static"] == "tf2_msgs/msg/TFMessage"
        assert r.message_count("/cam0/image_raw") == 3 and r.message_count("/path") == 1
        assert r.offered_qos("/tf_static")[0].durability == QosDurability.TRANSIENT_LOCAL
        assert r.offered_qos("/cam0/image_raw")[0].reliability == QosReliability.BEST_EFFORT
        assert r.offered_qos("/odom")[0].reliability == QosReliability.RELIABLE
        got = {}
        for msg in r.messages():
            got.setdefault(msg.topic, []).append(msg)
    assert [g.stamp_ns for g in got["/cam0/image_raw"]] == [T0, T0 + 100 * MS, T0 + 200 * MS]
    np.testing.assert_array_equal(m.array_from_image(got["/cam0/image_raw"][1].msg), rgb)
    np.testing.assert_array_equal(m.array_from_image(got["/cam0/depth"][2].msg), depth)
    cam = m.camera_from_camera_info(got["/cam0/camera_info"][0].msg, name="cam0",
                                    topic="/cam0/image_raw", info_topic="/cam0/camera_info")
    assert cam == CAM
    (_, child, _, T_back), = m.transforms_from_tf_message(got["/tf_static"][0].msg)
    assert child == "cam0_optical" and np.allclose(T_back, T)
    np.testing.assert_allclose(m.pose_from_odometry(got["/odom"][0].msg), T)
    assert len(got["/path"][0].msg.poses) == 2
    assert m.points_from_pointcloud2(got["/cloud"][0].msg)[0].shape == (4, 3)
    wb = got["/wint3r/window"][0].msg
    assert (wb.window_index, wb.epoch, list(wb.camera_names)) == (3, 2, ["cam0"])
    assert m.array_from_image(wb.images[0]).shape == (6, 8, 3)
    assert got["/wint3r/status"][0].msg.state == "ok"
    # Definitions travel with the bag, as with ros2 bag record: a reader without our
    # typestore (plain rosbags) can decode the package's own messages.
    with Reader(path) as plain:
        conn = next(c for c in plain.connections if c.topic == "/wint3r/window")
        assert "uint32 num_cameras" in conn.msgdef.data and conn.digest.startswith("RIHS01_")


@pytest.mark.parametrize("version", [8, 9])
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_reads_a_bag_written_the_way_ros2_bag_record_writes(tmp_path, storage, version):
    """rosbags' own Writer with the Jazzy typestore's definitions, offered QoS per topic (a
    best-effort camera driver), log times after the stamps and out of order across cameras."""
    ts = get_typestore(Stores.ROS2_JAZZY)
    Image, Header, Time = (ts.types[p] for p in (
        "sensor_msgs/msg/Image", "std_msgs/msg/Header", "builtin_interfaces/msg/Time"))
    path = tmp_path / "recorded"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    best_effort = qos_profile(reliable=False, depth=5)
    topics = ["/front/image_raw", "/left/image_raw"]
    sent = []
    with Writer(path, version=version, storage_plugin=plugin) as w:
        conns = [w.add_connection(t, Image.__msgtype__, typestore=ts,
                                  offered_qos_profiles=[best_effort]) for t in topics]
        for k in range(10):
            for c, conn in enumerate(conns):
                stamp = T0 + k * 50 * MS + c * MS
                # The left camera's driver is slow: its messages are logged 120 ms late.
                log = stamp + (120 * MS if c == 1 else 5 * MS)
                img = Image(header=Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9),
                                          frame_id=topics[c]), height=2, width=3,
                            encoding="mono8", is_bigendian=0, step=3,
                            data=np.full(6, k, np.uint8))
                w.write(conn, log, ts.serialize_cdr(img, Image.__msgtype__))
                sent.append((stamp, topics[c], k))
    with BagReader(path) as r:
        assert r.topics == {t: "sensor_msgs/msg/Image" for t in topics}
        assert r.offered_qos(topics[1])[0].reliability == QosReliability.BEST_EFFORT
        assert r.offered_qos(topics[1])[0].depth == 5
        by_log = [(x.stamp_ns, x.topic) for x in r.messages(topics)]
        assert by_log != sorted(by_log)                   # log order is not stamp order
        ordered = list(r.messages_by_stamp(topics))
        assert r.late_messages == 0
    assert [(x.stamp_ns, x.topic, int(x.msg.data[0])) for x in ordered] == sorted(sent)


def test_reads_a_humble_style_bag_without_message_definitions(tmp_path):
    """Humble's sqlite3 storage (schema 3) stores no definitions: types come from ours."""
    path = tmp_path / "humble"
    with BagWriter(path, "sqlite3") as w:
        w.write("/odom", m.odometry(np.eye(4), T0, "odom", "base_link"), T0)
        w.write("/wint3r/status", _status(T0), T0)
    db = next(path.glob("*.db3"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema SET schema_version = 3")
    with Reader(path) as plain:
        assert all(not c.msgdef.data for c in plain.connections)
    with BagReader(path) as r:
        got = {x.topic: x.msg for x in r.messages()}
    assert got["/odom"].child_frame_id == "base_link"
    assert got["/wint3r/status"].frames_out == 11


def test_stamp_order_buffer_is_bounded_and_counts_late_messages(tmp_path):
    path = tmp_path / "late"
    with BagWriter(path) as w:
        for k in range(20):
            s = T0 + k * MS
            # Every 5th message was logged 10 ms (10 messages) after its capture stamp.
            stamp = s - 10 * MS if k % 5 == 4 else s
            w.write("/a", m.image_from_array(np.zeros((2, 2), np.uint8), "mono8", stamp, "a"), s)
    with BagReader(path) as r:
        wide = [x.stamp_ns for x in r.messages_by_stamp(["/a"], max_buffer=16)]
        assert wide == sorted(wide) and r.late_messages == 0
        narrow = [x.stamp_ns for x in r.messages_by_stamp(["/a"], max_buffer=2)]
        assert r.late_messages == 4 and sorted(narrow) == sorted(wide)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag_raises_bag_error_naming_the_path(tmp_path, storage):
    path = tmp_path / "whole"
    with BagWriter(path, storage) as w:
        for k in range(30):
            w.write("/a", m.image_from_array(np.zeros((32, 32), np.uint8), "mono8", k, "a"), k)
    cut = tmp_path / "cut"
    shutil.copytree(path, cut)
    data = next(p for p in cut.iterdir() if p.suffix in (".mcap", ".db3"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(BagError, match=f"bag {cut}.*(corrupt|truncated)"):
        with BagReader(cut) as r:
            list(r.messages())
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2"):
        BagReader(tmp_path / "empty")
    with BagReader(path) as r, pytest.raises(BagError, match=r"no topic\(s\) \['/b'\]"):
        list(r.messages(["/b"]))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_writer_leaves_a_valid_bag_when_the_writing_code_fails(tmp_path, storage):
    path = tmp_path / "partial"
    with pytest.raises(RuntimeError, match="camera unplugged"):
        with BagWriter(path, storage) as w:
            for k in range(5):
                w.write("/a", m.image_from_array(np.zeros((2, 2), np.uint8), "mono8", k, "a"), k)
            raise RuntimeError("camera unplugged")
    with BagReader(path) as r:
        assert [x.stamp_ns for x in r.messages()] == [0, 1, 2, 3, 4]


def test_writer_refuses_an_existing_path_and_unknown_types(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagError, match="already exists"):
        BagWriter(tmp_path / "taken")
    with BagWriter(tmp_path / "new") as w:
        with pytest.raises(BagError, match="not in the typestore"):
            w.add_topic("/x", "my_pkg/msg/Unknown")
        w.write("/a", m.header(0, "f"), 0)
        with pytest.raises(BagError, match="/a has type std_msgs/msg/Header"):
            w.write("/a", m.time_from_ns(0), 0)
