"""Camera-to-camera transforms that the views agree on: the robust start of the joint fit.

For a camera pair (a, b), every set both cameras see gives one estimate of the transform
``T_b_a = T_b_board @ inv(T_a_board)`` from two PnP board poses. One bad view (a board turned by
half a turn in one camera, a camera that was not synchronised, a mis-detection) can pull a
least-squares start far off, and the joint refinement from there ends in a wrong minimum: issue
21 saw 56 px. So the start is a consensus instead:

* every view's estimate is a hypothesis; the one that most other views agree with (rotation
  within ``max_rotation_deg``, translation within ``max_translation`` of the board's median
  distance) wins, and the start is the chordal mean rotation and median translation of the
  views that agree with it;
* on a symmetric board (`Board.symmetric`: it looks the same after a half turn) each view of
  camera b is also tried half-turned, and turned where that agrees with the consensus;
* views that agree in neither order are left out of the extrinsics, and reported.

Poses are 4x4 float64; ``T_a_b`` maps points from frame b to frame a.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wint3r_ros.core.geometry import orthonormalize, rotation_angle, se3_inverse

__all__ = ["ConsensusOptions", "PairConsensus", "pair_consensus", "rotation_deg", "half_turn",
           "AS_DETECTED", "HALF_TURNED"]

AS_DETECTED = "as detected"
HALF_TURNED = "half-turned"


@dataclass(frozen=True)
class ConsensusOptions:
    """How far a view's camera-to-camera estimate may be from the consensus and still agree."""

    max_rotation_deg: float = 5.0
    max_translation: float = 0.1   # fraction of the board's median distance from camera a


@dataclass
class PairConsensus:
    """T_b_a [4, 4], and per set: `AS_DETECTED`, `HALF_TURNED` (camera b's corners reversed)
    or the reason it was left out."""

    T_b_a: np.ndarray
    order: dict[int, str]

    @property
    def agreeing(self) -> list[int]:
        return [f for f, o in self.order.items() if o in (AS_DETECTED, HALF_TURNED)]


def rotation_deg(R: np.ndarray) -> float:
    """Angle of a rotation matrix in degrees."""
    return math.degrees(float(rotation_angle(R)))


def half_turn(corners: np.ndarray) -> np.ndarray:
    """Corners [M, 2] of a board turned by half a turn about its centre: corner k <-> M-1-k."""
    return corners[::-1].copy()


def pair_consensus(views: dict[int, tuple[np.ndarray, list[np.ndarray]]], *,
                   options: ConsensusOptions = ConsensusOptions()) -> PairConsensus:
    """The transform from camera a to camera b that most views agree on.

    views: set f -> (T_a_board, [T_b_board as detected, T_b_board half-turned (symmetric boards
    only)]), board poses from each camera's own corners (PnP).
    """
    if not views:
        return PairConsensus(np.eye(4), {})
    sets = list(views)
    names = (AS_DETECTED, HALF_TURNED)
    K = min(len(T_bs) for _, T_bs in views.values())
    # Candidates n = v * K + k: view v's estimate in order k, T_b_a [V * K, 4, 4].
    cands = np.array([T_b @ se3_inverse(T_a) for T_a, T_bs in views.values() for T_b in T_bs[:K]])
    dist = float(np.median([np.linalg.norm(T_a[:3, 3]) for T_a, _ in views.values()]))
    R, t = cands[:, :3, :3], cands[:, :3, 3]
    cos = (np.einsum("aij,bij->ab", R, R) - 1.0) / 2.0
    ang = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))                 # [N, N]
    dt = np.linalg.norm(t[:, None] - t[None], axis=2)                      # [N, N]
    close = (ang <= options.max_rotation_deg) & (dt <= options.max_translation * dist)
    V = len(sets)
    per_view = close.reshape(-1, V, K)                                     # [N, V, K]
    nearest = np.where(per_view, ang.reshape(-1, V, K), np.inf).min(axis=2)  # [N, V]
    support = per_view.any(axis=2).sum(axis=1)
    spread = np.where(np.isfinite(nearest), nearest, 0.0).sum(axis=1)
    best = int(np.lexsort((spread, -support))[0])   # most support, then the tightest
    order: dict[int, str] = {}
    inliers = []
    for v, f in enumerate(sets):
        ks = [k for k in range(K) if close[best, v * K + k]]
        if ks:
            k = min(ks, key=lambda k: ang[best, v * K + k])
            order[f] = names[k]
            inliers.append(cands[v * K + k])
        else:
            n = v * K + int(np.argmin(ang[best, v * K:v * K + K]))
            order[f] = (f"its camera-to-camera transform disagrees with the other views' "
                        f"({ang[best, n]:.1f} deg, {dt[best, n]:.3g} m off)")
    T = np.eye(4)
    if inliers:
        T[:3, :3] = orthonormalize(np.sum([Ti[:3, :3] for Ti in inliers], axis=0))  # chordal mean
        T[:3, 3] = np.median([Ti[:3, 3] for Ti in inliers], axis=0)
    return PairConsensus(T, order)
