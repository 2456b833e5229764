"""What the nodes and process-bag load: a checkpoint (or the package's tiny weights) with its card.

The card (`<checkpoint>.json` beside the weights) gives the input size and the confidence
threshold the checkpoint was validated with.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch

from wint3r_ros import weights
from wint3r_ros.errors import CheckpointError, ConfigError
from wint3r_ros.model.checkpoint import load_model
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.model.runtime import prepare_model

__all__ = ["load_reconstruction_model", "LoadedModel", "confidence_threshold_for",
           "DEFAULT_CONFIDENCE_THRESHOLD"]

# Depth below this model confidence is left out when neither the user nor the checkpoint's card
# says otherwise (confidence = 1 + exp(logit) >= 1, so any threshold <= 1 keeps every pixel).
DEFAULT_CONFIDENCE_THRESHOLD = 1.5


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
    tiny_checkpoint = weights.TINY_CHECKPOINT  # read at call time (tests replace it)
    config = WinT3RConfig.preset(preset)
    default_side = 512 if preset == "official" else 128
    path = Path(checkpoint).expanduser() if checkpoint else None
    if path is None and preset == "official":
        raise ConfigError("model_preset official needs checkpoint:=<path to the published WinT3R "
                          "weights> (docs/MODEL.md says where to get them)")
    if path is None and tiny_checkpoint.is_file():
        path = tiny_checkpoint
    if path is None:
        torch.manual_seed(0)
        model = prepare_model(WinT3R(config).init_weights(seed=0), device, precision)
        if log is not None:
            log("NO CHECKPOINT: the package has no trained tiny weights "
                f"({tiny_checkpoint} is missing) and checkpoint is empty; running a RANDOMLY "
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
