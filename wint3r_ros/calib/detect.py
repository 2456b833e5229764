"""Board corners in every image of every set: the input of fitting and validation.

`detect_frames` runs the detector over synchronised sets and keeps only corners, so image
memory stays bounded; `Detections` can also be built straight from corner arrays (tests, or
corners found by another tool).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from wint3r_ros.calib.board import NO_BOARD, Board, find_corners
from wint3r_ros.calib.sources import Frame
from wint3r_ros.errors import CalibrationError

__all__ = ["Detections", "detect_frames", "found"]


def found(corners: np.ndarray) -> np.ndarray:
    """Mask [M] of the corners found in a view: a partial ChArUco view has NaN rows for the
    corners it did not see (a checkerboard view has them all)."""
    return np.isfinite(corners[:, 0])


@dataclass
class Detections:
    """Corners per set and camera. F sets, N cameras, M = board.size corners.

    ``corners[f][c]`` is [M, 2] float64 pixels or None (no image, or no board in it); a partial
    ChArUco view has NaN rows for the corners it missed (`found`);
    ``sources[f][c]`` names the image; ``image_sizes[c]`` is (width, height).
    ``no_board`` lists (camera, image) where no board was found and ``dropped`` (camera, image,
    reason) where one was found but not kept (an ambiguous corner order); both are None in
    ``corners``.
    """

    camera_names: list[str]
    image_sizes: list[tuple[int, int]]
    keys: list[str]
    corners: list[list[np.ndarray | None]]
    sources: list[list[str | None]]
    no_board: list[tuple[int, str]] = field(default_factory=list)
    images_seen: list[int] = field(default_factory=list)   # per camera
    dropped: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def num_cameras(self) -> int:
        return len(self.camera_names)

    def views(self, camera: int, frames: Iterable[int] | None = None) -> list[int]:
        """Set indices in which ``camera`` sees the board."""
        frames = range(len(self.keys)) if frames is None else frames
        return [f for f in frames if self.corners[f][camera] is not None]

    def common_views(self, a: int, b: int, frames: Iterable[int] | None = None) -> list[int]:
        """Set indices in which cameras ``a`` and ``b`` both see the board."""
        frames = range(len(self.keys)) if frames is None else frames
        return [f for f in frames
                if self.corners[f][a] is not None and self.corners[f][b] is not None]

    def source(self, f: int, c: int) -> str:
        return self.sources[f][c] or f"{self.camera_names[c]}:{self.keys[f]}"

    def replaced(self, changes: dict[tuple[int, int], np.ndarray | None]) -> Detections:
        """A copy with ``corners[f][c]`` replaced for every (f, c) in ``changes`` (None: the
        view is left out)."""
        corners = [list(row) for row in self.corners]
        for (f, c), uv in changes.items():
            corners[f][c] = uv
        return replace(self, corners=corners)


def detect_frames(frames: Iterable[Frame], board: Board, camera_names: Sequence[str], *,
                  use_sb: bool = False,
                  expected_sizes: Sequence[tuple[int, int] | None] | None = None,
                  size_origin: str = "the rig") -> Detections:
    """Detect the board in every image; sets with no board in any camera are dropped.

    Every camera's images must share one size (``expected_sizes`` fixes it, e.g. from a rig
    file being checked); a mismatch raises `CalibrationError` naming the image.
    """
    n = len(camera_names)
    sizes: list[tuple[int, int] | None] = list(expected_sizes) if expected_sizes else [None] * n
    first_source: list[str] = [size_origin] * n
    det = Detections(list(camera_names), [], [], [], [], [], [0] * n)
    for frame in frames:
        if len(frame.images) != n:
            raise CalibrationError(f"set {frame.key!r} has {len(frame.images)} images for "
                                   f"{n} cameras")
        row: list[np.ndarray | None] = []
        for c, (img, src) in enumerate(zip(frame.images, frame.sources)):
            if img is None:
                row.append(None)
                continue
            h, w = img.shape[:2]
            if sizes[c] is None:
                sizes[c], first_source[c] = (w, h), str(src)
            elif sizes[c] != (w, h):
                sw, sh = sizes[c]
                raise CalibrationError(
                    f"camera {camera_names[c]}: image {src} is {w}x{h} but {first_source[c]} "
                    f"is {sw}x{sh}; all images of one camera must have the same size")
            det.images_seen[c] += 1
            corners, why = find_corners(img, board, use_sb=use_sb)
            if why == NO_BOARD:
                det.no_board.append((c, str(src)))
            elif why is not None:
                det.dropped.append((c, str(src), why))
            row.append(corners)
        if any(c is not None for c in row):
            det.keys.append(frame.key)
            det.corners.append(row)
            det.sources.append(list(frame.sources))
    for c, name in enumerate(camera_names):
        if det.images_seen[c] == 0:
            raise CalibrationError(f"camera {name}: no images")
    det.image_sizes = [s for s in sizes if s is not None]
    return det
