"""``wint3r-ros import-dataset``: dataset sequences as make-bag-style rosbag2 files that
process-bag and ``eval --bag`` read (images, camera_info, /tf_static, ground truth)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures.datasets import TUM_PAIRS, ns, write_kitti_odometry, write_tum

from wint3r_ros import cli
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader
from wint3r_ros.data.datasets import open_dataset
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.offline.import_dataset import ImportConfig, choose_sequence, import_sequence
from wint3r_ros.offline.make_bag import rig_path_for
from wint3r_ros.offline.process_bag import ProcessConfig, process_bag
from wint3r_ros.train.bag_source import bag_sequence


def test_import_dataset_writes_tum_images_depth_and_ground_truth_at_their_stamps(tmp_path, capsys):
    fx = write_tum(tmp_path / "data")
    out = tmp_path / "tum_bag"
    assert cli.main(["import-dataset", f"tum:{fx['root']}", str(out)]) == 0
    assert "3 sets x 1 cameras" in capsys.readouterr().out
    [seq] = open_dataset(f"tum:{fx['root']}")
    assert load_rig(rig_path_for(out)) == seq.rig
    stamps = [ns(a) for a, _ in TUM_PAIRS]              # absolute (1970 + 100 s): not shifted
    with BagReader(out) as r:
        assert {t: r.message_count(t) for t in r.topics} == {
            "/rgb/image_raw": 3, "/rgb/camera_info": 3, "/tf_static": 1, "/ground_truth/tf": 3,
            "/ground_truth/rgb/depth": 3}
        images = [x for x in r.messages(["/rgb/image_raw"])]
        depths = [x for x in r.messages(["/ground_truth/rgb/depth"])]
        tfs = [x for x in r.messages(["/ground_truth/tf"])]
    assert [m.stamp_ns_of(x.msg) for x in images] == stamps
    for t in range(3):
        assert np.array_equal(m.rgb_from_image(images[t].msg), seq.image(t))
        np.testing.assert_array_equal(m.array_from_image(depths[t].msg), seq.depth(t))
        [(parent, child, stamp, T)] = m.transforms_from_tf_message(tfs[t].msg)
        assert (parent, child, stamp) == ("world", "rgb_link", stamps[t])
        np.testing.assert_allclose(T, seq.world_from_cam(t), atol=1e-12)


def test_imported_kitti_stereo_bag_is_read_by_eval_bag_and_process_bag(tmp_path):
    fx = write_kitti_odometry(tmp_path / "data")
    [seq] = open_dataset(f"kitti:{fx['root']}")
    result = import_sequence(seq, tmp_path / "kitti_bag", ImportConfig(storage="sqlite3"))
    assert result.sets == 3
    # eval --bag's reader: two synchronised cameras, stamps shifted by 1 s (KITTI starts at 0)
    ev = bag_sequence(result.bag, result.rig_path)
    assert ev.images.shape == (3, 2, 6, 8, 3)
    with BagReader(result.bag) as r:
        stamps = [m.stamp_ns_of(x.msg) for x in r.messages(["/cam3/image_raw"])]
    assert stamps == [1_000_000_000, 1_103_622_400, 1_207_244_800]
    for t in range(3):
        for c in range(2):
            assert np.array_equal(ev.images[t, c], seq.image(t, c))
            # KITTI's poses are printed to 7 digits, not quite orthonormal; TF carries a quaternion
            np.testing.assert_allclose(ev.world_from_cam[t, c], seq.world_from_cam(t, c), atol=1e-5)
    torch.manual_seed(0)
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()
    with torch.inference_mode():
        out = process_bag(result.bag, tmp_path / "outputs", load_rig(result.rig_path),
                          ProcessConfig(fusion={"confidence_threshold": 1.0, "device": "cpu",
                                                "input_long_side": 64}, progress=False),
                          model=model, log=lambda text: None)
    assert (out.sets, out.frames_out, out.frames_dropped) == (3, 6, 0)


def test_import_dataset_needs_a_sequence_name_when_path_holds_several(tmp_path):
    write_tum(tmp_path, "rgbd_dataset_freiburg1_xyz")
    write_tum(tmp_path, "rgbd_dataset_freiburg2_desk")
    seqs = open_dataset(f"tum:{tmp_path}")
    with pytest.raises(ConfigError, match="--sequence NAME"):
        choose_sequence(seqs, None, "tum:x")
    assert choose_sequence(seqs, "rgbd_dataset_freiburg2_desk", "tum:x").rig.cameras[0].fx == 520.9
    with pytest.raises(ConfigError, match="no sequence 'nope'"):
        choose_sequence(seqs, "nope", "tum:x")


def test_replay_publishes_an_imported_dataset_bag(rclpy_context, spin, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    import threading

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from wint3r_ros.offline.replay import ReplayConfig, replay_bag

    fx = write_tum(tmp_path / "data")
    out = tmp_path / "bag"
    import_sequence(open_dataset(f"tum:{fx['root']}")[0], out)
    player = rclpy.create_node("import_player", context=rclpy_context)
    listener = rclpy.create_node("import_listener", context=rclpy_context)
    got: dict[str, list[int]] = {"/rgb/image_raw": [], "/ground_truth/rgb/depth": []}
    for topic, stamps in got.items():
        listener.create_subscription(Image, topic, lambda msg, s=stamps: s.append(m.stamp_ns_of(msg)),
                                     QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(listener)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("count", replay_bag(
        ReplayConfig(path=out, rate=0.0, wait_for_subscribers=10.0,
                     topics=tuple(got)), player)))
    thread.start()
    try:
        assert spin(executor, lambda: all(len(s) == 3 for s in got.values()), 20.0), got
    finally:
        thread.join(timeout=20)
        executor.shutdown()
    assert got["/rgb/image_raw"] == [ns(a) for a, _ in TUM_PAIRS] == got["/ground_truth/rgb/depth"]


def test_import_dataset_command_reports_a_bad_spec_or_path_in_one_line(tmp_path, capsys):
    assert cli.main(["import-dataset", "eth3d:/x", str(tmp_path / "a")]) == 1
    assert cli.main(["import-dataset", f"kitti:{tmp_path / 'none'}", str(tmp_path / "b")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "one of tum, bonn" in lines[0] and "no kitti sequence" in lines[1]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
