"""The checkerboard target and corner detection in one image (OpenCV).

A board of ``cols x rows`` *inner* corners (a printed board has ``(cols + 1) x (rows + 1)``
squares) with square side ``square`` metres. Corner k sits at board coordinates
``(k % cols, k // cols) * square`` (z = 0): rows of ``cols`` corners.

OpenCV may return the corners of one board starting from any of its four outer corners, which
would make two cameras disagree about the board pose. `detect_corners` therefore puts them in a
canonical order: right-handed in the image (row direction x column direction points into the
scene), and, on a board whose ``cols + rows`` is odd, starting at the corner whose outer diagonal
square is dark. A board with ``cols + rows`` even looks the same after a half turn; there the
order starting nearest the image's top-left is used, which is consistent only while the cameras
are roughly upright with respect to each other (`Board.symmetric` says when).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from wint3r_ros.errors import CalibrationError

__all__ = ["Board", "parse_board", "detect_corners", "to_gray"]


@dataclass(frozen=True)
class Board:
    """A checkerboard: ``cols`` x ``rows`` inner corners, squares of ``square`` metres."""

    cols: int
    rows: int
    square: float

    def __post_init__(self) -> None:
        if self.cols < 3 or self.rows < 3:
            raise CalibrationError(f"board {self.cols}x{self.rows}: needs at least 3x3 inner "
                                   f"corners")
        if self.cols == self.rows:
            raise CalibrationError(f"board {self.cols}x{self.rows}: a square board's corner "
                                   f"order is ambiguous; use different counts per row and column")
        if not (self.square > 0 and np.isfinite(self.square)):
            raise CalibrationError(f"board square size must be a positive number of metres, "
                                   f"got {self.square!r}")

    @property
    def size(self) -> int:
        """Number of inner corners M."""
        return self.cols * self.rows

    @property
    def symmetric(self) -> bool:
        """True when a half turn maps the board's colours onto themselves."""
        return (self.cols + self.rows) % 2 == 0

    def object_points(self) -> np.ndarray:
        """Corner positions [M, 3] float64 in the board frame (metres, z = 0)."""
        c, r = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        pts = np.stack([c.ravel(), r.ravel(), np.zeros(self.size)], axis=1)
        return pts * self.square

    def __str__(self) -> str:
        return f"{self.cols}x{self.rows} inner corners, {self.square:g} m squares"


def parse_board(text: str, square: float) -> Board:
    """Board from ``"COLSxROWS"`` (inner corners) and the square side in metres."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise CalibrationError(f"--board {text!r}: expected COLSxROWS inner corners, e.g. 9x6")
    return Board(int(m.group(1)), int(m.group(2)), float(square))


def to_gray(image: np.ndarray, source: str = "image") -> np.ndarray:
    """uint8 grayscale [H, W] from a gray, BGR or BGRA image (uint8 or uint16)."""
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise CalibrationError(f"{source}: unsupported image dtype {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    if img.ndim != 2:
        raise CalibrationError(f"{source}: unsupported image shape {img.shape}")
    return np.ascontiguousarray(img)


def _patch_mean(gray: np.ndarray, xy: np.ndarray, radius: int) -> float:
    h, w = gray.shape
    x, y = int(round(xy[0])), int(round(xy[1]))
    x0, x1 = max(0, x - radius), min(w, x + radius + 1)
    y0, y1 = max(0, y - radius), min(h, y + radius + 1)
    if x0 >= x1 or y0 >= y1:
        return float("nan")
    return float(gray[y0:y1, x0:x1].mean())


def _canonical_order(gray: np.ndarray, corners: np.ndarray, board: Board) -> np.ndarray:
    """Reorder detected corners [M, 2] into the board's canonical order (module docstring)."""
    grid = corners.reshape(board.rows, board.cols, 2)
    d_row = grid[0, -1] - grid[0, 0]
    d_col = grid[-1, 0] - grid[0, 0]
    if d_row[0] * d_col[1] - d_row[1] * d_col[0] < 0:   # left-handed: mirror each row
        grid = grid[:, ::-1]
    flat = grid.reshape(-1, 2)
    if board.symmetric:
        first, last = flat[0], flat[-1]
        return flat[::-1].copy() if last.sum() < first.sum() else flat.copy()
    # The outer squares diagonal from the first and last corners have different colours.
    obj = board.object_points()[:, :2] / board.square
    H, _ = cv2.findHomography(obj, flat)
    if H is None:
        return flat.copy()
    probes = np.array([[[-0.5, -0.5]], [[board.cols - 0.5, board.rows - 0.5]]])
    img_probes = cv2.perspectiveTransform(probes, H).reshape(2, 2)
    # Sample well inside the square: a third of the local square size.
    side = float(np.linalg.norm(flat[1] - flat[0]))
    radius = max(1, int(side / 6))
    a, b = (_patch_mean(gray, p, radius) for p in img_probes)
    if np.isfinite(a) and np.isfinite(b) and b < a:
        return flat[::-1].copy()
    return flat.copy()


def detect_corners(gray: np.ndarray, board: Board, *, use_sb: bool = False) -> np.ndarray | None:
    """Sub-pixel inner corners [M, 2] float64 in canonical order, or None if no board is found.

    Tries ``cv2.findChessboardCorners`` with adaptive thresholding, then with a plain global
    threshold (which finds some steeply tilted boards the first misses), refines with
    ``cornerSubPix``; then, if ``use_sb``, tries the sector-based ``findChessboardCornersSB``.
    """
    pattern = (board.cols, board.rows)
    found, corners = False, None
    for flags in (cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
                  | cv2.CALIB_CB_FAST_CHECK, 0):
        found, corners = cv2.findChessboardCorners(gray, pattern, flags=flags)
        if found:
            break
    if found:
        # Search window: a bit under half the smallest corner spacing, at most 11 px.
        pts = corners.reshape(-1, 2)
        grid = pts.reshape(board.rows, board.cols, 2)
        spacing = min(np.linalg.norm(np.diff(grid, axis=0), axis=2).min(),
                      np.linalg.norm(np.diff(grid, axis=1), axis=2).min())
        win = int(max(2, min(11, spacing * 0.4)))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
        corners = cv2.cornerSubPix(gray, corners, (win, win), (-1, -1), criteria)
    elif use_sb:
        found, corners = cv2.findChessboardCornersSB(
            gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE
            | cv2.CALIB_CB_ACCURACY)
    if not found or corners is None:
        return None
    return _canonical_order(gray, corners.reshape(-1, 2).astype(np.float64), board)
