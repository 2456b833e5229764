"""``wint3r-ros process-bag``: make-bag -> process-bag gives outputs for every frame, a finite
metrics JSON and a readable bag; a corrupt input gives a clear BagError and leaves a valid
partial output; ``bench pipeline`` reports its phases. A seeded random tiny model keeps these
independent of the shipped weights."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wint3r_ros import cli
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader
from wint3r_ros.errors import BagError, ConfigError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
from wint3r_ros.offline.process_bag import ProcessConfig, metrics_path_for, process_bag

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]
FRAMES = 8
CONFIG = MakeBagConfig(cameras=3, frames=FRAMES, scene=3, width=64, height=48)
SETTINGS = ProcessConfig(fusion={"confidence_threshold": 1.0, "device": "cpu",
                                  "input_long_side": 64}, progress=False)


@pytest.fixture(scope="module")
def model():
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return make_bag(tmp_path_factory.mktemp("pb") / "input", CONFIG)


@pytest.fixture(scope="module")
def processed(recorded, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("pb_out") / "outputs"
    return process_bag(recorded.bag, out, recorded.rig, SETTINGS, model=model,
                       log=lambda text: None, map_dir=out.parent / "map")


def test_process_bag_writes_outputs_for_every_frame_stamped_with_the_source(processed, recorded):
    n = CONFIG.cameras * FRAMES
    assert (processed.sets, processed.frames_in, processed.frames_out) == (FRAMES, n, n)
    assert processed.frames_dropped == 0
    source = set()
    with BagReader(recorded.bag) as r:
        source = {x.stamp_ns for x in r.messages(["/cam0/image_raw"])}
    with BagReader(processed.out) as r:
        counts = {t: r.message_count(t) for t in r.topics}
        for cam in ("cam0", "cam1", "cam2"):
            for kind in ("depth", "camera_info", "confidence"):
                assert counts[f"/fusion_node/{cam}/{kind}"] == FRAMES
        assert counts["/tf"] == FRAMES and counts["/fusion_node/odometry"] == FRAMES
        assert counts["/tf_static"] == 1
        assert r.topics["/fusion_node/status"] == "wint3r_ros/msg/ReconstructionStatus"
        assert counts["/fusion_node/status"] == processed.windows + 1 >= 2
        for kind in ("path", "cloud"):
            assert counts[f"/fusion_node/{kind}"] >= 1
        depth_stamps, tf_stamps, last_status = set(), set(), None
        for msg in r.messages():
            if msg.topic == "/fusion_node/cam0/depth":
                depth_stamps.add(msg.stamp_ns)
                assert msg.log_time_ns == msg.stamp_ns
                d = m.array_from_image(msg.msg)
                assert d.shape == (48, 64) and d.dtype == np.float32
                assert msg.msg.encoding == "32FC1" and msg.msg.header.frame_id == recorded.rig.camera("cam0").frame_id
            elif msg.topic == "/tf":
                (parent, child, stamp, _T), = m.transforms_from_tf_message(msg.msg)
                assert (parent, child) == ("odom", recorded.rig.base_frame)
                tf_stamps.add(stamp)
            elif msg.topic == "/fusion_node/cloud":
                pts, cols = m.points_from_pointcloud2(msg.msg)
                assert cols is not None and np.isfinite(pts).all()
            elif msg.topic == "/fusion_node/status":
                last_status = msg.msg
    assert depth_stamps == source and tf_stamps == source
    assert last_status.frames_out == FRAMES * CONFIG.cameras and last_status.state


def test_process_bag_saves_the_accumulated_map_as_fusion_node_does(processed, recorded):
    import sys

    sys.path.insert(0, str(REPO / "test"))
    from fixtures.map_readers import read_pcd, read_ply, read_tum

    folder = processed.out.parent / "map"
    assert sorted(Path(f).name for f in processed.map_files) == [
        "map.pcd", "map.ply", "rig.yaml", "settings.yaml", "trajectory.tum"]
    pts, cols = read_ply(folder / "map.ply")
    assert len(pts) > 0 and np.isfinite(pts).all() and len(read_pcd(folder / "map.pcd")[0]) == len(pts)
    stamps, poses = read_tum(folder / "trajectory.tum")
    with BagReader(processed.out) as r:
        odom = [(x.stamp_ns, m.pose_from_odometry(x.msg)) for x in r.messages(["/fusion_node/odometry"])]
    assert len(stamps) == len(odom) == FRAMES
    assert [int(s.replace(".", "")) for s in stamps] == [ns for ns, _ in odom]
    np.testing.assert_allclose(poses, np.stack([T for _, T in odom]), atol=1e-6)


def test_process_bag_writes_a_finite_metrics_json_beside_the_output(processed):
    assert processed.metrics_path == metrics_path_for(processed.out)
    doc = json.loads(processed.metrics_path.read_text())
    metrics = doc["metrics"]
    for key in ("ate", "rpe_trans", "rpe_rot_deg", "abs_rel", "delta1"):
        assert metrics[key] is not None and math.isfinite(metrics[key]), key
    assert metrics["poses"] == FRAMES and metrics["depth_frames"] == FRAMES * CONFIG.cameras
    assert doc["frames_processed"] == FRAMES * CONFIG.cameras and doc["frames_dropped"] == 0
    assert 0 <= metrics["delta1"] <= 1
    assert set(doc["seconds"]) >= {"read_decode", "model", "write", "total"}


def test_process_bag_takes_other_topics_from_flags_and_writes_sqlite3(recorded, model, tmp_path):
    renamed = tmp_path / "renamed"
    from wint3r_ros.data.bag import BagWriter

    with BagReader(recorded.bag) as r, BagWriter(renamed, "sqlite3") as w:
        for x in r.messages(["/cam0/image_raw", "/cam1/image_raw", "/cam2/image_raw"]):
            w.write(x.topic.replace("/image_raw", "/color/image"), x.msg, x.log_time_ns)
    topics = ("/cam0/color/image", "/cam1/color/image", "/cam2/color/image")
    cfg = ProcessConfig(fusion=SETTINGS.fusion, topics=topics, storage="sqlite3", progress=False)
    res = process_bag(renamed, tmp_path / "out", recorded.rig, cfg, model=model,
                      log=lambda text: None)
    assert res.frames_out == FRAMES * CONFIG.cameras and res.metrics is None
    assert not metrics_path_for(tmp_path / "out").exists()
    assert next((tmp_path / "out").glob("*.db3"))
    with pytest.raises(ConfigError, match="3 cameras"):
        process_bag(renamed, tmp_path / "out2", recorded.rig, ProcessConfig(topics=topics[:2]),
                    model=model)
    with pytest.raises(BagError, match=r"no image topic\(s\) \['/cam0/image_raw'"):
        process_bag(renamed, tmp_path / "out3", recorded.rig, SETTINGS, model=model)


def test_a_truncated_input_bag_gives_a_clear_error(recorded, model, tmp_path):
    cut = tmp_path / "cut"
    shutil.copytree(recorded.bag, cut)
    data = next(cut.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(BagError, match=f"bag {cut}.*(corrupt|truncated)"):
        process_bag(cut, tmp_path / "out", recorded.rig, SETTINGS, model=model)


def test_a_read_failure_part_way_leaves_a_valid_partial_output(model, tmp_path, monkeypatch):
    frames = 30   # 3 s at 10 Hz: the stamp-order buffer (1 s) releases sets before the failure
    made = make_bag(tmp_path / "long", MakeBagConfig(cameras=2, frames=frames, scene=4,
                                                     width=48, height=32))
    real = BagReader.messages

    def failing(self, topics=None):
        for k, msg in enumerate(real(self, topics)):
            if k == 4 * frames:   # 5 messages per set: fails at 80 % of the bag
                raise BagError(f"bag {self.path} is corrupt or truncated: reading failed after "
                               f"{k} messages: EOFError")
            yield msg

    monkeypatch.setattr(BagReader, "messages", failing)
    out = tmp_path / "partial"
    with pytest.raises(BagError, match=r"truncated.*output bag .*partial is closed and holds"):
        process_bag(made.bag, out, made.rig, SETTINGS, model=model, log=lambda text: None)
    monkeypatch.setattr(BagReader, "messages", real)
    with BagReader(out) as r:
        depth = r.message_count("/fusion_node/cam0/depth")
        assert 0 < depth < frames
        assert r.message_count("/tf") == depth
        assert len(list(r.messages())) == sum(r.message_count(t) for t in r.topics)


def test_parameter_files_of_the_nodes_configure_process_bag():
    from wint3r_ros.offline.process_config import settings_from_files

    cfg = settings_from_files(REPO / "config" / "rig.yaml", REPO / "config" / "wint3r.yaml", {})
    assert (cfg.fusion["confidence_threshold"], cfg.fusion["world_frame"],
            cfg.fusion["cloud_voxel_size"]) == (0.0, "odom", 0.05)
    assert (cfg.sync["slop"], cfg.sync["window_length"], cfg.sync["window_overlap"]) == (0.02, 4, 2)
    assert cfg.fusion["pose_covariance"] == [0.01] * 6

def test_process_bag_command_reports_a_missing_rig_in_one_line(tmp_path, capsys, recorded):
    assert cli.main(["process-bag", str(recorded.bag), str(tmp_path / "o"), "--rig",
                     str(tmp_path / "none.yaml")]) == 1
    assert "no rig file" in capsys.readouterr().err


def test_bench_pipeline_reports_throughput_and_phase_shares(monkeypatch):
    from wint3r_ros.bench.pipeline import bench_pipeline

    res = bench_pipeline(cameras=2, frames=4, width=64, height=48, random_weights=True,
                         input_long_side=64, repeats=1)
    best = res["best"]
    assert best["frames_out"] == 8 and best["frames_per_s"] > 0
    share = best["phase_share"]
    assert {"read_decode", "sync_window", "model", "write", "other"} <= set(share)
    assert abs(sum(share.values()) - 1.0) < 1e-6


def test_bench_pipeline_command_prints_json_with_machine_and_settings(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "pipeline", "--cameras", "2", "--frames", "4", "--width", "64",
                     "--height", "48", "--random-weights", "--input-long-side", "64",
                     "--repeats", "1", "--output", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert doc["benchmark"] == "pipeline" and doc["settings"]["cameras"] == 2
    assert {"cpu", "versions"} <= set(doc["machine"])
    assert doc["results"]["best"]["frames_out"] == 8
