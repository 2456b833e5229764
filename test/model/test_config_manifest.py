"""Configs: presets, the authors' argument names, and the published checkpoint's tensor layout."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from wint3r_ros.errors import ConfigError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R

MANIFEST = Path(__file__).resolve().parents[2].parent / "shared" / "wint3r" / "wint3r_official_manifest.json"


def manifest() -> dict:
    if not MANIFEST.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{MANIFEST} is missing; CI always has ../shared")
        pytest.skip(f"{MANIFEST} not found: clone with ../shared beside the repository")
    return json.loads(MANIFEST.read_text())


def test_official_model_has_exactly_the_published_names_and_shapes():
    data = manifest()
    with torch.device("meta"):
        model = WinT3R(WinT3RConfig.official())
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(data["tensors"]) - set(shapes)) == []
    assert sorted(set(shapes) - set(data["tensors"])) == []
    assert shapes == data["tensors"]
    assert sum(p.numel() for p in model.parameters()) == data["num_params"] == 749_463_922
    assert len(list(model.buffers())) == 0  # constant tables live outside the state_dict


def test_official_preset_equals_the_authors_published_arguments():
    assert WinT3RConfig.from_authors_kwargs(manifest()["config"]) == WinT3RConfig.official()
    cfg = WinT3RConfig.official()
    assert (cfg.enc_embed_dim, cfg.enc_depth, cfg.dec_embed_dim, cfg.dec_depth) == (1024, 24, 768, 12)
    assert (cfg.dec_num_heads, cfg.state_dec_num_heads, cfg.state_size) == (12, 16, 1024)
    assert (cfg.window_size, cfg.window_stride, cfg.rope_base) == (4, 2, 100.0)


def test_tiny_preset_is_small():
    model = WinT3R(WinT3RConfig.tiny())
    params = sum(p.numel() for p in model.parameters())
    assert params * 4 < 20e6, params


def test_config_round_trips_through_a_dict_and_json():
    cfg = WinT3RConfig.tiny().replace(max_pool_tokens=64)
    again = WinT3RConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.head_upsample_dims == (64, 32, 32)


@pytest.mark.parametrize("change, message", [
    ({"enc_num_heads": 5}, "not divisible"),
    ({"head_upsample_dims": (64, 32, 16)}, "multiple of 32"),
    ({"state_pe": "3d"}, "state_pe"),
    ({"enc_rope_mode": "bf16"}, "enc_rope_mode"),
    ({"max_pool_tokens": 3}, "max_pool_tokens"),
])
def test_config_rejects_impossible_values(change, message):
    with pytest.raises(ConfigError, match=message):
        WinT3RConfig.tiny().replace(**change)


def test_authors_kwargs_reject_unknown_and_unsupported_arguments():
    with pytest.raises(ConfigError, match="'bogus'"):
        WinT3RConfig.from_authors_kwargs({"bogus": 1})
    with pytest.raises(ConfigError, match="head_type"):
        WinT3RConfig.from_authors_kwargs({"head_type": "dpt"})
    with pytest.raises(ConfigError, match="WinT3RConfig: unknown setting"):
        WinT3RConfig.from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="unknown model preset"):
        WinT3RConfig.preset("huge")
