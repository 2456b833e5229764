"""Synthetic rigs and rendered checkerboard views shared by the calibration tests.

Two rigs with known intrinsics, distortion and extrinsics: a 2-camera stereo pair and a
3-camera fan whose outer cameras share no view (cam2 must be chained through cam1). Each
set sees the board in the cameras of its plan entry; the other cameras have no image.
Everything is seeded, rendered once per session, and small (640x480, tens of views).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.board import Board
from wint3r_ros.calib.detect import Detections, detect_frames
from wint3r_ros.calib.sources import Frame
from wint3r_ros.calib.synthetic import board_poses, project_corners, render_view
from wint3r_ros.core.rig import Camera, Rig

cv2.setNumThreads(1)

BOARD = Board(8, 5, 0.05)


def _pose(yaw_deg: float, t: list[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.array([0.01, math.radians(yaw_deg), -0.02]))[0]
    T[:3, 3] = t
    return T


def make_rig(num_cameras: int) -> Rig:
    """The ground-truth rig: 2 cameras (stereo, 12 cm), 3 (a fan; cam0 and cam2 disjoint) or 4
    (the fan and cam3 on cam0's other side)."""
    K = np.array([[520.0, 0.0, 322.0], [0.0, 518.0, 236.0], [0.0, 0.0, 1.0]])
    yaw1 = 10.0 if num_cameras == 2 else 15.0
    cams = [
        Camera("cam0", "/cam0/image_raw", "cam0_optical_frame", 640, 480, K, "plumb_bob",
               [-0.2, 0.08, 0.001, -0.0005, 0.0]),
        Camera("cam1", "/cam1/image_raw", "cam1_optical_frame", 640, 480,
               K * [[1.02], [1.02], [1.0]] + [[0, 0, -5.0], [0, 0, 4.0], [0, 0, 0]],
               "plumb_bob", [-0.15, 0.05, 0.0, 0.0008, 0.0], _pose(yaw1, [0.12, 0.0, 0.005])),
        Camera("cam2", "/cam2/image_raw", "cam2_optical_frame", 640, 480,
               K * [[0.98], [0.98], [1.0]], "plumb_bob", [-0.1, 0.02, 0.0005, 0.0, 0.0],
               _pose(35.0, [0.24, 0.01, 0.03])),
    ]
    cams.append(Camera("cam3", "/cam3/image_raw", "cam3_optical_frame", 640, 480,
                       K * [[1.01], [0.99], [1.0]], "plumb_bob", [-0.18, 0.06, 0.0, 0.0003, 0.0],
                       _pose(-15.0, [-0.12, -0.01, 0.02])))
    return Rig("truth", "rig_base", cams[:num_cameras])


def plan_poses(rig: Rig, board: Board, seed: int, single: int = 16,
               shared: int = 14) -> list[tuple[np.ndarray, list[int]]]:
    """(T_base_board, cameras that see it) per set: shared views per neighbouring pair (the
    3-camera fan never shows cam0 and cam2 the same board), then close single-camera views."""
    rng = np.random.default_rng(seed)
    n = len(rig.cameras)
    plan: list[tuple[list[int], int, list[int], tuple[float, float]]] = []
    if n == 2:
        plan.append(([0, 1], shared, [], (0.35, 1.0)))
    elif n == 3:
        plan += [([0, 1], shared, [2], (0.35, 1.0)), ([1, 2], shared, [0], (0.35, 1.0))]
    elif n == 4:
        plan += [([0, 1], shared, [2], (0.35, 1.0)), ([1, 2], shared, [0, 3], (0.35, 1.0)),
                 ([0, 3], shared, [2], (0.35, 1.0))]
    plan += [([c], single, [], (0.3, 0.6)) for c in range(n)]
    out = []
    for see, count, avoid, dist in plan:
        out += [(T, see) for T in board_poses(rig, board, count, see, rng=rng, distance=dist,
                                              tilt_deg=45.0, avoid=avoid)]
    return out


def render_frames(rig: Rig, board: Board, poses, seed: int) -> list[Frame]:
    """One Frame per set: images only for the cameras that see the board."""
    rng = np.random.default_rng(seed + 1000)
    frames = []
    for k, (T, see) in enumerate(poses):
        images = [render_view(cam, np.linalg.inv(cam.T_base_camera) @ T, board, rng=rng)
                  if c in see else None for c, cam in enumerate(rig.cameras)]
        frames.append(Frame(f"{k:04d}", images,
                            [f"{cam.name}/{k:04d}.png" if c in see else None
                             for c, cam in enumerate(rig.cameras)]))
    return frames


def corner_detections(rig: Rig, board: Board, poses, seed: int,
                      sigma: float = 0.1) -> Detections:
    """Detections straight from projected corners + Gaussian noise (no images)."""
    rng = np.random.default_rng(seed + 2000)
    n = len(rig.cameras)
    corners = [[project_corners(cam, np.linalg.inv(cam.T_base_camera) @ T, board)
                + rng.normal(0.0, sigma, (board.size, 2)) if c in see else None
                for c, cam in enumerate(rig.cameras)] for T, see in poses]
    keys = [f"{k:04d}" for k in range(len(poses))]
    sources = [[f"{rig.cameras[c].name}/{k}.png" if corners[i][c] is not None else None
                for c in range(n)] for i, k in enumerate(keys)]
    return Detections(rig.camera_names, [(c.width, c.height) for c in rig.cameras], keys,
                      corners, sources, [], [len(keys)] * n)


@pytest.fixture(scope="session")
def board() -> Board:
    return BOARD


@pytest.fixture(scope="session")
def synth() -> dict[str, Callable]:
    """The helpers above, for test modules (conftest modules are not importable)."""
    return {"make_rig": make_rig, "plan_poses": plan_poses, "render_frames": render_frames,
            "corner_detections": corner_detections}


@pytest.fixture(scope="session")
def rendered2() -> tuple[Rig, list[Frame]]:
    rig = make_rig(2)
    return rig, render_frames(rig, BOARD, plan_poses(rig, BOARD, seed=2), seed=2)


@pytest.fixture(scope="session")
def rendered3() -> tuple[Rig, list[Frame]]:
    rig = make_rig(3)
    return rig, render_frames(rig, BOARD, plan_poses(rig, BOARD, seed=3, shared=12), seed=3)


@pytest.fixture(scope="session")
def detected2(rendered2) -> tuple[Rig, Detections]:
    rig, frames = rendered2
    return rig, detect_frames(frames, BOARD, rig.camera_names)


@pytest.fixture(scope="session")
def detected3(rendered3) -> tuple[Rig, Detections]:
    rig, frames = rendered3
    return rig, detect_frames(frames, BOARD, rig.camera_names)


@pytest.fixture(scope="session")
def image_dirs2(rendered2, tmp_path_factory) -> list[Path]:
    """The 2-camera sets written as PNG folders (cam0/, cam1/), paired by file name."""
    rig, frames = rendered2
    root = tmp_path_factory.mktemp("images2")
    dirs = [root / cam.name for cam in rig.cameras]
    for d in dirs:
        d.mkdir()
    for frame in frames:
        for d, img in zip(dirs, frame.images):
            if img is not None:
                cv2.imwrite(str(d / f"{frame.key}.png"), img)
    return dirs
