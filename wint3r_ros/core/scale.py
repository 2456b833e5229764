"""The metric scale from a calibrated rig: the model's camera poses of one time step fitted to
the rig's calibrated mounts with a similarity (`fit_rig_scale`), and a smoothed scale over time
with outlier rejection (`ScaleSmoother`). The engine (engine.py) uses both."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wint3r_ros.core.geometry import Similarity, orthonormalize

__all__ = ["ScaleFit", "fit_rig_scale", "ScaleSmoother"]


@dataclass(frozen=True)
class ScaleFit:
    """A similarity from the rig's base frame (metres) to the model's world (model units):
    scale = model units per metre; rms residual in model units; n cameras used."""

    scale: float
    rms: float
    n: int
    similarity: Similarity


def fit_rig_scale(pred_world_from_cam: np.ndarray, base_from_cam: np.ndarray,
                  min_baseline: float = 0.02, max_relative_residual: float = 0.25
                  ) -> ScaleFit | None:
    """Fit the calibrated rig (base_from_cam [N, 4, 4], metres) to the predicted camera poses
    (pred_world_from_cam [N, 4, 4], model world) with a similarity base -> world.

    The rotation is the chordal mean of the N estimates R_wc R_bc^T: camera orientations are
    what the model predicts best, and a rotation from a few centres only (Umeyama) turns
    arbitrarily when the predicted centres nearly coincide. Scale and translation are then the
    least-squares fit of the centres. None if fewer than 2 finite cameras, a largest baseline
    under min_baseline metres, a scale <= 0, or a residual above max_relative_residual of the
    fitted rig's spread (the model does not separate the cameras well enough to give a scale).
    """
    pred = np.asarray(pred_world_from_cam, dtype=np.float64).reshape(-1, 4, 4)
    rig = np.asarray(base_from_cam, dtype=np.float64).reshape(-1, 4, 4)
    ok = np.isfinite(pred).all((1, 2)) & np.isfinite(rig).all((1, 2))
    pred, rig = pred[ok], rig[ok]
    if len(rig) < 2:
        return None
    rig_c = rig[:, :3, 3]
    spread = max(float(np.linalg.norm(a - b)) for i, a in enumerate(rig_c) for b in rig_c[i + 1:])
    if spread < min_baseline:
        return None
    R = orthonormalize((pred[:, :3, :3] @ rig[:, :3, :3].transpose(0, 2, 1)).sum(0))
    q = rig_c @ R.T
    c = pred[:, :3, 3]
    dq, dc = q - q.mean(0), c - c.mean(0)
    scale = float((dq * dc).sum() / (dq * dq).sum())
    if not (scale > 0 and math.isfinite(scale)):
        return None
    t = c.mean(0) - scale * q.mean(0)
    rms = float(np.sqrt(((c - (scale * q + t)) ** 2).sum(1).mean()))
    if rms > max_relative_residual * scale * float(np.sqrt((dq ** 2).sum(1).mean())):
        return None
    return ScaleFit(scale, rms, len(rig), Similarity(scale, R, t, rms))


class ScaleSmoother:
    """Smoothed scale from noisy estimates: exponential average of log(scale) with weight
    `smoothing` on the old value; an estimate off by more than `outlier_ratio` is rejected,
    unless `max_rejections` in a row were, which re-seeds the average (the scale really moved)."""

    def __init__(self, smoothing: float = 0.9, outlier_ratio: float = 1.5, max_rejections: int = 3):
        self.smoothing = smoothing
        self.log_limit = math.log(outlier_ratio)
        self.max_rejections = max_rejections
        self._log: float | None = None
        self._rejected_in_row = 0
        self.accepted = 0
        self.rejected = 0
        self.last_estimate: float | None = None

    @property
    def value(self) -> float | None:
        return None if self._log is None else math.exp(self._log)

    def update(self, estimate: float) -> bool:
        """Feed one estimate (> 0); True if it was used."""
        if not (estimate > 0 and math.isfinite(estimate)):
            return False
        self.last_estimate = estimate
        x = math.log(estimate)
        if self._log is not None and abs(x - self._log) > self.log_limit:
            self._rejected_in_row += 1
            self.rejected += 1
            if self._rejected_in_row < self.max_rejections:
                return False
            self._log = None  # persistent change: start again from this estimate
        self._rejected_in_row = 0
        self.accepted += 1
        self._log = x if self._log is None else self.smoothing * self._log + (1 - self.smoothing) * x
        return True

    def reset(self) -> None:
        self._log = None
        self._rejected_in_row = 0
