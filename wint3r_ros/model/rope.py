"""2-D rotary position embedding (RoPE, base 100) with tables cached per token layout.

A head of width D is split in halves: the first half rotates with the token's row (y), the second
with its column (x). Inside each half, element i pairs with element i + D/4 (rotate-half
convention), at frequency base^(-4i/D). Tables are built once per layout (image grid of a
resolution, state grid, ...) and kept in a plain dict cache, never in the state_dict.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["RopeTable", "Rope2D", "grid_positions", "frame_positions", "state_positions"]


def grid_positions(h: int, w: int, offset: int = 0) -> torch.Tensor:
    """[h*w, 2] (row, column) of a patch grid, row-major, shifted by `offset`."""
    ys = torch.arange(h).repeat_interleave(w)
    xs = torch.arange(w).repeat(h)
    return torch.stack((ys, xs), dim=-1) + offset


def frame_positions(h: int, w: int) -> torch.Tensor:
    """[1 + h*w, 2]: one frame in the decoder: the camera token at (0, 0), patches from (1, 1)."""
    return torch.cat((torch.zeros(1, 2, dtype=torch.long), grid_positions(h, w, offset=1)))


def state_positions(n: int, pe: str) -> torch.Tensor:
    """[n, 2]: state tokens on a grid of even width ~sqrt(n) ("2d") or on the diagonal ("1d")."""
    idx = torch.arange(n)
    if pe == "1d":
        return torch.stack((idx, idx), dim=-1)
    width = int(n ** 0.5)
    width += width % 2
    return torch.stack((idx // width, idx % width), dim=-1)


def _swap_pairs(x: torch.Tensor) -> torch.Tensor:
    """[..., D]: swap the two quarters inside each half: [a, b, c, d] -> [b, a, d, c]."""
    return x.unflatten(-1, (2, 2, x.shape[-1] // 4)).flip(-2).flatten(-3)


@dataclass(frozen=True)
class RopeTable:
    """cos and signed sin per token, [N, D], so that rope(x) = x * cos + swap(x) * sin.

    The tables' dtype is the arithmetic dtype; `round_io` (float16 kernel mode) rounds input
    and output to float16 while the arithmetic stays float32.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    round_io: bool = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., M, D] with M a multiple of N (M = S * N tiles the table over S frames)."""
        n = self.cos.shape[0]
        m = x.shape[-2]
        out_dtype = x.dtype
        if self.round_io:
            x = x.to(torch.float16).to(self.cos.dtype)
        else:
            x = x.to(self.cos.dtype)
        if m != n:
            x = x.unflatten(-2, (m // n, n))  # (..., S, N, D)
        out = x * self.cos + _swap_pairs(x) * self.sin
        if m != n:
            out = out.flatten(-3, -2)
        if self.round_io:
            out = out.to(torch.float16)
        return out.to(out_dtype)


def build_table(positions: torch.Tensor, head_dim: int, base: float, dtype: torch.dtype,
                device: torch.device, round_io: bool = False) -> RopeTable:
    """Tables for tokens at `positions` [N, 2] (row, column) for heads of width `head_dim`.

    Frequencies are computed in float32 and the angle is cast to `dtype` before cos/sin, as the
    authors' PyTorch RoPE does (this matters for float16 tables).
    """
    half = head_dim // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, half, 2, device=device).float() / half))
    top = int(positions.max()) + 1
    angles = torch.outer(torch.arange(top, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1).to(dtype)  # (T, half)
    cos_t, sin_t = angles.cos(), angles.sin()
    q = half // 2
    sign = torch.cat((-torch.ones(q), torch.ones(q))).to(device=device, dtype=dtype)
    pos = positions.to(device)
    cos = torch.cat((cos_t[pos[:, 0]], cos_t[pos[:, 1]]), dim=-1)
    sin = torch.cat((sin_t[pos[:, 0]] * sign, sin_t[pos[:, 1]] * sign), dim=-1)
    return RopeTable(cos.contiguous(), sin.contiguous(), round_io)


class Rope2D:
    """Cache of RopeTables keyed by layout, head width, mode and device (not module state)."""

    def __init__(self, base: float) -> None:
        self.base = float(base)
        self._cache: dict[tuple, RopeTable] = {}

    def table(self, key: tuple, positions: Callable[[], torch.Tensor], head_dim: int,
              device: torch.device, mode: str = "fp32") -> RopeTable:
        """The table for layout `key` (built by `positions()` on first use).

        mode: "fp32" (float32 arithmetic), "fp16_table" (float16 tables and arithmetic) or
        "fp16" (float16 in/out, float32 arithmetic).
        """
        device = torch.device(device)
        full_key = (key, head_dim, mode, device)
        table = self._cache.get(full_key)
        if table is None:
            dtype = torch.float16 if mode == "fp16_table" else torch.float32
            # the tables are exact constants: never built under autocast (CPU autocast refuses
            # float16 tensors in torch.cat), nor as inference tensors (a table cached by a first
            # forward under torch.inference_mode would break training afterwards)
            with torch.inference_mode(False), torch.autocast(device.type, enabled=False):
                table = build_table(positions(), head_dim, self.base, dtype, device,
                                    round_io=(mode == "fp16"))
            self._cache[full_key] = table
        return table

    def clear(self) -> None:
        """Drop every cached table (e.g. after moving the model to another device)."""
        self._cache.clear()
