"""The one configuration of the WinT3R network: a frozen dataclass that every part reads.

`WinT3RConfig.official()` is the published model (its checkpoint loads strictly);
`WinT3RConfig.tiny()` is a small model that runs and trains on a couple of CPU cores.
`from_authors_kwargs` accepts the constructor arguments of the authors' code (as stored in the
parity fixture), so their configurations map onto ours without guessing.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wint3r_ros.errors import ConfigError, reject_unknown_fields

__all__ = ["WinT3RConfig", "ENC_ROPE_MODES"]

# How the encoder applies RoPE to queries and keys. The published encoder rounds q and k to
# float16 around the rotation (a habit of the CroCo encoder it inherits):
#   "fp16_table": q, k, the cos/sin tables and the arithmetic all in float16 (the authors'
#                 PyTorch RoPE; what their code computes on a CPU, and what the parity fixture holds)
#   "fp16":       q, k rounded to float16, rotation computed in float32, result rounded to float16
#                 (the authors' compiled CUDA kernel)
#   "fp32":       no rounding (for models trained by us with it)
ENC_ROPE_MODES = ("fp16_table", "fp16", "fp32")

# Every field's type and allowed range, checked before anything is built: a checkpoint's stored
# config is untrusted input (`enc_depth: 200000` would otherwise build 200 000 blocks). The upper
# bounds are generous (several times the published model) and keep a model buildable.
_INT_RANGES: dict[str, tuple[int, int]] = {
    "patch_size": (16, 16),
    "enc_embed_dim": (8, 4096), "enc_depth": (1, 64), "enc_num_heads": (1, 64),
    "dec_embed_dim": (8, 4096), "dec_depth": (1, 64), "dec_num_heads": (1, 64),
    "state_dec_num_heads": (1, 64), "state_size": (1, 16384),
    "cam_head_depth": (1, 32), "cam_head_num_heads": (1, 64), "cam_head_iterations": (1, 16),
    "head_proj_dim": (1, 4096), "head_res_blocks": (0, 8), "head_last_conv_channels": (1, 1024),
    "head_last_conv_size": (1, 15), "window_size": (1, 64), "window_stride": (1, 64),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "mlp_ratio": (0.25, 16.0), "norm_eps": (1e-12, 1e-1), "rope_base": (1.0, 1e6),
    "cam_head_mlp_ratio": (0.25, 16.0), "cam_head_init_values": (0.0, 10.0),
}
_MAX_HEAD_DIM = 2048  # each of head_upsample_dims
_MAX_POOL_TOKENS = 10_000_000

# Authors' constructor arguments that do not change the computation at inference time.
_IGNORED_AUTHOR_KEYS = {"patch_embed_cls", "img_size", "landscape_only", "freeze", "ckpts",
                        "mask_ratio"}


@dataclass(frozen=True)
class WinT3RConfig:
    """Every size and switch of the network. Widths are channels, depths are block counts."""

    patch_size: int = 16
    # encoder (ViT with 2-D RoPE)
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    # image decoder and state decoder, run in lockstep (equal depth and width)
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_dec_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    norm_im2_in_dec: bool = True
    # learned state tokens and their positions ("2d": a grid of even width, "1d": the diagonal)
    state_size: int = 1024
    state_pe: str = "2d"
    rope_base: float = 100.0
    enc_rope_mode: str = "fp16_table"
    # camera head: trunk of transformer blocks over 2 * dec_embed_dim wide camera tokens
    cam_head_depth: int = 4
    cam_head_num_heads: int = 16
    cam_head_mlp_ratio: float = 4.0
    cam_head_init_values: float = 0.01
    cam_head_iterations: int = 4
    # point head (local point map + confidence): convolutional upsampler
    head_proj_dim: int = 768
    head_upsample_dims: tuple[int, ...] = (384, 128, 64)
    head_res_blocks: int = 2
    head_last_conv_channels: int = 32
    head_last_conv_size: int = 1
    # windows over the stream: window_size frames, advancing by window_stride
    window_size: int = 4
    window_stride: int = 2
    # the camera token pool bound (entries); None keeps every entry, as the authors do
    max_pool_tokens: int | None = None

    def __post_init__(self) -> None:
        dims = self.head_upsample_dims
        if isinstance(dims, (list, tuple)) and len(dims) <= 8:
            object.__setattr__(self, "head_upsample_dims", tuple(dims))
        self.validate()

    # ----------------------------------------------------------------------------- presets
    @classmethod
    def official(cls) -> WinT3RConfig:
        """The published configuration (the checkpoint `lizizun/WinT3R` loads strictly)."""
        return cls()

    @classmethod
    def tiny(cls) -> WinT3RConfig:
        """A small model that runs a 6-frame 64x96 window in well under a second on 2 CPU cores."""
        return cls(
            enc_embed_dim=192, enc_depth=4, enc_num_heads=3,
            dec_embed_dim=96, dec_depth=2, dec_num_heads=3, state_dec_num_heads=3,
            state_size=64, enc_rope_mode="fp32",
            cam_head_depth=2, cam_head_num_heads=4,
            head_proj_dim=96, head_upsample_dims=(64, 32, 32), head_res_blocks=1,
            head_last_conv_channels=32,
        )

    @classmethod
    def preset(cls, name: str) -> WinT3RConfig:
        """`official` or `tiny`, by name (for CLI flags and YAML)."""
        presets = {"official": cls.official, "tiny": cls.tiny}
        if name not in presets:
            raise ConfigError(f"unknown model preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]()

    @classmethod
    def from_authors_kwargs(cls, kwargs: Mapping[str, Any]) -> WinT3RConfig:
        """Map the authors' `WinT3R(...)` constructor arguments onto a config.

        Defaults are the authors' defaults where they differ from ours (state_dec_num_heads=16,
        state_size=768, window_size=4); a computation we do not implement is a ConfigError.
        """
        kw = dict(kwargs)
        for key in _IGNORED_AUTHOR_KEYS:
            kw.pop(key, None)
        head_type = kw.pop("head_type", "conv")
        if head_type != "conv":
            raise ConfigError(f"authors' head_type={head_type!r} is not implemented (only 'conv')")
        pos_embed = str(kw.pop("pos_embed", "RoPE100"))
        if not pos_embed.startswith("RoPE"):
            raise ConfigError(f"authors' pos_embed={pos_embed!r} is not implemented (only RoPE<base>)")
        try:
            rope_base = float(pos_embed[len("RoPE"):])
        except ValueError as err:
            raise ConfigError(f"authors' pos_embed={pos_embed!r}: cannot read the RoPE base") from err
        mapping = {
            "patch_size": "patch_size", "enc_embed_dim": "enc_embed_dim", "enc_depth": "enc_depth",
            "enc_num_heads": "enc_num_heads", "dec_embed_dim": "dec_embed_dim",
            "dec_depth": "dec_depth", "dec_num_heads": "dec_num_heads",
            "state_dec_num_heads": "state_dec_num_heads", "mlp_ratio": "mlp_ratio",
            "norm_im2_in_dec": "norm_im2_in_dec", "state_size": "state_size",
            "state_pe": "state_pe", "window_size": "window_size",
        }
        # the authors' constructor defaults (CrocoConfig and WinT3R.__init__)
        values: dict[str, Any] = {
            "patch_size": 16, "enc_embed_dim": 768, "enc_depth": 12, "enc_num_heads": 12,
            "dec_embed_dim": 512, "dec_depth": 8, "dec_num_heads": 16, "state_dec_num_heads": 16,
            "mlp_ratio": 4.0, "norm_im2_in_dec": True, "state_size": 768, "state_pe": "2d",
            "window_size": 4,
        }
        for key, value in kw.items():
            if key not in mapping:
                raise ConfigError(f"authors' argument {key!r} is not known to WinT3RConfig")
            values[mapping[key]] = value
        values["rope_base"] = rope_base
        values["window_stride"] = max(1, int(values["window_size"]) // 2)
        return cls(**values)

    # --------------------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["head_upsample_dims"] = list(self.head_upsample_dims)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WinT3RConfig:
        """Inverse of `to_dict`; unknown keys are a ConfigError naming them."""
        reject_unknown_fields(cls, data, "WinT3RConfig")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> WinT3RConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------ checks
    @property
    def cam_dim(self) -> int:
        """Width of a camera token: the decoder's final and local outputs side by side."""
        return 2 * self.dec_embed_dim

    def validate(self) -> None:
        """Raise ConfigError for a combination the network cannot be built with."""
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(f"WinT3RConfig: {msg}")

        self._check_types_and_ranges(need)
        need(self.patch_size == 16, f"patch_size={self.patch_size}: the point head assumes 16")
        for width, heads, name in ((self.enc_embed_dim, self.enc_num_heads, "enc"),
                                   (self.dec_embed_dim, self.dec_num_heads, "dec"),
                                   (self.dec_embed_dim, self.state_dec_num_heads, "state_dec")):
            need(heads > 0 and width % heads == 0,
                 f"{name} width {width} not divisible by {heads} heads")
            need((width // heads) % 4 == 0,
                 f"{name} head width {width // heads} must be a multiple of 4 for 2-D RoPE")
        need(self.cam_dim % self.cam_head_num_heads == 0,
             f"camera token width {self.cam_dim} not divisible by {self.cam_head_num_heads} heads")
        need(self.enc_depth >= 1 and self.dec_depth >= 1 and self.cam_head_depth >= 1,
             "depths must be >= 1")
        need(self.state_size >= 1, f"state_size={self.state_size} must be >= 1")
        need(self.state_pe in ("2d", "1d"), f"state_pe={self.state_pe!r}: expected '2d' or '1d'")
        need(self.enc_rope_mode in ENC_ROPE_MODES,
             f"enc_rope_mode={self.enc_rope_mode!r}: expected one of {ENC_ROPE_MODES}")
        need(len(self.head_upsample_dims) == 3,
             f"head_upsample_dims={self.head_upsample_dims}: three stages (x2 each, 16 = 8 x 2)")
        for d in self.head_upsample_dims:
            need(d >= 32 and d % 32 == 0,
                 f"point head width {d} must be a positive multiple of 32 (GroupNorm groups of 32)")
        need(self.head_last_conv_channels >= 1, "head_last_conv_channels must be >= 1")
        need(self.head_last_conv_size % 2 == 1, "head_last_conv_size must be odd")
        need(self.cam_head_iterations >= 1, "cam_head_iterations must be >= 1")
        need(self.window_size >= 1 and 1 <= self.window_stride <= self.window_size,
             f"window_size={self.window_size}, window_stride={self.window_stride}: "
             "need 1 <= stride <= size")
        if self.max_pool_tokens is not None:
            need(_is_int(self.max_pool_tokens) and self.max_pool_tokens <= _MAX_POOL_TOKENS,
                 f"max_pool_tokens={self.max_pool_tokens!r}: an integer <= {_MAX_POOL_TOKENS} "
                 "or None")
            need(self.max_pool_tokens >= 2 * self.window_size,
                 f"max_pool_tokens={self.max_pool_tokens} must be >= 2 * window_size "
                 "(the first window and the newest)")

    def _check_types_and_ranges(self, need) -> None:
        """Each field's type and bounds (NaN and infinities refused), before any combination."""
        for name, (low, high) in _INT_RANGES.items():
            value = getattr(self, name)
            need(_is_int(value) and low <= value <= high,
                 f"{name}={_short(value)}: expected an integer in [{low}, {high}]")
        for name, (low, high) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
            need(ok and low <= value <= high,
                 f"{name}={_short(value)}: expected a finite number in [{low:g}, {high:g}]")
        need(isinstance(self.norm_im2_in_dec, bool),
             f"norm_im2_in_dec={_short(self.norm_im2_in_dec)}: expected true or false")
        for name in ("state_pe", "enc_rope_mode"):
            need(isinstance(getattr(self, name), str),
                 f"{name}={_short(getattr(self, name))}: expected a string")
        dims = self.head_upsample_dims
        need(isinstance(dims, tuple), f"head_upsample_dims={_short(dims)}: expected a list")
        need(all(_is_int(d) and 1 <= d <= _MAX_HEAD_DIM for d in dims),
             f"head_upsample_dims={_short(dims)}: integers in [1, {_MAX_HEAD_DIM}]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (a config field may hold anything)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
