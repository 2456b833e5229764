"""The evaluation protocol: scoring rules, baselines, the eval command on synthetic data and bags."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from wint3r_ros import cli
from wint3r_ros.model.checkpoint import save_checkpoint
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.train.dataset import DataConfig
from wint3r_ros.train.evaluate import score_sequence, summarise, synthetic_sequences


def _sequence():
    data = DataConfig(num_cameras=2, width=64, height=48, frames_per_scene=6)
    return next(synthetic_sequences([2003], 6, data))


def _results(seq, pose_of, depth_of, metric_of=lambda t, c: False):
    t_count, n = seq.images.shape[:2]
    return {(t, c): SimpleNamespace(world_from_cam=pose_of(t, c), depth=depth_of(t, c),
                                    metric=metric_of(t, c))
            for t in range(t_count) for c in range(n)}


def test_a_similar_copy_of_the_truth_scores_zero_error():
    seq = _sequence()
    s, yaw = 2.5, 0.7
    sim = np.eye(4)
    sim[:3, :3] = s * np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0],
                                [0, 0, 1]])
    sim[:3, 3] = [1.0, -2.0, 0.5]

    def pose(t, c):  # the truth in another frame and scale (rotation kept rigid)
        T = sim @ seq.world_from_cam[t, c]
        T[:3, :3] /= s
        return T

    results = _results(seq, pose, lambda t, c: 3.0 * seq.depth[t, c])
    scores = score_sequence(seq, results, metric=False)
    assert scores["model_pose"]["ate"] == pytest.approx(0.0, abs=1e-9)
    assert scores["model_pose"]["rpe_trans"] == pytest.approx(0.0, abs=1e-9)
    assert scores["model_pose"]["rpe_rot_deg"] == pytest.approx(0.0, abs=1e-4)
    assert scores["model_depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scores["model_depth"]["delta1"] == pytest.approx(1.0)
    # baselines: a static rig's ATE is the spread of the true centres about their mean
    centres = seq.world_from_cam[..., :3, 3].reshape(-1, 3)
    spread = np.sqrt(np.mean(np.sum((centres - centres.mean(0)) ** 2, axis=1)))
    assert scores["static_pose"]["ate"] == pytest.approx(spread)
    g = seq.depth[0, 0].astype(np.float64)
    const = np.mean(np.abs(np.median(g) - g) / g)
    assert 0 < scores["constant_depth"]["abs_rel"] and const > 0
    summary = summarise([scores], 12, 1.0)
    assert summary["ratios"]["ate_vs_static"] == pytest.approx(0.0, abs=1e-8)
    assert summary["targets"] == {"abs_rel_at_most_half_baseline": True,
                                  "ate_at_most_half_static": True}
    # a metric engine is also scored without median scaling: depth 3x the truth is 200 % off
    results = _results(seq, pose, lambda t, c: 3.0 * seq.depth[t, c], lambda t, c: True)
    metric = score_sequence(seq, results, metric=True)
    assert metric["model_depth_metric"]["abs_rel"] == pytest.approx(2.0, rel=1e-6)
    assert metric["model_depth_metric"]["delta1"] == 0.0
    assert summarise([metric], 12, 1.0)["model"]["abs_rel_metric"] == pytest.approx(2.0, rel=1e-6)
    assert summary["model"]["frames_per_s"] == pytest.approx(12.0)


def test_the_constant_depth_baseline_is_the_median_of_the_truth():
    seq = _sequence()
    results = _results(seq, lambda t, c: np.eye(4),
                       lambda t, c: np.full_like(seq.depth[t, c], np.median(seq.depth[t, c])))
    scores = score_sequence(seq, results, metric=False)
    assert scores["model_depth"]["abs_rel"] == pytest.approx(scores["constant_depth"]["abs_rel"])
    assert scores["model_pose"]["ate"] == pytest.approx(scores["static_pose"]["ate"])


def test_a_missing_frame_is_an_error_not_a_skip():
    from wint3r_ros.errors import InputError

    seq = _sequence()
    results = _results(seq, lambda t, c: np.eye(4), lambda t, c: seq.depth[t, c])
    del results[(2, 1)]
    with pytest.raises(InputError, match="set 2, camera 1"):
        score_sequence(seq, results, metric=False)


@pytest.fixture
def random_checkpoint(tmp_path):
    model = WinT3R(WinT3RConfig.tiny()).init_weights(3)
    return save_checkpoint(model, tmp_path / "random.safetensors")


def test_eval_command_writes_the_report_for_synthetic_scenes(random_checkpoint, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    code = cli.main(["eval", "--checkpoint", str(random_checkpoint), "--data", "synthetic:val",
                     "--scenes", "1", "--frames", "6", "--cameras", "2", "--input-long-side", "64",
                     "--device", "cpu", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    s = report["summary"]
    assert report["protocol"]["seeds"] == [1000, 1000] and s["frames"] == 12
    for key in ("ate", "rpe_trans", "rpe_rot_deg", "abs_rel", "delta1", "frames_per_s"):
        assert np.isfinite(s["model"][key]), key
    assert s["baselines"]["static_pose"]["ate"] > 0
    assert s["baselines"]["constant_median_depth"]["abs_rel"] > 0
    # a calibrated 2-camera rig could make the engine metric, but random weights do not place
    # the cameras like the rig: the scale fit is refused and nothing is scored as metric
    assert not any(q["metric"] for q in report["sequences"])
    assert "abs_rel_metric" not in s["model"]
    printed = capsys.readouterr()
    assert json.loads(printed.out)["ratios"]["ate_vs_static"] > 0
    # the readable table: model vs every baseline with the ratio, one row per pair
    table = [l.split() for l in printed.err.splitlines() if l.startswith(("ATE", "depth Abs Rel"))]
    assert table[0][:3] == ["ATE", "(m,", "Sim3)"] and table[0][4] == "static"
    assert float(table[0][-1]) == pytest.approx(s["ratios"]["ate_vs_static"], abs=0.006)


def test_eval_command_on_the_held_out_rig_split_uses_each_scenes_rig(random_checkpoint, tmp_path,
                                                                      capsys):
    from wint3r_ros.train.dataset import DataConfig

    out = tmp_path / "rig.json"
    assert cli.main(["eval", "--checkpoint", str(random_checkpoint), "--data", "synthetic-rig:test",
                     "--scenes", "1", "--frames", "4", "--input-long-side", "64", "--device", "cpu",
                     "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    cameras = DataConfig(rig_family="random").rig_config(2000).num_cameras
    assert cameras > 1 and report["summary"]["frames"] == 4 * cameras
    scale = report["summary"]["metric_scale"]  # a calibrated rig: metric results reported apart
    assert scale["sequences"] == 1 and scale["accepted_share"] == 0.0
    assert "metric scale (1 calibrated rig sequences" in capsys.readouterr().err


def test_eval_command_reads_a_recorded_bag_with_ground_truth(random_checkpoint, tmp_path):
    from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag

    made = make_bag(tmp_path / "bag", MakeBagConfig(cameras=2, frames=6, width=64, height=48))
    out = tmp_path / "bag_metrics.json"
    code = cli.main(["eval", "--checkpoint", str(random_checkpoint), "--bag", str(made.bag),
                     "--rig", str(made.rig_path), "--input-long-side", "64", "--device", "cpu",
                     "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    seq = report["sequences"][0]
    assert seq["frames"] == 12 and seq["depth_frames"] == 12
    assert np.isfinite(seq["model_pose"]["ate"]) and seq["static_pose"]["ate"] > 0


def test_eval_command_needs_a_rig_with_a_bag(random_checkpoint, tmp_path, capsys):
    code = cli.main(["eval", "--checkpoint", str(random_checkpoint), "--bag", str(tmp_path)])
    assert code == 1
    assert "--rig" in capsys.readouterr().err


def test_metric_scale_results_are_reported_apart_from_the_median_scaled_ones():
    seq = _sequence()
    assert seq.rig is not None  # 2 calibrated cameras

    def metric_of(t, c):  # the rig scale is accepted from set 2 on
        return t >= 2

    def depth_of(t, c):  # metric frames 4 % too deep, relative ones in arbitrary units
        return seq.depth[t, c] * (1.04 if t >= 2 else 7.0)

    def pose_of(t, c):
        T = seq.world_from_cam[t, c].copy()
        T[:3, 3] += [0.3, -0.2, 0.1]  # metres, shifted: SE(3) alignment removes it
        if t < 2:
            T[:3, 3] *= 7.0
        return T

    scores = score_sequence(seq, _results(seq, pose_of, depth_of, metric_of), metric=True)
    assert scores["scale"]["metric_sets"] == [False, False, True, True, True, True]
    assert scores["scale"]["scale_errors"] == pytest.approx([0.04] * 8, rel=1e-4)
    assert scores["model_pose"]["ate_se3_metric"] == pytest.approx(0.0, abs=1e-9)
    scale = summarise([scores], 12, 1.0, window_steps=(2, 1))["metric_scale"]
    assert scale["accepted_share"] == pytest.approx(4 / 6)
    assert scale["accepted_share_after_2_windows"] == 1.0  # sets 3.. (two windows of 2, stride 1)
    assert scale["scale_error_median"] == pytest.approx(0.04, rel=1e-4)
    assert scale["abs_rel_metric"] == pytest.approx(0.04, rel=1e-3)
    assert scale["ate_se3_metric"] == pytest.approx(0.0, abs=1e-9)
    # a 1-camera sequence has no metric-scale section at all
    mono = dict(scores)
    mono.pop("scale")
    assert "metric_scale" not in summarise([mono], 12, 1.0)
