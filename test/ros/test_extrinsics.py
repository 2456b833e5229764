"""ros/extrinsics: camera mountings from /tf_static, compared with a rig file; the bounded wait."""
from __future__ import annotations

import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from wint3r_ros.core import geometry as g  # noqa: E402
from wint3r_ros.data.synthetic import RigConfig, build_rig  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.extrinsics import (  # noqa: E402
    TfExtrinsics,
    compare_extrinsics,
    extrinsics_from_lookup,
    rig_with_poses,
)
from wint3r_ros.ros.tf import StaticTransformBroadcaster, StaticTransformTree  # noqa: E402

RIG = build_rig(RigConfig(num_cameras=3))


def _tree(rig, skip=()):
    tree = StaticTransformTree()
    for cam in rig.cameras:
        if cam.frame_id not in skip:
            tree.add(rig.base_frame, cam.frame_id, cam.T_base_camera)
    return tree


def test_extrinsics_from_tf_equal_the_rig_and_name_missing_frames():
    found, missing = extrinsics_from_lookup(_tree(RIG, skip={"cam2_optical"}).lookup, "base_link",
                                            [c.frame_id for c in RIG.cameras])
    assert missing == ["cam2_optical"]
    for cam in RIG.cameras[:2]:
        np.testing.assert_allclose(found[cam.frame_id], cam.T_base_camera, atol=1e-12)


def test_a_rig_file_that_disagrees_with_tf_is_reported_per_camera():
    poses = {c.frame_id: c.T_base_camera.copy() for c in RIG.cameras}
    assert compare_extrinsics(RIG, poses) == []
    poses["cam1_optical"][:3, 3] += [0.0, 0.02, 0.0]                     # 2 cm off
    tilt = g.se3(R=g.matrix_from_quat_xyzw([math.sin(math.radians(1)), 0, 0,
                                            math.cos(math.radians(1))]))   # 2 deg off
    poses["cam2_optical"] = poses["cam2_optical"] @ tilt
    lines = compare_extrinsics(RIG, poses)
    assert len(lines) == 2
    assert lines[0].startswith("camera 'cam1' (cam1_optical): the rig file's mounting and "
                               "/tf_static's differ by 20.0 mm and 0.00 deg")
    assert "differ by 0.0 mm and 2.00 deg" in lines[1]
    moved = rig_with_poses(RIG, poses, "base_link")
    np.testing.assert_allclose(moved.camera("cam1").T_base_camera, poses["cam1_optical"])
    assert moved.camera("cam1").K.tolist() == RIG.camera("cam1").K.tolist()


def test_the_wait_for_tf_static_ends_at_its_timeout_naming_the_missing_frame(rclpy_context, spin):
    pub = rclpy.create_node("urdf_publisher", context=rclpy_context)
    node = rclpy.create_node("waiting_node", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(pub)
    ex.add_node(node)
    try:
        StaticTransformBroadcaster(pub).send(
            [cv.transform_stamped(c.T_base_camera, "base_link", c.frame_id, 0)
             for c in RIG.cameras[:2]])
        tf = TfExtrinsics(node, "base_link", timeout=0.5)
        assert spin(ex, lambda: tf.listener.lookup("base_link", "cam1_optical") is not None, 10)
        found = tf.wait(["cam0_optical", "cam1_optical"])
        np.testing.assert_allclose(found["cam1_optical"], RIG.camera("cam1").T_base_camera,
                                   atol=1e-9)
        assert tf.wait(["cam0_optical", "cam2_optical"]) is None   # returns: not forever
        assert tf.missing == ["cam2_optical"]
        assert tf.missing_text().startswith("/tf_static has no transform base_link -> "
                                            "cam2_optical after 0.5 s (2 static transform(s)")
    finally:
        ex.shutdown()
        pub.destroy_node()
        node.destroy_node()


def test_the_metric_statement_says_why_not():
    from wint3r_ros.ros.extrinsics import metric_depth

    assert metric_depth(None) == (False, "depth NOT metric (model's relative scale): no rig_file; "
                                         "give a calibration (wint3r-ros calibrate) or "
                                         "extrinsics_source:=tf")
    assert metric_depth(None, "tf")[1].startswith("depth metric once /tf_static gives")
    ok, text = metric_depth(RIG, "rig_file", "my_rig.yaml")
    assert ok and text.startswith("depth metric: 3 cameras from rig_file my_rig.yaml, longest "
                                  "baseline 0.")
    one = RIG.with_cameras(RIG.cameras[:1])
    assert metric_depth(one, "tf") == (False, "depth NOT metric (model's relative scale): "
                                              "/tf_static has one camera, no baseline to fit the "
                                              "scale to")
