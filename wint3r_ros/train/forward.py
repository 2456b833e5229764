"""The differentiable forward pass over a clip of online windows, as `model.step` computes it.

A clip is F distinct frames and a list of windows, each a list of frame indices in model order
(what `core.window.WindowBuilder` emits for a rig: L steps x N cameras, time-major, windows
overlapping by O steps). Every frame is encoded once (as the step's encoder cache does), the
windows are decoded in order carrying the recurrent state, and the camera head runs once over
the whole pool with its block-causal mask, which gives exactly the poses that `step` reads from
each window's run over the pool so far. Poses are made relative to the pool's first entry, as
`step` does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from wint3r_ros.errors import InputError
from wint3r_ros.model.pose import relative_to_reference
from wint3r_ros.model.runtime import autocast
from wint3r_ros.model.stream import check_images

if TYPE_CHECKING:  # pragma: no cover
    from wint3r_ros.model.network import WinT3R

__all__ = ["ClipOutput", "forward_clip"]


@dataclass
class ClipOutput:
    """Per window occurrence (M rows, window by window, frames in model order):
    pts_local [M, H, W, 3], conf [M, H, W], pose_iters [I, M, 7] relative to the first entry,
    raw_pose_iters [I, M, 7] as the camera head gives them, frame_index [M] (into the clip's
    frames), window_index [M]."""

    pts_local: torch.Tensor
    conf: torch.Tensor
    pose_iters: torch.Tensor
    raw_pose_iters: torch.Tensor
    frame_index: torch.Tensor
    window_index: torch.Tensor


def forward_clip(model: WinT3R, images: torch.Tensor,
                 windows: Sequence[Sequence[int]]) -> ClipOutput:
    """Run the windows of a clip. images [F, 3, H, W] ImageNet-normalised; windows: frame indices.

    Differentiable (call under torch.no_grad() for evaluation). The last window skips the state
    block that only a next window would read, as `step(last=True)` does.
    """
    cfg = model.config
    check_images(images, cfg.patch_size)
    if not windows or any(len(w) == 0 for w in windows):
        raise InputError("forward_clip: need at least one non-empty window")
    n = images.shape[0]
    for w in windows:
        if min(w) < 0 or max(w) >= n:
            raise InputError(f"forward_clip: window {list(w)} indexes outside the {n} frames")
    device = images.device
    grid = (images.shape[-2] // cfg.patch_size, images.shape[-1] // cfg.patch_size)
    with autocast(device, model.precision):
        frames = model.embed_frames(images)  # (F, P, C): each frame encoded once
        state = model.init_state(device).float()
        pts, conf, cams, frame_idx, window_idx = [], [], [], [], []
        for w, idx in enumerate(windows):
            index = torch.as_tensor(list(idx), device=device)
            window = model.decode_window(state, frames.index_select(0, index), grid,
                                         need_state=w < len(windows) - 1)
            state = window.state
            p, c = model.point_maps(window, grid)
            pts.append(p)
            conf.append(c)
            cams.append(model.camera_tokens(window))
            frame_idx.extend(int(i) for i in idx)
            window_idx.extend([w] * len(idx))
        windows_t = torch.tensor(window_idx, device=device)
        with autocast(device, "fp32"):
            raw = torch.stack(model.cam_head(torch.cat(cams)[None], windows_t))[:, 0]  # (I, M, 7)
    rel = relative_to_reference(raw, raw[:, :1])
    return ClipOutput(pts_local=torch.cat(pts), conf=torch.cat(conf), pose_iters=rel,
                      raw_pose_iters=raw, frame_index=torch.tensor(frame_idx, device=device),
                      window_index=windows_t)
