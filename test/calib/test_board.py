"""Checkerboard detection on rendered images: sub-pixel accuracy and a canonical corner order."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.board import (
    NO_BOARD,
    Board,
    _canonical_order,
    find_corners,
    parse_board,
    to_gray,
)
from wint3r_ros.calib.synthetic import project_corners, render_view
from wint3r_ros.core.rig import Camera
from wint3r_ros.errors import CalibrationError

CAM = Camera("cam0", "/cam0/image_raw", "cam0_optical_frame", 640, 480,
             [[520.0, 0.0, 322.0], [0.0, 518.0, 236.0], [0.0, 0.0, 1.0]], "plumb_bob",
             [-0.2, 0.08, 0.001, -0.0005, 0.0])


def _facing(board: Board, spin_deg: float, tilt=(0.2, -0.3), distance: float = 0.7) -> np.ndarray:
    """T_cam_board: board centred on the optical axis, spun about its normal, then tilted."""
    centre = np.array([(board.cols - 1) / 2, (board.rows - 1) / 2, 0.0]) * board.square
    R = cv2.Rodrigues(np.array([tilt[0], tilt[1], 0.0]))[0] @ \
        cv2.Rodrigues(np.array([0.0, 0.0, math.radians(spin_deg)]))[0]
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.array([0.0, 0.0, distance]) - R @ centre
    return T


def test_detected_corners_match_the_projection_to_a_fraction_of_a_pixel(board) -> None:
    rng = np.random.default_rng(0)
    errors = []
    for spin, tilt in [(0, (0.2, -0.3)), (15, (-0.5, 0.2)), (-20, (0.4, 0.5)), (5, (0.0, 0.0))]:
        T = _facing(board, spin, tilt)
        uv = detect_corners(render_view(CAM, T, board, rng=rng), board)
        assert uv is not None and uv.shape == (board.size, 2) and uv.dtype == np.float64
        errors.append(np.linalg.norm(uv - project_corners(CAM, T, board), axis=1))
    err = np.concatenate(errors)
    assert np.sqrt((err ** 2).mean()) < 0.15
    assert err.max() < 0.4


@pytest.mark.parametrize("spin", [0.0, 90.0, 180.0, 270.0, 200.0])
def test_corner_order_follows_the_board_not_the_image(board, spin: float) -> None:
    """Whichever way up the board is held, corner k is the same physical corner."""
    T = _facing(board, spin, distance=0.8)
    uv = detect_corners(render_view(CAM, T, board, rng=np.random.default_rng(1)), board)
    assert uv is not None
    truth = project_corners(CAM, T, board)
    assert np.linalg.norm(uv - truth, axis=1).max() < 0.5


@pytest.mark.parametrize("spin", [0.0, 180.0])
def test_canonical_order_undoes_every_starting_corner(board, spin: float) -> None:
    """OpenCV may start at any outer corner (it depends on version and detector); each of the
    four orders it can return is mapped back to the board's own order."""
    T = _facing(board, spin, distance=0.8)
    gray = render_view(CAM, T, board, rng=np.random.default_rng(3))
    truth = project_corners(CAM, T, board)
    grid = truth.reshape(board.rows, board.cols, 2)
    for order in (grid, grid[::-1, ::-1], grid[:, ::-1], grid[::-1, :]):
        out = _canonical_order(gray, order.reshape(-1, 2).copy(), board)
        np.testing.assert_array_equal(out, truth)


def test_symmetric_board_starts_nearest_the_top_left() -> None:
    sym = Board(8, 6, 0.04)
    assert sym.symmetric and not Board(8, 5, 0.04).symmetric
    for spin in (0.0, 180.0):
        T = _facing(sym, spin, tilt=(0.1, 0.1), distance=0.6)
        uv = detect_corners(render_view(CAM, T, sym, rng=np.random.default_rng(2)), sym)
        assert uv is not None
        assert uv[0].sum() < uv[-1].sum()
        assert uv[1, 0] > uv[0, 0]   # rows run left to right


def detect_corners(gray: np.ndarray, board: Board) -> np.ndarray | None:
    uv, why = find_corners(gray, board)
    assert (uv is None) == (why is not None)
    return uv


def test_no_board_says_so(board) -> None:
    assert find_corners(np.full((480, 640), 128, np.uint8), board) == (None, NO_BOARD)
    noise = np.random.default_rng(0).integers(0, 255, (480, 640)).astype(np.uint8)
    assert find_corners(noise, board) == (None, NO_BOARD)


def test_a_view_whose_square_colours_do_not_decide_the_order_is_dropped(board) -> None:
    """The order comes from the inner squares' colours; where they do not say which end is
    corner 0 (here: every square the same grey) the view is refused, not guessed."""
    T = _facing(board, 0.0, distance=0.8)
    truth = project_corners(CAM, T, board)
    flat = np.full((CAM.height, CAM.width), 128, np.uint8)
    assert _canonical_order(flat, truth.copy(), board) is None
    gray = render_view(CAM, T, board, rng=np.random.default_rng(4))
    # Half the squares repainted with the other colour: a split vote.
    grid = truth.reshape(board.rows, board.cols, 2)
    for j in range(board.rows - 1):
        for i in range((board.cols - 1) // 2):
            quad = np.array([grid[j, i], grid[j, i + 1], grid[j + 1, i + 1], grid[j + 1, i]])
            cv2.fillConvexPoly(gray, np.round(quad).astype(np.int32),
                               235 if (i + j) % 2 == 0 else 25)
    assert _canonical_order(gray, truth.copy(), board) is None


def test_board_object_points_are_rows_of_cols_corners(board) -> None:
    pts = board.object_points()
    assert pts.shape == (board.size, 3)
    np.testing.assert_allclose(pts[1], [board.square, 0, 0])
    np.testing.assert_allclose(pts[board.cols], [0, board.square, 0])
    np.testing.assert_allclose(pts[-1], [(board.cols - 1) * board.square,
                                         (board.rows - 1) * board.square, 0])


def test_parse_board_and_its_errors() -> None:
    b = parse_board("9x6", 0.025)
    assert (b.cols, b.rows, b.square, b.size) == (9, 6, 0.025, 54)
    assert str(b) == "9x6 inner corners, 0.025 m squares"
    with pytest.raises(CalibrationError, match=r"--board '9by6': expected COLSxROWS"):
        parse_board("9by6", 0.025)
    with pytest.raises(CalibrationError, match=r"board 7x7: a square board"):
        parse_board("7x7", 0.025)
    with pytest.raises(CalibrationError, match=r"board 2x6: needs at least 3x3"):
        parse_board("2x6", 0.025)
    with pytest.raises(CalibrationError, match=r"square size must be a positive number .* -0.1"):
        parse_board("9x6", -0.1)


def test_to_gray_handles_colour_and_16_bit() -> None:
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200
    assert to_gray(bgr).shape == (4, 5) and to_gray(bgr)[0, 0] == pytest.approx(60, abs=1)
    assert to_gray(np.full((4, 5), 40000, np.uint16))[0, 0] == 40000 >> 8
    assert to_gray(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5)
    with pytest.raises(CalibrationError, match=r"x.png: unsupported image dtype float32"):
        to_gray(np.zeros((4, 5), np.float32), "x.png")
