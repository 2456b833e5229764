"""The model weights shipped with the package: the trained tiny checkpoint and its card.

`TINY_CHECKPOINT` (safetensors, WinT3RConfig.tiny() stored in its metadata) is the default of
the nodes, `process-bag` and the demo. `tiny_card()` says how it was made (command, training
config, data split, config hash) and what it measured; `tiny_input_long_side()` is the model
input size it was trained at (use it as the engine's `target_long_side`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["WEIGHTS_DIR", "TINY_CHECKPOINT", "TINY_CARD", "tiny_card", "tiny_input_long_side",
           "tiny_summary"]

WEIGHTS_DIR = Path(__file__).resolve().parent
TINY_CHECKPOINT = WEIGHTS_DIR / "tiny.safetensors"
TINY_CARD = WEIGHTS_DIR / "tiny.json"


def tiny_card() -> dict[str, Any]:
    """The card of the shipped tiny checkpoint (a dict; see docs/EVALUATION.md)."""
    return json.loads(TINY_CARD.read_text())


def tiny_input_long_side() -> int:
    """Long side (pixels) of the model input the tiny checkpoint was trained at."""
    return int(tiny_card()["input_long_side"])


def tiny_summary() -> str:
    """One line on how the shipped tiny checkpoint was trained (for logs and reports)."""
    card = tiny_card()
    seconds = sum(s.get("training_seconds") or 0 for s in card.get("stages", [])) \
        or card["training_seconds"]
    cameras = card["trained_on"]["rig_cameras"]
    rigs = "1-camera rigs" if cameras == 1 else f"rigs of {cameras}"
    return f"trained {seconds / 60:.0f} min on synthetic scenes, {rigs}"
