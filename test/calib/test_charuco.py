"""ChArUco boards: every corner has an id, so the order holds for any view, partial views count,
and a rig calibrates from them like from a checkerboard. Views are drawn with cv2.aruco and a
homography (pinhole, no distortion)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.board import MIN_CHARUCO_CORNERS, Board, find_corners, parse_board
from wint3r_ros.calib.detect import detect_frames
from wint3r_ros.calib.pipeline import CalibrateConfig, calibrate
from wint3r_ros.calib.sources import Frame
from wint3r_ros.calib.synthetic import board_poses, project_corners
from wint3r_ros.calib.validate import Thresholds
from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.errors import CalibrationError

BOARD = Board(7, 5, 0.04, charuco="DICT_4X4_50", marker=0.03)
PX, MARGIN = 100, 100   # drawn board: pixels per square, white margin in pixels


@pytest.fixture(scope="module")
def drawn() -> np.ndarray:
    size = ((BOARD.cols + 1) * PX + 2 * MARGIN, (BOARD.rows + 1) * PX + 2 * MARGIN)
    return BOARD.charuco_board().generateImage(size, marginSize=MARGIN)


def _view(drawn: np.ndarray, cam: Camera, T_cam_board: np.ndarray) -> np.ndarray:
    """The drawn board seen by a pinhole camera (a homography; pixel centres are integers)."""
    s = BOARD.square
    off = s * ((0.5 - MARGIN) / PX - 1.0)   # our corner 0 is OpenCV's board point (s, s)
    board_from_pixel = np.array([[s / PX, 0, off], [0, s / PX, off], [0, 0, 1]])
    R, t = T_cam_board[:3, :3], T_cam_board[:3, 3]
    H = cam.K @ np.column_stack([R[:, 0], R[:, 1], t]) @ board_from_pixel
    ss = 4   # drawn at 4x and area-averaged down, so edges are anti-aliased
    fine = np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1]]) @ H
    hi = cv2.warpPerspective(drawn, fine, (cam.width * ss, cam.height * ss),
                             flags=cv2.INTER_LINEAR, borderValue=110)
    return cv2.resize(hi, (cam.width, cam.height), interpolation=cv2.INTER_AREA)


def _pinhole(name: str, K: np.ndarray, T: np.ndarray | None = None) -> Camera:
    return Camera(name, f"/{name}/image_raw", f"{name}_optical_frame", 640, 480, K,
                  "plumb_bob", [0.0] * 5, np.eye(4) if T is None else T)


K = np.array([[520.0, 0.0, 322.0], [0.0, 518.0, 236.0], [0.0, 0.0, 1.0]])


def _facing(spin_deg: float, tilt=(0.25, -0.2), distance: float = 0.6) -> np.ndarray:
    centre = np.array([(BOARD.cols - 1) / 2, (BOARD.rows - 1) / 2, 0.0]) * BOARD.square
    R = cv2.Rodrigues(np.array([tilt[0], tilt[1], 0.0]))[0] @ \
        cv2.Rodrigues(np.array([0.0, 0.0, math.radians(spin_deg)]))[0]
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, np.array([0.0, 0.0, distance]) - R @ centre
    return T


@pytest.mark.parametrize("spin", [0.0, 90.0, 180.0, 270.0])
def test_charuco_corners_come_in_id_order_whatever_the_view(drawn, spin: float) -> None:
    cam = _pinhole("cam0", K)
    T = _facing(spin)
    uv, why = find_corners(_view(drawn, cam, T), BOARD)
    assert why is None and uv.shape == (BOARD.size, 2)
    err = np.linalg.norm(uv - project_corners(cam, T, BOARD), axis=1)
    assert err.max() < 0.5 and np.sqrt((err ** 2).mean()) < 0.25


def test_a_partly_visible_charuco_board_keeps_the_corners_it_found(drawn) -> None:
    cam = _pinhole("cam0", K)
    T = _facing(0.0)
    T[0, 3] += 0.28   # the board's right part leaves the image
    uv, why = find_corners(_view(drawn, cam, T), BOARD)
    assert why is None and uv.shape == (BOARD.size, 2)
    seen = np.isfinite(uv[:, 0])
    assert MIN_CHARUCO_CORNERS <= seen.sum() < BOARD.size
    truth = project_corners(cam, T, BOARD)
    assert np.all(truth[~seen, 0] > 600)   # the missed corners are the ones near or past the edge
    assert np.linalg.norm(uv[seen] - truth[seen], axis=1).max() < 0.5
    T[0, 3] += 0.16   # hardly anything left: too few corners for a pose
    uv, why = find_corners(_view(drawn, cam, T), BOARD)
    assert uv is None and why.startswith("partial ChArUco board (") and \
        why.endswith(f" of {BOARD.size} corners)")


def test_charuco_stereo_rig_is_recovered(drawn) -> None:
    T1 = np.eye(4)
    T1[:3, :3] = cv2.Rodrigues(np.array([0.01, math.radians(10.0), -0.02]))[0]
    T1[:3, 3] = [0.12, 0.0, 0.005]
    truth = Rig("truth", "rig_base", [_pinhole("cam0", K),
                                      _pinhole("cam1", K * [[1.02], [1.02], [1]], T1)])
    rng = np.random.default_rng(41)
    plan = [(T, [0, 1]) for T in board_poses(truth, BOARD, 14, [0, 1], rng=rng,
                                             distance=(0.4, 0.9), tilt_deg=40.0)]
    for c in range(2):
        plan += [(T, [c]) for T in board_poses(truth, BOARD, 8, [c], rng=rng,
                                               distance=(0.3, 0.6), tilt_deg=40.0)]
    frames = []
    for k, (T, see) in enumerate(plan):
        images = [_view(drawn, cam, np.linalg.inv(cam.T_base_camera) @ T) if c in see else None
                  for c, cam in enumerate(truth.cameras)]
        if k < 6:   # something in front of cam1: it sees only the right half of the board
            cam1 = truth.cameras[1]
            uv = project_corners(cam1, np.linalg.inv(cam1.T_base_camera) @ T, BOARD)
            images[1][:, : int(uv[:, 0].mean())] = 110
        frames.append(Frame(f"{k:03d}", images,
                            [f"cam{c}/{k:03d}.png" if c in see else None for c in range(2)]))
    det = detect_frames(frames, BOARD, truth.camera_names)
    assert not det.dropped and not det.no_board
    partial = [k for k in range(len(plan)) if det.corners[k][1] is not None
               and np.isnan(det.corners[k][1][:, 0]).any()]
    assert partial == list(range(6))
    result = calibrate(det, CalibrateConfig(BOARD, thresholds=Thresholds(min_coverage=0.0)))
    Tt, Tf = truth.T_cam_i_from_cam_j(1, 0), result.rig.T_cam_i_from_cam_j(1, 0)
    assert np.linalg.norm(Tf[:3, 3]) == pytest.approx(np.linalg.norm(Tt[:3, 3]), rel=0.01)
    angle = math.degrees(float(np.linalg.norm(cv2.Rodrigues(Tt[:3, :3].T @ Tf[:3, :3])[0])))
    assert angle < 0.2
    assert result.report["pairs"]["cam0-cam1"]["holdout"]["rms_px"] < 0.3
    assert result.report["board"]["charuco"] == "DICT_4X4_50"


def test_charuco_options_are_checked() -> None:
    assert parse_board("6x6", 0.04, "DICT_4X4_50", 0.03).size == 36   # square boards are fine
    with pytest.raises(CalibrationError, match=r"--charuco 'DICT_NOPE': not an OpenCV ArUco"):
        parse_board("7x5", 0.04, "DICT_NOPE", 0.03)
    with pytest.raises(CalibrationError, match=r"--marker must be a positive size .* 0.05"):
        parse_board("7x5", 0.04, "DICT_4X4_50", 0.05)
    with pytest.raises(CalibrationError, match=r"give --marker METRES"):
        parse_board("7x5", 0.04, "DICT_4X4_50")
    with pytest.raises(CalibrationError, match=r"give --charuco DICT too"):
        parse_board("7x5", 0.04, None, 0.03)
    with pytest.raises(CalibrationError, match=r"DICT_4X4_50: holds 50 markers, a "
                                               r"13x9-square board needs 58"):
        parse_board("12x8", 0.04, "DICT_4X4_50", 0.03)
