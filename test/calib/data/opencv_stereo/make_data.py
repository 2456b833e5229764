"""Rebuild this folder from Debian's opencv-doc package (see README.md here).

    apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /tmp/opencv-doc
    python test/calib/data/opencv_stereo/make_data.py \
        /tmp/opencv-doc/usr/share/doc/opencv-doc/examples/data

Each image keeps its pixels inside the board (pushed out by 0.6 squares so the board's white
border stays), everything else becomes flat grey, and it is saved as JPEG quality 85: the folder
shrinks from 750 to about 520 KB and the detected corners move by 0.01 px RMS (0.05 px at most).
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from wint3r_ros.calib.board import Board, find_corners

PAIRS = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "11", "12", "13", "14")
BOARD = Board(9, 6, 1.0)
MARGIN = 0.6   # squares kept around the outer squares


def keep_board(gray: np.ndarray, source: str) -> np.ndarray:
    """The image with everything outside the board (plus MARGIN squares) set to grey 128."""
    uv, why = find_corners(gray, BOARD)
    if uv is None:
        raise SystemExit(f"{source}: {why}")
    H, _ = cv2.findHomography(BOARD.object_points()[:, :2], uv)
    lo, hi_c, hi_r = -1 - MARGIN, BOARD.cols + MARGIN, BOARD.rows + MARGIN
    outline = np.array([[lo, lo], [hi_c, lo], [hi_c, hi_r], [lo, hi_r]], np.float64)
    poly = cv2.perspectiveTransform(outline.reshape(-1, 1, 2), H).reshape(-1, 2)
    mask = np.zeros_like(gray)
    cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 255)
    out = gray.copy()
    out[mask == 0] = 128
    return out


def main(src: str) -> None:
    here = Path(__file__).parent
    for side in ("left", "right"):
        (here / side).mkdir(exist_ok=True)
        for k in PAIRS:
            path = Path(src) / f"{side}{k}.jpg"
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise SystemExit(f"{path}: cannot read")
            cv2.imwrite(str(here / side / f"{k}.jpg"), keep_board(gray, str(path)),
                        [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_OPTIMIZE, 1])


if __name__ == "__main__":
    main(sys.argv[1])
