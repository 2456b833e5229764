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
    cands: dict[int, list[tuple[str, np.ndarray]]] = {}
    dist = []
    for f, (T_a, T_bs) in views.items():
        dist.append(float(np.linalg.norm(T_a[:3, 3])))
        inv_a = se3_inverse(T_a)
        cands[f] = [(name, T_b @ inv_a) for name, T_b in zip((AS_DETECTED, HALF_TURNED), T_bs)]
    t_tol = options.max_translation * (float(np.median(dist)) if dist else 1.0)

    def close(T: np.ndarray, H: np.ndarray) -> tuple[bool, float]:
        ang = rotation_deg(T[:3, :3].T @ H[:3, :3])
        dt = float(np.linalg.norm(T[:3, 3] - H[:3, 3]))
        return ang <= options.max_rotation_deg and dt <= t_tol, ang

    best, best_key = np.eye(4), None
    for cand_f in cands.values():
        for _, H in cand_f:
            support, spread = 0, 0.0
            for cand_g in cands.values():
                ok = [a for c, a in (close(T, H) for _, T in cand_g) if c]
                if ok:
                    support += 1
                    spread += min(ok)
            key = (support, -spread)
            if best_key is None or key > best_key:
                best, best_key = H, key
    order: dict[int, str] = {}
    inliers = []
    for f, cand_f in cands.items():
        fits = [(close(T, best), name, T) for name, T in cand_f]
        ok = [(a, name, T) for (c, a), name, T in fits if c]
        if ok:
            _, name, T = min(ok, key=lambda x: x[0])
            order[f] = name
            inliers.append(T)
        else:
            ang = min(a for (_, a), _, _ in fits)
            dt = min(float(np.linalg.norm(T[:3, 3] - best[:3, 3])) for _, T in cand_f)
            order[f] = (f"its camera-to-camera transform disagrees with the other views' "
                        f"({ang:.1f} deg, {dt:.3g} m off)")
    T = np.eye(4)
    if inliers:
        T[:3, :3] = orthonormalize(np.sum([Ti[:3, :3] for Ti in inliers], axis=0))  # chordal mean
        T[:3, 3] = np.median([Ti[:3, 3] for Ti in inliers], axis=0)
    return PairConsensus(T, order)
