"""Device and precision: `device=auto|cpu|cuda[:N]`, `precision=fp32|bf16|fp16`.

Weights stay float32. On CUDA, bf16/fp16 run the transformer matmuls under autocast while the
residual streams and both heads stay float32 (as published); on the CPU everything runs float32.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch

from wint3r_ros.errors import CheckpointError, ConfigError

__all__ = ["PRECISIONS", "resolve_device", "resolve_precision", "autocast", "prepare_model",
           "maybe_compile", "load_reconstruction_model", "LoadedModel", "confidence_threshold_for",
           "DEFAULT_CONFIDENCE_THRESHOLD"]

# Depth below this model confidence is left out when neither the user nor the checkpoint's card
# says otherwise (confidence = 1 + exp(logit) >= 1, so any threshold <= 1 keeps every pixel).
DEFAULT_CONFIDENCE_THRESHOLD = 1.5

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


class LoadedModel(NamedTuple):
    """What `load_reconstruction_model` gives: the model, its input long side (card or preset),
    a description for logs, and the confidence threshold its card recommends (or the default)."""

    model: Any
    input_long_side: int
    description: str
    confidence_threshold: float


def confidence_threshold_for(requested: float, loaded: LoadedModel | None) -> float:
    """The threshold to use: `requested` when > 0, else the checkpoint's recommendation."""
    if requested > 0:
        return float(requested)
    return loaded.confidence_threshold if loaded is not None else DEFAULT_CONFIDENCE_THRESHOLD


def load_reconstruction_model(checkpoint: str, preset: str, device: str, precision: str,
                              log: Any = None) -> LoadedModel:
    """Load the model for the nodes and process-bag. Empty ``checkpoint`` with preset tiny: the
    package's tiny weights, or random weights with a loud warning when the package has none. A
    card (``<checkpoint>.json`` beside the weights) gives the input size and the confidence
    threshold the checkpoint was validated with."""
    from wint3r_ros.model.checkpoint import load_model
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R
    from wint3r_ros.weights import TINY_CHECKPOINT

    config = WinT3RConfig.preset(preset)
    default_side = 512 if preset == "official" else 128
    path = Path(checkpoint).expanduser() if checkpoint else None
    if path is None and preset == "official":
        raise ConfigError("model_preset official needs checkpoint:=<path to the published WinT3R "
                          "weights> (docs/MODEL.md says where to get them)")
    if path is None and TINY_CHECKPOINT.is_file():
        path = TINY_CHECKPOINT
    if path is None:
        torch.manual_seed(0)
        model = prepare_model(WinT3R(config).init_weights(seed=0), device, precision)
        if log is not None:
            log("NO CHECKPOINT: the package has no trained tiny weights "
                f"({TINY_CHECKPOINT} is missing) and checkpoint is empty; running a RANDOMLY "
                "INITIALISED tiny model. Poses and depth are MEANINGLESS. Set checkpoint:=<file>.")
        return LoadedModel(model, default_side, "random tiny weights (outputs meaningless)",
                           DEFAULT_CONFIDENCE_THRESHOLD)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist")
    try:
        model = load_model(path, config, device=device, precision=precision)
    except CheckpointError as err:
        raise ConfigError(f"checkpoint: {err}") from err
    side, threshold = default_side, DEFAULT_CONFIDENCE_THRESHOLD
    card = path.with_suffix(".json")
    if card.is_file():
        try:
            data = json.loads(card.read_text())
            side = int(data["input_long_side"])
            threshold = float(data.get("confidence_threshold", threshold))
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"checkpoint card {card}: no readable input_long_side") from err
    return LoadedModel(model, side, str(path), threshold)
