"""Bag mode (issue 17): a 40-set bag replayed as fast as replay can publish into sync_node and
fusion_node with ``bag_mode`` on, while a busy-loop process keeps a core busy, comes out whole:
40 of 40 sets, every frame, nothing dropped (reliable deep queues that wait instead of drop)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.graph import REMAP_WINDOWS, random_tiny_model  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag  # noqa: E402
from wint3r_ros.offline.replay import ReplayConfig, replay_bag  # noqa: E402

torch.set_num_threads(1)
SETS, NAMES = 40, ("cam0", "cam1")


@pytest.fixture
def busy_core():
    """One process spinning on a core for the length of the test."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_replay_in_bag_mode_loses_no_set_with_a_busy_core(tmp_path, busy_core):
    from wint3r_ros.ros.fusion_node import FusionNode
    from wint3r_ros.ros.sync_node import SyncNode

    bag = make_bag(tmp_path / "input", MakeBagConfig(cameras=2, frames=SETS, scene=4, width=64,
                                                     height=48))
    context = rclpy.Context()
    rclpy.init(context=context)
    mode = Parameter("bag_mode", value=True)
    rig = Parameter("rig_file", value=str(bag.rig_path))
    sync = SyncNode(context=context, parameter_overrides=[mode, rig])
    fusion = FusionNode(context=context, cli_args=REMAP_WINDOWS, model=random_tiny_model(),
                        parameter_overrides=[mode, rig, Parameter("input_long_side", value=64),
                                             Parameter("torch_threads", value=1)])
    player = rclpy.create_node("bag_mode_player", context=context)
    ex = MultiThreadedExecutor(num_threads=3, context=context)
    for n in (sync, fusion):
        ex.add_node(n)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        played = replay_bag(ReplayConfig(bag.bag, rate=0.0, publish_clock=False,
                                         topics=tuple(f"/{n}/image_raw" for n in NAMES),
                                         wait_for_subscribers=20.0), player)
        assert played == SETS * len(NAMES)
        want = SETS * len(NAMES)
        deadline = time.monotonic() + 180   # the last sets come after hold_timeout
        while time.monotonic() < deadline and fusion.status_values()["frames_out"] < want:
            time.sleep(0.1)
        values, front = fusion.status_values(), sync.status_values()
    finally:
        ex.shutdown()
        for n in (fusion, sync, player):
            n.destroy_node()
        context.try_shutdown()
    assert sync.front.sets == SETS, front
    assert values["frames_out"] == want, values
    assert all(n == 0 for n in values["drops"].values()), values["drops"]
    assert front["drops"] == {}, front["drops"]
