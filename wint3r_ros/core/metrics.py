"""Trajectory and depth metrics: ATE, RPE, depth Abs Rel and delta < 1.25.

Trajectories are camera-to-world poses [N, 4, 4] (or positions [N, 3] for ATE), float64, in
the same order for estimate and ground truth. Non-finite entries are ignored, never averaged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wint3r_ros.core.geometry import Similarity, rotation_angle, se3_inverse, umeyama
from wint3r_ros.errors import InputError

__all__ = ["AteResult", "RpeResult", "DepthResult", "ate", "rpe", "depth_metrics", "ALIGNMENTS"]

ALIGNMENTS = ("sim3", "se3", "none")


@dataclass(frozen=True)
class AteResult:
    """Absolute trajectory error (metres of the ground truth) after `alignment`.

    rmse/mean/median/max over the n finite positions; `transform` maps the estimate onto the
    ground truth (scale 1 for se3/none).
    """

    rmse: float
    mean: float
    median: float
    max: float
    n: int
    alignment: str
    transform: Similarity


@dataclass(frozen=True)
class RpeResult:
    """Relative pose error over pairs (i, i + delta): translation (ground-truth units, after the
    estimate's scale is fitted when `scale` != 1) and rotation (degrees), RMSE and mean."""

    trans_rmse: float
    trans_mean: float
    rot_rmse_deg: float
    rot_mean_deg: float
    n: int
    delta: int
    scale: float


@dataclass(frozen=True)
class DepthResult:
    """Depth errors over the n valid pixels: abs_rel = mean |d - g| / g, delta1 = fraction with
    max(d/g, g/d) < 1.25. `scale` is the factor applied to the prediction (1 when metric)."""

    abs_rel: float
    delta1: float
    n: int
    scale: float


def _positions(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] in ((4, 4), (3, 4)):
        return x[:, :3, 3]
    if x.ndim == 2 and x.shape[1] == 3:
        return x
    raise InputError(f"{what}: expected poses [N, 4, 4] or positions [N, 3], got shape {x.shape}")


def ate(estimate: np.ndarray, ground_truth: np.ndarray, alignment: str = "sim3") -> AteResult:
    """ATE of estimated positions (or poses) against ground truth after a Sim(3), SE(3) or no
    alignment (Umeyama on the finite pairs)."""
    if alignment not in ALIGNMENTS:
        raise InputError(f"ate: alignment={alignment!r}; expected one of {ALIGNMENTS}")
    est, gt = _positions(estimate, "ate estimate"), _positions(ground_truth, "ate ground truth")
    if est.shape != gt.shape:
        raise InputError(f"ate: estimate has {len(est)} positions, ground truth {len(gt)}")
    ok = np.isfinite(est).all(1) & np.isfinite(gt).all(1)
    if ok.sum() < (1 if alignment == "none" else 2):
        raise InputError(f"ate: only {int(ok.sum())} finite position pairs")
    if alignment == "none":
        T = Similarity(1.0, np.eye(3), np.zeros(3))
    else:
        T = umeyama(est[ok], gt[ok], with_scale=alignment == "sim3")
    err = np.linalg.norm(T.apply(est[ok]) - gt[ok], axis=1)
    return AteResult(float(np.sqrt(np.mean(err ** 2))), float(err.mean()), float(np.median(err)),
                     float(err.max()), int(ok.sum()), alignment, T)


def rpe(estimate: np.ndarray, ground_truth: np.ndarray, delta: int = 1,
        fit_scale: bool = False) -> RpeResult:
    """RPE of camera-to-world poses [N, 4, 4] over pairs (i, i + delta).

    The relative motion inv(T_i) T_{i+delta} is compared; `fit_scale=True` first scales the
    estimate's translations by the least-squares factor of its relative translations onto the
    ground truth's (for relative-scale estimates).
    """
    est = np.asarray(estimate, dtype=np.float64)
    gt = np.asarray(ground_truth, dtype=np.float64)
    if est.ndim != 3 or est.shape[1:] != (4, 4) or est.shape != gt.shape:
        raise InputError(f"rpe: expected two [N, 4, 4] pose arrays of equal shape, got "
                         f"{est.shape} and {gt.shape}")
    if delta < 1 or delta >= len(est):
        raise InputError(f"rpe: delta={delta} must lie in [1, {len(est) - 1}]")
    rel_e = se3_inverse(est[:-delta]) @ est[delta:]
    rel_g = se3_inverse(gt[:-delta]) @ gt[delta:]
    ok = np.isfinite(rel_e).all((1, 2)) & np.isfinite(rel_g).all((1, 2))
    if not ok.any():
        raise InputError("rpe: no finite pose pairs")
    rel_e, rel_g = rel_e[ok], rel_g[ok]
    scale = 1.0
    if fit_scale:
        te, tg = rel_e[:, :3, 3].ravel(), rel_g[:, :3, 3].ravel()
        denom = float(te @ te)
        scale = float(te @ tg) / denom if denom > 0 else 1.0
    rel_e = rel_e.copy()
    rel_e[:, :3, 3] *= scale
    err = se3_inverse(rel_g) @ rel_e
    t = np.linalg.norm(err[:, :3, 3], axis=1)
    r = np.degrees(rotation_angle(err[:, :3, :3]))
    return RpeResult(float(np.sqrt(np.mean(t ** 2))), float(t.mean()),
                     float(np.sqrt(np.mean(r ** 2))), float(r.mean()), int(ok.sum()), delta, scale)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, median_scale: bool = False,
                  min_depth: float = 1e-3, max_depth: float = np.inf) -> DepthResult:
    """Abs Rel and delta < 1.25 of predicted depth against ground truth (same shape).

    Valid pixels: both finite, ground truth in (min_depth, max_depth], prediction > 0.
    `median_scale=True` scales the prediction by median(gt) / median(pred) first (relative-scale
    predictions); otherwise it is taken as metric.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise InputError(f"depth_metrics: prediction {pred.shape} and ground truth {gt.shape} differ")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(pred) & np.isfinite(gt) & (gt > min_depth) & (gt <= max_depth) & (pred > 0)
    n = int(ok.sum())
    if n == 0:
        raise InputError("depth_metrics: no valid pixels (finite, positive, within depth range)")
    p, g = pred[ok], gt[ok]
    scale = float(np.median(g) / np.median(p)) if median_scale else 1.0
    p = p * scale
    abs_rel = float(np.mean(np.abs(p - g) / g))
    delta1 = float(np.mean(np.maximum(p / g, g / p) < 1.25))
    return DepthResult(abs_rel, delta1, n, scale)
