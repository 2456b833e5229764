"""The WinT3R network: wires the encoder, the lockstep decoders and the two heads together.

Letters: S frames in a window, H x W pixels (multiples of 16), h x w = H/16 x W/16 patches,
P = h * w patch tokens, N1 = 1 + P tokens per frame in the decoder (camera token first),
Ns state tokens, C_enc / C widths of encoder / decoder. Images are ImageNet-normalised RGB.

Attribute names are the published checkpoint's keys. Streaming (`new_stream`, `step`) and whole
sequence inference (`online_inference`, `offline_inference`) live in stream.py and inference.py;
these methods only delegate (stream.py and inference.py take the network as an argument and
never import this module: the imports point one way).
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from wint3r_ros.model.blocks import EncoderBlock, ImageDecoderBlock, PatchEmbed, StateDecoderBlock
from wint3r_ros.model.camera_head import CameraHead
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.inference import SequenceOutput, forward_windows, offline_inference, online_inference
from wint3r_ros.model.point_head import PointHead
from wint3r_ros.model.rope import Rope2D, frame_positions, grid_positions, state_positions
from wint3r_ros.model.runtime import autocast
from wint3r_ros.model.stream import StreamState, WindowOutput, step

__all__ = ["WinT3R", "DecodedWindow"]


class DecodedWindow(NamedTuple):
    """One decoded window: state [1, Ns, C] (normed), final image tokens [S, N1, C] (normed),
    image tokens before the last block's frame-local stage [S, N1, C]."""

    state: torch.Tensor
    final: torch.Tensor
    local: torch.Tensor


class WinT3R(nn.Module):
    """Window-based streaming reconstruction with a camera token pool (Li et al., 2025)."""

    def __init__(self, config: WinT3RConfig) -> None:
        super().__init__()
        cfg = self.config = config
        eps = cfg.norm_eps
        self.patch_embed = PatchEmbed(cfg.enc_embed_dim, cfg.patch_size)
        self.enc_blocks = nn.ModuleList(
            EncoderBlock(cfg.enc_embed_dim, cfg.enc_num_heads, cfg.mlp_ratio, eps)
            for _ in range(cfg.enc_depth))
        self.enc_norm = nn.LayerNorm(cfg.enc_embed_dim, eps=eps)
        self.register_tokens = nn.Embedding(cfg.state_size, cfg.enc_embed_dim)
        self.cam_token = nn.Parameter(torch.zeros(1, 1, cfg.dec_embed_dim))
        self.decoder_embed = nn.Linear(cfg.enc_embed_dim, cfg.dec_embed_dim)
        self.dec_blocks = nn.ModuleList(
            ImageDecoderBlock(cfg.dec_embed_dim, cfg.dec_num_heads, cfg.mlp_ratio, eps,
                              cfg.norm_im2_in_dec) for _ in range(cfg.dec_depth))
        self.dec_norm = nn.LayerNorm(cfg.dec_embed_dim, eps=eps)
        self.decoder_embed_state = nn.Linear(cfg.enc_embed_dim, cfg.dec_embed_dim)
        self.dec_blocks_state = nn.ModuleList(
            StateDecoderBlock(cfg.dec_embed_dim, cfg.state_dec_num_heads, cfg.mlp_ratio, eps,
                              cfg.norm_im2_in_dec) for _ in range(cfg.dec_depth))
        self.dec_norm_state = nn.LayerNorm(cfg.dec_embed_dim, eps=eps)
        self.pts_head = PointHead(cfg)
        self.cam_head = CameraHead(cfg)
        self.rope = Rope2D(cfg.rope_base)
        # runtime switches (not part of the checkpoint): see runtime.prepare_model
        self.precision = "fp32"
        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ init (random weights)
    def init_weights(self, seed: int | None = None) -> WinT3R:
        """Random initialisation in the authors' manner (xavier linears, unit LayerNorms)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    _xavier_(module.weight, gen)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)) and module.weight is not None:
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    _xavier_(module.weight.view(module.weight.shape[0], -1), gen)
                    module.bias.zero_()
            self.register_tokens.weight.copy_(torch.randn(self.register_tokens.weight.shape, generator=gen))
            self.cam_token.copy_(torch.randn(self.cam_token.shape, generator=gen) * 1e-6)
            self.cam_head.empty_pose_tokens.zero_()
            for stage in self.pts_head.upsample_blocks:  # upsamplers start as nearest-neighbour
                up = stage[0][0].weight
                up.copy_(up[:, :, :1, :1].expand_as(up))
            for block in self.cam_head.trunk:
                block.ls1.gamma.fill_(self.config.cam_head_init_values)
                block.ls2.gamma.fill_(self.config.cam_head_init_values)
        self.rope.clear()
        return self

    # ------------------------------------------------------------------------------- parts
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [S, 3, H, W] -> encoder tokens [S, P, C_enc] (after the final norm)."""
        x, (h, w) = self.patch_embed(images)  # (S, P, C_enc)
        cfg = self.config
        rope = self.rope.table(("grid", h, w), lambda: grid_positions(h, w),
                               cfg.enc_embed_dim // cfg.enc_num_heads, x.device, cfg.enc_rope_mode)
        for block in self.enc_blocks:
            x = self._run(block, x, rope)
        return self.enc_norm(x)

    def embed_frames(self, images: torch.Tensor) -> torch.Tensor:
        """images [S, 3, H, W] -> decoder-width frame tokens [S, P, C] (what the encoder cache keeps)."""
        return self.decoder_embed(self.encode(images))

    def init_state(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The learned initial state [1, Ns, C] (independent of the images)."""
        tokens = self.register_tokens.weight
        if device is not None:
            tokens = tokens.to(device)
        return self.decoder_embed_state(tokens)[None]

    def decode_window(self, state: torch.Tensor, frames: torch.Tensor,
                      grid: tuple[int, int], need_state: bool = True) -> DecodedWindow:
        """Run the image and state decoders in lockstep over one window.

        state [1, Ns, C]; frames [S, P, C] decoder-width frame tokens on an h x w grid.
        Each block of either stream reads the other stream's output of the previous block.
        Returns the new state (normed), the final image tokens (normed) [S, N1, C] and the
        image tokens before the last block's frame-local stage (not normed) [S, N1, C].
        need_state=False (the stream's last window): the last state block, whose output only
        a next window would read, is skipped and the returned state is None.
        """
        cfg = self.config
        s, p, c = frames.shape
        h, w = grid
        # the residual streams stay float32 under autocast (only the matmuls run in low precision)
        img = torch.cat((self.cam_token.expand(s, 1, c), frames.float()), dim=1)  # (S, N1, C)
        state = state.float()
        img = img.view(1, s * (p + 1), c)
        device = frames.device
        img_hd = c // cfg.dec_num_heads
        st_hd = c // cfg.state_dec_num_heads
        frame_pos = lambda: frame_positions(h, w)
        st_pos = lambda: state_positions(cfg.state_size, cfg.state_pe)
        rope_img = self.rope.table(("frame", h, w), frame_pos, img_hd, device)
        rope_st_img = self.rope.table(("state", cfg.state_size), st_pos, img_hd, device)
        rope_st = self.rope.table(("state", cfg.state_size), st_pos, st_hd, device)
        rope_img_st = self.rope.table(("frame", h, w), frame_pos, st_hd, device)
        local = img
        last = len(self.dec_blocks) - 1
        for i, (block_state, block_img) in enumerate(zip(self.dec_blocks_state, self.dec_blocks)):
            new_state = None
            if need_state or i < last:
                new_state = self._run(block_state, state, img, rope_st, rope_img_st)
            img, local = self._run(block_img, img, state, rope_img, rope_st_img, s)
            state = new_state
        return DecodedWindow(self.dec_norm_state(state) if state is not None else None,
                             self.dec_norm(img).view(s, p + 1, c), local.view(s, p + 1, c))

    def point_maps(self, window: DecodedWindow, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """pts_local [S, H, W, 3] and conf [S, H, W], computed in float32."""
        with autocast(window.final.device, "fp32"):
            return self.pts_head(window.local[:, 1:].float(), window.final[:, 1:].float(), grid,
                                 self.config.patch_size)

    @staticmethod
    def camera_tokens(window: DecodedWindow) -> torch.Tensor:
        """[S, 2C]: each frame's camera token, final and pre-local outputs side by side."""
        return torch.cat((window.final[:, 0], window.local[:, 0]), dim=-1).float()

    def _run(self, block: nn.Module, *args):
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    # ---------------------------------------------------------------------- streaming API
    def new_stream(self, max_pool_tokens: int | None = None) -> StreamState:
        """An empty stream; `max_pool_tokens` overrides the config's pool bound (None: config's)."""
        bound = self.config.max_pool_tokens if max_pool_tokens is None else max_pool_tokens
        return StreamState(self.cam_head.new_cache(), max_pool_tokens=bound,
                           window_size=self.config.window_size)

    def step(self, state: StreamState, images: torch.Tensor,
             keys: Sequence[Hashable] | None = None, *, last: bool = False) -> WindowOutput:
        """Process one window images [S, 3, H, W]; see stream.step for the full contract."""
        return step(self, state, images, keys, last=last)

    def online_inference(self, images: torch.Tensor, pose_from: str = "last") -> SequenceOutput:
        """The authors' online mode over a whole sequence [N, 3, H, W]; see inference.py."""
        return online_inference(self, images, pose_from=pose_from)

    def offline_inference(self, images: torch.Tensor, pose_from: str = "last") -> SequenceOutput:
        """The authors' offline mode over a whole sequence [N, 3, H, W]; see inference.py."""
        return offline_inference(self, images, pose_from=pose_from)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass over a sequence [N, 3, H, W] (differentiable); see inference.forward_windows."""
        return forward_windows(self, images)


def _xavier_(weight: torch.Tensor, gen: torch.Generator | None) -> None:
    fan_out, fan_in = weight.shape[0], weight[0].numel()
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    weight.copy_((torch.rand(weight.shape, generator=gen) * 2 - 1) * bound)
