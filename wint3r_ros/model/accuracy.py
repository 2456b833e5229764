"""How far a reduced precision's outputs are from float32 on the same input, and the bounds.

`deviation(reference, output)` compares two WindowOutputs or SequenceOutputs (S frames):
- pts_rel: the largest per-frame relative deviation of the point maps, ||dP|| / ||P|| over the
  frame's H x W points (Frobenius norms); pts_rel_p99 / pts_rel_px_max: the same per pixel,
  99th percentile and maximum (single pixels near the camera can move much more);
- conf_rel: the largest relative deviation of the confidence, |dc| / c (c >= 1);
- trans_rel: the largest camera translation deviation over the scene scale (the median distance
  of the reference points from their camera);
- rot_deg: the largest angle between the reference and the reduced-precision camera rotations.
`TOLERANCES` are the documented bounds (issue 19): points 2 %, translation 1 % of the scene
scale, rotation 0.2 degrees.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["deviation", "TOLERANCES", "within_tolerance"]

TOLERANCES = {"pts_rel": 0.02, "trans_rel": 0.01, "rot_deg": 0.2}


def _rotation_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[S] angles (degrees) between rotation matrices a, b [S, 3, 3]; atan2 of the sine and
    cosine parts, accurate for tiny angles (arccos of the trace is not)."""
    rel = a.transpose(-1, -2) @ b
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    axis = torch.stack((rel[:, 2, 1] - rel[:, 1, 2], rel[:, 0, 2] - rel[:, 2, 0],
                        rel[:, 1, 0] - rel[:, 0, 1]), dim=-1) / 2
    return torch.rad2deg(torch.atan2(axis.norm(dim=-1), cos))


def deviation(reference: Any, output: Any) -> dict[str, float]:
    """Deviations of `output` from `reference` (objects with pts_local [S, H, W, 3], conf
    [S, H, W] and cam_to_world [S, 4, 4]); every value is a float (see the module doc)."""
    p_ref = reference.pts_local.double()
    p_out = output.pts_local.double()
    diff = (p_out - p_ref).norm(dim=-1)  # (S, H, W)
    norm = p_ref.norm(dim=-1)
    per_frame = diff.flatten(1).norm(dim=1) / norm.flatten(1).norm(dim=1).clamp_min(1e-12)
    per_pixel = (diff / norm.clamp_min(1e-12)).flatten()
    conf_ref = reference.conf.double()
    conf_rel = ((output.conf.double() - conf_ref).abs() / conf_ref.abs().clamp_min(1e-12)).max()
    t_ref = reference.cam_to_world[:, :3, 3].double()
    t_out = output.cam_to_world[:, :3, 3].double()
    scale = float(norm.median().clamp_min(1e-12))
    rot = _rotation_angle_deg(reference.cam_to_world[:, :3, :3].double(),
                              output.cam_to_world[:, :3, :3].double())
    return {
        "pts_rel": float(per_frame.max()),
        "pts_rel_p99": float(per_pixel.kthvalue(max(1, int(0.99 * per_pixel.numel()))).values),
        "pts_rel_px_max": float(per_pixel.max()),
        "conf_rel": float(conf_rel),
        "trans_rel": float((t_out - t_ref).norm(dim=-1).max() / scale),
        "rot_deg": float(rot.max()),
        "scene_scale": scale,
    }


def within_tolerance(dev: dict[str, float], tolerances: dict[str, float] = TOLERANCES) -> bool:
    """True when every bounded deviation is within its tolerance."""
    return all(dev[name] <= bound for name, bound in tolerances.items())
