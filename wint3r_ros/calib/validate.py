"""Validation: reprojection error of a rig on board views it was (or was not) fitted to.

For each set, with the rig's parameters held fixed:

* mono RMS (per image): the board pose is fitted to that image alone (``solvePnP`` + LM), so
  it measures the camera's intrinsics and distortion;
* rig RMS (per image, sets seen by >= 2 cameras): one board pose is fitted to all cameras that
  see the board, through the rig's extrinsics, so it also measures the extrinsics;
* pair RMS (per camera pair): the same with only that pair's two views.

RMS is ``sqrt(mean |reprojected - detected|^2)`` over corners, in pixels (OpenCV's definition).
The split into fit and held-out sets is a seeded permutation of the sets, so it is repeatable.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from wint3r_ros.calib.board import Board
from wint3r_ros.calib.detect import Detections, found
from wint3r_ros.calib.fit import board_pose_pnp, project, refine_poses
from wint3r_ros.core.rig import Rig
from wint3r_ros.errors import CalibrationError

__all__ = ["Thresholds", "Evaluation", "split_sets", "evaluate", "coverage", "quality_warnings"]


@dataclass(frozen=True)
class Thresholds:
    """Quality thresholds: RMS in pixels, coverage and board area as fractions of the image."""

    max_rms_px: float = 0.5
    min_coverage: float = 0.5
    min_board_area: float = 0.03


def split_sets(num_sets: int, holdout: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(fit, held-out) set indices: a seeded permutation, round(holdout * F) held out."""
    if not 0.0 <= holdout < 1.0:
        raise CalibrationError(f"--holdout must be in [0, 1), got {holdout}")
    perm = np.random.default_rng(seed).permutation(num_sets)
    k = int(round(holdout * num_sets))
    return sorted(int(i) for i in perm[k:]), sorted(int(i) for i in perm[:k])


class _Acc:
    """Sum of squared corner errors and corner count -> RMS."""

    def __init__(self) -> None:
        self.sq, self.n, self.images = 0.0, 0, 0

    def add(self, err: np.ndarray) -> None:
        self.sq += float((err ** 2).sum())
        self.n += int(err.size)
        self.images += 1

    @property
    def rms(self) -> float | None:
        return math.sqrt(self.sq / self.n) if self.n else None


@dataclass
class Evaluation:
    """Reprojection errors of one split. rows: one dict per image (see `evaluate`)."""

    split: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    mono: dict[str, _Acc] = field(default_factory=dict)
    rig: dict[str, _Acc] = field(default_factory=dict)
    pair: dict[tuple[str, str], _Acc] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready aggregates."""
        return {
            "cameras": {name: {"images": self.mono[name].images,
                               "mono_rms_px": self.mono[name].rms,
                               "rig_images": self.rig[name].images,
                               "rig_rms_px": self.rig[name].rms} for name in self.mono},
            "pairs": {f"{a}-{b}": {"sets": acc.images, "rms_px": acc.rms}
                      for (a, b), acc in self.pair.items()},
        }


def _errors(rig: Rig, obj: np.ndarray, obs: dict[int, np.ndarray],
            T_cam_base: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Per-camera corner errors [M] after fitting one board pose to the views ``obs``."""
    cams = rig.cameras
    c0 = min(obs)
    T0 = np.linalg.inv(T_cam_base[c0]) @ board_pose_pnp(cams[c0], obs[c0], obj)
    observations = [(0, c, uv) for c, uv in obs.items()]
    _, boards, _ = refine_poses(cams, obj, observations, T_cam_base, {0: T0}, max_iter=50)
    T = boards[0]
    out = {}
    for c, uv in obs.items():
        Tc = T_cam_base[c] @ T
        r = cv2.Rodrigues(Tc[:3, :3])[0]
        m = found(uv)
        pred, _ = project(cams[c], r, Tc[:3, 3], obj[m])
        out[c] = np.linalg.norm(pred - uv[m], axis=1)
    return out


def evaluate(rig: Rig, det: Detections, board: Board, sets: Sequence[int],
             split: str) -> Evaluation:
    """Mono, rig and pair reprojection RMS of ``rig`` on the sets ``sets`` of ``det``.

    Each row: split, set (key), camera, image (source), corners, mono_rms_px, mono_max_px,
    rig_rms_px (None for a set seen by one camera only).
    """
    names = det.camera_names
    if [c.name for c in rig.cameras] != list(names):
        raise CalibrationError(f"evaluate: rig cameras {rig.camera_names} do not match the "
                               f"detections' cameras {list(names)}")
    obj = board.object_points()
    ident = [np.eye(4)] * len(names)
    T_cam_base = [np.linalg.inv(c.T_base_camera) for c in rig.cameras]
    ev = Evaluation(split, mono={n: _Acc() for n in names}, rig={n: _Acc() for n in names},
                    pair={(names[a], names[b]): _Acc() for a in range(len(names))
                          for b in range(a + 1, len(names))})
    for f in sets:
        obs = {c: det.corners[f][c] for c in range(len(names)) if det.corners[f][c] is not None}
        rig_err = _errors(rig, obj, obs, T_cam_base) if len(obs) >= 2 else {}
        for c, uv in obs.items():
            mono = _errors(rig, obj, {c: uv}, ident)[c]
            ev.mono[names[c]].add(mono)
            row = {"split": split, "set": det.keys[f], "camera": names[c],
                   "image": det.source(f, c), "corners": int(found(uv).sum()),
                   "mono_rms_px": float(np.sqrt((mono ** 2).mean())),
                   "mono_max_px": float(mono.max()), "rig_rms_px": None}
            if c in rig_err:
                ev.rig[names[c]].add(rig_err[c])
                row["rig_rms_px"] = float(np.sqrt((rig_err[c] ** 2).mean()))
            ev.rows.append(row)
        seen = sorted(obs)
        for i, a in enumerate(seen):
            for b in seen[i + 1:]:
                err = _errors(rig, obj, {a: obs[a], b: obs[b]}, T_cam_base)
                ev.pair[(names[a], names[b])].add(np.concatenate([err[a], err[b]]))
    return ev


def coverage(det: Detections, camera: int, sets: Sequence[int]) -> dict[str, float]:
    """How much of camera's image the board covered: union of board hulls over ``sets``
    (fraction of the image) and the median per-image board area (fraction)."""
    w, h = det.image_sizes[camera]
    scale = 0.25
    mask = np.zeros((max(1, int(h * scale)), max(1, int(w * scale))), dtype=np.uint8)
    areas = []
    for f in sets:
        uv = det.corners[f][camera]
        if uv is None:
            continue
        hull = cv2.convexHull(uv[found(uv)].astype(np.float32))
        areas.append(float(cv2.contourArea(hull)) / (w * h))
        cv2.fillConvexPoly(mask, np.round(hull.reshape(-1, 2) * scale).astype(np.int32), 1)
    return {"coverage": float(mask.mean()),
            "median_board_area": float(np.median(areas)) if areas else 0.0}


def quality_warnings(ev: Evaluation, cover: dict[str, dict[str, float]],
                     thresholds: Thresholds) -> list[str]:
    """Warnings for RMS above the threshold (on ``ev``'s split) and poor board coverage."""
    out = []
    limit = thresholds.max_rms_px
    for name in ev.mono:
        for kind, acc in (("mono", ev.mono[name]), ("rig", ev.rig[name])):
            if acc.rms is not None and acc.rms > limit:
                out.append(f"camera {name}: {ev.split} {kind} reprojection RMS {acc.rms:.3f} px "
                           f"> {limit:g} px")
    for (a, b), acc in ev.pair.items():
        if acc.rms is not None and acc.rms > limit:
            out.append(f"pair {a}-{b}: {ev.split} reprojection RMS {acc.rms:.3f} px > "
                       f"{limit:g} px")
    for name, cov in cover.items():
        if cov["coverage"] < thresholds.min_coverage:
            out.append(f"camera {name}: the board covered only {cov['coverage']:.0%} of the "
                       f"image over all views (want >= {thresholds.min_coverage:.0%}); show it "
                       f"near the corners and edges too")
        if cov["median_board_area"] < thresholds.min_board_area:
            out.append(f"camera {name}: the board is small in the images (median "
                       f"{cov['median_board_area']:.1%} of the image, want >= "
                       f"{thresholds.min_board_area:.0%}); hold it closer or use a larger board")
    return out
