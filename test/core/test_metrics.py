"""Metrics on known trajectories and depths."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wint3r_ros.core import geometry as g
from wint3r_ros.core.metrics import ate, depth_metrics, rpe
from wint3r_ros.errors import InputError


def circle_trajectory(n: int = 40) -> np.ndarray:
    poses = []
    for i in range(n):
        a = 2 * math.pi * i / n
        q = [0.0, 0.0, math.sin(a / 2), math.cos(a / 2)]
        poses.append(g.pose_from_translation_quat([3 * math.cos(a), 3 * math.sin(a), 0.1 * i], q))
    return np.stack(poses)


def test_ate_is_zero_for_a_similar_copy_and_reports_the_scale():
    gt = circle_trajectory()
    S = g.Similarity(0.4, g.matrix_from_quat_xyzw([0.1, 0.2, 0.3, 0.9]), np.array([1.0, 2.0, 3.0]))
    est = S.apply_pose(gt)
    res = ate(est, gt, "sim3")
    assert res.rmse < 1e-10
    assert res.transform.scale == pytest.approx(1 / 0.4)
    assert res.n == 40
    # rigid alignment cannot undo the scale: error is large
    assert ate(est, gt, "se3").rmse > 1.0


def test_ate_rmse_of_a_known_offset_without_alignment():
    gt = circle_trajectory()
    est = gt.copy()
    est[:, :3, 3] += [0.0, 0.0, 0.25]
    res = ate(est, gt, "none")
    assert res.rmse == pytest.approx(0.25)
    assert res.max == pytest.approx(0.25)
    assert ate(est, gt, "se3").rmse < 1e-10


def test_ate_ignores_non_finite_positions_and_validates():
    gt = circle_trajectory()
    est = gt.copy()
    est[5, 0, 3] = np.nan
    assert ate(est, gt).n == 39
    with pytest.raises(InputError, match="alignment"):
        ate(est, gt, "affine")
    with pytest.raises(InputError, match="positions"):
        ate(est[:10], gt)


def test_rpe_zero_for_same_motion_and_known_rotation_error():
    gt = circle_trajectory()
    res = rpe(gt, gt, delta=1)
    assert res.trans_rmse < 1e-12 and res.rot_rmse_deg < 1e-6
    # every relative motion gets an extra 2 degrees about x: est_{i+1} = est_i rel_i extra
    est = gt.copy()
    extra = g.se3(g.matrix_from_quat_xyzw([math.sin(math.radians(1)), 0, 0, math.cos(math.radians(1))]))
    for i in range(len(est) - 1):
        est[i + 1] = est[i] @ g.se3_inverse(gt[i]) @ gt[i + 1] @ extra
    res = rpe(est, gt, delta=1)
    assert res.rot_mean_deg == pytest.approx(2.0, abs=1e-6)
    assert res.trans_rmse < 1e-9
    assert res.n == 39


def test_rpe_fit_scale_recovers_relative_scale():
    gt = circle_trajectory()
    est = g.scale_pose_translation(gt, 0.5)
    assert rpe(est, gt).trans_rmse > 0.1
    res = rpe(est, gt, delta=2, fit_scale=True)
    assert res.scale == pytest.approx(2.0)
    assert res.trans_rmse < 1e-10
    with pytest.raises(InputError, match="delta"):
        rpe(est, gt, delta=40)


def test_depth_metrics_known_values_metric_and_median_scaled():
    gt = np.full((4, 5), 2.0)
    pred = np.full((4, 5), 2.2)
    pred[0, :] = 3.0       # ratio 1.5: fails delta1
    pred[1, 0] = np.nan    # ignored
    gt[1, 1] = 0.0         # invalid ground truth: ignored
    res = depth_metrics(pred, gt)
    # 18 valid pixels: 5 with |3 - 2| / 2 = 0.5, 13 with 0.1
    assert res.n == 18
    assert res.abs_rel == pytest.approx((5 * 0.5 + 13 * 0.1) / 18)
    assert res.delta1 == pytest.approx(13 / 18)
    # a prediction off by a constant factor is perfect after median scaling
    res = depth_metrics(gt * 7.0, gt, median_scale=True)
    assert res.scale == pytest.approx(1 / 7.0)
    assert res.abs_rel == pytest.approx(0.0) and res.delta1 == 1.0


def test_depth_metrics_without_valid_pixels_says_so():
    with pytest.raises(InputError, match="no valid pixels"):
        depth_metrics(np.full((2, 2), np.nan), np.ones((2, 2)))
