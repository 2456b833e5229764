"""Calibration on rendered checkerboard images recovers the known rig, and validation reports it."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.fit import FitOptions
from wint3r_ros.calib.pipeline import CalibrateConfig, calibrate, check
from wint3r_ros.calib.validate import Thresholds, split_sets
from wint3r_ros.core.rig import Camera, Rig


def _rotation_error_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    return math.degrees(float(np.linalg.norm(cv2.Rodrigues(R_a.T @ R_b)[0])))


def _assert_recovers(truth: Rig, fitted: Rig) -> dict[str, float]:
    """The issue's tolerances; returns the worst errors for the failure message / report."""
    worst = {"focal_pct": 0.0, "pp_px": 0.0, "baseline_pct": 0.0, "rotation_deg": 0.0}
    for t, f in zip(truth.cameras, fitted.cameras):
        focal = np.abs(np.diag(f.K)[:2] / np.diag(t.K)[:2] - 1.0) * 100
        pp = np.abs(f.K[:2, 2] - t.K[:2, 2])
        worst["focal_pct"] = max(worst["focal_pct"], float(focal.max()))
        worst["pp_px"] = max(worst["pp_px"], float(pp.max()))
    for i in range(1, len(truth.cameras)):
        Tt, Tf = truth.T_cam_i_from_cam_j(0, i), fitted.T_cam_i_from_cam_j(0, i)
        base = abs(np.linalg.norm(Tf[:3, 3]) / np.linalg.norm(Tt[:3, 3]) - 1.0) * 100
        worst["baseline_pct"] = max(worst["baseline_pct"], float(base))
        worst["rotation_deg"] = max(worst["rotation_deg"],
                                    _rotation_error_deg(Tt[:3, :3], Tf[:3, :3]))
    assert worst["focal_pct"] < 0.5, worst
    assert worst["pp_px"] < 2.0, worst
    assert worst["baseline_pct"] < 1.0, worst
    assert worst["rotation_deg"] < 0.2, worst
    return worst


def test_two_camera_rig_is_recovered_from_rendered_images(detected2, board) -> None:
    truth, det = detected2
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=0))
    _assert_recovers(truth, result.rig)
    rep = result.report
    assert rep["cameras"]["cam0"]["distortion_model"] == "plumb_bob"
    np.testing.assert_allclose(result.rig.cameras[0].T_base_camera, np.eye(4))
    # Held-out RMS is reported per camera and pair, and is what corner noise predicts.
    for name in ("cam0", "cam1"):
        held = rep["cameras"][name]["holdout"]
        assert held["images"] >= 3
        assert 0.03 < held["mono_rms_px"] < 0.3
        assert 0.03 < held["rig_rms_px"] < 0.3
        assert rep["cameras"][name]["views_fit"] + rep["cameras"][name]["views_holdout"] == \
            len(det.views(truth.index(name)))
    pair = rep["pairs"]["cam0-cam1"]
    assert pair["holdout"]["sets"] >= 1 and 0.03 < pair["holdout"]["rms_px"] < 0.3
    assert pair["baseline_m"] == pytest.approx(truth.baselines()[("cam0", "cam1")], rel=0.01)
    assert rep["extrinsics"]["chained_from"] == {"cam1": "cam0"}
    joint = rep["extrinsics"]["joint_refinement"]
    assert joint["rms_after"] <= joint["rms_before"]
    splits = {row["split"] for row in rep["images"]}
    assert splits == {"fit", "holdout"}
    assert len(rep["images"]) == sum(r is not None for row in det.corners for r in row)
    assert rep["passed"] is not None and isinstance(rep["warnings"], list)


def test_three_camera_rig_chains_the_camera_without_views_shared_with_cam0(detected3,
                                                                           board) -> None:
    truth, det = detected3
    assert det.common_views(0, 2) == []   # the point of this rig
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=0))
    _assert_recovers(truth, result.rig)
    rep = result.report
    assert rep["extrinsics"]["chained_from"] == {"cam1": "cam0", "cam2": "cam1"}
    assert rep["pairs"]["cam0-cam2"]["common_views_fit"] == 0
    assert rep["pairs"]["cam0-cam2"]["holdout"]["rms_px"] is None
    for name in ("cam0", "cam1", "cam2"):
        assert 0.03 < rep["cameras"][name]["holdout"]["mono_rms_px"] < 0.3
    assert 0.03 < rep["pairs"]["cam1-cam2"]["holdout"]["rms_px"] < 0.3


def test_split_is_seeded_disjoint_and_complete() -> None:
    fit, held = split_sets(50, 0.2, seed=7)
    assert len(held) == 10 and len(fit) == 40
    assert sorted(fit + held) == list(range(50))
    assert split_sets(50, 0.2, seed=7) == (fit, held)
    assert split_sets(50, 0.2, seed=8) != (fit, held)
    assert split_sets(10, 0.0, seed=0) == (list(range(10)), [])


def test_check_flags_a_wrong_extrinsic_but_not_the_intrinsics(detected2, board) -> None:
    truth, det = detected2
    good = check(truth, det, CalibrateConfig(board, thresholds=Thresholds(min_coverage=0.0,
                                                                          min_board_area=0.0)))
    assert good.passed, good.warnings
    c1 = truth.cameras[1]
    T = c1.T_base_camera.copy()
    T[0, 3] += 0.01   # 1 cm baseline error
    bad_rig = truth.with_cameras([truth.cameras[0], Camera(
        c1.name, c1.topic, c1.frame_id, c1.width, c1.height, c1.K, c1.distortion_model,
        c1.distortion_coefficients, T)])
    bad = check(bad_rig, det, CalibrateConfig(board))
    g, b = good.report["cameras"]["cam1"]["check"], bad.report["cameras"]["cam1"]["check"]
    assert b["mono_rms_px"] == pytest.approx(g["mono_rms_px"], rel=1e-6)   # intrinsics alone
    assert b["rig_rms_px"] > 5 * g["rig_rms_px"]
    assert bad.report["pairs"]["cam0-cam1"]["check"]["rms_px"] > 0.5
    assert not bad.passed
    assert any(w.startswith("pair cam0-cam1: check reprojection RMS") for w in bad.warnings)
    assert bad.exit_code(strict=True) == 3 and bad.exit_code(strict=False) == 0


def test_fit_options_name_the_rig_and_fix_k3(detected2, board) -> None:
    _, det = detected2
    opts = FitOptions(rig_name="stereo", base_frame="base_link",
                      topics=("/left/image_raw", "/right/image_raw"), k_coefficients=2)
    rig = calibrate(det, CalibrateConfig(board, fit=opts)).rig
    assert rig.name == "stereo" and rig.base_frame == "base_link"
    assert [c.topic for c in rig.cameras] == ["/left/image_raw", "/right/image_raw"]
    assert [c.frame_id for c in rig.cameras] == ["cam0_optical_frame", "cam1_optical_frame"]
    assert all(c.distortion_coefficients[4] == 0.0 for c in rig.cameras)
