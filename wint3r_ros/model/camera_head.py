"""Camera head: the camera token pool -> one pose encoding per pool entry, refined iteratively.

Every iteration embeds the current pose estimate (a learned empty pose at first), modulates the
normalised camera tokens with it (shift, scale, gate: adaptive LayerNorm), runs the trunk of
transformer blocks over the pool and adds the predicted delta to the pose.

The trunk's attention is block-causal over windows: an entry attends to the entries of its own
window and of earlier windows, never later ones. So an entry's poses never change once its window
has been processed, and a new window needs only its own tokens to be run, attending to the
earlier entries' keys and values kept in a `TrunkKVCache`. That gives exactly the numbers of a
full run over the pool at a cost linear (not quadratic) in the pool size.
"""
from __future__ import annotations

import torch
from torch import nn

from wint3r_ros.model.blocks import Mlp, TrunkBlock
from wint3r_ros.model.config import WinT3RConfig

__all__ = ["CameraHead", "TrunkKVCache", "window_causal_mask"]

POSE_DIM = 7


def window_causal_mask(window_ids: torch.Tensor) -> torch.Tensor:
    """[N] window index per entry -> [N, N] bool, True where query i may attend key j."""
    return window_ids[None, :] <= window_ids[:, None]


class TrunkKVCache:
    """Keys and values of every pool entry at every (iteration, trunk block), grown in place.

    Storage [iterations, depth, 2, 1, heads, capacity, head_dim]; capacity doubles when full,
    so appending a window does not copy the pool.
    """

    def __init__(self, iterations: int, depth: int, heads: int, head_dim: int) -> None:
        self.shape = (iterations, depth, 2, 1, heads)
        self.head_dim = head_dim
        self.buffer: torch.Tensor | None = None
        self.size = 0

    def reserve(self, extra: int, like: torch.Tensor) -> None:
        """Make room for `extra` more entries (dtype/device of `like`)."""
        need = self.size + extra
        if self.buffer is not None and self.buffer.shape[-2] >= need \
                and self.buffer.dtype == like.dtype and self.buffer.device == like.device:
            return
        capacity = max(need, 2 * (self.buffer.shape[-2] if self.buffer is not None else 0), 8)
        fresh = like.new_zeros(*self.shape, capacity, self.head_dim)
        if self.buffer is not None and self.size:
            fresh[..., :self.size, :] = self.buffer[..., :self.size, :]
        self.buffer = fresh

    def window(self, iteration: int, block: int, extra: int) -> torch.Tensor:
        """[2, 1, h, size + extra, d]: the existing entries plus `extra` slots to be written."""
        assert self.buffer is not None
        return self.buffer[iteration, block, :, :, :, :self.size + extra]

    def keep(self, indices: torch.Tensor) -> None:
        """Keep only the entries at `indices` (in that order)."""
        if self.buffer is None:
            return
        idx = indices.to(self.buffer.device)
        kept = self.buffer[..., :self.size, :].index_select(-2, idx)
        self.buffer[..., :kept.shape[-2], :] = kept  # compact in place: capacity is kept
        self.size = int(idx.numel())

    def nbytes(self) -> int:
        """Bytes held (allocated capacity)."""
        return 0 if self.buffer is None else self.buffer.numel() * self.buffer.element_size()


class CameraHead(nn.Module):
    """Camera tokens [1, N, 2*C_dec] -> pose encodings, one list entry per refinement iteration."""

    def __init__(self, cfg: WinT3RConfig) -> None:
        super().__init__()
        dim = cfg.cam_dim
        self.iterations = cfg.cam_head_iterations
        self.num_heads = cfg.cam_head_num_heads
        self.trunk = nn.Sequential(*(TrunkBlock(dim, cfg.cam_head_num_heads, cfg.cam_head_mlp_ratio,
                                                cfg.cam_head_init_values)
                                     for _ in range(cfg.cam_head_depth)))
        self.token_norm = nn.LayerNorm(dim)
        self.trunk_norm = nn.LayerNorm(dim)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_DIM))
        self.embed_pose = nn.Linear(POSE_DIM, dim)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * dim))
        self.adaln_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim, dim // 2, POSE_DIM)

    def new_cache(self) -> TrunkKVCache:
        """An empty key/value cache for a stream's pool."""
        return TrunkKVCache(self.iterations, len(self.trunk), self.num_heads,
                            self.token_norm.normalized_shape[0] // self.num_heads)

    def forward(self, tokens: torch.Tensor, window_ids: torch.Tensor) -> list[torch.Tensor]:
        """Full run over a pool. tokens [1, N, C]; window_ids [N] -> iterations x [1, N, 7]."""
        mask = window_causal_mask(window_ids.to(tokens.device))
        return self._refine(tokens, lambda x, it: self._trunk_full(x, mask))

    def forward_new(self, tokens: torch.Tensor, cache: TrunkKVCache) -> list[torch.Tensor]:
        """Run only a new window's entries tokens [1, S, C] against the cached pool.

        Appends their keys/values to `cache`; returns iterations x [1, S, 7].
        """
        s = tokens.shape[1]
        cache.reserve(s, tokens)
        out = self._refine(tokens, lambda x, it: self._trunk_cached(x, cache, it, s))
        cache.size += s
        return out

    def _trunk_full(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.trunk:
            x = block(x, mask)
        return x

    def _trunk_cached(self, x: torch.Tensor, cache: TrunkKVCache, it: int, s: int) -> torch.Tensor:
        for b, block in enumerate(self.trunk):
            x = block.forward_cached(x, cache.window(it, b, s))
        return x

    def _refine(self, tokens: torch.Tensor, trunk) -> list[torch.Tensor]:
        tokens = self.token_norm(tokens)
        normed = self.adaln_norm(tokens)
        pose = None
        out = []
        for it in range(self.iterations):
            if pose is None:
                cond = self.embed_pose(self.empty_pose_tokens.expand(*tokens.shape[:2], -1))
            else:
                cond = self.embed_pose(pose.detach())
            shift, scale, gate = self.poseLN_modulation(cond).chunk(3, dim=-1)
            x = gate * (normed * (1 + scale) + shift) + tokens
            x = trunk(x, it)
            delta = self.pose_branch(self.trunk_norm(x.float()))
            pose = delta if pose is None else pose + delta
            out.append(pose)
        return out
