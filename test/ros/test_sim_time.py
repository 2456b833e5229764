"""use_sim_time: the graph follows /clock, and a backwards jump (a bag played with --loop
--clock) starts a new sync epoch and resets the reconstruction, reported, not crashed on."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.cameras import SyntheticCameras, publish_clock  # noqa: E402
from fixtures.graph import make_graph, spin_for, spin_until  # noqa: E402

from wint3r_ros.ros import convert as cv  # noqa: E402

torch.set_num_threads(1)
T0 = 1_000_000_000_000  # a bag recorded at t = 1000 s of its own clock


def _play_with_clock(ex, cams: SyntheticCameras, clock_pub, sets) -> None:
    for k in sets:
        publish_clock(clock_pub, max(cams.stamp_ns(c, k) for c in range(3)))
        cams.publish(k)
        spin_for(ex, 0.1)


def test_sim_time_and_a_backwards_clock_jump_reset_the_reconstruction(rclpy_context, tmp_path):
    from rosgraph_msgs.msg import Clock

    ex, sync, fusion, cams, rec, pub = make_graph(
        rclpy_context, tmp_path, sync_extra={"use_sim_time": True, "jump_back_threshold": 0.5},
        fusion_extra={"use_sim_time": True}, cameras_kw={"start_ns": T0})
    clock_pub = pub.create_publisher(Clock, "/clock", 10)
    try:
        _play_with_clock(ex, cams, clock_pub, range(10))
        assert spin_until(ex, lambda: fusion.status_values()["windows"] >= 4, 30.0)
        assert fusion.get_clock().now().nanoseconds == max(cams.stamps[(c, 9)] for c in range(3))
        before = [t for m in rec.msgs["/tf"] for t in m.transforms]
        odom_before = list(rec.msgs["/fusion_node/odometry"])
        # the bag loops: /clock and the stamps start again at T0
        loop = SyntheticCameras(pub, start_ns=T0, seed=1)
        cams.image_pubs, cams.info_pubs = loop.image_pubs, loop.info_pubs
        _play_with_clock(ex, loop, clock_pub, range(10))
        assert spin_until(ex, lambda: fusion.status_values()["windows"] >= 8, 30.0)
        spin_for(ex, 0.5)

        assert sync.status_values()["stats"]["epoch"] == 1
        epochs = [b.epoch for b in rec.msgs["/sync_node/windows"]]
        assert epochs == [0] * 4 + [1] * 4
        assert [b.window_index for b in rec.msgs["/sync_node/windows"]][4] == 0
        v = fusion.status_values()
        assert v["resets"] == 1 and v["windows"] == 8
        assert rec.msgs["/fusion_node/status"][-1].resets == 1
        # every set of the old timeline comes out (sets 8, 9, held for the merge, when the
        # reset publishes them), then the new timeline starts
        tf_stamps = [cv.ns_from_stamp(t.header.stamp) for m in rec.msgs["/tf"] for t in m.transforms]
        assert len(before) >= 6 and tf_stamps[:11] == \
            [max(cams.stamps[(c, k)] for c in range(3)) for k in range(10)] + \
            [max(loop.stamps[(c, 0)] for c in range(3))]
        assert v["frames_out"] == 30 + 24 and v["drops"]["stream_reset"] == 0
        # odometry stays continuous across the reset (REP-105): it resumes at the last pose
        odo = rec.msgs["/fusion_node/odometry"]
        stamps = [cv.ns_from_stamp(o.header.stamp) for o in odo]
        jumps = [i for i in range(1, len(odo)) if stamps[i] < stamps[i - 1]]
        assert len(jumps) == 1 and jumps[0] >= len(odom_before)
        np.testing.assert_allclose(cv.pose_from_odometry(odo[jumps[0]]),
                                   cv.pose_from_odometry(odo[jumps[0] - 1]), atol=1e-6)
        # /diagnostics is stamped with the simulated clock (0 before the first /clock), never
        # with wall time
        stamps = [cv.ns_from_stamp(a.header.stamp) for a in rec.msgs["/diagnostics"]]
        assert any(stamps)
        assert all(s == 0 or T0 - 1 <= s <= T0 + 2_000_000_000 for s in stamps)
    finally:
        ex.shutdown()
        for n in (fusion, sync, pub):
            n.destroy_node()
