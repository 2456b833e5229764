"""Rigid and similarity transforms, quaternions, Umeyama alignment, depth <-> points, intrinsics.

Conventions (float64 numpy throughout):
- A 4x4 transform named `a_from_b` maps points in frame b to frame a: X_a = R X_b + t. Poses
  are `world_from_cam` (camera-to-world), like ROS TF and the WinT3R pose encoding.
- Quaternions are scalar-last `[x, y, z, w]` (ROS, WinT3R); returned ones are unit with w >= 0.
- Pixels: OpenCV convention, integer coordinates at pixel centres; `u` right, `v` down.
  Optical frames: z forward, x right, y down (REP-103).
- A similarity Sim(3) `s, R, t` maps X -> s R X + t; its 4x4 matrix is [[s R, t], [0, 1]].
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wint3r_ros.errors import InputError

__all__ = [
    "quat_normalize", "matrix_from_quat_xyzw", "quat_xyzw_from_matrix", "quat_multiply",
    "quat_conjugate", "quat_slerp", "orthonormalize", "rotation_angle", "se3", "se3_inverse",
    "pose_from_translation_quat", "translation_quat_from_pose", "transform_points",
    "Similarity", "umeyama", "sim3_matrix", "sim3_inverse", "scale_pose_translation",
    "points_from_depth", "depth_from_points", "project_points", "intrinsics_after_crop",
    "intrinsics_after_resize", "intrinsics_after_crop_resize",
]


# --------------------------------------------------------------------------------------------
# Quaternions and rotations


def quat_normalize(q: np.ndarray | Sequence[float]) -> np.ndarray:
    """q [..., 4] (x, y, z, w) -> unit quaternion with w >= 0 (the same rotation)."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n == 0) or not np.all(np.isfinite(n)):
        raise InputError(f"quaternion must be finite and non-zero, got {q.tolist()}")
    q = q / n
    return np.where(q[..., 3:] < 0, -q, q)


def matrix_from_quat_xyzw(q: np.ndarray | Sequence[float]) -> np.ndarray:
    """q [..., 4] (x, y, z, w), any non-zero length -> rotation [..., 3, 3]."""
    x, y, z, w = np.moveaxis(quat_normalize(q), -1, 0)
    rows = (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))
    return np.stack(rows, axis=-1).reshape(*np.shape(x), 3, 3)


def quat_xyzw_from_matrix(R: np.ndarray) -> np.ndarray:
    """rotation [..., 3, 3] -> unit quaternion [..., 4] (x, y, z, w), w >= 0.

    Uses, per matrix, the closed form of the largest of |w|, |x|, |y|, |z| (well conditioned).
    """
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 9)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.T
    four_sq = np.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                        1 - m00 + m11 - m22, 1 - m00 - m11 + m22), axis=-1)  # 4 (w2, x2, y2, z2)
    cand = np.stack((
        np.stack((four_sq[:, 0], m21 - m12, m02 - m20, m10 - m01), -1),
        np.stack((m21 - m12, four_sq[:, 1], m10 + m01, m02 + m20), -1),
        np.stack((m02 - m20, m10 + m01, four_sq[:, 2], m12 + m21), -1),
        np.stack((m10 - m01, m02 + m20, m12 + m21, four_sq[:, 3]), -1),
    ), axis=1)  # (B, 4 cases, wxyz)
    best = np.argmax(four_sq, axis=-1)
    rows = np.arange(m.shape[0])
    wxyz = cand[rows, best] / (2 * np.sqrt(np.clip(four_sq[rows, best], 1e-300, None)))[:, None]
    q = quat_normalize(np.concatenate((wxyz[:, 1:], wxyz[:, :1]), axis=-1))
    return q.reshape(*R.shape[:-2], 4)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """[..., 4] (x, y, z, w) -> (-x, -y, -z, w): the inverse rotation of a unit quaternion."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate((-q[..., :3], q[..., 3:]), axis=-1)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of scalar-last quaternions [..., 4] (rotate by b, then by a)."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack((aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz), axis=-1)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions [4] at t in [0, 1] (shortest arc)."""
    q0, q1 = quat_normalize(q0), quat_normalize(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear interpolation is exact enough and stable
        return quat_normalize(q0 + t * (q1 - q0))
    theta = math.acos(min(dot, 1.0))
    out = (math.sin((1 - t) * theta) * q0 + math.sin(t * theta) * q1) / math.sin(theta)
    return quat_normalize(out)


def orthonormalize(R: np.ndarray) -> np.ndarray:
    """Nearest rotation [..., 3, 3] (det +1) to a 3x3 matrix, by SVD."""
    u, _, vt = np.linalg.svd(np.asarray(R, dtype=np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Geodesic angle in radians [...] of rotation matrices [..., 3, 3]."""
    R = np.asarray(R, dtype=np.float64)
    c = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(c, -1.0, 1.0))


# --------------------------------------------------------------------------------------------
# SE(3)


def se3(R: np.ndarray | None = None, t: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
    """4x4 transform [[R, t], [0, 1]] (identity parts where None)."""
    T = np.eye(4)
    if R is not None:
        T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def se3_inverse(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms [..., 4, 4] (b_from_a from a_from_b), without a general inverse."""
    T = np.asarray(T, dtype=np.float64)
    out = np.zeros_like(T)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -(Rt @ T[..., :3, 3:])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def pose_from_translation_quat(t: Sequence[float] | np.ndarray,
                               q_xyzw: Sequence[float] | np.ndarray) -> np.ndarray:
    """[..., 3] translation + [..., 4] quaternion (x, y, z, w) -> transforms [..., 4, 4]."""
    t = np.asarray(t, dtype=np.float64)
    R = matrix_from_quat_xyzw(q_xyzw)
    out = np.zeros((*R.shape[:-2], 4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def translation_quat_from_pose(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """transforms [..., 4, 4] -> (translation [..., 3], unit quaternion [..., 4] x, y, z, w)."""
    T = np.asarray(T, dtype=np.float64)
    return T[..., :3, 3].copy(), quat_xyzw_from_matrix(T[..., :3, :3])


def transform_points(a_from_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Apply a 4x4 (rigid or similarity) transform to points [..., 3] in frame b."""
    T = np.asarray(a_from_b, dtype=np.float64)
    p = np.asarray(points_b, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


# --------------------------------------------------------------------------------------------
# Sim(3) and Umeyama


@dataclass(frozen=True)
class Similarity:
    """X -> scale * rotation @ X + translation (rotation [3, 3], translation [3]).

    rms: root-mean-square residual of the fit that produced it (0 when constructed by hand).
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    rms: float = 0.0

    def matrix(self) -> np.ndarray:
        """[[s R, t], [0, 1]] (4x4)."""
        return sim3_matrix(self.scale, self.rotation, self.translation)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """points [..., 3] -> transformed points [..., 3]."""
        return self.scale * np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def apply_pose(self, world_from_cam: np.ndarray) -> np.ndarray:
        """Map camera-to-world poses [..., 4, 4] through this similarity; the result stays rigid
        (rotation R R_c, translation s R t_c + t): the camera re-expressed in the target frame."""
        T = np.asarray(world_from_cam, dtype=np.float64)
        out = T.copy()
        out[..., :3, :3] = self.rotation @ T[..., :3, :3]
        out[..., :3, 3] = self.scale * T[..., :3, 3] @ self.rotation.T + self.translation
        return out

    def inverse(self) -> Similarity:
        Rt = self.rotation.T
        return Similarity(1.0 / self.scale, Rt, -(Rt @ self.translation) / self.scale, self.rms)


def sim3_matrix(scale: float, R: np.ndarray, t: np.ndarray | Sequence[float]) -> np.ndarray:
    """4x4 similarity [[s R, t], [0, 1]]."""
    T = np.eye(4)
    T[:3, :3] = scale * np.asarray(R, dtype=np.float64)
    T[:3, 3] = t
    return T


def sim3_inverse(T: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 similarity [[s R, t], [0, 1]]."""
    T = np.asarray(T, dtype=np.float64)
    sR = T[:3, :3]
    s = np.cbrt(np.linalg.det(sR))
    Rt = sR.T / s
    out = np.eye(4)
    out[:3, :3] = Rt / s
    out[:3, 3] = -(Rt @ T[:3, 3]) / s
    return out


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True,
            weights: np.ndarray | None = None) -> Similarity:
    """Least-squares Similarity mapping src [N, 3] onto dst [N, 3] (Umeyama 1991).

    with_scale=False fits a rigid transform (scale 1). Points with non-finite coordinates are
    ignored. With two points the rotation about their line is arbitrary but the scale and the
    aligned points are exact. Raises InputError with fewer than 2 usable points, or zero spread.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 3)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 3)
    if src.shape != dst.shape:
        raise InputError(f"umeyama: src {src.shape} and dst {dst.shape} differ in shape")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = np.isfinite(src).all(1) & np.isfinite(dst).all(1) & np.isfinite(w) & (w > 0)
    src, dst, w = src[ok], dst[ok], w[ok]
    if len(src) < 2:
        raise InputError(f"umeyama: needs >= 2 finite point pairs, got {len(src)}")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    xs, xd = src - mu_s, dst - mu_d
    var_s = float(w @ (xs * xs).sum(1))
    if var_s <= 1e-24:
        raise InputError("umeyama: the source points coincide (zero spread)")
    cov = (xd * w[:, None]).T @ xs  # (3, 3) = sum w d s^T
    U, D, Vt = np.linalg.svd(cov)
    S = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[-1] = -1.0
    R = U @ np.diag(S) @ Vt
    scale = float(D @ S / var_s) if with_scale else 1.0
    t = mu_d - scale * R @ mu_s
    resid = dst - (scale * src @ R.T + t)
    rms = float(np.sqrt(w @ (resid * resid).sum(1)))
    return Similarity(scale, R, t, rms)


def scale_pose_translation(world_from_cam: np.ndarray, factor: float) -> np.ndarray:
    """Poses [..., 4, 4] with translations multiplied by `factor` (a change of units about the
    world origin; rotations unchanged)."""
    out = np.array(world_from_cam, dtype=np.float64, copy=True)
    out[..., :3, 3] *= factor
    return out


# --------------------------------------------------------------------------------------------
# Depth <-> points, projection


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return u, v


def points_from_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """cam_from_img: depth [H, W] (z along the optical axis) + K [3, 3] -> points [H, W, 3] in
    the camera's optical frame. NaN depth gives NaN points."""
    depth = np.asarray(depth, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    if depth.ndim != 2:
        raise InputError(f"points_from_depth: depth must be [H, W], got shape {depth.shape}")
    u, v = _pixel_grid(*depth.shape)
    fx, fy, cx, cy, skew = K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[0, 1]
    y = (v - cy) / fy
    x = (u - cx - skew * y) / fx
    return np.stack((x * depth, y * depth, depth), axis=-1)


def depth_from_points(points_cam: np.ndarray) -> np.ndarray:
    """points [..., 3] in the camera's optical frame -> depth [...] (their z)."""
    return np.asarray(points_cam, dtype=np.float64)[..., 2].copy()


def project_points(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """img_from_cam: points [..., 3] in the optical frame -> (pixels [..., 2] as (u, v), z [...]).
    Points with z <= 0 get NaN pixels."""
    p = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = p[..., 0] / z, p[..., 1] / z
    u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
    v = K[1, 1] * y + K[1, 2]
    uv = np.stack((u, v), axis=-1)
    uv[z <= 0] = np.nan
    return uv, z


# --------------------------------------------------------------------------------------------
# Intrinsics under crop and resize (pixel centres at integer coordinates)


def intrinsics_after_crop(K: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """K [3, 3] of the image cropped to start at pixel (x0, y0) of the original."""
    K = np.array(K, dtype=np.float64, copy=True)
    K[0, 2] -= x0
    K[1, 2] -= y0
    return K


def intrinsics_after_resize(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """K [3, 3] of the image resized by factors (sx, sy) (new size = old size * s), with
    c' = (c + 0.5) s - 0.5 as cv2.resize samples, f' = f s."""
    K = np.array(K, dtype=np.float64, copy=True)
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K


def intrinsics_after_crop_resize(K: np.ndarray, crop_xywh: Sequence[float],
                                 out_wh: Sequence[int]) -> np.ndarray:
    """K [3, 3] after cropping the box (x0, y0, w, h) and resizing the crop to out_wh (W, H)."""
    x0, y0, w, h = (float(v) for v in crop_xywh)
    if w <= 0 or h <= 0:
        raise InputError(f"intrinsics_after_crop_resize: empty crop box {tuple(crop_xywh)}")
    K = intrinsics_after_crop(K, x0, y0)
    return intrinsics_after_resize(K, out_wh[0] / w, out_wh[1] / h)
