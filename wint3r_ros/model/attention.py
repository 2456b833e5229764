"""Multi-head self- and cross-attention through `F.scaled_dot_product_attention`.

Shapes: x [B, N, C]; heads h, head width d = C / h. Queries and keys may be rotated by a
RopeTable (2-D RoPE); parameter names (`qkv`, `projq`/`projk`/`projv`, `proj`) mirror the
published checkpoint.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wint3r_ros.model.rope import RopeTable

__all__ = ["SelfAttention", "CrossAttention", "split_heads"]


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, N, C] -> [B, h, N, C/h] (a view)."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


class SelfAttention(nn.Module):
    """Self-attention with a fused qkv projection; optional RoPE on queries and keys."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, N, C] -> q, k, v, each [B, h, N, d] (views of one projection)."""
        b, n, c = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """q [B, h, N, d], k/v [B, h, M, d] -> [B, N, C] after the output projection."""
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        b, h, n, d = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, h * d))

    def forward(self, x: torch.Tensor, rope: RopeTable | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, N, C] -> [B, N, C]; `mask` [N, N] bool, True = may attend."""
        q, k, v = self.project(x)
        if rope is not None:
            q, k = rope(q), rope(k)
        return self.attend(q, k, v, mask)


class CrossAttention(nn.Module):
    """Queries from x attend to keys/values from y (separate q, k, v projections)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.projq = nn.Linear(dim, dim, bias=qkv_bias)
        self.projk = nn.Linear(dim, dim, bias=qkv_bias)
        self.projv = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, rope_x: RopeTable | None = None,
                rope_y: RopeTable | None = None) -> torch.Tensor:
        """x [B, N, C] queries, y [B, M, C] keys and values -> [B, N, C]."""
        q = split_heads(self.projq(x), self.num_heads)
        k = split_heads(self.projk(y), self.num_heads)
        v = split_heads(self.projv(y), self.num_heads)
        if rope_x is not None:
            q = rope_x(q)
        if rope_y is not None:
            k = rope_y(k)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        b, h, n, d = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, h * d))
