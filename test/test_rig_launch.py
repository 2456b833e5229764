"""launch_testing: `rig.launch.py` brings up sync_node and fusion_node; with synthetic cameras
publishing, TF, depth and status appear; every process exits cleanly at shutdown.

Runs wherever launch_testing is installed (a ROS 2 install: `colcon test`, or `pytest` with
the launch_testing plugin); skipped, with the reason, where it is not (the PyPI-wheel set-up
has no launch_testing wheel). Run it directly with `launch_test test/test_rig_launch.py`; Jazzy's
launch_testing pytest plugin needs the pytest of a ROS install (7.x), it does not load under
pytest >= 8.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import unittest
from pathlib import Path

import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing is not installed (no PyPI wheel exists; it comes "
    "with a ROS 2 install): this launch test runs under colcon test in a ROS workspace")
launch_ros = pytest.importorskip("launch_ros", reason="launch_ros is not installed (comes with ROS 2)")

import launch_testing.actions  # noqa: E402, F811
import launch_testing.asserts  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

import launch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from fixtures.cameras import write_rig  # noqa: E402

RIG = Path(tempfile.mkdtemp(prefix="wint3r_launch_")) / "rig.yaml"


def _launch_file() -> str:
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("wint3r_ros")) / "launch" / "rig.launch.py"
        if installed.is_file():
            return str(installed)
    except Exception:  # not installed: use the source tree's
        pass
    return str(REPO / "launch" / "rig.launch.py")


@pytest.mark.launch_test
def generate_test_description():
    write_rig(RIG)
    rig = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(_launch_file()),
        launch_arguments={"rig_file": str(RIG), "device": "cpu", "use_sim_time": "false",
                          "rviz": "false"}.items())
    cameras = launch.actions.ExecuteProcess(
        cmd=[sys.executable, str(REPO / "test" / "fixtures" / "cameras.py"), "--sets", "400",
             "--rate", "10", "--wait", "60"],
        name="synthetic_cameras", output="screen")
    return launch.LaunchDescription([rig, cameras, launch_testing.actions.ReadyToTest()]), \
        {"cameras": cameras}


class TestOutputsAppear(unittest.TestCase):
    """While the launch runs: the outputs a user looks at in RViz arrive."""

    def test_tf_depth_and_status_appear(self):
        import rclpy
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from tf2_msgs.msg import TFMessage

        from wint3r_ros.msg import ReconstructionStatus

        rclpy.init()
        node = rclpy.create_node("rig_launch_test")
        got: dict[str, list] = {"tf": [], "static": [], "depth": [], "status": []}
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        node.create_subscription(TFMessage, "/tf", got["tf"].append, reliable)
        node.create_subscription(TFMessage, "/tf_static", got["static"].append, latched)
        node.create_subscription(Image, "/fusion_node/cam0/depth", got["depth"].append, reliable)
        node.create_subscription(ReconstructionStatus, "/fusion_node/status", got["status"].append,
                                 reliable)
        try:
            end = time.monotonic() + float(os.environ.get("WINT3R_LAUNCH_TIMEOUT", "120"))
            def done() -> bool:  # status is periodic: wait for one sent after frames came out
                return all(got.values()) and got["status"][-1].frames_out > 0

            while time.monotonic() < end and not done():
                rclpy.spin_once(node, timeout_sec=0.1)
            missing = [k for k, v in got.items() if not v]
            self.assertFalse(missing, f"no message on: {missing}")
            self.assertEqual(got["tf"][0].transforms[0].header.frame_id, "odom")
            self.assertEqual(got["tf"][0].transforms[0].child_frame_id, "base_link")
            self.assertIn("cam0_optical_frame", {t.child_frame_id for t in got["static"][-1].transforms})
            self.assertEqual(got["depth"][0].encoding, "32FC1")
            self.assertEqual(got["depth"][0].header.frame_id, "cam0_optical_frame")
            self.assertGreater(got["status"][-1].frames_out, 0)
        finally:
            node.destroy_node()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_cleanly(self, proc_info):
        # sync_node, fusion_node and the camera publisher end with 0 (SIGINT from launch)
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])
