"""The training objective of one clip: every loss term, weighted by the training config.

Supervised terms use every window occurrence of every frame (a frame in two windows is
supervised twice, as each window's prediction is published by some path). Self-supervised terms
use, inside each window, the pairs of frames of the same camera at neighbouring steps (both
directions): the target's predicted points are warped by the predicted relative pose.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from wint3r_ros.errors import ConfigError, reject_unknown_fields
from wint3r_ros.train import losses
from wint3r_ros.train.dataset import Clip
from wint3r_ros.train.forward import ClipOutput

__all__ = ["LossWeights", "window_pairs", "rig_pairs", "gt_correspondences", "clip_loss"]


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term (0 switches it off, and skips its computation) and its settings.

    points: confidence-weighted point maps (conf_alpha: the -alpha log conf weight);
    depth: per-frame scale-invariant log depth (an auxiliary beyond WinT3R's terms);
    pose: camera poses (pose_gamma: iteration decay, rot_weight: quaternion vs translation);
    rig_pose: relative poses of the cameras of each set (rotation, direction, baseline ratio;
    rig_rot_weight: the rotation's weight inside it);
    photometric (ssim_weight: SSIM share), smoothness, reprojection (reproj_huber_px),
    pose_reg: unit quaternions.
    """

    points: float = 1.0
    depth: float = 0.0
    pose: float = 1.0
    rig_pose: float = 0.0
    photometric: float = 0.0
    smoothness: float = 0.0
    reprojection: float = 0.0
    pose_reg: float = 0.0
    conf_alpha: float = 0.2
    pose_gamma: float = 0.8
    rot_weight: float = 1.0
    rig_rot_weight: float = 1.0
    ssim_weight: float = 0.85
    reproj_huber_px: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"loss.{f.name}={v!r} must be a number >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossWeights:
        reject_unknown_fields(cls, data, "loss")
        return cls(**{k: float(v) for k, v in data.items()})


def window_pairs(out: ClipOutput, clip: Clip) -> tuple[torch.Tensor, torch.Tensor]:
    """(target rows, source rows) of `out`: same window, same camera, steps one apart."""
    fi = out.frame_index.cpu()
    wi = out.window_index.cpu()
    cam = clip.camera.cpu()[fi]
    step = clip.step.cpu()[fi]
    same = (wi[:, None] == wi[None, :]) & (cam[:, None] == cam[None, :]) \
        & ((step[:, None] - step[None, :]).abs() == 1)
    tgt, src = torch.nonzero(same, as_tuple=True)
    return tgt.to(out.frame_index.device), src.to(out.frame_index.device)


def rig_pairs(out: ClipOutput, clip: Clip) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows a, rows b) of `out`: same window, same set (step), cameras a < b."""
    fi = out.frame_index.cpu()
    wi = out.window_index.cpu()
    cam = clip.camera.cpu()[fi]
    step = clip.step.cpu()[fi]
    same = (wi[:, None] == wi[None, :]) & (step[:, None] == step[None, :]) \
        & (cam[:, None] < cam[None, :])
    a, b = torch.nonzero(same, as_tuple=True)
    return a.to(out.frame_index.device), b.to(out.frame_index.device)


def gt_correspondences(points: torch.Tensor, source_from_target: torch.Tensor, k: torch.Tensor,
                       source_depth: torch.Tensor, occlusion_tol: float = 0.05
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where target pixels truly land in the source image, and which are visible there.

    points [B, H, W, 3] true target points; source_from_target [B, 4, 4] true; k [B, 3, 3];
    source_depth [B, H, W] true. Valid: in front, inside the image, and not occluded (the
    source's depth at the nearest pixel agrees within `occlusion_tol` relative).
    """
    r = source_from_target[:, None, None, :3, :3]
    t = source_from_target[:, None, None, :3, 3]
    p = (r @ points[..., None]).squeeze(-1) + t
    z = p[..., 2]
    uvw = torch.einsum("bij,bhwj->bhwi", k, p)
    uv = uvw[..., :2] / z.clamp(min=1e-8)[..., None]
    b, h, w = source_depth.shape
    inside = (z > 1e-6) & (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) & (uv[..., 1] >= 0) \
        & (uv[..., 1] <= h - 1)
    ui = uv[..., 0].round().long().clamp(0, w - 1)
    vi = uv[..., 1].round().long().clamp(0, h - 1)
    seen = source_depth[torch.arange(b, device=ui.device)[:, None, None], vi, ui]
    visible = (seen - z).abs() <= occlusion_tol * z
    return uv, inside & visible


def _pose_matrices(pose_enc: torch.Tensor) -> torch.Tensor:
    from wint3r_ros.model.pose import world_from_cam_matrix

    return world_from_cam_matrix(pose_enc)


def clip_loss(out: ClipOutput, clip: Clip, weights: LossWeights
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total weighted loss of a clip and each term's value (floats, for the log)."""
    fi = out.frame_index
    gt_pts = clip.gt_points[fi]  # (M, H, W, 3)
    pred = out.pts_local
    s_pred = losses.norm_factor(pred)
    s_gt = losses.norm_factor(gt_pts)
    terms: dict[str, torch.Tensor] = {}
    if weights.points:
        terms["points"] = losses.confidence_point_loss(pred, out.conf, gt_pts, None,
                                                       weights.conf_alpha, s_pred, s_gt)
    if weights.depth:
        terms["depth"] = losses.log_depth_loss(pred[..., 2], gt_pts[..., 2])
    if weights.pose:
        terms["pose"], parts = losses.pose_loss(out.pose_iters, clip.gt_pose[fi], s_pred, s_gt,
                                                weights.pose_gamma, weights.rot_weight)
    if weights.rig_pose:
        a, b = rig_pairs(out, clip)
        if len(a):
            terms["rig_pose"], rig_parts = losses.rig_pose_loss(
                out.pose_iters[:, a], out.pose_iters[:, b], clip.gt_pose[fi[a]],
                clip.gt_pose[fi[b]], s_pred, s_gt, weights.pose_gamma, weights.rig_rot_weight)
    if weights.pose_reg:
        terms["pose_reg"] = losses.pose_regularisation(out.raw_pose_iters)
    if weights.smoothness:
        terms["smoothness"] = losses.smoothness_loss(pred[..., 2], clip.rgb[fi])
    if weights.photometric or weights.reprojection:
        tgt, src = window_pairs(out, clip)
        if len(tgt):
            pose = out.pose_iters[-1]
            rel_pred = losses.relative_transform(pose[tgt], pose[src])
            k_src = clip.K[fi[src]]
            if weights.photometric:
                terms["photometric"] = losses.photometric_loss(
                    clip.rgb[fi[tgt]], clip.rgb[fi[src]], pred[tgt], rel_pred, k_src,
                    weights.ssim_weight)
            if weights.reprojection:
                with torch.no_grad():
                    gt_t = _pose_matrices(clip.gt_pose)
                    rel_gt = torch.linalg.inv(gt_t[fi[src]]) @ gt_t[fi[tgt]]
                    uv, valid = gt_correspondences(gt_pts[tgt], rel_gt, k_src, clip.depth[fi[src]])
                terms["reprojection"] = losses.reprojection_loss(
                    pred[tgt], rel_pred, uv, valid, k_src, weights.reproj_huber_px)
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    log = {name: float(value.detach()) for name, value in terms.items()}
    if weights.pose:
        log["pose_trans"] = float(parts["trans"])
        log["pose_rot"] = float(parts["rot"])
    if "rig_pose" in terms:
        log.update({f"rig_{k}": float(v) for k, v in rig_parts.items()})
    log["total"] = float(total.detach())
    return total, log
