"""Training losses: supervised point maps and poses (as WinT3R trains) and self-supervised terms.

Letters: M frames (window occurrences of frames), H x W pixels, I camera-head iterations.
Points are in each camera's optical frame (z forward); poses are camera-to-world pose encodings
[tx, ty, tz, qx, qy, qz, qw] relative to the clip's first frame. Pure torch, differentiable.

Scale: the network's output has an arbitrary global scale per stream, so the supervised terms
compare scale-normalised quantities (DUSt3R's rule, which WinT3R's paper follows): the
prediction and the ground truth are each divided by their own mean distance of the valid local
points to their camera, over the whole clip (`norm_factor`); pose translations are divided by
the same factors, so points and poses share one scale.

The WinT3R authors have not published training code; the forms here are the papers' standard
ones (DUSt3R's confidence-weighted regression, VGGT-style iterative pose supervision,
Monodepth2's photometric and smoothness terms) and are documented in docs/EVALUATION.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wint3r_ros.model.pose import quat_to_mat, world_from_cam_matrix

__all__ = [
    "norm_factor", "confidence_point_loss", "pose_loss", "ssim", "warp_to_target",
    "photometric_loss", "smoothness_loss", "reprojection_loss", "pose_regularisation",
    "pixel_rays", "relative_transform", "log_depth_loss", "rig_pose_loss",
]

_EPS = 1e-8


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def norm_factor(points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Euclidean norm of points [..., 3] over the valid entries (mask [...]); a scalar."""
    return _masked_mean(points.norm(dim=-1), mask).clamp(min=_EPS)


def confidence_point_loss(pred: torch.Tensor, conf: torch.Tensor, gt: torch.Tensor,
                          mask: torch.Tensor | None = None, alpha: float = 0.2,
                          pred_scale: torch.Tensor | None = None,
                          gt_scale: torch.Tensor | None = None) -> torch.Tensor:
    """DUSt3R's confidence-aware regression: mean(conf * ||pred/s_p - gt/s_g|| - alpha log conf).

    pred, gt [M, H, W, 3] local points; conf [M, H, W] (> 0; the model gives 1 + exp(logit));
    mask [M, H, W] valid ground truth. s_p, s_g default to `norm_factor` of each (so any global
    scale of the prediction is free). Zero when pred is a scaled copy of gt and conf = 1.
    """
    s_p = norm_factor(pred, mask) if pred_scale is None else pred_scale
    s_g = norm_factor(gt, mask) if gt_scale is None else gt_scale
    err = (pred / s_p - gt / s_g).norm(dim=-1)  # (M, H, W)
    return _masked_mean(conf * err - alpha * torch.log(conf), mask)


def log_depth_loss(pred_depth: torch.Tensor, gt_depth: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-frame scale-invariant depth error: mean |r - median(r)|, r = log pred - log gt.

    pred_depth, gt_depth [M, H, W] (> 0); the median is per frame (over valid pixels), so any
    per-frame scale of the prediction is free. Zero when each frame is a scaled copy of the
    truth; about mean |log(pred/gt)| otherwise (the log-space Abs Rel after median scaling).
    """
    r = torch.log(pred_depth.clamp(min=_EPS)) - torch.log(gt_depth.clamp(min=_EPS))
    if mask is None:
        med = r.flatten(1).median(dim=1).values
    else:
        med = torch.stack([row[m].median() if m.any() else row.new_zeros(())
                           for row, m in zip(r.flatten(1), mask.flatten(1))])
    return _masked_mean((r - med.detach()[:, None, None]).abs(), mask)


def _quat_distance(q_pred: torch.Tensor, q_gt: torch.Tensor) -> torch.Tensor:
    """L1 distance [...] between the unit-normalised quaternions, q and -q being the same."""
    qp = q_pred / q_pred.norm(dim=-1, keepdim=True).clamp(min=_EPS)
    qg = q_gt / q_gt.norm(dim=-1, keepdim=True).clamp(min=_EPS)
    plus = (qp - qg).abs().sum(-1)
    minus = (qp + qg).abs().sum(-1)
    return torch.minimum(plus, minus)


def pose_loss(pred_iters: torch.Tensor, gt: torch.Tensor, pred_scale: torch.Tensor,
              gt_scale: torch.Tensor, gamma: float = 0.8, rot_weight: float = 1.0
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Camera pose loss over the camera head's iterations (later iterations weigh more).

    pred_iters [I, M, 7] pose encodings (camera-to-world, relative to the first frame), gt [M, 7];
    pred_scale, gt_scale: the clip's point normalisation factors. Per iteration: L1 of the
    normalised translations t/s plus `rot_weight` x L1 of the unit quaternions (sign-free);
    iteration i of I weighs gamma^(I-1-i), weights normalised to sum to 1.
    Returns (loss, {"trans": last iteration's term, "rot": last iteration's term}).
    """
    n_it = pred_iters.shape[0]
    weights = torch.tensor([gamma ** (n_it - 1 - i) for i in range(n_it)],
                           dtype=pred_iters.dtype, device=pred_iters.device)
    weights = weights / weights.sum()
    t_gt = gt[..., :3] / gt_scale
    trans = (pred_iters[..., :3] / pred_scale - t_gt).abs().sum(-1).mean(-1)  # (I,)
    rot = _quat_distance(pred_iters[..., 3:7], gt[..., 3:7].expand_as(pred_iters[..., 3:7])).mean(-1)
    total = (weights * (trans + rot_weight * rot)).sum()
    return total, {"trans": trans[-1].detach(), "rot": rot[-1].detach()}


def rig_pose_loss(pose_a: torch.Tensor, pose_b: torch.Tensor, gt_a: torch.Tensor,
                  gt_b: torch.Tensor, pred_scale: torch.Tensor, gt_scale: torch.Tensor,
                  gamma: float = 0.8, rot_weight: float = 1.0
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Relative poses of the cameras of one synchronised set, as the engine's rig fit needs them.

    pose_a, pose_b [I, P, 7]: camera-to-world encodings of P pairs (a, b) of cameras of the same
    set in the same window, per camera-head iteration; gt_a, gt_b [P, 7] the true ones; pred_scale,
    gt_scale: the clip's point normalisation factors. Per pair, in camera a's frame, with the
    offset o = R_a^T (c_b - c_a) / s (s = the clip's scale, so o is relative to the scene depth):
    - rotation: chordal distance ||R_ab - R_ab*||_F / (2 sqrt 2) of b's orientation (sin(angle / 2)),
    - direction: ||o - o*|| / |o*|, the offset's error relative to the true baseline (2 sin(angle / 2)
      for a turned direction of the right length),
    - baseline: | |o| / |o*| - 1 |, the baseline's ratio to the scene depth (what makes a rig fit
      metric), relative.
    Both translation terms divide by the true baseline, never the predicted one, so their
    gradients stay bounded where the predicted cameras coincide (a log or a unit vector of the
    predicted offset explodes there and drowns the rotation term). Iteration i of I weighs
    gamma^(I-1-i) (normalised). Zero at the truth up to a global scale.
    Returns (loss, {"rot", "dir", "baseline": the last iteration's terms}).
    """
    def relative(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        ra = quat_to_mat(a[..., 3:7])
        rb = quat_to_mat(b[..., 3:7])
        offset = (ra.transpose(-1, -2) @ (b[..., :3] - a[..., :3])[..., None]).squeeze(-1)
        return ra.transpose(-1, -2) @ rb, offset / scale

    r_p, o_p = relative(pose_a, pose_b, pred_scale)
    with torch.no_grad():
        r_g, o_g = relative(gt_a, gt_b, gt_scale)
        length = o_g.norm(dim=-1).clamp(min=_EPS)
    rot = (r_p - r_g).flatten(-2).norm(dim=-1) / (2 * 2 ** 0.5)              # (I, P)
    direction = (o_p - o_g).norm(dim=-1) / length
    baseline = (o_p.norm(dim=-1) / length - 1.0).abs()
    per_iter = (rot_weight * rot + direction + baseline).mean(-1)              # (I,)
    n_it = pose_a.shape[0]
    weights = torch.tensor([gamma ** (n_it - 1 - i) for i in range(n_it)],
                           dtype=pose_a.dtype, device=pose_a.device)
    total = (weights / weights.sum() * per_iter).sum()
    return total, {"rot": rot[-1].mean().detach(), "dir": direction[-1].mean().detach(),
                   "baseline": baseline[-1].mean().detach()}


def pose_regularisation(pose_enc: torch.Tensor) -> torch.Tensor:
    """Keeps the raw quaternions near unit length: mean (|q| - 1)^2 over pose_enc [..., 7].

    The camera head predicts unnormalised quaternions; unit length keeps the relative-pose
    arithmetic (which preserves lengths) well conditioned. Zero for unit quaternions.
    """
    return (pose_enc[..., 3:7].norm(dim=-1) - 1.0).square().mean()


# ----------------------------------------------------------------------------- self-supervised

def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM [B, C, H, W] of images in [0, 1] over 3x3 windows (reflection padded),
    C1 = 0.01^2, C2 = 0.03^2. 1 for identical images."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = F.avg_pool2d(x, 3, 1), F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x * x, 3, 1) - mu_x ** 2
    sigma_y = F.avg_pool2d(y * y, 3, 1) - mu_y ** 2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sigma_x + sigma_y + c2)
    return num / den


def pixel_rays(k: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """cam_from_img rays [H, W, 3] with z = 1 for intrinsics k [3, 3] (pixel centres at integers)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=k.dtype, device=k.device),
                          torch.arange(width, dtype=k.dtype, device=k.device), indexing="ij")
    pix = torch.stack((u, v, torch.ones_like(u)), dim=-1)  # (H, W, 3)
    return pix @ torch.linalg.inv(k).T


def _project(points: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """img_from_cam: points [B, H, W, 3] -> pixels [B, H, W, 2] (u, v) and z [B, H, W]."""
    z = points[..., 2]
    kb = k.expand(points.shape[0], 3, 3) if k.ndim == 2 else k
    uvw = torch.einsum("bij,bhwj->bhwi", kb, points)
    uv = uvw[..., :2] / z.clamp(min=_EPS)[..., None]
    return uv, z


def _transform(target_to_source: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """points [B, H, W, 3] through 4x4 transforms [B, 4, 4] -> [B, H, W, 3]."""
    r = target_to_source[:, None, None, :3, :3]
    t = target_to_source[:, None, None, :3, 3]
    return (r @ points[..., None]).squeeze(-1) + t


def warp_to_target(source: torch.Tensor, target_points: torch.Tensor,
                   source_from_target: torch.Tensor, k: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample the source images at the target pixels' reprojections (bilinear).

    source [B, C, H, W]; target_points [B, H, W, 3] (target camera frame, e.g. depth x rays);
    source_from_target [B, 4, 4] (same units as the points); k [3, 3] or [B, 3, 3] of the source.
    Returns (warped [B, C, H, W], valid [B, H, W]: in front of the source camera and inside it).
    """
    _, _, h, w = source.shape
    uv, z = _project(_transform(source_from_target, target_points), k)
    gx = 2 * (uv[..., 0] + 0.5) / w - 1  # align_corners=False: pixel centre i at (i+0.5)/w
    gy = 2 * (uv[..., 1] + 0.5) / h - 1
    grid = torch.stack((gx, gy), dim=-1)
    warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    valid = (z > _EPS) & (uv[..., 0] >= 0) & (uv[..., 0] <= w - 1) \
        & (uv[..., 1] >= 0) & (uv[..., 1] <= h - 1)
    return warped, valid


def photometric_loss(target: torch.Tensor, source: torch.Tensor, target_points: torch.Tensor,
                     source_from_target: torch.Tensor, k: torch.Tensor,
                     ssim_weight: float = 0.85) -> torch.Tensor:
    """Photometric consistency of target images with warped source images (Monodepth2 form).

    target, source [B, 3, H, W] in [0, 1]; target_points [B, H, W, 3] predicted points of the
    target frames; source_from_target [B, 4, 4] predicted relative poses; k the source
    intrinsics. Per pixel: ssim_weight * (1 - SSIM) / 2 + (1 - ssim_weight) * L1 (mean over
    channels), averaged over pixels that land inside the source image (with their 3x3
    neighbourhood when SSIM is used). Zero for the true
    geometry on a scene whose colours are linear in the pixel coordinates.
    """
    warped, valid = warp_to_target(source, target_points, source_from_target, k)
    l1 = (warped - target).abs().mean(1)  # (B, H, W)
    if ssim_weight > 0:
        dssim = ((1 - ssim(warped, target)) / 2).clamp(0, 1).mean(1)
        err = ssim_weight * dssim + (1 - ssim_weight) * l1
        # SSIM reads 3x3 neighbourhoods: keep pixels whose neighbours all landed inside too
        valid = -F.max_pool2d(-valid[:, None].to(err.dtype), 3, 1, 1)[:, 0] > 0.5
    else:
        err = l1
    return _masked_mean(err, valid)


def smoothness_loss(depth: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness of the mean-normalised disparity (Monodepth2 form).

    depth [B, H, W] (> 0); image [B, 3, H, W] in [0, 1]. mean(|d_x disp*| exp(-|d_x I|)) +
    mean(|d_y disp*| exp(-|d_y I|)), disp* = (1/depth) / mean(1/depth) per image, |d I| the
    mean absolute colour gradient. Zero for a constant depth; scale-free.
    """
    disp = 1.0 / depth.clamp(min=_EPS)
    disp = disp / disp.mean(dim=(-1, -2), keepdim=True).clamp(min=_EPS)
    dx = (disp[:, :, 1:] - disp[:, :, :-1]).abs()
    dy = (disp[:, 1:, :] - disp[:, :-1, :]).abs()
    ix = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1)
    iy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1)
    return (dx * torch.exp(-ix)).mean() + (dy * torch.exp(-iy)).mean()


def reprojection_loss(pred_points: torch.Tensor, pred_source_from_target: torch.Tensor,
                      gt_pixels: torch.Tensor, gt_valid: torch.Tensor, k: torch.Tensor,
                      huber_delta: float = 1.0, max_error: float = 50.0) -> torch.Tensor:
    """Reprojection error of predicted geometry against ground-truth correspondences (pixels).

    pred_points [B, H, W, 3] predicted target points; pred_source_from_target [B, 4, 4];
    gt_pixels [B, H, W, 2]: where each target pixel truly lands in the source image;
    gt_valid [B, H, W]. Per pixel: the Huber loss (delta in pixels) of the distance between the
    predicted and the true reprojection, capped at `max_error` pixels; masked mean. Scale-free:
    points and poses share the prediction's scale.
    """
    uv, z = _project(_transform(pred_source_from_target, pred_points), k)
    dist = (uv - gt_pixels).norm(dim=-1)
    dist = torch.where(z > _EPS, dist, torch.full_like(dist, max_error)).clamp(max=max_error)
    err = F.huber_loss(dist, torch.zeros_like(dist), reduction="none", delta=huber_delta)
    return _masked_mean(err, gt_valid)


def relative_transform(pose_target: torch.Tensor, pose_source: torch.Tensor) -> torch.Tensor:
    """source_from_target [B, 4, 4] from camera-to-world encodings [B, 7] of both frames."""
    t_w_tgt = world_from_cam_matrix(pose_target)
    t_w_src = world_from_cam_matrix(pose_source)
    r_src = quat_to_mat(pose_source[..., 3:7])
    inv = torch.zeros_like(t_w_src)
    inv[..., :3, :3] = r_src.transpose(-1, -2)
    inv[..., :3, 3] = -(r_src.transpose(-1, -2) @ pose_source[..., :3, None]).squeeze(-1)
    inv[..., 3, 3] = 1
    return inv @ t_w_tgt

