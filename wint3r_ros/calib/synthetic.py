"""Synthetic checkerboard views of a known rig, for tests and for trying the tool without a rig.

`board_poses` samples board poses in front of chosen cameras; `render_view` draws the board
(filled, anti-aliased polygons of the distorted squares, each edge subdivided so straight board
edges bend like real lens distortion) into a grayscale image; `project_corners` gives the exact
corner pixels for corner-level tests that skip detection.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from wint3r_ros.calib.board import Board
from wint3r_ros.calib.fit import project
from wint3r_ros.core.rig import Camera, Rig

__all__ = ["project_corners", "render_view", "board_poses", "visible"]


def _project(cam: Camera, T_cam_board: np.ndarray, pts: np.ndarray) -> np.ndarray:
    uv, _ = project(cam, cv2.Rodrigues(T_cam_board[:3, :3])[0], T_cam_board[:3, 3], pts)
    return uv


def project_corners(cam: Camera, T_cam_board: np.ndarray, board: Board) -> np.ndarray:
    """Exact pixel positions [M, 2] of the board's inner corners."""
    return _project(cam, T_cam_board, board.object_points())


def visible(cam: Camera, T_cam_board: np.ndarray, board: Board, margin: float = 20.0) -> bool:
    """True when the whole board, with its white border, is in front of and inside the image."""
    s = board.square
    outline = np.array([[-1.5 * s, -1.5 * s, 0], [(board.cols + 0.5) * s, -1.5 * s, 0],
                        [(board.cols + 0.5) * s, (board.rows + 0.5) * s, 0],
                        [-1.5 * s, (board.rows + 0.5) * s, 0]])
    z = (T_cam_board[:3, :3] @ outline.T + T_cam_board[:3, 3:4])[2]
    normal_z = T_cam_board[2, 2]   # board z axis in camera coordinates; must face away
    if np.any(z < 0.1) or normal_z <= 0.2:
        return False
    uv = _project(cam, T_cam_board, outline)
    return bool(np.all(uv[:, 0] >= margin) and np.all(uv[:, 0] <= cam.width - 1 - margin)
                and np.all(uv[:, 1] >= margin) and np.all(uv[:, 1] <= cam.height - 1 - margin))


def render_view(cam: Camera, T_cam_board: np.ndarray, board: Board, *,
                rng: np.random.Generator | None = None, noise: float = 2.0,
                blur: float = 0.5, subdivide: int = 6, supersample: int = 4) -> np.ndarray:
    """uint8 [H, W] image of the board seen by ``cam`` (gray background, white border, square
    (i, j) dark when i + j is even, counting from the outer squares at i, j = -1).

    Drawn at ``supersample`` times the resolution and area-averaged down, so edges are
    anti-aliased with the pixel-centre convention intact; then blurred and noised.
    """
    ss = supersample
    shift = 3
    img = np.full((cam.height * ss, cam.width * ss), 110, dtype=np.uint8)
    s = board.square

    def poly(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        t = np.linspace(0, 1, subdivide, endpoint=False)
        edges = [np.stack([x0 + (x1 - x0) * t, np.full_like(t, y0)], 1),
                 np.stack([np.full_like(t, x1), y0 + (y1 - y0) * t], 1),
                 np.stack([x1 - (x1 - x0) * t, np.full_like(t, y1)], 1),
                 np.stack([np.full_like(t, x0), y1 - (y1 - y0) * t], 1)]
        pts = np.concatenate(edges)
        uv = _project(cam, T_cam_board, np.hstack([pts, np.zeros((len(pts), 1))]))
        hi = (uv + 0.5) * ss - 0.5   # pixel centres of the fine grid
        return np.round(hi * (1 << shift)).astype(np.int32)

    cv2.fillPoly(img, [poly(-1.8 * s, -1.8 * s, (board.cols + 0.8) * s, (board.rows + 0.8) * s)],
                 235, shift=shift)
    dark = [poly(i * s, j * s, (i + 1) * s, (j + 1) * s)
            for j in range(-1, board.rows) for i in range(-1, board.cols) if (i + j) % 2 == 0]
    cv2.fillPoly(img, dark, 25, shift=shift)
    out = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA)
    out = out.astype(np.float32)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise > 0:
        rng = rng or np.random.default_rng(0)
        out += rng.normal(0, noise, out.shape).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def board_poses(rig: Rig, board: Board, count: int, see: Sequence[int], *,
                rng: np.random.Generator, distance: tuple[float, float] = (0.5, 1.0),
                tilt_deg: float = 35.0, avoid: Sequence[int] = (),
                max_tries: int = 5000) -> list[np.ndarray]:
    """``count`` board poses T_base_board [4, 4] fully visible to every camera in ``see`` and
    not fully visible to any camera in ``avoid``.

    Boards are centred on random points spread over the view of a random camera in ``see``,
    at a random distance, tilted by up to ``tilt_deg`` about both in-plane axes.
    """
    T_cams = [np.linalg.inv(c.T_base_camera) for c in rig.cameras]
    out: list[np.ndarray] = []
    centre = np.array([(board.cols - 1) * board.square / 2, (board.rows - 1) * board.square / 2,
                       0.0])
    for _ in range(max_tries):
        if len(out) == count:
            break
        anchor = int(see[rng.integers(len(see))])
        first = rig.cameras[anchor]
        d = rng.uniform(*distance)
        u = rng.uniform(0.0, 1.0) * first.width
        v = rng.uniform(0.0, 1.0) * first.height
        ray = np.linalg.solve(first.K, [u, v, 1.0])
        p_cam = ray / np.linalg.norm(ray) * d
        tilt = np.radians(rng.uniform(-tilt_deg, tilt_deg, size=2))
        spin = np.radians(rng.uniform(-20, 20))
        R = cv2.Rodrigues(np.array([tilt[0], tilt[1], spin]))[0]
        T_first_board = np.eye(4)
        T_first_board[:3, :3] = R
        T_first_board[:3, 3] = p_cam - R @ centre
        T_base_board = first.T_base_camera @ T_first_board
        if all(visible(rig.cameras[c], T_cams[c] @ T_base_board, board) for c in see) and \
                not any(visible(rig.cameras[c], T_cams[c] @ T_base_board, board, margin=-5.0)
                        for c in avoid):
            out.append(T_base_board)
    if len(out) < count:
        raise RuntimeError(f"found only {len(out)} of {count} board poses visible to {see}")
    return out

