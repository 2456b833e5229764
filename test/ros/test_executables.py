"""The node executables as processes: the installed ones and `python -m` both start with
`--ros-args`, read the config files, process a short stream and exit 0 on SIGINT; `--help`
lists the parameters; a bad parameter exits 2 with one line naming it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import SyntheticCameras, write_rig  # noqa: E402
from fixtures.graph import Recorder, spin_for, spin_until  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
INSTALLED = REPO / "install" / "wint3r_ros" / "lib" / "wint3r_ros"


def _installed(name: str) -> Path:
    path = INSTALLED / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing: 'make setup' must install the executables")
        pytest.skip(f"{path} not installed: run 'bash scripts/setup.sh'")
    return path


@pytest.mark.parametrize("name,param", [("sync_node", "window_overlap"), ("fusion_node", "cloud_voxel_size")])
def test_installed_executables_print_help_with_their_parameters(name, param, tmp_path):
    result = subprocess.run([str(_installed(name)), "--help"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"ros2 run wint3r_ros {name}" in result.stdout
    assert f"  {param} (default" in result.stdout


def test_bad_parameter_exits_2_with_one_line_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "wint3r_ros.ros.sync_node", "--ros-args", "-p", "camera_names:=[a]",
         "-p", "window_length:=2", "-p", "window_overlap:=3"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sync_node: error:" in result.stderr and "window_overlap" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("arg", ["camera_names:=[[[[[]]]]]", "image_topics:=[[/a], [/b]]",
                                 "slop:={a: 1}"])
def test_a_value_rcl_cannot_hold_exits_2_instead_of_running_on_the_default(arg):
    """rcl reads a nested list or a mapping given with -p as "not set" without a word: the node
    ran on its default (with a rig file, its cameras). Refused before rcl, naming it."""
    rig = REPO / "config" / "example_rig_calibration.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "wint3r_ros.ros.sync_node", "--ros-args", "-p", arg,
         "-p", f"rig_file:={rig}"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2, result.stdout + result.stderr
    name = arg.split(":=")[0]
    assert result.stderr.startswith(f"sync_node: error: -p {arg}: a nested list or a mapping "
                                    "is not a ROS parameter value"), result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert name in result.stderr


def test_executables_process_a_stream_and_exit_0_on_sigint(rclpy_context, tmp_path):
    from sensor_msgs.msg import Image

    from wint3r_ros.msg import ReconstructionStatus

    rig = write_rig(tmp_path / "rig.yaml")
    sync = subprocess.Popen(
        [sys.executable, "-m", "wint3r_ros.ros.sync_node", "--ros-args",
         "--params-file", str(REPO / "config" / "rig.yaml"),
         "-p", f"rig_file:={rig}", "-p", "input_qos:=reliable", "-p", "slop:=0.01"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    fusion = subprocess.Popen(
        [str(_installed("fusion_node")), "--ros-args",
         "--params-file", str(REPO / "config" / "wint3r.yaml"),
         "-p", f"rig_file:={rig}", "-p", "input_long_side:=64", "-p", "torch_threads:=1",
         "-p", "latency_budget:=0.0", "-r", "~/windows:=/sync_node/windows"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node("exe_test", context=rclpy_context)
    ex = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    try:
        cams = SyntheticCameras(node)
        rec = Recorder(node)
        rec.listen(Image, "/fusion_node/cam0/depth")
        rec.listen(ReconstructionStatus, "/sync_node/status")
        up = spin_until(ex, lambda: cams.subscribed() and
                        node.count_publishers("/fusion_node/cam0/depth") > 0, 90.0)
        assert up, "the node processes did not come up within 90 s"
        k = 0
        while k < 40 and len(rec.msgs["/fusion_node/cam0/depth"]) < 2:
            cams.publish(k)
            spin_for(ex, 0.1)
            k += 1
        assert spin_until(ex, lambda: len(rec.msgs["/fusion_node/cam0/depth"]) >= 2, 30.0), \
            "no depth from the fusion_node process"
        assert spin_until(ex, lambda: any(m.frames_out > 0 for m in rec.msgs["/sync_node/status"]),
                          10.0), "the sync_node process reports no matched frame"
    finally:
        ex.shutdown()
        node.destroy_node()
        for proc in (sync, fusion):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        outputs = {}
        for name, proc in (("sync_node", sync), ("fusion_node", fusion)):
            try:
                outputs[name] = proc.communicate(timeout=30)[0]
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs[name] = proc.communicate()[0]
    for name, proc in (("sync_node", sync), ("fusion_node", fusion)):
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{outputs[name][-3000:]}"
        assert "Traceback" not in outputs[name], outputs[name][-3000:]
