"""The checkerboard target and corner detection in one image (OpenCV).

A board of ``cols x rows`` *inner* corners (a printed board has ``(cols + 1) x (rows + 1)``
squares) with square side ``square`` metres. Corner k sits at board coordinates
``(k % cols, k // cols) * square`` (z = 0): rows of ``cols`` corners.

OpenCV may return the corners of one board starting from any of its four outer corners, which
would make two cameras disagree about the board pose. `find_corners` therefore puts them in a
canonical order: right-handed in the image (row direction x column direction points into the
scene), and, on a board whose ``cols + rows`` is odd, such that the inner square between corners
0, 1, cols and cols + 1 is dark. Every inner square votes (its colour against its parity), so the
order survives lens distortion, blur and boards whose outer squares are cut by the border; a view
where the vote is split is dropped rather than guessed. A board with ``cols + rows`` even looks
the same after a half turn (`Board.symmetric`); there the order starting nearest the image's
top-left is used, and the fit (calib.fit) turns a view by half a turn where that makes it agree
with the other cameras.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from wint3r_ros.errors import CalibrationError

__all__ = ["Board", "parse_board", "find_corners", "to_gray", "NO_BOARD", "AMBIGUOUS_ORDER",
           "PARTIAL_BOARD"]


@dataclass(frozen=True)
class Board:
    """A checkerboard: ``cols`` x ``rows`` inner corners, squares of ``square`` metres.

    With ``charuco`` (an OpenCV ArUco dictionary name such as ``DICT_5X5_100``) it is a ChArUco
    board of ``(cols + 1) x (rows + 1)`` squares whose white squares hold ArUco markers of
    ``marker`` metres, as ``cv2.aruco.CharucoBoard`` draws it: every corner has an id, so the
    order never depends on the view, the board may be square, and a view may show only part of
    it (the corners it missed are NaN rows).
    """

    cols: int
    rows: int
    square: float
    charuco: str | None = None
    marker: float = 0.0

    def __post_init__(self) -> None:
        if self.cols < 3 or self.rows < 3:
            raise CalibrationError(f"board {self.cols}x{self.rows}: needs at least 3x3 inner "
                                   f"corners")
        if self.cols == self.rows and self.charuco is None:
            raise CalibrationError(f"board {self.cols}x{self.rows}: a square board's corner "
                                   f"order is ambiguous; use different counts per row and column")
        if not (self.square > 0 and np.isfinite(self.square)):
            raise CalibrationError(f"board square size must be a positive number of metres, "
                                   f"got {self.square!r}")
        if self.charuco is not None:
            if not hasattr(cv2, "aruco") or not hasattr(cv2.aruco, "CharucoDetector"):
                raise CalibrationError(f"ChArUco boards need OpenCV >= 4.7 with the aruco module "
                                       f"(this is {cv2.__version__})")
            if not hasattr(cv2.aruco, str(self.charuco)) or not self.charuco.startswith("DICT_"):
                raise CalibrationError(f"--charuco {self.charuco!r}: not an OpenCV ArUco "
                                       f"dictionary (e.g. DICT_5X5_100, DICT_4X4_50)")
            if not (0 < self.marker < self.square):
                raise CalibrationError(f"--marker must be a positive size in metres below the "
                                       f"square size {self.square:g}, got {self.marker!r}")
            need = (self.cols + 1) * (self.rows + 1) // 2
            have = _charuco_dictionary(self.charuco).bytesList.shape[0]
            if have < need:
                raise CalibrationError(f"--charuco {self.charuco}: holds {have} markers, a "
                                       f"{self.cols + 1}x{self.rows + 1}-square board needs "
                                       f"{need}")

    @property
    def size(self) -> int:
        """Number of inner corners M."""
        return self.cols * self.rows

    @property
    def symmetric(self) -> bool:
        """True when a half turn maps the board's colours onto themselves (never for ChArUco,
        whose markers are not symmetric)."""
        return self.charuco is None and (self.cols + self.rows) % 2 == 0

    def object_points(self) -> np.ndarray:
        """Corner positions [M, 3] float64 in the board frame (metres, z = 0)."""
        c, r = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        pts = np.stack([c.ravel(), r.ravel(), np.zeros(self.size)], axis=1)
        return pts * self.square

    def charuco_board(self):
        """The ``cv2.aruco.CharucoBoard`` of a ChArUco board (its corner k is our corner k)."""
        return cv2.aruco.CharucoBoard((self.cols + 1, self.rows + 1), self.square, self.marker,
                                      _charuco_dictionary(self.charuco))

    def __str__(self) -> str:
        kind = f"ChArUco {self.charuco} ({self.marker:g} m markers), " if self.charuco else ""
        return f"{kind}{self.cols}x{self.rows} inner corners, {self.square:g} m squares"


def _charuco_dictionary(name: str):
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def parse_board(text: str, square: float, charuco: str | None = None,
                marker: float | None = None) -> Board:
    """Board from ``"COLSxROWS"`` (inner corners) and the square side in metres; a ChArUco
    board with ``charuco`` (dictionary name) and ``marker`` (marker side in metres)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise CalibrationError(f"--board {text!r}: expected COLSxROWS inner corners, e.g. 9x6")
    if charuco is None and marker is not None:
        raise CalibrationError("--marker is the ArUco marker size of a ChArUco board; give "
                               "--charuco DICT too")
    if charuco is not None and marker is None:
        raise CalibrationError(f"--charuco {charuco}: give --marker METRES, the side of one "
                               f"printed marker")
    return Board(int(m.group(1)), int(m.group(2)), float(square), charuco,
                 float(marker) if marker is not None else 0.0)


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


def _square_values(gray: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Mean intensity [rows-1, cols-1] at the centre of every inner square of ``grid``
    [rows, cols, 2] (each square is bounded by four detected corners: nothing is extrapolated,
    so neither lens distortion nor the board's border can move a sample off its square)."""
    h, w = gray.shape
    quads = np.stack([grid[:-1, :-1], grid[:-1, 1:], grid[1:, 1:], grid[1:, :-1]], axis=2)
    centres = quads.mean(axis=2)
    sides = np.linalg.norm(quads - np.roll(quads, 1, axis=2), axis=3).min(axis=2)
    out = np.full(centres.shape[:2], np.nan)
    for j in range(centres.shape[0]):
        for i in range(centres.shape[1]):
            x, y = centres[j, i]
            r = max(1, int(sides[j, i] / 5))
            x0, x1 = max(0, int(round(x)) - r), min(w, int(round(x)) + r + 1)
            y0, y1 = max(0, int(round(y)) - r), min(h, int(round(y)) + r + 1)
            if x0 < x1 and y0 < y1:
                out[j, i] = gray[y0:y1, x0:x1].mean()
    return out


#: Fraction of inner squares whose colour must agree with one of the two half-turn orders.
ORDER_AGREEMENT = 0.8


def _canonical_order(gray: np.ndarray, corners: np.ndarray, board: Board) -> np.ndarray | None:
    """Reorder detected corners [M, 2] into the board's canonical order (module docstring);
    None when the squares' colours do not say which end is which (an ambiguous view)."""
    grid = corners.reshape(board.rows, board.cols, 2)
    d_row = grid[0, -1] - grid[0, 0]
    d_col = grid[-1, 0] - grid[0, 0]
    if d_row[0] * d_col[1] - d_row[1] * d_col[0] < 0:   # left-handed: mirror each row
        grid = grid[:, ::-1]
    flat = grid.reshape(-1, 2)
    if board.symmetric:
        first, last = flat[0], flat[-1]
        return flat[::-1].copy() if last.sum() < first.sum() else flat.copy()
    # Square (i, j) between corners (i, j) and (i + 1, j + 1) is dark when i + j is even. A
    # half turn maps square (i, j) to (cols - 2 - i, rows - 2 - j), which flips that parity on a
    # board with cols + rows odd, so every inner square votes for one of the two orders.
    values = _square_values(gray, grid)
    ok = np.isfinite(values)
    if ok.sum() < 4:
        return None
    j, i = np.nonzero(ok)
    dark = (i + j) % 2 == 0
    v = values[ok]
    agree = float(np.mean((v < np.median(v)) == dark))
    if agree >= ORDER_AGREEMENT:
        return flat.copy()
    if agree <= 1.0 - ORDER_AGREEMENT:
        return flat[::-1].copy()
    return None


NO_BOARD = "no board"
AMBIGUOUS_ORDER = "ambiguous corner order"
PARTIAL_BOARD = "partial ChArUco board"


#: Fewest ChArUco corners a view must have, spread over at least two rows and two columns.
MIN_CHARUCO_CORNERS = 8


def _find_charuco(gray: np.ndarray, board: Board) -> tuple[np.ndarray | None, str | None]:
    """ChArUco corners [M, 2] in id order (= our corner order) with NaN rows for the corners
    not found, or why not: views with fewer than `MIN_CHARUCO_CORNERS`, or all on one line of
    the board, cannot constrain a pose and are dropped."""
    params = cv2.aruco.CharucoParameters()
    params.tryRefineMarkers = True   # look again for markers the board layout says are there
    detector = cv2.aruco.CharucoDetector(board.charuco_board(), params,
                                         cv2.aruco.DetectorParameters())
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or corners is None or len(ids) == 0:
        return None, NO_BOARD
    ids = np.asarray(ids).ravel()
    keep = (ids >= 0) & (ids < board.size)
    ids, uv = ids[keep], np.asarray(corners, dtype=np.float64).reshape(-1, 2)[keep]
    cols, rows = ids % board.cols, ids // board.cols
    if len(set(ids.tolist())) < MIN_CHARUCO_CORNERS or len(set(cols.tolist())) < 2 \
            or len(set(rows.tolist())) < 2:
        return None, f"{PARTIAL_BOARD} ({len(set(ids.tolist()))} of {board.size} corners)"
    out = np.full((board.size, 2), np.nan)
    out[ids] = uv
    return out, None


def find_corners(gray: np.ndarray, board: Board, *,
                 use_sb: bool = False) -> tuple[np.ndarray | None, str | None]:
    """(sub-pixel inner corners [M, 2] float64 in canonical order, None), or (None, why):
    `NO_BOARD`, or `AMBIGUOUS_ORDER` when the board was found but its squares' colours do not
    say which of its ends is corner 0 (such a view is dropped: fitting it could turn the board
    by half a turn in one camera only).

    Tries ``cv2.findChessboardCorners`` with adaptive thresholding, then with a plain global
    threshold (which finds some steeply tilted boards the first misses), refines with
    ``cornerSubPix``; then, if ``use_sb``, tries the sector-based ``findChessboardCornersSB``.
    """
    if board.charuco is not None:
        return _find_charuco(gray, board)
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
        return None, NO_BOARD
    ordered = _canonical_order(gray, corners.reshape(-1, 2).astype(np.float64), board)
    return (ordered, None) if ordered is not None else (None, AMBIGUOUS_ORDER)
