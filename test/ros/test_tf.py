"""ros/tf: the broadcasters publish tf2_msgs/TFMessage on /tf and a latched, accumulated
/tf_static that a subscriber joining late still receives."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from wint3r_ros.core import geometry as g  # noqa: E402
from wint3r_ros.errors import InputError  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros import qos  # noqa: E402
from wint3r_ros.ros.tf import StaticTransformBroadcaster, StaticTransforms, TransformBroadcaster, check_frame_id  # noqa: E402


def _t(parent, child, x=0.0, ns=0):
    return cv.transform_stamped(g.se3(t=[x, 0, 0]), parent, child, ns)


@pytest.mark.parametrize("name,needle", [("", "non-empty"), ("/base_link", "must not start with '/'"),
                                         ("base link", "whitespace"), (None, "non-empty")])
def test_bad_frame_ids_are_refused_with_the_reason(name, needle):
    with pytest.raises(InputError, match=needle):
        check_frame_id(name, "base_frame")


def test_static_transforms_keep_the_newest_per_child_in_first_seen_order():
    s = StaticTransforms()
    s.update([_t("base_link", "cam0_optical_frame", 1.0), _t("base_link", "cam1_optical_frame", 2.0)])
    out = s.update([_t("base_link", "cam0_optical_frame", 3.0)])
    assert [t.child_frame_id for t in out] == ["cam0_optical_frame", "cam1_optical_frame"]
    assert [t.transform.translation.x for t in out] == [3.0, 2.0]
    with pytest.raises(InputError, match="parent and child frame are both"):
        s.update([_t("base_link", "base_link")])
    assert len(s) == 2


def test_broadcasters_publish_tf_and_a_latched_accumulated_tf_static(rclpy_context, spin):
    node = rclpy.create_node("tf_pub", context=rclpy_context)
    listener = rclpy.create_node("tf_sub", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(listener)
    try:
        static = StaticTransformBroadcaster(node)
        static.send(_t("base_link", "cam0_optical_frame", 0.1))
        static.send([_t("base_link", "cam1_optical_frame", 0.2)])
        dynamic = TransformBroadcaster(node)
        got_tf: list = []
        listener.create_subscription(TFMessage, "/tf", got_tf.append, qos.TF)
        assert spin(ex, lambda: dynamic.publisher.get_subscription_count() > 0, 10)
        dynamic.send(_t("odom", "base_link", 1.5, ns=123_000_000_456))
        assert spin(ex, lambda: bool(got_tf), 10)
        (parent, child, ns, T), = cv.transforms_from_tf_message(got_tf[0])
        assert (parent, child, ns) == ("odom", "base_link", 123_000_000_456)
        assert T[0, 3] == 1.5
        # a subscriber that joins after both sends gets every static transform in one message
        got_static: list = []
        listener.create_subscription(TFMessage, "/tf_static", got_static.append, qos.TF_STATIC)
        assert spin(ex, lambda: bool(got_static), 10), "late joiner got no /tf_static"
        last = got_static[-1]
        assert sorted(t.child_frame_id for t in last.transforms) == ["cam0_optical_frame",
                                                                     "cam1_optical_frame"]
        assert {t.header.frame_id for t in last.transforms} == {"base_link"}
        np.testing.assert_allclose(sorted(t.transform.translation.x for t in last.transforms), [0.1, 0.2])
    finally:
        ex.shutdown()
        node.destroy_node()
        listener.destroy_node()


def test_static_tree_composes_chains_and_inverts_through_a_common_ancestor():
    from wint3r_ros.ros.tf import StaticTransformTree

    T_base_mount = g.se3(R=g.matrix_from_quat_xyzw([0, 0, np.sin(0.4), np.cos(0.4)]), t=[0.2, 0, 0.5])
    T_mount_cam0 = g.se3(t=[0.0, 0.1, 0.0])
    T_base_cam1 = g.se3(t=[0.0, -0.3, 0.2])
    tree = StaticTransformTree()
    tree.add("base_link", "mount", T_base_mount)
    tree.add("mount", "cam0", T_mount_cam0)
    tree.add("base_link", "cam1", T_base_cam1)
    np.testing.assert_allclose(tree.lookup("base_link", "cam0"), T_base_mount @ T_mount_cam0)
    np.testing.assert_allclose(tree.lookup("cam1", "cam0"),
                               np.linalg.inv(T_base_cam1) @ T_base_mount @ T_mount_cam0, atol=1e-12)
    np.testing.assert_allclose(tree.lookup("cam0", "cam0"), np.eye(4))
    assert tree.lookup("base_link", "lidar") is None
    tree.add("cam1", "base_link", np.eye(4))        # a loop never hangs a lookup
    assert tree.lookup("odom", "cam0") is None


def test_static_listener_reads_every_latched_publisher_and_counts_bad_transforms(rclpy_context, spin):
    from wint3r_ros.ros.tf import StaticTransformListener

    pubs = [rclpy.create_node(f"rsp{i}", context=rclpy_context) for i in range(2)]
    node = rclpy.create_node("tf_static_reader", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    for n in [*pubs, node]:
        ex.add_node(n)
    try:
        StaticTransformBroadcaster(pubs[0]).send(_t("base_link", "cam0_optical_frame", 0.1))
        StaticTransformBroadcaster(pubs[1]).send(_t("base_link", "cam1_optical_frame", 0.2))
        bad = pubs[1].create_publisher(TFMessage, "/tf_static", qos.TF_STATIC)
        listener = StaticTransformListener(node)
        assert spin(ex, lambda: listener.lookup("base_link", "cam1_optical_frame") is not None
                    and listener.lookup("base_link", "cam0_optical_frame") is not None, 10)
        np.testing.assert_allclose(listener.lookup("cam0_optical_frame", "cam1_optical_frame")[:3, 3],
                                   [0.1, 0, 0])
        bad.publish(TFMessage(transforms=[_t("base_link", "base_link")]))
        assert spin(ex, lambda: listener.rejected == 1, 10)
        assert "parent and child frame are both 'base_link'" in listener.last_error
    finally:
        ex.shutdown()
        for n in [*pubs, node]:
            n.destroy_node()
