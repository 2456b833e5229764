"""The shipped tiny checkpoint: loads strictly into WinT3RConfig.tiny(), matches its card, and
beats both baselines on the held-out test split (docs/EVALUATION.md's protocol, ~30 s)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wint3r_ros.core.window import WindowConfig
from wint3r_ros.model.checkpoint import load_model, read_checkpoint
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.train.dataset import DataConfig, split_seeds
from wint3r_ros.train.evaluate import evaluate, synthetic_sequences
from wint3r_ros.train.trainer import config_hash
from wint3r_ros.weights import TINY_CHECKPOINT, tiny_card, tiny_input_long_side


def test_shipped_checkpoint_loads_strictly_into_the_tiny_preset():
    assert TINY_CHECKPOINT.stat().st_size <= 20 * 2 ** 20
    state, stored = read_checkpoint(TINY_CHECKPOINT)
    tiny = WinT3RConfig.tiny()
    assert stored == tiny, (
        f"the tiny preset changed (hash {config_hash(tiny)}) since the checkpoint was trained "
        f"(hash {tiny_card()['model_config_hash']}): retrain with config/train_tiny.yaml")
    WinT3R(tiny).load_state_dict(state, strict=True)
    card = tiny_card()
    assert card["model_config_hash"] == config_hash(tiny)
    assert card["checkpoint"] == TINY_CHECKPOINT.name and tiny_input_long_side() == 128


def test_shipped_checkpoint_beats_both_baselines_on_held_out_scenes():
    torch.manual_seed(0)
    model = load_model(TINY_CHECKPOINT, device="cpu")
    data = DataConfig(num_cameras=1)
    report = evaluate(model, synthetic_sequences(split_seeds("test", 20), 24, data),
                      WindowConfig(4, 2), tiny_input_long_side())
    s = report["summary"]
    assert s["frames"] == 20 * 24
    assert s["model"]["abs_rel"] < s["baselines"]["constant_median_depth"]["abs_rel"]
    assert s["model"]["ate"] < s["baselines"]["static_pose"]["ate"]


def test_default_model_takes_its_input_size_and_confidence_threshold_from_the_card():
    from wint3r_ros.model.loader import confidence_threshold_for, load_reconstruction_model

    loaded = load_reconstruction_model("", "tiny", "cpu", "fp32")
    assert loaded.description == str(TINY_CHECKPOINT)
    assert loaded.input_long_side == tiny_card()["input_long_side"] == 128
    assert loaded.confidence_threshold == tiny_card()["confidence_threshold"]
    assert confidence_threshold_for(0.0, loaded) == tiny_card()["confidence_threshold"]


# Issue 14's acceptance test for the rig model. Two held-out rig scenes of synthetic-rig:test:
# seed 2004 (2 cameras) and seed 2002 (3 cameras, yaw spread inside the band training never
# sees). The shipped checkpoint must give the engine an accepted metric scale within 10 % and
# beat the static pose. The shipped model misses this (docs/EVALUATION.md, "The rig model"), so
# the test is a strict expected failure: it turns into a failure the day a checkpoint meets it,
# and then the marker must go.
@pytest.mark.xfail(strict=True, reason="issue 14 target missed: the tiny model does not separate "
                   "the cameras of a set, so the rig scale fit is refused (docs/EVALUATION.md)")
def test_shipped_checkpoint_gives_metric_scale_on_held_out_rigs():
    model = load_model(TINY_CHECKPOINT, device="cpu")
    data = DataConfig(rig_family="random")
    assert [data.rig_config(s).num_cameras for s in (2004, 2002)] == [2, 3]
    report = evaluate(model, synthetic_sequences([2004, 2002], 12, data), WindowConfig(4, 2),
                      tiny_input_long_side())
    for seq in report["sequences"]:
        errors = seq["scale"]["scale_errors"]
        assert any(seq["scale"]["metric_sets"]), f"{seq['name']}: no set got an accepted scale"
        assert float(np.median(errors)) <= 0.10, f"{seq['name']}: scale off by {np.median(errors):.0%}"
        assert seq["model_pose"]["ate"] < seq["static_pose"]["ate"]
