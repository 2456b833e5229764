"""One pipeline, two shells: the same bag through the live graph (replay with /clock ->
sync_node -> WindowBatch over DDS, reliable QoS, sim time -> fusion_node) and through
process-bag gives the same frames out, the same poses and the same depth, with the same settings
(the nodes' defaults; only the model input size is made small for speed, for both), the end
of the bag included."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.graph import REMAP_WINDOWS, Recorder, random_tiny_model, record_all  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from wint3r_ros.data import messages as m  # noqa: E402
from wint3r_ros.data.bag import BagReader  # noqa: E402
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag  # noqa: E402
from wint3r_ros.offline.process_bag import ProcessConfig, process_bag  # noqa: E402
from wint3r_ros.offline.replay import ReplayConfig, replay_bag  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402

torch.set_num_threads(1)
SETS = 11   # L = 4, O = 2: windows end at sets 4, 6, 8, 10; the 11th set waits for a window
            # that does not come: process-bag sends it at the end of the bag, sync_node after
            # hold_timeout (1 s) without images; the frames held for the merge likewise
SETTINGS = {"input_long_side": 64, "torch_threads": 1}   # the same for both shells
NAMES = ("cam0", "cam1", "cam2")


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    return make_bag(tmp_path_factory.mktemp("parity") / "input",
                    MakeBagConfig(cameras=3, frames=SETS, scene=2, width=64, height=48))


@pytest.fixture(scope="module")
def offline(bag, tmp_path_factory):
    out = tmp_path_factory.mktemp("parity_out") / "outputs"
    res = process_bag(bag.bag, out, bag.rig, ProcessConfig(fusion=SETTINGS, progress=False),
                      model=random_tiny_model(), log=lambda text: None)
    got = {"depth": {}, "odometry": {}}
    with BagReader(out) as r:
        for x in r.messages():
            if x.topic.endswith("/depth"):
                got["depth"][(x.topic.split("/")[2], x.stamp_ns)] = m.array_from_image(x.msg).copy()
            elif x.topic == "/fusion_node/odometry":
                got["odometry"][x.stamp_ns] = m.pose_from_odometry(x.msg)
    return res, got


@pytest.fixture(scope="module")
def live(bag, tmp_path_factory):
    """The live graph, fed by replay at a quarter speed (a window every 0.8 s: the model keeps
    up on a loaded machine, nothing is dropped), spun in a background thread."""
    from wint3r_ros.ros.fusion_node import FusionNode
    from wint3r_ros.ros.sync_node import SyncNode

    context = rclpy.Context()
    rclpy.init(context=context)
    sim = Parameter("use_sim_time", value=True)
    sync = SyncNode(context=context, parameter_overrides=[
        sim, Parameter("rig_file", value=str(bag.rig_path)),
        Parameter("input_qos", value="reliable")])
    fusion = FusionNode(context=context, cli_args=REMAP_WINDOWS, model=random_tiny_model(),
                        parameter_overrides=[sim, Parameter("rig_file", value=str(bag.rig_path))]
                        + [Parameter(k, value=v) for k, v in SETTINGS.items()])
    probe = rclpy.create_node("parity_probe", context=context)
    rec = Recorder(probe)
    record_all(rec, cameras=NAMES)
    player = rclpy.create_node("parity_player", context=context)
    ex = MultiThreadedExecutor(num_threads=3, context=context)
    for n in (sync, fusion, probe):
        ex.add_node(n)
    spinner = threading.Thread(target=ex.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sync.windows_pub.get_subscription_count() < 2:
            time.sleep(0.05)
        replay_bag(ReplayConfig(bag.bag, rate=0.25, topics=tuple(f"/{n}/image_raw" for n in NAMES),
                                wait_for_subscribers=5.0), player)
        want = SETS * len(NAMES)
        deadline = time.monotonic() + 60   # the last held frames come hold_timeout (2 s) later
        while time.monotonic() < deadline and fusion.status_values()["frames_out"] < want:
            time.sleep(0.1)
        time.sleep(0.5)
        values = fusion.status_values()
        yield rec.msgs, values, sync.status_values()
    finally:
        ex.shutdown()
        for n in (fusion, sync, probe, player):
            n.destroy_node()
        context.try_shutdown()


def test_both_shells_publish_every_frame_of_the_bag(offline, live):
    res, got = offline
    msgs, fusion, sync = live
    assert res.frames_out == SETS * len(NAMES) and res.frames_dropped == 0
    assert fusion["frames_out"] == SETS * len(NAMES), fusion
    assert all(n == 0 for n in fusion["drops"].values()), fusion["drops"]
    live_depth = {(n, cv.ns_from_stamp(d.header.stamp)) for n in NAMES
                  for d in msgs[f"/fusion_node/{n}/depth"]}
    assert live_depth == set(got["depth"])


def test_both_shells_give_the_same_poses_and_depth(offline, live):
    _, got = offline
    msgs = live[0]
    odo = {cv.ns_from_stamp(o.header.stamp): cv.pose_from_odometry(o)
           for o in msgs["/fusion_node/odometry"]}
    assert sorted(odo) == sorted(got["odometry"]) and len(odo) == SETS
    for stamp, T in odo.items():
        np.testing.assert_allclose(T, got["odometry"][stamp], atol=1e-4)
    for n in NAMES:
        for d in msgs[f"/fusion_node/{n}/depth"]:
            z = cv.array_from_image(d)
            ref = got["depth"][(n, cv.ns_from_stamp(d.header.stamp))]
            assert np.array_equal(np.isnan(z), np.isnan(ref))
            np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5, equal_nan=True)
