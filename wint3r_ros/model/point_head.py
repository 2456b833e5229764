"""Point head: decoder tokens -> per-pixel local point map (camera frame) and confidence.

Two token streams (the decoder's last frame-global output and its final output) are projected
by 1x1 convolutions and summed on the patch grid, upsampled x8 by three transposed-conv stages
(each fed the normalised image-plane coordinates as two extra channels), resized to the image,
and mapped to 4 channels: x/z, y/z, log z and a confidence logit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wint3r_ros.model.config import WinT3RConfig

__all__ = ["PointHead", "view_plane_uv"]

def view_plane_uv(width: int, height: int, aspect: float, dtype: torch.dtype,
                  device: torch.device) -> torch.Tensor:
    """[2, height, width] image-plane coordinates spanning +-(w, h)/diagonal at pixel centres."""
    diag = (1 + aspect ** 2) ** 0.5
    span_x, span_y = aspect / diag, 1 / diag
    u = torch.linspace(-span_x * (width - 1) / width, span_x * (width - 1) / width, width,
                       dtype=dtype, device=device)
    v = torch.linspace(-span_y * (height - 1) / height, span_y * (height - 1) / height,
                       height, dtype=dtype, device=device)
    return torch.stack((u.expand(height, width), v[:, None].expand(height, width)))


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, padding_mode="replicate")


class ResidualConvBlock(nn.Module):
    """GroupNorm -> ReLU -> conv3x3 -> GroupNorm -> ReLU -> conv3x3, plus identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.GroupNorm(1, channels), nn.ReLU(),
            _conv3x3(channels, channels),
            nn.GroupNorm(channels // 32, channels), nn.ReLU(),
            _conv3x3(channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class PointHead(nn.Module):
    """Tokens [S, P, C] x 2 on an h x w patch grid -> pts_local [S, H, W, 3], conf [S, H, W]."""

    def __init__(self, cfg: WinT3RConfig) -> None:
        super().__init__()
        dims = cfg.head_upsample_dims
        self.projects = nn.ModuleList(
            nn.Conv2d(cfg.dec_embed_dim, cfg.head_proj_dim, kernel_size=1) for _ in range(2))
        stages = []
        for cin, cout in zip((cfg.head_proj_dim, *dims[:-1]), dims):
            upsample = nn.Sequential(nn.ConvTranspose2d(cin + 2, cout, kernel_size=2, stride=2),
                                     _conv3x3(cout, cout))
            stages.append(nn.Sequential(upsample,
                                        *(ResidualConvBlock(cout) for _ in range(cfg.head_res_blocks))))
        self.upsample_blocks = nn.ModuleList(stages)
        k = cfg.head_last_conv_size
        self.output_block = nn.ModuleList([nn.Sequential(
            _conv3x3(dims[-1] + 2, cfg.head_last_conv_channels),
            nn.ReLU(),
            nn.Conv2d(cfg.head_last_conv_channels, 4, kernel_size=k, padding=k // 2,
                      padding_mode="replicate"),
        )])
        self._uv_cache: dict[tuple, torch.Tensor] = {}  # constant tables, not module state

    def forward(self, local: torch.Tensor, final: torch.Tensor, grid: tuple[int, int],
                patch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """local, final: [S, P, C] (P = h * w patch tokens, no camera token).

        Returns pts_local [S, H, W, 3] (camera frame, z > 0) and conf [S, H, W] (1 + exp(logit)).
        """
        h, w = grid
        img_h, img_w = h * patch_size, w * patch_size
        aspect = img_w / img_h

        def to_map(tokens: torch.Tensor) -> torch.Tensor:  # (S, P, C) -> (S, C, h, w)
            return tokens.transpose(1, 2).unflatten(2, (h, w)).contiguous()

        x = self.projects[0](to_map(local)) + self.projects[1](to_map(final))
        for stage in self.upsample_blocks:
            x = self._with_uv(x, aspect)
            x = stage(x)
        x = F.interpolate(x, (img_h, img_w), mode="bilinear", align_corners=False)
        out = self.output_block[-1](self._with_uv(x, aspect)).permute(0, 2, 3, 1)
        xy, log_z, logit = out[..., :2], out[..., 2:3], out[..., 3]
        z = log_z.exp()
        return torch.cat((xy * z, z), dim=-1), 1 + logit.exp()

    def _with_uv(self, x: torch.Tensor, aspect: float) -> torch.Tensor:
        """[S, C, h, w] -> [S, C + 2, h, w] with the image-plane coordinates appended."""
        key = (x.shape[-1], x.shape[-2], aspect, x.dtype, x.device)
        uv = self._uv_cache.get(key)
        if uv is None:
            uv = self._uv_cache[key] = view_plane_uv(*key)
        return torch.cat((x, uv.expand(x.shape[0], -1, -1, -1)), dim=1)
