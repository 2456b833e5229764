"""``eval --bag BAG --gt-topic TOPIC --gt-frame FRAME``: ground truth from a user's TF, Odometry
topic (motion capture marker tied by /tf_static, a VIO's odometry), interpolated at the sets'
stamps, gaps left out."""
from __future__ import annotations

import json

import numpy as np
import pytest

from wint3r_ros import cli
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader, BagWriter
from wint3r_ros.data.synthetic import SceneConfig, SyntheticRig
from wint3r_ros.errors import BagError, ConfigError
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
from wint3r_ros.train.bag_source import bag_sequence

CONFIG = MakeBagConfig(cameras=2, frames=8, scene=1, width=40, height=30)
T_BASE_MARKER = np.array([[0.0, -1.0, 0.0, 0.10], [1.0, 0.0, 0.0, -0.05], [0.0, 0.0, 1.0, 0.30],
                          [0.0, 0.0, 0.0, 1.0]])
GAP = (350_000_000, 560_000_000)      # the VIO loses track: no odometry in this span after start


@pytest.fixture(scope="module")
def user_bag(tmp_path_factory):
    """make-bag's cameras + a mocap marker on /mocap/tf (100 Hz, 3 ms off the frames) tied to
    the base by /tf_static, and a VIO on /vio/odom (30 Hz, with a gap)."""
    tmp = tmp_path_factory.mktemp("gt")
    made = make_bag(tmp / "made", CONFIG)
    synth = SyntheticRig(SceneConfig(seed=CONFIG.scene), CONFIG.rig_config())
    start = synth.stamp_ns(0)

    def world_from_base(stamp: int) -> np.ndarray:
        return synth._path.base_pose((stamp - start) * 1e-9)

    out = tmp / "user"
    with BagReader(made.bag) as r, BagWriter(out, "mcap") as w:
        for cam in made.rig.cameras:
            w.add_topic(cam.topic, "sensor_msgs/msg/Image")
        for x in r.messages([c.topic for c in made.rig.cameras] + ["/tf_static"]):
            w.write(x.topic, x.msg, x.log_time_ns)
        w.write("/tf_static", m.tf_message([m.transform_stamped(T_BASE_MARKER, "base_link", "rig_marker",
                                                                start)]), start)
        for s in range(start - 50_000_000, synth.stamp_ns(CONFIG.frames), 10_000_000):
            s += 3_000_000
            w.write("/mocap/tf", m.tf_message([m.transform_stamped(world_from_base(s) @ T_BASE_MARKER,
                                                                   "mocap_world", "rig_marker", s)]), s)
        for s in range(start - 40_000_000, synth.stamp_ns(CONFIG.frames), 33_333_333):
            if not GAP[0] <= s - start <= GAP[1]:
                w.write("/vio/odom", m.odometry(world_from_base(s), s, "odom", "base_link"), s)
    truth = np.stack([[f.T_world_cam for f in synth.render(k)] for k in range(CONFIG.frames)])
    return out, made.rig_path, truth, start


def test_mocap_marker_ground_truth_is_interpolated_and_tied_to_the_cameras(user_bag):
    bag, rig, truth, _ = user_bag
    seq = bag_sequence(bag, rig, gt_topic="/mocap/tf", gt_frame="rig_marker")
    assert seq.world_from_cam.shape == truth.shape
    np.testing.assert_allclose(seq.world_from_cam, truth, atol=2e-4)


def test_odometry_ground_truth_gaps_leave_sets_without_a_pose(user_bag):
    bag, rig, truth, start = user_bag
    seq = bag_sequence(bag, rig, gt_topic="/vio/odom")           # child frame: base_link
    stamps = np.round(seq.stamps * 1e9).astype(np.int64) - start
    lost = np.array([s > GAP[0] - 33_333_333 and s < GAP[1] + 33_333_333 for s in stamps])
    assert lost.any() and not lost.all()
    assert np.isnan(seq.world_from_cam[lost]).all()
    np.testing.assert_allclose(seq.world_from_cam[~lost], truth[~lost], atol=2e-3)


def test_eval_bag_with_a_user_ground_truth_topic_matches_the_exact_one(user_bag, tmp_path):
    bag, rig, _, _ = user_bag
    reports = {}
    for name, extra in (("mocap", ["--gt-topic", "/mocap/tf", "--gt-frame", "rig_marker"]),
                        ("exact", None)):
        out = tmp_path / f"{name}.json"
        source = str(bag) if extra else str(bag.parent / "made")
        assert cli.main(["eval", "--bag", source, "--rig", str(rig), "--input-long-side", "64",
                         "--threads", "1", "--device", "cpu", "--out", str(out), *(extra or [])]) == 0
        reports[name] = json.loads(out.read_text())["summary"]["model"]
    assert abs(reports["mocap"]["ate"] - reports["exact"]["ate"]) < 1e-3
    assert reports["mocap"]["ate"] > 0


def test_ground_truth_topic_errors_name_what_is_wrong(user_bag):
    bag, rig, _, _ = user_bag
    with pytest.raises(ConfigError, match="TF topic: name the frame with --gt-frame"):
        bag_sequence(bag, rig, gt_topic="/mocap/tf")
    with pytest.raises(BagError, match="no pose of frame 'body'.*rig_marker"):
        bag_sequence(bag, rig, gt_topic="/mocap/tf", gt_frame="body")
    with pytest.raises(ConfigError, match="sensor_msgs/msg/Image; expected one of"):
        bag_sequence(bag, rig, gt_topic="/cam0/image_raw")
    with pytest.raises(BagError, match="no ground-truth topic /nope"):
        bag_sequence(bag, rig, gt_topic="/nope", gt_frame="x")
