"""Whole-sequence inference with the authors' semantics, and the training pass.

Windows of `window_size` frames advance by `window_stride` (4 and 2 as published), so every
frame appears in two windows. A sequence shorter than a window, or one that the windows do not
end on, is padded by repeating its last frame. Per frame:
- points and confidence come from the window where the frame's summed confidence is highest;
- the pose comes from its last window (`pose_from="last"`, the authors' default) or its first;
- poses are expressed relative to the first frame's selected pose.
`online_inference` runs the stream window by window (`stream.step`); `offline_inference` decodes
all windows and runs the camera head once over the whole pool. They give the same numbers: the
camera head is block-causal over windows (see camera_head.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from wint3r_ros.errors import InputError
from wint3r_ros.model.pose import relative_to_first, world_from_cam_matrix
from wint3r_ros.model.runtime import autocast
from wint3r_ros.model.stream import check_images

# `model` below is a wint3r_ros.model.network.WinT3R (not imported: network imports this module)
Network = torch.nn.Module

__all__ = ["SequenceOutput", "padded_order", "window_starts", "forward_windows",
           "online_inference", "offline_inference"]


@dataclass
class SequenceOutput:
    """Per frame of an N-frame sequence: pts_local [N, H, W, 3], conf [N, H, W], pose_enc [N, 7]
    (relative to frame 0), pose_enc_iters [I, N, 7], cam_to_world [N, 4, 4],
    pts3d_world [N, H, W, 3]; source_window [N]: the window each frame's points came from."""

    pts_local: torch.Tensor
    conf: torch.Tensor
    pose_enc: torch.Tensor
    pose_enc_iters: torch.Tensor
    cam_to_world: torch.Tensor
    pts3d_world: torch.Tensor
    source_window: torch.Tensor


def padded_order(n: int, window: int, stride: int) -> list[int]:
    """Frame index at each position of the padded sequence (the last frame repeated)."""
    if n < 1:
        raise InputError("a sequence needs at least one frame")
    total = max(n, window)
    total += (-(total - window)) % stride
    return list(range(n)) + [n - 1] * (total - n)


def window_starts(total: int, window: int, stride: int) -> list[int]:
    """Start positions of the windows over a sequence of `total` frames (no padding)."""
    return list(range(0, total - window + 1, stride))


def forward_windows(model: Network, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The training pass: every window of images [N, 3, H, W] (no padding), differentiable.

    Returns per window occurrence (M = windows * window_size rows, window by window):
    pts_local [M, H, W, 3], conf [M, H, W], pose_enc_iters [I, M, 7] (raw camera head output,
    not yet relative to the first frame), frame_index [M] (long), window_index [M] (long).
    """
    cfg = model.config
    check_images(images, cfg.patch_size)
    device = images.device
    grid = (images.shape[-2] // cfg.patch_size, images.shape[-1] // cfg.patch_size)
    starts = window_starts(images.shape[0], cfg.window_size, cfg.window_stride)
    if not starts:
        raise InputError(f"forward: {images.shape[0]} frames are fewer than a window ({cfg.window_size})")
    with autocast(device, model.precision):
        frames = model.embed_frames(images)  # (N, P, C)
        state = model.init_state(device).float()
        pts, conf, cams, frame_idx, window_idx = [], [], [], [], []
        for w, start in enumerate(starts):
            window = model.decode_window(state, frames[start:start + cfg.window_size], grid,
                                         need_state=w < len(starts) - 1)
            state = window.state
            p, c = model.point_maps(window, grid)
            pts.append(p)
            conf.append(c)
            cams.append(model.camera_tokens(window))
            frame_idx.extend(range(start, start + cfg.window_size))
            window_idx.extend([w] * cfg.window_size)
        windows = torch.tensor(window_idx, device=device)
        with autocast(device, "fp32"):
            poses = model.cam_head(torch.cat(cams)[None], windows)
    return {
        "pts_local": torch.cat(pts), "conf": torch.cat(conf),
        "pose_enc_iters": torch.stack(poses)[:, 0],
        "frame_index": torch.tensor(frame_idx, device=device), "window_index": windows,
    }


def _select(n: int, order: list[int], starts: list[int], window: int, pts: torch.Tensor,
            conf: torch.Tensor, raw_iters: torch.Tensor, pose_from: str) -> SequenceOutput:
    """Per-frame choice among window occurrences (rows of pts/conf/raw_iters, window-major)."""
    if pose_from not in ("last", "first"):
        raise InputError(f"pose_from={pose_from!r}: expected 'last' or 'first'")
    occurrences: list[list[int]] = [[] for _ in range(n)]
    for w, start in enumerate(starts):
        for j in range(window):
            occurrences[order[start + j]].append(w * window + j)
    score = conf.sum(dim=(-1, -2))  # (M,)
    best = [occ[int(torch.argmax(score[occ]))] for occ in occurrences]
    pose_rows = [max(occ) if pose_from == "last" else min(occ) for occ in occurrences]
    best_t = torch.tensor(best, device=pts.device)
    iters = relative_to_first(raw_iters[:, pose_rows])  # (I, N, 7)
    cam_to_world = world_from_cam_matrix(iters[-1].float())
    pts_sel = pts[best_t]
    world = torch.einsum("nij,nhwj->nhwi", cam_to_world[:, :3, :3], pts_sel) \
        + cam_to_world[:, None, None, :3, 3]
    return SequenceOutput(pts_local=pts_sel, conf=conf[best_t], pose_enc=iters[-1],
                          pose_enc_iters=iters, cam_to_world=cam_to_world, pts3d_world=world,
                          source_window=best_t // window)


@torch.inference_mode()
def online_inference(model: Network, images: torch.Tensor, pose_from: str = "last",
                     use_cache: bool = True) -> SequenceOutput:
    """The authors' online mode: the stream runs window by window through `step`.

    images [N, 3, H, W]; `use_cache=False` re-encodes every frame in every window (the
    authors' schedule, for comparison).
    """
    cfg = model.config
    check_images(images, cfg.patch_size)
    n = images.shape[0]
    order = padded_order(n, cfg.window_size, cfg.window_stride)
    starts = window_starts(len(order), cfg.window_size, cfg.window_stride)
    state = model.new_stream()
    pts, conf, raw = [], [], []
    for w, start in enumerate(starts):
        idx = order[start:start + cfg.window_size]
        out = model.step(state, images[idx], keys=idx if use_cache else None,
                         last=w == len(starts) - 1)
        pts.append(out.pts_local)
        conf.append(out.conf)
        raw.append(out.raw_pose_enc_iters)
    return _select(n, order, starts, cfg.window_size, torch.cat(pts), torch.cat(conf),
                   torch.cat(raw, dim=1), pose_from)


@torch.inference_mode()
def offline_inference(model: Network, images: torch.Tensor, pose_from: str = "last") -> SequenceOutput:
    """The authors' offline mode: all windows decoded, one camera-head run over the whole pool."""
    cfg = model.config
    check_images(images, cfg.patch_size)
    n = images.shape[0]
    order = padded_order(n, cfg.window_size, cfg.window_stride)
    starts = window_starts(len(order), cfg.window_size, cfg.window_stride)
    out = forward_windows(model, images[order])
    return _select(n, order, starts, cfg.window_size, out["pts_local"], out["conf"],
                   out["pose_enc_iters"], pose_from)
