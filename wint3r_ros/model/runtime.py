"""Device and precision: `device=auto|cpu|cuda[:N]`, `precision=fp32|bf16|fp16`.

Weights stay float32. On CUDA, bf16/fp16 run the transformer matmuls under autocast while the
residual streams and both heads stay float32 (as published); on the CPU everything runs float32.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from wint3r_ros.errors import ConfigError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision", "autocast", "prepare_model",
           "maybe_compile"]

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N' -> a torch.device."""
    if isinstance(spec, torch.device):
        return spec
    text = (spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={spec!r}: this torch build or machine has no CUDA device "
                              f"(torch {torch.__version__}); use device=cpu or auto")
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={spec!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise ConfigError(f"device={spec!r}: expected auto, cpu, cuda or cuda:N")


def resolve_precision(precision: str, device: torch.device) -> str:
    """Validate `precision`; on the CPU every precision runs as fp32 (returned as 'fp32')."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: expected one of {sorted(PRECISIONS)}")
    if device.type != "cuda":
        return "fp32"
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16")
    return precision


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """Autocast for `precision` on CUDA; 'fp32' (or any CPU device) disables autocast inside."""
    device = torch.device(device)
    if device.type == "cuda" and precision != "fp32":
        with torch.autocast("cuda", dtype=PRECISIONS[precision]):
            yield
    elif device.type == "cuda":
        with torch.autocast("cuda", enabled=False):
            yield
    else:
        yield


def prepare_model(model: torch.nn.Module, device: str | torch.device = "auto",
                  precision: str = "fp32") -> torch.nn.Module:
    """Move `model` to `device`, set its precision, put it in eval mode; returns it."""
    dev = resolve_device(device)
    model.to(dev)
    model.precision = resolve_precision(precision, dev)
    if hasattr(model, "rope"):
        model.rope.clear()
    return model.eval()


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile the encoder and decoder blocks on CUDA when `enabled` (off by default).

    Compilation takes minutes the first time and for each new resolution; numbers stay within
    float tolerance. On the CPU this is a no-op (the gain there does not pay for the wait).
    """
    if not enabled:
        return model
    device = next(model.parameters()).device
    if device.type != "cuda":
        return model
    for name in ("enc_blocks", "dec_blocks", "dec_blocks_state"):
        for block in getattr(model, name):
            block.compile(dynamic=False)
    return model
