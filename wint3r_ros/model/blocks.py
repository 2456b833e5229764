"""Transformer blocks: the encoder block, the two lockstep decoder blocks, the camera trunk block.

All blocks are pre-norm residual. x [B, N, C]; a RopeTable rotates queries/keys by 2-D token
position. Attribute names mirror the published checkpoint (norm1..norm5, attn, attn_local,
cross_attn, mlp, mlp1, norm_y, ls1/ls2).
"""
from __future__ import annotations

import torch
from torch import nn

from wint3r_ros.model.attention import CrossAttention, SelfAttention
from wint3r_ros.model.rope import RopeTable

__all__ = ["PatchEmbed", "Mlp", "LayerScale", "EncoderBlock", "StateDecoderBlock", "ImageDecoderBlock",
           "TrunkBlock"]


class PatchEmbed(nn.Module):
    """images [S, 3, H, W] -> tokens [S, P, C] (float32) and the patch grid (h, w)."""

    def __init__(self, dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(images)  # (S, C, h, w)
        grid = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2).float(), grid


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class EncoderBlock(nn.Module):
    """ViT block: self-attention with RoPE, then MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, rope: RopeTable) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class StateDecoderBlock(nn.Module):
    """State tokens: self-attention, then cross-attention to the window's image tokens, then MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float, norm_mem: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads)
        self.cross_attn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = nn.LayerNorm(dim, eps=eps) if norm_mem else nn.Identity()

    def forward(self, x: torch.Tensor, y: torch.Tensor, rope_x: RopeTable,
                rope_y: RopeTable) -> torch.Tensor:
        """x [1, Ns, C] state, y [1, S*(1+P), C] image tokens -> new state [1, Ns, C]."""
        x = x + self.attn(self.norm1(x), rope_x)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), rope_x, rope_y)
        return x + self.mlp(self.norm3(x))


class ImageDecoderBlock(nn.Module):
    """Image tokens: cross-attention to the state, global attention over the window, MLP,
    then frame-local attention and a second MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float, norm_mem: bool) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = SelfAttention(dim, heads)
        self.attn_local = SelfAttention(dim, heads)
        self.cross_attn = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.norm3 = nn.LayerNorm(dim, eps=eps)
        self.norm4 = nn.LayerNorm(dim, eps=eps)
        self.norm5 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, hidden)
        self.mlp1 = Mlp(dim, hidden)
        self.norm_y = nn.LayerNorm(dim, eps=eps) if norm_mem else nn.Identity()

    def forward(self, x: torch.Tensor, y: torch.Tensor, rope_x: RopeTable, rope_y: RopeTable,
                frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x [1, S*N1, C] image tokens (S frames of N1 tokens), y [1, Ns, C] state.

        Returns (x after the frame-local stage [1, S*N1, C], x before it [1, S*N1, C]).
        """
        x = x + self.cross_attn(self.norm2(x), self.norm_y(y), rope_x, rope_y)
        x = x + self.attn(self.norm1(x), rope_x)
        x = x + self.mlp(self.norm3(x))
        before_local = x
        b, n, c = x.shape
        x = x.view(b * frames, n // frames, c)  # (S, N1, C)
        x = x + self.attn_local(self.norm4(x), rope_x)
        x = x + self.mlp1(self.norm5(x))
        return x.view(b, n, c), before_local


class TrunkBlock(nn.Module):
    """Camera-head block: self-attention (no RoPE) and MLP, each with a LayerScale."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, init_values: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ls1 = LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [1, N, C]; mask [N, N] bool (True = may attend)."""
        x = x + self.ls1(self.attn(self.norm1(x), mask=mask))
        return x + self.ls2(self.mlp(self.norm2(x)))

    def forward_cached(self, x: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """New tokens x [1, S, C] attend to the pool's cached keys/values and to themselves.

        kv [2, 1, h, P + S, d]: keys/values of the P earlier pool entries; this call writes the
        new tokens' own into the last S slots (kept for later windows) and attends over all.
        """
        q, k, v = self.attn.project(self.norm1(x))
        s = x.shape[1]
        kv[0, :, :, -s:].copy_(k)
        kv[1, :, :, -s:].copy_(v)
        x = x + self.ls1(self.attn.attend(q, kv[0], kv[1]))
        return x + self.ls2(self.mlp(self.norm2(x)))
