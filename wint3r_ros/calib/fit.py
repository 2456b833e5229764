"""Fitting: per-camera intrinsics, pairwise extrinsics, and a joint refinement over the rig.

1. Intrinsics: ``cv2.calibrateCamera`` per camera (pinhole, plumb_bob; k3 fixed at 0 unless
   ``k_coefficients=3``, like ROS ``camera_calibration``'s default of two radial terms); views
   whose own RMS is far above the camera's median are left out and the camera refitted once.
2. Extrinsics relative to camera 0, along a spanning tree of the co-visibility graph (a camera
   sharing no views with camera 0 is chained through the camera it shares the most views with):
   the transform most views agree on (calib.consistency: views that disagree are left out, a
   symmetric board's view is half-turned where that makes it agree), then
   ``cv2.stereoCalibrate`` with ``CALIB_FIX_INTRINSIC`` on the agreeing views.
3. Joint refinement: Levenberg-Marquardt (numpy, analytic Jacobians from ``cv2.projectPoints``
   and ``cv2.composeRT``) over every camera's extrinsics and every set's board pose, with the
   intrinsics fixed, minimising the reprojection error of all views at once; views whose
   residual is far above the median are left out and the refinement rerun (at most 3 rounds).

Poses are 4x4 float64; ``T_a_b`` maps points from frame b to frame a. Camera 0 is the base.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from wint3r_ros.calib.board import Board
from wint3r_ros.calib.consistency import (
    AS_DETECTED,
    HALF_TURNED,
    ConsensusOptions,
    half_turn,
    pair_consensus,
    rotation_deg,
)
from wint3r_ros.calib.detect import Detections, found
from wint3r_ros.calib.frames import base_from_cam0, rebase
from wint3r_ros.core.geometry import se3_inverse
from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.errors import CalibrationError

__all__ = ["RigFit", "FitOptions", "fit_intrinsics", "fit_rig", "refine_poses",
           "board_pose_pnp", "project", "T_from_rt", "rt_from_T", "orient_to_rig"]


def T_from_rt(rt: np.ndarray) -> np.ndarray:
    """4x4 pose from [6] = (rotation vector, translation)."""
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rt[:3], dtype=np.float64))[0]
    T[:3, 3] = rt[3:]
    return T


def rt_from_T(T: np.ndarray) -> np.ndarray:
    """[6] = (rotation vector, translation) from a 4x4 pose."""
    return np.concatenate([cv2.Rodrigues(np.asarray(T[:3, :3], dtype=np.float64))[0].ravel(),
                           T[:3, 3]])


def project(cam: Camera, rvec: np.ndarray, tvec: np.ndarray,
            obj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [M, 2] of points obj [M, 3] under pose (rvec, tvec), and d(u,v)/d(rvec,tvec).

    The Jacobian is [2M, 6] with rows interleaved u0, v0, u1, v1, ...
    """
    rvec = np.ascontiguousarray(rvec, dtype=np.float64).reshape(3, 1)
    tvec = np.ascontiguousarray(tvec, dtype=np.float64).reshape(3, 1)
    if cam.distortion_model == "equidistant":
        uv, jac = cv2.fisheye.projectPoints(obj.reshape(-1, 1, 3), rvec, tvec, cam.K,
                                            cam.distortion_coefficients)
        return uv.reshape(-1, 2), jac[:, 8:14]
    uv, jac = cv2.projectPoints(obj, rvec, tvec, cam.K, cam.opencv_distortion())
    return uv.reshape(-1, 2), jac[:, :6]


def board_pose_pnp(cam: Camera, corners: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Initial T_cam_board [4, 4] from one camera's corners [M, 2] (cv2.solvePnP; NaN rows,
    corners a partial view missed, are skipped)."""
    m = found(corners)
    corners, obj = np.ascontiguousarray(corners[m]), np.ascontiguousarray(obj[m])
    if cam.distortion_model == "equidistant":
        norm = cv2.fisheye.undistortPoints(corners.reshape(-1, 1, 2), cam.K,
                                           cam.distortion_coefficients)
        ok, r, t = cv2.solvePnP(obj, norm.reshape(-1, 2), np.eye(3), None)
    else:
        ok, r, t = cv2.solvePnP(obj, corners, cam.K, cam.opencv_distortion())
    if not ok:
        raise CalibrationError(f"camera {cam.name}: solvePnP failed on a board view")
    return T_from_rt(np.concatenate([r.ravel(), t.ravel()]))


def refine_poses(cameras: Sequence[Camera], obj: np.ndarray,
                 observations: Sequence[tuple[int, int, np.ndarray]],
                 T_cam_base: Sequence[np.ndarray], T_base_board: dict[int, np.ndarray], *,
                 free_cameras: Sequence[int] = (), max_iter: int = 100
                 ) -> tuple[list[np.ndarray], dict[int, np.ndarray], dict[str, float]]:
    """Levenberg-Marquardt over board poses (and the extrinsics of ``free_cameras``).

    observations: (set f, camera c, corners [M, 2]); T_cam_base[c] [4, 4] maps base to camera c;
    T_base_board[f] [4, 4] is set f's board pose. Intrinsics stay fixed. Returns the refined
    T_cam_base, T_base_board and {"rms_before", "rms_after", "iterations"} (pixels).
    """
    free = {c: k for k, c in enumerate(free_cameras)}
    boards = sorted(T_base_board)
    board_idx = {f: k for k, f in enumerate(boards)}
    n_ext = 6 * len(free)
    n = n_ext + 6 * len(boards)
    ext = [rt_from_T(T) for T in T_cam_base]
    brd = {f: rt_from_T(T_base_board[f]) for f in boards}
    # Only the corners each view found (partial ChArUco views): (f, c, uv [K, 2], obj [K, 3]).
    observations = [(f, c, uv[found(uv)], obj[found(uv)]) for f, c, uv in observations]
    n_res = sum(2 * len(o[2]) for o in observations)

    def residuals(ext: list[np.ndarray], brd: dict[int, np.ndarray], with_jac: bool):
        cost = 0.0
        H = np.zeros((n, n)) if with_jac else None
        g = np.zeros(n) if with_jac else None
        for f, c, uv_obs, obj_seen in observations:
            rb, tb = brd[f][:3].reshape(3, 1), brd[f][3:].reshape(3, 1)
            re_, te = ext[c][:3].reshape(3, 1), ext[c][3:].reshape(3, 1)
            r3, t3, dr3dr1, dr3dt1, dr3dr2, dr3dt2, dt3dr1, dt3dt1, dt3dr2, dt3dt2 = \
                cv2.composeRT(rb, tb, re_, te)
            uv, Jp = project(cameras[c], r3, t3, obj_seen)
            r = (uv - uv_obs).reshape(-1)
            cost += float(r @ r)
            if not with_jac:
                continue
            Jb = Jp[:, :3] @ np.hstack([dr3dr1, dr3dt1]) + Jp[:, 3:] @ np.hstack([dt3dr1, dt3dt1])
            blocks = [(n_ext + 6 * board_idx[f], Jb)]
            if c in free:
                Je = (Jp[:, :3] @ np.hstack([dr3dr2, dr3dt2])
                      + Jp[:, 3:] @ np.hstack([dt3dr2, dt3dt2]))
                blocks.append((6 * free[c], Je))
            for oa, Ja in blocks:
                g[oa:oa + 6] += Ja.T @ r
                for ob, Jb2 in blocks:
                    H[oa:oa + 6, ob:ob + 6] += Ja.T @ Jb2
        return cost, H, g

    def step(ext, brd, delta):
        ext2 = [e.copy() for e in ext]
        for c, k in free.items():
            ext2[c] = ext[c] + delta[6 * k:6 * k + 6]
        brd2 = {f: brd[f] + delta[n_ext + 6 * board_idx[f]:n_ext + 6 * board_idx[f] + 6]
                for f in boards}
        return ext2, brd2

    cost, H, g = residuals(ext, brd, True)
    rms_before = float(np.sqrt(cost / max(1, n_res // 2)))
    lam, it = 1e-3, 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        diag = np.diag(H).copy()
        diag[diag <= 0] = 1.0
        try:
            delta = np.linalg.solve(H + lam * np.diag(diag), -g)
        except np.linalg.LinAlgError:
            lam *= 10
            continue
        ext2, brd2 = step(ext, brd, delta)
        cost2, _, _ = residuals(ext2, brd2, False)
        if cost2 < cost:
            converged = (cost - cost2) <= 1e-12 * max(cost, 1e-30) or \
                np.abs(delta).max() < 1e-12
            ext, brd, cost = ext2, brd2, cost2
            lam = max(lam / 10, 1e-12)
            if converged:
                break
            cost, H, g = residuals(ext, brd, True)
        else:
            lam *= 10
            if lam > 1e12:
                break
    rms_after = float(np.sqrt(cost / max(1, n_res // 2)))
    stats = {"rms_before": rms_before, "rms_after": rms_after, "iterations": float(it)}
    return [T_from_rt(e) for e in ext], {f: T_from_rt(brd[f]) for f in boards}, stats


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitOptions:
    """Knobs of `fit_rig`; names/topics/frames default to cam<i>, /cam<i>/image_raw, ...

    A view is an outlier when its RMS exceeds ``outlier_factor`` x the median of its kind
    (intrinsics: per camera; extrinsics: over the rig) and ``min_outlier_px``.
    """

    rig_name: str = "rig"
    base_frame: str = "rig_base"
    topics: tuple[str, ...] | None = None
    frame_ids: tuple[str, ...] | None = None
    k_coefficients: int = 2
    min_views: int = 5
    min_common_views: int = 3
    consensus: ConsensusOptions = ConsensusOptions()
    outlier_factor: float = 4.0
    min_outlier_px: float = 1.0
    cam0_mount: tuple[float, ...] | None = None   # calib.frames; None: base = cam0's optical


@dataclass
class RigFit:
    """A fitted rig and how the fit went (RMS in pixels).

    ``detections``: the fit's views as used for the extrinsics (half turns applied, left-out
    views None); ``left_out``: (set, camera, stage, reason) for every view not used;
    ``half_turned``: (set, camera) views of a symmetric board turned to agree with the rig.
    """

    rig: Rig
    intrinsics_rms: list[float]
    views: list[int]                                  # fit views per camera
    parent: dict[str, str]                            # camera -> camera it was chained from
    stereo_rms: dict[tuple[str, str], float]          # (parent, child) -> stereoCalibrate RMS
    common_views: dict[tuple[str, str], int]          # every pair (i < j)
    joint: dict[str, float] = field(default_factory=dict)
    detections: Detections | None = None
    left_out: list[tuple[int, int, str, str]] = field(default_factory=list)
    half_turned: list[tuple[int, int]] = field(default_factory=list)


def fit_intrinsics(obj: np.ndarray, corners: Sequence[np.ndarray], size: tuple[int, int],
                   k_coefficients: int = 2) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """K [3, 3], plumb_bob D [5], RMS (px) and per-view RMS [V] from board views
    (cv2.calibrateCameraExtended)."""
    if k_coefficients not in (2, 3):
        raise CalibrationError(f"k_coefficients must be 2 or 3, got {k_coefficients}")
    flags = cv2.CALIB_FIX_K3 if k_coefficients == 2 else 0
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 200, 1e-12)
    obj32 = obj.astype(np.float32)
    out = cv2.calibrateCameraExtended([obj32[found(c)] for c in corners],
                                      [c[found(c)].astype(np.float32) for c in corners],
                                      size, None, None, flags=flags, criteria=criteria)
    rms, K, D, per_view = out[0], out[1], out[2], out[7]
    D = np.asarray(D, dtype=np.float64).ravel()[:5]
    D = np.pad(D, (0, 5 - D.size))
    return (np.asarray(K, dtype=np.float64), D, float(rms),
            np.asarray(per_view, dtype=np.float64).ravel())


#: Fewest corners a view of one camera, or two cameras' common corners, must have to be used.
MIN_CORNERS = 6


def _outliers(errors: np.ndarray, options: FitOptions) -> np.ndarray:
    """Mask of errors above max(outlier_factor x median, min_outlier_px)."""
    limit = max(options.outlier_factor * float(np.median(errors)), options.min_outlier_px)
    return errors > limit


def _camera_intrinsics(det: Detections, c: int, views: list[int], obj: np.ndarray,
                       options: FitOptions, left_out: list[tuple[int, int, str, str]]
                       ) -> tuple[np.ndarray, np.ndarray, float, list[int]]:
    """One camera's K, D, RMS and the views kept; outlier views are left out and refitted once
    (only while at least ``min_views`` remain)."""
    size = det.image_sizes[c]
    K, D, rms, per_view = fit_intrinsics(obj, [det.corners[f][c] for f in views], size,
                                         options.k_coefficients)
    bad = _outliers(per_view, options)
    if bad.any() and (~bad).sum() >= options.min_views:
        median = float(np.median(per_view))
        left_out += [(f, c, "intrinsics", f"view RMS {e:.2f} px, median {median:.2f} px")
                     for f, e, b in zip(views, per_view, bad) if b]
        views = [f for f, b in zip(views, bad) if not b]
        K, D, rms, _ = fit_intrinsics(obj, [det.corners[f][c] for f in views], size,
                                      options.k_coefficients)
    return K, D, rms, views


def _spanning_tree(common: np.ndarray, names: Sequence[str], min_common: int) -> dict[int, int]:
    """child -> parent: grow from camera 0, always adding the pair with most common views."""
    n = len(names)
    parent: dict[int, int] = {}
    reached = {0}
    while len(reached) < n:
        best = None
        for a in reached:
            for b in range(n):
                if b not in reached and (best is None or common[a, b] > common[best]):
                    best = (a, b)
        if best is None or common[best] < min_common:
            lonely = [b for b in range(n) if b not in reached]
            pairs = ", ".join(f"{names[a]}-{names[b]}: {int(common[a, b])}"
                              for b in lonely for a in sorted(reached))
            what = "no common views" if all(common[a, b] == 0 for b in lonely for a in reached) \
                else f"fewer than {min_common} common views"
            raise CalibrationError(
                f"camera(s) {', '.join(names[b] for b in lonely)} share {what} with "
                f"{', '.join(names[a] for a in sorted(reached))} (sets where both see the whole "
                f"board: {pairs}); show the board to these cameras together with a calibrated "
                f"one")
        parent[best[1]] = best[0]
        reached.add(best[1])
    return parent


def _pair_start(cams: list[Camera], det: Detections, p: int, c: int, frames: Sequence[int],
                board: Board, options: FitOptions
                ) -> tuple[np.ndarray, float, dict[int, str]]:
    """T_c_p [4, 4] from the views both cameras agree on, the stereo RMS, and per common set
    the consensus verdict (calib.consistency)."""
    obj = board.object_points()
    fs = det.common_views(p, c, frames)
    views = {}
    for f in fs:
        uv = det.corners[f][c]
        T_b = [board_pose_pnp(cams[c], uv, obj)]
        if board.symmetric:
            T_b.append(board_pose_pnp(cams[c], half_turn(uv), obj))
        views[f] = (board_pose_pnp(cams[p], det.corners[f][p], obj), T_b)
    cons = pair_consensus(views, options=options.consensus)
    agree = cons.agreeing
    names = det.camera_names
    if len(agree) < options.min_common_views:
        raise CalibrationError(
            f"cameras {names[p]} and {names[c]}: only {len(agree)} of their {len(fs)} common "
            f"views agree on one camera-to-camera transform (need {options.min_common_views}); "
            f"check that the cameras were synchronised and did not move, and that the board "
            f"was detected the same way round in both")
    uv_c = {f: half_turn(det.corners[f][c]) if cons.order[f] == HALF_TURNED
            else det.corners[f][c] for f in agree}
    # stereoCalibrate wants the same corners in both views: those both found.
    both = {f: found(det.corners[f][p]) & found(uv_c[f]) for f in agree}
    stereo = [f for f in agree if both[f].sum() >= MIN_CORNERS]
    if len(stereo) < options.min_common_views:
        return cons.T_b_a, float("nan"), cons.order
    obj32 = obj.astype(np.float32)
    out = cv2.stereoCalibrate(
        [obj32[both[f]] for f in stereo],
        [det.corners[f][p][both[f]].astype(np.float32) for f in stereo],
        [uv_c[f][both[f]].astype(np.float32) for f in stereo], cams[p].K.copy(),
        cams[p].opencv_distortion(), cams[c].K.copy(), cams[c].opencv_distortion(),
        det.image_sizes[c], flags=cv2.CALIB_FIX_INTRINSIC,
        criteria=(cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-10))
    rms, R, t = out[0], out[5], out[6]   # retval, K1, D1, K2, D2, R, T, E, F
    T_c_p = np.eye(4)
    T_c_p[:3, :3], T_c_p[:3, 3] = R, np.asarray(t).ravel()
    if rotation_deg(T_c_p[:3, :3].T @ cons.T_b_a[:3, :3]) > options.consensus.max_rotation_deg:
        T_c_p = cons.T_b_a   # stereoCalibrate wandered off: keep the consensus
    return T_c_p, float(rms), cons.order


def _observation_rms(cams: Sequence[Camera], obj: np.ndarray,
                     observations: Sequence[tuple[int, int, np.ndarray]],
                     T_cam_base: Sequence[np.ndarray],
                     T_base_board: dict[int, np.ndarray]) -> np.ndarray:
    out = []
    for f, c, uv in observations:
        T = T_cam_base[c] @ T_base_board[f]
        m = found(uv)
        pred, _ = project(cams[c], rt_from_T(T)[:3], T[:3, 3], obj[m])
        out.append(float(np.sqrt(((pred - uv[m]) ** 2).sum(axis=1).mean())))
    return np.array(out)


def _joint(cams: list[Camera], det: Detections, frames: Sequence[int], obj: np.ndarray,
           T_cam_base: list[np.ndarray], options: FitOptions,
           left_out: list[tuple[int, int, str, str]]) -> tuple[list[np.ndarray], dict[str, float]]:
    """Joint refinement over the sets seen by >= 2 cameras; outlier views (by their residual)
    are left out and the refinement rerun (at most 3 rounds of leaving out)."""
    n = len(cams)
    dropped: set[tuple[int, int]] = set()
    first: dict[str, float] | None = None
    stats: dict[str, float] = {}
    for rounds_left in range(3, -1, -1):   # 3 rounds of rejection, then the final fit
        seen_by = {f: [c for c in range(n) if det.corners[f][c] is not None
                       and (f, c) not in dropped] for f in frames}
        multi = [f for f in frames if len(seen_by[f]) >= 2]
        T_base_board = {}
        observations = []
        for f in multi:
            c0 = seen_by[f][0]
            T_base_board[f] = se3_inverse(T_cam_base[c0]) @ board_pose_pnp(cams[c0], det.corners[f][c0],
                                                                     obj)
            observations += [(f, c, det.corners[f][c]) for c in seen_by[f]]
        if not observations:
            break
        T_cam_base, boards, stats = refine_poses(cams, obj, observations, T_cam_base,
                                                 T_base_board, free_cameras=list(range(1, n)))
        first = first or stats
        rms = _observation_rms(cams, obj, observations, T_cam_base, boards)
        bad = _outliers(rms, options)
        if not bad.any() or rounds_left == 0:
            break
        # The worst view of each set with an outlier: in a set that two cameras saw
        # differently both residuals are high, and dropping one already frees the other.
        median = float(np.median(rms))
        worst: dict[int, int] = {}
        for k in np.nonzero(bad)[0]:
            f = observations[k][0]
            if f not in worst or rms[k] > rms[worst[f]]:
                worst[f] = int(k)
        for k in worst.values():
            f, c, _ = observations[k]
            dropped.add((f, c))
            left_out.append((f, c, "extrinsics", f"rig residual {rms[k]:.2f} px, median "
                                                  f"{median:.2f} px"))
    stats = dict(stats)
    if first:
        stats["rms_before"] = first["rms_before"]
    stats["sets"] = float(len([f for f in frames if sum(
        det.corners[f][c] is not None and (f, c) not in dropped for c in range(n)) >= 2]))
    stats["views_left_out"] = float(len(dropped))
    return T_cam_base, stats


def fit_rig(det: Detections, board: Board, frames: Sequence[int],
            options: FitOptions = FitOptions()) -> RigFit:
    """Fit intrinsics and extrinsics (camera 0 = base) on the sets ``frames`` of ``det``."""
    names = det.camera_names
    n = len(names)
    obj = board.object_points()
    views = [det.views(c, frames) for c in range(n)]
    for c in range(n):
        if len(views[c]) < options.min_views:
            raise CalibrationError(
                f"too few views: camera {names[c]} sees the whole board in {len(views[c])} "
                f"image(s) of the fit set; need at least {options.min_views} (take more images, "
                f"or lower --holdout)")
    left_out: list[tuple[int, int, str, str]] = []
    intr = [_camera_intrinsics(det, c, views[c], obj, options, left_out) for c in range(n)]
    topics = options.topics or tuple(f"/{nm}/image_raw" for nm in names)
    frame_ids = options.frame_ids or tuple(f"{nm}_optical_frame" for nm in names)
    cams = [Camera(names[c], topics[c], frame_ids[c], det.image_sizes[c][0],
                   det.image_sizes[c][1], intr[c][0], "plumb_bob", intr[c][1])
            for c in range(n)]
    common = np.zeros((n, n), dtype=int)
    for a in range(n):
        for b in range(n):
            if a != b:
                common[a, b] = len(det.common_views(a, b, frames))
    parent = _spanning_tree(common, names, options.min_common_views) if n > 1 else {}
    # Robust start along the tree (parents are always reached before children).
    T_cam_base: list[np.ndarray] = [np.eye(4)] * n
    stereo_rms: dict[tuple[str, str], float] = {}
    half_turned: list[tuple[int, int]] = []
    order = [0]
    while len(order) < n:
        order += [c for c, p in parent.items() if p in order and c not in order]
    used = det
    for c in order[1:]:
        p = parent[c]
        T_c_p, rms, verdict = _pair_start(cams, used, p, c, frames, board, options)
        changes: dict[tuple[int, int], np.ndarray | None] = {}
        for f, v in verdict.items():
            if v == HALF_TURNED:
                changes[(f, c)] = half_turn(used.corners[f][c])
                half_turned.append((f, c))
            elif v != AS_DETECTED:
                changes[(f, c)] = None
                left_out.append((f, c, "extrinsics", f"pair {names[p]}-{names[c]}: {v}"))
        used = used.replaced(changes)
        T_cam_base[c] = T_c_p @ T_cam_base[p]
        stereo_rms[(names[p], names[c])] = rms
    joint: dict[str, float] = {}
    if n > 1:
        T_cam_base, joint = _joint(cams, used, frames, obj, T_cam_base, options, left_out)
        used = used.replaced({(f, c): None for f, c, stage, _ in left_out
                              if stage == "extrinsics"})
    cams = [Camera(cm.name, cm.topic, cm.frame_id, cm.width, cm.height, cm.K,
                   cm.distortion_model, cm.distortion_coefficients, se3_inverse(T_cam_base[c]))
            for c, cm in enumerate(cams)]
    rig = Rig(options.rig_name, options.base_frame, cams)
    if options.cam0_mount is not None:
        rig = rebase(rig, base_from_cam0(options.cam0_mount))
    pairs = {(names[a], names[b]): int(common[a, b]) for a in range(n) for b in range(a + 1, n)}
    return RigFit(rig, [i[2] for i in intr], [len(i[3]) for i in intr],
                  {names[c]: names[p] for c, p in parent.items()}, stereo_rms, pairs, joint,
                  used, left_out, half_turned)


def orient_to_rig(det: Detections, rig: Rig, board: Board,
                  sets: Sequence[int]) -> tuple[Detections, list[tuple[int, int]]]:
    """On a symmetric board, half-turn each camera's view in ``sets`` whose board pose agrees
    with the rig (seen from the set's first camera) only that way round; other boards, or views
    that agree either way or neither way, are kept as detected."""
    if not board.symmetric:
        return det, []
    obj = board.object_points()
    cams = rig.cameras
    changes: dict[tuple[int, int], np.ndarray | None] = {}
    for f in sets:
        seen = [c for c in range(len(cams)) if det.corners[f][c] is not None]
        if len(seen) < 2:
            continue
        a = seen[0]
        T_a = board_pose_pnp(cams[a], det.corners[f][a], obj)
        for c in seen[1:]:
            want = rig.T_cam_i_from_cam_j(c, a) @ T_a
            errs = [rotation_deg(board_pose_pnp(cams[c], uv, obj)[:3, :3].T @ want[:3, :3])
                    for uv in (det.corners[f][c], half_turn(det.corners[f][c]))]
            if errs[1] < errs[0]:
                changes[(f, c)] = half_turn(det.corners[f][c])
    return det.replaced(changes), sorted(changes)
