"""``wint3r-ros report``: metrics JSON, trajectory and depth PNGs and a PLY cloud from an outputs
bag (here written by process-bag, which uses the nodes' topic names) and a make-bag recording."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wint3r_ros import cli
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
from wint3r_ros.offline.process_bag import ProcessConfig, process_bag
from wint3r_ros.offline.report import MetricsAccumulator, read_ply_vertex_count, write_ply, write_report

torch.set_num_threads(1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    made = make_bag(tmp / "input", MakeBagConfig(cameras=2, frames=8, scene=5, width=64,
                                                 height=48))
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()
    process_bag(made.bag, tmp / "outputs", made.rig,
                ProcessConfig(fusion={"device": "cpu", "input_long_side": 64}, progress=False),
                model=model, log=lambda text: None)
    return made, tmp / "outputs", tmp


def test_report_writes_json_pngs_and_a_ply_that_parse(bags):
    made, outputs, tmp = bags
    doc = write_report(made.bag, outputs, made.rig, tmp / "report",
                       extra={"weights": "random tiny weights (test)"})
    files = doc["files"]
    saved = json.loads((tmp / "report" / "metrics.json").read_text())
    assert saved["metrics"] == doc["metrics"] and saved["weights"] == "random tiny weights (test)"
    for key in ("ate", "rpe_trans", "abs_rel", "delta1"):
        assert math.isfinite(doc["metrics"][key]), key
    assert doc["frames_processed"] == 16 and doc["frames_dropped"] == 0
    for key in ("trajectory_png", "depth_png", "scale_png"):
        with open(files[key], "rb") as f:
            assert f.read(8) == PNG_MAGIC
    # random weights on a calibrated 2-camera rig: the scale state over time is recorded (never
    # metric), and the depth figure has a row per camera and time (2 cameras x 2 times)
    assert doc["scale_over_time"] and not any(s["metric"] for s in doc["scale_over_time"])
    assert doc["metrics"]["scale"]["metric_sets_share"] == 0.0
    from PIL import Image

    assert Image.open(files["depth_png"]).size[1] >= 4 * 2.6 * 90 * 0.95
    declared, present = read_ply_vertex_count(files["cloud_ply"])
    assert declared == present == doc["cloud_points"] > 0


def test_report_command_prints_the_headline(bags, capsys):
    made, outputs, tmp = bags
    assert cli.main(["report", "--input", str(made.bag), "--outputs", str(outputs),
                     "--out", str(tmp / "r2")]) == 0
    out = capsys.readouterr().out
    assert "ATE" in out and "Abs Rel" in out and str(tmp / "r2") in out
    assert (tmp / "r2" / "cloud.ply").exists()


def test_ply_vertex_count_matches_the_finite_points(tmp_path):
    pts = np.array([[0, 0, 1], [np.nan, 0, 0], [1, 2, 3]], np.float32)
    path = write_ply(tmp_path / "c.ply", pts, np.full((3, 3), 7, np.uint8))
    assert read_ply_vertex_count(path) == (2, 2)
    assert path.read_text().splitlines()[-1] == "1.00000 2.00000 3.00000 7 7 7"


def test_metrics_accumulator_is_exact_on_a_scaled_copy_of_the_truth():
    acc = MetricsAccumulator()
    for k in range(6):
        gt = np.eye(4)
        gt[:3, 3] = [k * 0.5, np.sin(k), 0.1 * k * k]
        est = gt.copy()
        est[:3, 3] *= 3.0
        acc.add_pose(k, est, gt)
        depth = np.full((4, 5), 2.0 + k, np.float32)
        assert acc.add_depth(depth * 0.5, depth)
    s = acc.summary()
    assert s["ate"] < 1e-9 and s["rpe_trans"] < 1e-9 and s["rpe_rot_deg"] < 1e-6
    assert s["abs_rel"] < 1e-9 and s["delta1"] == 1.0
    assert not acc.add_depth(np.full((4, 5), np.nan), np.ones((4, 5)))


def test_scale_summary_counts_metric_sets_and_scale_errors():
    acc = MetricsAccumulator()
    gt = np.full((4, 5), 2.0, np.float32)
    for k in range(8):
        for cam in ("cam0", "cam1"):
            metric = k >= 3 and not (k == 6 and cam == "cam1")  # set 6 is half metric
            assert acc.add_depth(gt * (1.04 if metric else 9.0), gt, metric, k, cam)
    sc = acc.summary()["scale"]
    assert sc["sets"] == 8 and sc["metric_sets_share"] == pytest.approx(4 / 8)
    assert sc["metric_sets_share_after_2_windows"] == pytest.approx(1 / 2)  # sets 6 (half) and 7
    assert sc["metric_frames"] == 9 and sc["scale_error_median"] == pytest.approx(0.04, rel=1e-5)


def test_depth_figure_draws_missing_depth_in_grey_with_a_legend(tmp_path):
    from PIL import Image

    from wint3r_ros.offline.report import NO_DEPTH_COLOR, plot_depth

    gt = np.linspace(1.0, 3.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    pred = gt.copy()
    pred[:, :20] = np.nan  # e.g. below the confidence threshold
    path = plot_depth([("cam1 t=0.0s", None, gt, pred, True)], tmp_path / "d.png")
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    grey = tuple(int(NO_DEPTH_COLOR[i:i + 2], 16) for i in (1, 3, 5))
    assert (np.abs(pixels.astype(int) - grey).sum(1) <= 3).sum() > 500
