"""Operating fusion_node on a robot, over real DDS (issue 16): ~/reset and ~/save_map called from
a client, ~/map_cloud bounded over a long run, extrinsics from /tf_static."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import make_rig, write_rig  # noqa: E402
from fixtures.graph import fusion_overrides, random_tiny_model, spin_until, window_batches  # noqa: E402
from fixtures.map_readers import read_pcd, read_ply, read_tum  # noqa: E402

from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros import qos  # noqa: E402

BATCHES = window_batches(24)   # 11 windows (L=4, O=2) of the 3 test cameras


@pytest.fixture(scope="module")
def model():
    return random_tiny_model()


class Graph:
    """fusion_node, a window publisher, service clients and recorders in one executor."""

    def __init__(self, context, tmp: Path, model, rig: bool = True, **extra) -> None:
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import PointCloud2
        from std_srvs.srv import Trigger

        from wint3r_ros.msg import WindowBatch
        from wint3r_ros.ros.fusion_node import FusionNode
        from wint3r_ros.srv import SaveMap

        self.rig_path = write_rig(tmp / "rig.yaml")
        self.fusion = FusionNode(context=context, model=model, parameter_overrides=fusion_overrides(
            self.rig_path if rig else None, merge="first", **extra))
        self.pub = rclpy.create_node("ops_test", context=context)
        self.windows = self.pub.create_publisher(WindowBatch, "/fusion_node/windows", qos.WINDOWS)
        self.reset = self.pub.create_client(Trigger, "/fusion_node/reset")
        self.save = self.pub.create_client(SaveMap, "/fusion_node/save_map")
        self.odom: list = []
        self.maps: list = []
        self.pub.create_subscription(Odometry, "/fusion_node/odometry", self.odom.append, qos.OUTPUT)
        self.pub.create_subscription(PointCloud2, "/fusion_node/map_cloud", self.maps.append,
                                     qos.LATCHED)
        self.ex = SingleThreadedExecutor(context=context)
        self.ex.add_node(self.fusion)
        self.ex.add_node(self.pub)
        assert spin_until(self.ex, lambda: self.windows.get_subscription_count() > 0
                          and self.reset.service_is_ready() and self.save.service_is_ready(), 10)

    def feed(self, batches) -> None:
        """Publish windows one at a time, each processed before the next."""
        for msg in batches:
            done = self.fusion.windows_done
            self.windows.publish(msg)
            assert spin_until(self.ex, lambda d=done: self.fusion.windows_done > d, 60)

    def call(self, client, request):
        future = client.call_async(request)
        assert spin_until(self.ex, future.done, 30)
        return future.result()

    def close(self) -> None:
        self.ex.shutdown()
        self.fusion.destroy_node()
        self.pub.destroy_node()


def _pose(msg) -> np.ndarray:
    return cv.pose_from_odometry(msg)


def test_reset_and_save_map_from_a_client(rclpy_context, tmp_path, model):
    from std_srvs.srv import Trigger

    from wint3r_ros.srv import SaveMap

    g = Graph(rclpy_context, tmp_path, model)
    try:
        g.feed(BATCHES[:5])
        before = 4 + 2 * 4      # merge first: 4 sets from the first window, 2 from each next
        assert spin_until(g.ex, lambda: len(g.odom) == before, 10)
        reply = g.call(g.reset, Trigger.Request())
        assert reply.success and "new stream" in reply.message
        assert spin_until(g.ex, lambda: g.fusion.stage.counters["resets"] == 1, 10)
        assert g.fusion.status_values()["pool_size"] == 0          # the token pool is cleared
        g.feed(BATCHES[5:8])
        assert spin_until(g.ex, lambda: len(g.odom) == before + 4 + 2 * 2, 10)
        # the new stream starts where the old one ended: no jump in odom
        np.testing.assert_allclose(_pose(g.odom[before]), _pose(g.odom[before - 1]), atol=1e-6)
        steps = [np.linalg.norm(_pose(a)[:3, 3] - _pose(b)[:3, 3])
                 for a, b in zip(g.odom[before:], g.odom[before + 1:])]
        assert np.linalg.norm(_pose(g.odom[before])[:3, 3] - _pose(g.odom[before - 1])[:3, 3]) \
            <= max(steps) + 1e-9
        assert g.fusion.status_values()["resets"] == 1

        reply = g.call(g.save, SaveMap.Request(directory=str(tmp_path / "saved" / "run1")))
        assert reply.success, reply.message
        folder = tmp_path / "saved" / "run1"
        assert sorted(Path(f).name for f in reply.files) == [
            "map.pcd", "map.ply", "rig.yaml", "settings.yaml", "trajectory.tum"]
        assert all(Path(f).is_file() for f in reply.files)
        pts_ply, _ = read_ply(folder / "map.ply")
        pts_pcd, _ = read_pcd(folder / "map.pcd")
        assert len(pts_ply) == len(pts_pcd) == len(g.fusion.stage.map.cloud) > 0
        stamps, poses = read_tum(folder / "trajectory.tum")
        assert len(stamps) == len(g.odom)           # every published pose, across the reset
        np.testing.assert_allclose(poses[-1], _pose(g.odom[-1]), atol=1e-6)
        assert f"{len(pts_ply)} map points and {len(stamps)} poses" in reply.message
        # a directory that cannot be written: success false and the reason, the node lives on
        (tmp_path / "file").write_text("x")
        reply = g.call(g.save, SaveMap.Request(directory=str(tmp_path / "file" / "sub")))
        assert not reply.success and "cannot write into" in reply.message and reply.files == []
    finally:
        g.close()


def test_map_cloud_stays_under_its_bound_over_a_long_run(rclpy_context, tmp_path, model):
    g = Graph(rclpy_context, tmp_path, model, map_max_points=150, map_voxel_size=0.001,
              map_period=0.1)
    try:
        g.feed(BATCHES)
        m = g.fusion.stage.map.cloud
        assert m.evicted > 0 and 135 <= len(m) <= 150   # the bound was reached and held
        assert spin_until(g.ex, lambda: bool(g.maps) and g.maps[-1].width == len(m), 10)
        assert all(msg.width <= 150 for msg in g.maps)
        assert {msg.header.frame_id for msg in g.maps} == {"odom"}
        assert g.fusion.status_values()["drops"]["tf_missing"] == 0
    finally:
        g.close()


def _publish_urdf_frames(context, rig, skip=()):
    from wint3r_ros.ros.tf import StaticTransformBroadcaster

    node = rclpy.create_node("robot_state_publisher", context=context)
    StaticTransformBroadcaster(node).send(
        [cv.transform_stamped(c.T_base_camera, rig.base_frame, c.frame_id, 0)
         for c in rig.cameras if c.frame_id not in skip])
    return node


def test_extrinsics_from_tf_equal_the_rig_files_on_a_graph_that_publishes_both(
        rclpy_context, tmp_path, model):
    rig = make_rig()
    rsp = _publish_urdf_frames(rclpy_context, rig)
    g = Graph(rclpy_context, tmp_path, model, extrinsics_source="tf", tf_timeout=20.0)
    g.ex.add_node(rsp)
    try:
        assert g.fusion.stage.outputs.settings.publish_camera_tf is False
        g.feed(BATCHES[:1])
        used = g.fusion.stage.rig
        assert used is not g.fusion.rig and used.camera_names == rig.camera_names
        for cam in rig.cameras:
            np.testing.assert_allclose(used.camera(cam.name).T_base_camera, cam.T_base_camera,
                                       atol=1e-9)
        assert g.fusion.status_values()["drops"]["tf_missing"] == 0
        assert g.fusion.rig_source.depth[1].startswith("depth metric: 3 cameras from /tf_static")
    finally:
        g.close()
        rsp.destroy_node()


def test_a_rig_file_that_disagrees_with_tf_is_reported_and_tf_wins(rclpy_context, tmp_path,
                                                                  model):
    from dataclasses import replace

    rig = make_rig()
    moved = rig.camera("cam1").T_base_camera.copy()
    moved[1, 3] += 0.02                                   # the URDF puts cam1 2 cm further left
    urdf = rig.with_cameras([replace(c, T_base_camera=moved) if c.name == "cam1" else c
                             for c in rig.cameras])
    rsp = _publish_urdf_frames(rclpy_context, urdf)
    g = Graph(rclpy_context, tmp_path, model, extrinsics_source="tf", tf_timeout=20.0)
    g.ex.add_node(rsp)
    warnings: list[str] = []
    log = g.fusion.get_logger()
    g.fusion.get_logger = lambda: _Spy(log, warnings, "warning")
    try:
        g.feed(BATCHES[:1])
        said = [w for w in warnings if "differ by" in w]
        assert len(said) == 1 and said[0].startswith(
            "camera 'cam1' (cam1_optical_frame): the rig file's mounting and /tf_static's differ "
            "by 20.0 mm and 0.00 deg")
        np.testing.assert_allclose(g.fusion.stage.rig.camera("cam1").T_base_camera, moved,
                                   atol=1e-9)
    finally:
        g.close()
        rsp.destroy_node()


def test_a_missing_tf_frame_is_a_counted_error_after_the_timeout(rclpy_context, tmp_path, model):
    rig = make_rig()
    rsp = _publish_urdf_frames(rclpy_context, rig, skip={"cam2_optical_frame"})
    g = Graph(rclpy_context, tmp_path, model, rig=False, extrinsics_source="tf", tf_timeout=1.0)
    g.ex.add_node(rsp)
    errors: list[str] = []
    log = g.fusion.get_logger()
    g.fusion.get_logger = lambda: _Spy(log, errors)
    try:
        g.feed(BATCHES[:2])          # processed: the wait ended, not forever
        assert g.fusion.status_values()["drops"]["tf_missing"] == 1
        assert any("/tf_static has no transform base_link -> cam2_optical_frame after 1 s" in e
                   for e in errors), errors
        assert g.fusion.stage.rig is None       # relative scale, said in the status
        assert "NOT metric" in g.fusion.rig_source.depth[1] and "cam2_optical_frame" in g.fusion.rig_source.depth[1]
        diag = g.fusion._diagnostics_msg().status[0]           # what /diagnostics carries
        values = {kv.key: kv.value for kv in diag.values}
        assert values["depth"] == g.fusion.rig_source.depth[1] and values["dropped.tf_missing"] == "1"
    finally:
        g.close()
        rsp.destroy_node()


class _Spy:
    """The node's logger, keeping what one level (error by default) says."""

    def __init__(self, log, lines, level="error"):
        self._log, self._lines, self._level = log, lines, level

    def __getattr__(self, name):
        method = getattr(self._log, name)
        if name != self._level:
            return method

        def keep(text):
            self._lines.append(text)
            return method(text)
        return keep


def test_after_the_cameras_stop_sync_node_says_so_once_and_diagnostics_warn(rclpy_context,
                                                                           tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from fixtures.cameras import SyntheticCameras
    from fixtures.graph import spin_for, sync_overrides
    from rclpy.executors import SingleThreadedExecutor

    from wint3r_ros.ros.sync_node import SyncNode

    sync = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        write_rig(tmp_path / "rig.yaml"), silence_timeout=0.3, status_period=0.2))
    pub = rclpy.create_node("cameras", context=rclpy_context)
    cams = SyntheticCameras(pub)
    diags: list = []
    pub.create_subscription(DiagnosticArray, "/diagnostics", diags.append, qos.OUTPUT)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(sync)
    ex.add_node(pub)
    try:
        assert spin_until(ex, cams.subscribed, 10)
        for k in range(3):
            cams.publish(k)
            spin_for(ex, 0.05)

        def cameras_of(msg):
            return [s for s in msg.status if ": camera " in s.name]

        assert spin_until(ex, lambda: diags and all(
            "bag ended or cameras stopped?" in s.message for s in cameras_of(diags[-1])), 15)
        last = cameras_of(diags[-1])
        levels = {s.level[0] if isinstance(s.level, bytes) else int(s.level) for s in last}
        assert len(last) == 3 and levels == {1}        # WARN, not ERROR
        assert not any("ROS_DOMAIN_ID" in s.message for m in diags for s in m.status)
        assert sync._depth[1].startswith("depth metric: 3 cameras from rig_file")
        sync_status = next(s for s in diags[-1].status if s.name.endswith(": sync"))
        said = {kv.key: kv.value for kv in sync_status.values}["depth"]
        assert said.startswith("depth metric: 3 cameras from rig_file") and "baseline" in said
    finally:
        ex.shutdown()
        sync.destroy_node()
        pub.destroy_node()
