"""``eval --data KIND:PATH``: dataset sequences through the evaluation protocol, trajectories
exported in the TUM format and scored by evo exactly as we score them; video-depth scaling."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixtures.datasets import write_tum_sequence

from wint3r_ros import cli
from wint3r_ros.train.dataset_source import PROTOCOLS, protocol_for, tum_stamp
from wint3r_ros.train.evaluate import Sequence, score_sequence

evo = pytest.importorskip("evo", reason="evo is a test dependency (requirements.txt): run 'make setup'")


def _evo_ape_api(gt: Path, est: Path) -> float:
    """What evo_ape tum GT EST --align --correct_scale computes, through evo's own functions."""
    from evo.core import metrics, sync
    from evo.tools import file_interface

    ref = file_interface.read_tum_trajectory_file(str(gt))
    traj = file_interface.read_tum_trajectory_file(str(est))
    ref, traj = sync.associate_trajectories(ref, traj)
    traj.align(ref, correct_scale=True)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref, traj))
    return float(ape.get_statistic(metrics.StatisticsType.rmse))


def _evo_ape_cli(gt: Path, est: Path, out: Path) -> float:
    exe = Path(sys.executable).with_name("evo_ape")
    subprocess.run([str(exe), "tum", str(gt), str(est), "--align", "--correct_scale",
                    "--no_warnings", "--save_results", str(out)], check=True, capture_output=True,
                   timeout=120)
    with zipfile.ZipFile(out) as z:
        return float(json.loads(z.read("stats.json"))["rmse"])


def test_eval_ate_on_a_tum_sequence_equals_evo_ape_align_correct_scale(tmp_path):
    fx = write_tum_sequence(tmp_path / "data", frames=12)
    out, trajectories = tmp_path / "metrics.json", tmp_path / "traj"
    assert cli.main(["eval", "--data", f"tum:{fx['root']}", "--stride", "1", "--frames", "12",
                     "--input-long-side", "64", "--threads", "1", "--device", "cpu",
                     "--trajectories", str(trajectories), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    [scores] = report["sequences"]
    ours = scores["model_pose"]["ate"]
    assert report["protocol"]["depth_scaling"] == "sequence" and report["protocol"]["stride"] == 1
    gt = trajectories / "tum_rgbd_dataset_freiburg3_walking_xyz.gt.tum"
    est = trajectories / "tum_rgbd_dataset_freiburg3_walking_xyz.est.tum"
    assert len(gt.read_text().splitlines()) == len(est.read_text().splitlines()) == 13
    assert ours > 1e-4                                   # a real, non-trivial error
    assert abs(_evo_ape_api(gt, est) - ours) < 1e-6
    assert abs(_evo_ape_cli(gt, est, tmp_path / "ape.zip") - ours) < 1e-6
    assert "depth_scale" in scores and math.isfinite(report["summary"]["model"]["abs_rel"])


def _result(depth: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(depth=depth.astype(np.float32), world_from_cam=np.eye(4))


def test_video_depth_takes_one_median_ratio_per_sequence_and_caps_depth():
    gt = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 2.0)])[:, None]     # [T, N, H, W]
    gt[1, 0, 0, 0] = 100.0                                                  # beyond Bonn's cap
    pred = {(0, 0): _result(np.full((2, 2), 2.0)), (1, 0): _result(np.full((2, 2), 8.0))}
    images = np.zeros((2, 1, 2, 2, 3), np.uint8)
    seq = Sequence("s", images, gt.astype(np.float32), None, np.array([0.0, 0.1]), ["rgb"],
                   depth_scaling="sequence", max_depth=70.0)
    scores = score_sequence(seq, pred, metric=False)
    # pixels kept: 4 x 1.0 and 3 x 2.0 -> median gt 1.0 over 2, 2, 2, 2, 8, 8, 8 -> median pred 2
    assert scores["depth_scale"] == 0.5
    # frame 0: 1.0 vs 1.0 (0); frame 1: 4.0 vs 2.0 (abs rel 1): mean 0.5; delta1 0.5
    assert scores["model_depth"] == {"abs_rel": 0.5, "delta1": 0.5, "n": 2}
    per_frame = score_sequence(Sequence("s", images, gt.astype(np.float32), None,
                                        np.array([0.0, 0.1]), ["rgb"], max_depth=70.0), pred,
                               metric=False)
    assert per_frame["model_depth"]["abs_rel"] == 0.0 and "depth_scale" not in per_frame


def test_dataset_protocols_hold_the_paper_settings():
    assert (PROTOCOLS["bonn"].start, PROTOCOLS["bonn"].frames, PROTOCOLS["bonn"].max_depth) == (30, 110, 70.0)
    assert (PROTOCOLS["kitti-depth"].frames, PROTOCOLS["kitti-depth"].max_depth) == (110, 80.0)
    assert (PROTOCOLS["tum"].frames, PROTOCOLS["tum"].stride) == (90, 3)
    assert protocol_for("tum", frames=5).frames == 5 and protocol_for("tum").frames == 90
    assert tum_stamp(1_305_031_102_175_304_000) == "1305031102.175304000"


@pytest.mark.parametrize("kind", ["bonn", "7scenes", "scannet", "kitti", "kitti-depth"])
def test_eval_runs_on_every_dataset_kind_and_scores_what_it_has(kind, tmp_path):
    from fixtures import datasets as fixtures

    writer = {"bonn": fixtures.write_tum, "7scenes": fixtures.write_seven_scenes,
              "scannet": fixtures.write_scannet, "kitti": fixtures.write_kitti_odometry,
              "kitti-depth": fixtures.write_kitti_depth}[kind]
    fx = writer(tmp_path / "data")
    out = tmp_path / "metrics.json"
    assert cli.main(["eval", "--data", f"{kind}:{fx['root']}", "--stride", "1", "--start", "0",
                     "--input-long-side", "64", "--threads", "1", "--device", "cpu",
                     "--trajectories", str(tmp_path / "traj"), "--out", str(out)]) == 0
    model = json.loads(out.read_text())["summary"]["model"]
    has_pose, has_depth = kind not in ("kitti-depth",), kind != "kitti"
    assert (model["ate"] is not None) == has_pose and (model["abs_rel"] is not None) == has_depth
    files = sorted(p.name for p in (tmp_path / "traj").iterdir()) if has_pose else []
    assert len(files) == (4 if kind == "kitti" else 2 if has_pose else 0)
