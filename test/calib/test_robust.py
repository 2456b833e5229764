"""The fit survives what real captures contain: boards numbered half a turn apart in two
cameras, views taken while the board moved, and mis-detected corners (corner-level, fast)."""
from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.board import Board
from wint3r_ros.calib.consistency import half_turn
from wint3r_ros.calib.pipeline import CalibrateConfig, calibrate
from wint3r_ros.calib.synthetic import project_corners
from wint3r_ros.calib.validate import split_sets
from wint3r_ros.core.rig import Rig


def _extrinsics_error(truth: Rig, fitted: Rig) -> tuple[float, float]:
    """Worst (baseline error in %, rotation error in degrees) of every camera against cam0."""
    base, rot = 0.0, 0.0
    for i in range(1, len(truth.cameras)):
        Tt, Tf = truth.T_cam_i_from_cam_j(0, i), fitted.T_cam_i_from_cam_j(0, i)
        base = max(base, abs(np.linalg.norm(Tf[:3, 3]) / np.linalg.norm(Tt[:3, 3]) - 1) * 100)
        rot = max(rot, math.degrees(float(np.linalg.norm(
            cv2.Rodrigues(Tt[:3, :3].T @ Tf[:3, :3])[0]))))
    return base, rot


def _stereo(synth, board: Board, seed: int):
    rig = synth["make_rig"](2)
    poses = synth["plan_poses"](rig, board, seed=seed, single=8, shared=16)
    return rig, poses, synth["corner_detections"](rig, board, poses, seed=seed)


def _shared_fit_sets(det, seed: int = 0) -> list[int]:
    fit, _ = split_sets(len(det.keys), 0.2, seed)
    return [f for f in fit if det.corners[f][0] is not None and det.corners[f][1] is not None]


def test_four_camera_rig_keeps_its_accuracy(synth, board) -> None:
    truth = synth["make_rig"](4)
    poses = synth["plan_poses"](truth, board, seed=4, single=16, shared=12)
    det = synth["corner_detections"](truth, board, poses, seed=4)
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=1))
    assert result.report["extrinsics"]["chained_from"] == {"cam1": "cam0", "cam2": "cam1",
                                                           "cam3": "cam0"}
    base, rot = _extrinsics_error(truth, result.rig)
    assert base < 0.5 and rot < 0.2, (base, rot)   # 0.08 % and 0.13 deg measured
    assert result.report["views_left_out"] == [] and result.report["views_half_turned"] == []
    for cam in result.report["cameras"].values():
        assert cam["holdout"]["rig_rms_px"] < 0.25   # 0.1 px corner noise


def test_symmetric_board_views_numbered_half_a_turn_apart_are_turned_back(synth) -> None:
    """8x6 looks the same after a half turn: cameras at different roll can number it from
    opposite ends. Those views are turned to agree with the rest, in the fit and held out."""
    board = Board(8, 6, 0.04)
    truth, _, det = _stereo(synth, board, seed=21)
    shared = [f for f in range(len(det.keys)) if all(det.corners[f][c] is not None
                                                      for c in range(2))]
    turned = shared[::3]
    det = det.replaced({(f, 1): half_turn(det.corners[f][1]) for f in turned})
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=0))
    base, rot = _extrinsics_error(truth, result.rig)
    assert base < 1.0 and rot < 0.2, (base, rot)
    rep = result.report
    assert sorted(v["set"] for v in rep["views_half_turned"]) == [det.keys[f] for f in turned]
    assert all(v["camera"] == "cam1" for v in rep["views_half_turned"])
    assert rep["views_left_out"] == []
    assert rep["pairs"]["cam0-cam1"]["holdout"]["rms_px"] < 0.25


def test_views_that_disagree_with_the_rig_are_left_out_and_named(synth, board) -> None:
    """On a board with a defined origin a half-turned view (corners from another tool) is not
    trusted but left out; so is a view taken while the board moved (unsynchronised cameras),
    caught by its residual in the joint refinement."""
    truth, poses, det = _stereo(synth, board, seed=22)
    shared = _shared_fit_sets(det)
    turned, moved = shared[:2], shared[2:4]
    changes = {(f, 1): half_turn(det.corners[f][1]) for f in turned}
    cam1 = truth.cameras[1]
    for f in moved:   # the board had moved 3 cm when cam1 took its picture
        T_base_board = poses[f][0].copy()
        T_base_board[:3, 3] += [0.03, 0.01, 0.0]
        changes[(f, 1)] = project_corners(cam1, np.linalg.inv(cam1.T_base_camera) @ T_base_board,
                                          board)
    det = det.replaced(changes)
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=0))
    base, rot = _extrinsics_error(truth, result.rig)
    assert base < 1.0 and rot < 0.2, (base, rot)
    left = {(v["set"], v["camera"]): v for v in result.report["views_left_out"]}
    for f in turned:
        v = left[(det.keys[f], "cam1")]
        assert v["stage"] == "extrinsics"
        assert "pair cam0-cam1: its camera-to-camera transform disagrees with the other " \
               "views'" in v["reason"]
    for f in moved:   # either view of the set can take the blame; the set is out of the fit
        (v,) = [v for (key, _), v in left.items() if key == det.keys[f]]
        assert v["stage"] == "extrinsics"
        assert re.fullmatch(r"rig residual \d+\.\d\d px, median \d\.\d\d px", v["reason"])
    assert len(left) == 4
    assert result.report["extrinsics"]["joint_refinement"]["rms_after"] < 0.2
    assert any(w.startswith("4 view(s) left out of the fit as outliers: ")
               for w in result.warnings)


def test_a_mis_detected_view_is_left_out_of_the_intrinsics(synth, board) -> None:
    truth, _, det = _stereo(synth, board, seed=23)
    f = det.views(0, split_sets(len(det.keys), 0.2, 0)[0])[0]
    bad = det.corners[f][0].copy()
    bad[: board.cols] += np.array([0.0, 4.0])   # the first row of corners 4 px off
    det = det.replaced({(f, 0): bad})
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=0))
    left = [v for v in result.report["views_left_out"] if v["stage"] == "intrinsics"]
    assert [(v["set"], v["camera"]) for v in left] == [(det.keys[f], "cam0")]
    assert re.fullmatch(r"view RMS \d+\.\d\d px, median 0\.\d\d px", left[0]["reason"])
    fx = result.rig.cameras[0].K[0, 0]
    assert fx == pytest.approx(truth.cameras[0].K[0, 0], rel=0.005)
