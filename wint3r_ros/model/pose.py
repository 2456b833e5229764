"""Pose encodings <-> camera-to-world matrices, and poses relative to the stream's first frame.

A pose encoding is 7 numbers `[tx, ty, tz, qx, qy, qz, qw]` (scalar-last quaternion, not
necessarily unit length) mapping camera to world: X_world = R(q) X_cam + t.
"""
from __future__ import annotations

import torch

__all__ = ["quat_to_mat", "mat_to_quat", "quat_multiply", "quat_conjugate",
           "world_from_cam_matrix", "pose_enc_from_world_from_cam", "relative_to_first",
           "relative_to_reference"]


def quat_to_mat(q: torch.Tensor) -> torch.Tensor:
    """q [..., 4] (x, y, z, w), any non-zero length -> rotation [..., 3, 3]."""
    x, y, z, w = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    rows = (
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    )
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))


def mat_to_quat(r: torch.Tensor) -> torch.Tensor:
    """rotation [..., 3, 3] -> unit quaternion [..., 4] (x, y, z, w) with w >= 0.

    Picks, per matrix, the best-conditioned of the four closed forms (largest diagonal term).
    """
    m = r.flatten(-2)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    # 4 * (w^2, x^2, y^2, z^2)
    four_sq = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                           1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    root = four_sq.clamp(min=0).sqrt()  # 2|w|, 2|x|, 2|y|, 2|z|
    # each row: (w, x, y, z) * 2 * root[i], i.e. the products of that component with all four
    cand = torch.stack((
        torch.stack((four_sq[..., 0], m21 - m12, m02 - m20, m10 - m01), -1),
        torch.stack((m21 - m12, four_sq[..., 1], m10 + m01, m02 + m20), -1),
        torch.stack((m02 - m20, m10 + m01, four_sq[..., 2], m12 + m21), -1),
        torch.stack((m10 - m01, m02 + m20, m12 + m21, four_sq[..., 3]), -1),
    ), dim=-2)
    best = root.argmax(dim=-1, keepdim=True)
    denom = (2 * root.gather(-1, best)).clamp(min=1e-12)
    wxyz = cand.gather(-2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2) / denom
    xyzw = torch.cat((wxyz[..., 1:], wxyz[..., :1]), dim=-1)
    xyzw = xyzw / xyzw.norm(dim=-1, keepdim=True)
    return torch.where(xyzw[..., 3:] < 0, -xyzw, xyzw)


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """[..., 4] (x, y, z, w) -> (-x, -y, -z, w)."""
    return torch.cat((-q[..., :3], q[..., 3:]), dim=-1)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of scalar-last quaternions [..., 4]."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack((
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ), dim=-1)


def world_from_cam_matrix(pose_enc: torch.Tensor) -> torch.Tensor:
    """pose_enc [..., 7] -> camera-to-world [..., 4, 4] (same dtype)."""
    out = torch.zeros(*pose_enc.shape[:-1], 4, 4, dtype=pose_enc.dtype, device=pose_enc.device)
    out[..., :3, :3] = quat_to_mat(pose_enc[..., 3:7])
    out[..., :3, 3] = pose_enc[..., :3]
    out[..., 3, 3] = 1
    return out


def pose_enc_from_world_from_cam(matrix: torch.Tensor) -> torch.Tensor:
    """camera-to-world [..., 3 or 4, 4] -> pose_enc [..., 7] (unit quaternion, w >= 0)."""
    return torch.cat((matrix[..., :3, 3], mat_to_quat(matrix[..., :3, :3])), dim=-1)


def relative_to_reference(poses: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Express camera-to-world poses [..., N, 7] in the frame of the reference pose [..., 1, 7].

    t' = R(conj(q_ref)) (t - t_ref), q' = conj(q_ref) * q: the authors' arithmetic, which keeps
    the quaternions' lengths (the model's raw outputs are not unit quaternions).
    """
    q_ref_inv = quat_conjugate(ref[..., 3:7])
    r_ref_inv = quat_to_mat(q_ref_inv)
    t_rel = (r_ref_inv @ (poses[..., :3] - ref[..., :3]).unsqueeze(-1)).squeeze(-1)
    q_rel = quat_multiply(q_ref_inv.expand_as(poses[..., 3:7]), poses[..., 3:7])
    return torch.cat((t_rel, q_rel), dim=-1)


def relative_to_first(poses: torch.Tensor) -> torch.Tensor:
    """[..., N, 7] -> the same poses in the frame of the first one (which becomes identity)."""
    return relative_to_reference(poses, poses[..., :1, :])
