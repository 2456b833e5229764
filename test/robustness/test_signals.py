"""Signals at any moment, as a terminal and ``ros2 launch`` send them.

A terminal Ctrl-C on ``ros2 launch`` reaches each node twice (the terminal's process group and
launch itself); users press it again. SIGTERM (``kill``, systemd, docker stop) can arrive while
a node is still loading its model. Each must end in a clean exit: code 0, no traceback, no
SIGABRT; the replay command must stop on SIGTERM while it waits between messages."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import SyntheticCameras, write_rig  # noqa: E402
from fixtures.graph import Recorder, spin_for, spin_until  # noqa: E402

from wint3r_ros.data import messages as m  # noqa: E402
from wint3r_ros.data.bag import BagWriter  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000 * 10**9


def _finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] + "\n[killed: it did not exit]"


def _burst(procs: list[subprocess.Popen], seconds: float, sig: int = signal.SIGINT) -> None:
    """One signal, then more every 20 ms for ``seconds``, while the processes run."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(p.poll() is None for p in procs):
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)
        time.sleep(0.02)


def test_nodes_at_work_exit_0_on_repeated_sigint(rclpy_context, tmp_path):
    from sensor_msgs.msg import Image

    rig = write_rig(tmp_path / "rig.yaml")
    sync = subprocess.Popen(
        [sys.executable, "-m", "wint3r_ros.ros.sync_node", "--ros-args",
         "-p", f"rig_file:={rig}", "-p", "input_qos:=reliable", "-p", "slop:=0.01"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    fusion = subprocess.Popen(
        [sys.executable, "-m", "wint3r_ros.ros.fusion_node", "--ros-args",
         "-p", f"rig_file:={rig}", "-p", "input_long_side:=64", "-p", "torch_threads:=1",
         "-p", "latency_budget:=0.0", "-r", "~/windows:=/sync_node/windows"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = rclpy.create_node("signal_test", context=rclpy_context)
    ex = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    try:
        cams = SyntheticCameras(node)
        rec = Recorder(node)
        rec.listen(Image, "/fusion_node/cam0/depth")
        assert spin_until(ex, lambda: cams.subscribed() and
                          node.count_publishers("/fusion_node/cam0/depth") > 0, 90.0), \
            "the nodes did not come up"
        k = 0
        while k < 60 and not rec.msgs["/fusion_node/cam0/depth"]:
            cams.publish(k)
            spin_for(ex, 0.1)
            k += 1
        for j in range(k, k + 8):     # keep fusion_node busy while the signals arrive
            cams.publish(j)
            spin_for(ex, 0.05)
    finally:
        ex.shutdown()
        node.destroy_node()
        _burst([sync, fusion], 1.5)
    for name, proc in (("sync_node", sync), ("fusion_node", fusion)):
        out = _finish(proc)
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{out[-3000:]}"
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]


def test_sigterm_during_fusion_node_start_up_is_a_clean_exit(rclpy_context, tmp_path):
    """SIGTERM a random moment after the node appears in the graph, while it loads its model
    (rcl calls after the signal failed with an RCLError traceback)."""
    rig = write_rig(tmp_path / "rig.yaml")
    rng = random.Random(22)
    watcher = rclpy.create_node("start_up_watcher", context=rclpy_context)
    try:
        for _attempt in range(3):
            proc = subprocess.Popen(
                [sys.executable, "-m", "wint3r_ros.ros.fusion_node", "--ros-args",
                 "-p", f"rig_file:={rig}", "-p", "input_long_side:=64",
                 "-p", "torch_threads:=1"],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + 90
            while "fusion_node" not in watcher.get_node_names() and proc.poll() is None:
                assert time.monotonic() < deadline, "fusion_node never appeared"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 1.5))
            _burst([proc], 0.3, signal.SIGTERM)
            out = _finish(proc)
            assert proc.returncode == 0, f"exit {proc.returncode}:\n{out[-3000:]}"
            assert "Traceback" not in out and "RCLError" not in out, out[-3000:]
    finally:
        watcher.destroy_node()


def test_replay_stops_on_sigterm_while_waiting_for_the_next_message(tmp_path):
    """A bag whose second message is an hour after the first: replay sleeps, SIGTERM ends it."""
    bag = tmp_path / "gap"
    with BagWriter(bag) as w:
        w.write("/odom", m.odometry(np.eye(4), T0, "odom", "base"), T0)
        w.write("/odom", m.odometry(np.eye(4), T0 + 3600 * 10**9, "odom", "base"),
                T0 + 3600 * 10**9)
    proc = subprocess.Popen([sys.executable, "-m", "wint3r_ros.cli", "replay", str(bag),
                             "--wait", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    time.sleep(6.0)    # imports, then the first message, then the wait
    assert proc.poll() is None, _finish(proc)
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc, timeout=20)
    assert proc.returncode == 0, out
    assert "stopped after 1 messages" in out and "Traceback" not in out
