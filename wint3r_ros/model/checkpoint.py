"""Checkpoints: read the published `pytorch_model.bin` and our `.safetensors`, write safetensors.

Accepted: `.bin` / `.pth` / `.pt` files written by `torch.save` (a bare state_dict, or one under
a `model` / `state_dict` key, with or without DistributedDataParallel's `module.` prefix) and
`.safetensors`. Pickles are read with `weights_only=True`, so a file carrying code is refused
without running it. Our safetensors carry the WinT3RConfig as JSON metadata, so a checkpoint
rebuilds its own model. Every failure is a CheckpointError that names the file and the problem.
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from wint3r_ros.errors import CheckpointError, ConfigError
from wint3r_ros.model.config import WinT3RConfig

__all__ = ["read_checkpoint", "load_state_dict_into", "load_model", "save_checkpoint",
           "convert_checkpoint", "METADATA_KEY"]

METADATA_KEY = "wint3r_config"
_SHOW = 5  # names listed per kind of mismatch


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with path.open("rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then a JSON object
    return len(head) == 9 and head[8:9] == b"{"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:300]


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], WinT3RConfig | None]:
    """Tensors and stored config; the config is checked before any tensor is read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            config = _stored_config((f.metadata() or {}).get(METADATA_KEY), path)
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        return tensors, config
    except CheckpointError:
        raise
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"checkpoint {path}: not a readable safetensors file "
                              f"(truncated or corrupt?): {_first_line(err)}") from err


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler objected to ("Unsupported global: GLOBAL print",
    "Unsupported operand 80"), without its advice to load with weights_only=False."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker not in text:
        return _first_line(err)
    rest = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
    reason = rest[0] if rest else "unknown"
    return reason.split(" was not an allowed global")[0].split(". Please")[0][:200]


def _read_pickle(path: Path) -> Any:
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _unpickler_reason(err)
        if not reason.startswith("Unsupported global"):
            raise CheckpointError(f"checkpoint {path}: cannot be read (truncated or corrupt?): "
                                  f"{reason}") from err
        # a reference to a Python function or class: loading it could run code
        raise CheckpointError(
            f"checkpoint {path}: refused: it holds pickled objects other than tensors, which "
            f"could run code when loaded ({reason}); convert it to safetensors where it came "
            "from, or re-save only its state_dict") from err
    except (MemoryError, RecursionError) as err:
        raise CheckpointError(f"checkpoint {path}: cannot be read (corrupt?): "
                              f"{type(err).__name__}") from err
    except Exception as err:  # a corrupt file can fail anywhere in torch.load
        raise CheckpointError(f"checkpoint {path}: cannot be read (truncated or corrupt?): "
                              f"{type(err).__name__}: {_first_line(err)}") from err


def _stored_config(raw: Any, path: Path) -> WinT3RConfig | None:
    """The WinT3RConfig stored with the weights (JSON text or a dict), checked; None if absent."""
    if raw is None:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a JSON object, got {type(data).__name__}")
        return WinT3RConfig.from_dict(data)
    except (ValueError, TypeError, RecursionError, ConfigError) as err:
        raise CheckpointError(f"checkpoint {path}: its stored config is invalid: "
                              f"{_first_line(err)}") from err


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """A bare state_dict from what torch.save wrote (`model`/`state_dict` wrappers, `module.`)."""
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path}: expected a dict of tensors, got {type(obj).__name__}")
    out: dict[str, torch.Tensor] = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue  # e.g. an epoch counter next to the weights
        name = str(name)
        if name.startswith("module."):
            name = name[len("module."):]
        out[name] = value
    if not out:
        raise CheckpointError(f"checkpoint {path}: holds no tensors")
    return out


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], WinT3RConfig | None]:
    """The state_dict in `path` and the config stored with it (None when it has none)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted download? "
                              "fetch or write it again")
    if _is_safetensors(path):
        state, config = _read_safetensors(path)
    else:
        obj = _read_pickle(path)
        state = _unwrap(obj, path)
        config = _stored_config(obj.get(METADATA_KEY) if isinstance(obj, Mapping) else None, path)
    return state, config


def _mismatch_report(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
    return "; ".join(parts)


def load_state_dict_into(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                         source: str = "state_dict", assign: bool = False) -> torch.nn.Module:
    """Load `state` strictly; a wrong architecture is a CheckpointError listing the first
    missing / unexpected / shape-mismatched keys."""
    report = _mismatch_report(model, state)
    if report:
        raise CheckpointError(f"checkpoint {source} does not fit this architecture: {report}")
    model.load_state_dict(state, strict=True, assign=assign)
    return model


def load_model(path: str | Path, config: WinT3RConfig | None = None,
               device: str | torch.device = "cpu", precision: str = "fp32") -> torch.nn.Module:
    """A WinT3R built from the checkpoint's own config (or `config`, or the official one when the
    file has none), weights loaded strictly, moved to `device`, in eval mode.

    A `config` that disagrees with the one stored in the file is a CheckpointError.
    """
    from wint3r_ros.model.network import WinT3R
    from wint3r_ros.model.runtime import prepare_model

    state, stored = read_checkpoint(path)
    if stored is not None and config is not None and stored != config:
        diffs = [f"{k}: file {v!r} vs requested {config.to_dict()[k]!r}"
                 for k, v in stored.to_dict().items() if config.to_dict()[k] != v]
        raise CheckpointError(f"checkpoint {path}: its config differs from the requested one: "
                              f"{'; '.join(diffs[:_SHOW])}")
    cfg = stored or config or WinT3RConfig.official()
    with torch.device("meta"):
        model = WinT3R(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    load_state_dict_into(model, state, source=str(path), assign=True)
    return prepare_model(model, device, precision)


def save_checkpoint(model_or_state: torch.nn.Module | Mapping[str, torch.Tensor], path: str | Path,
                    config: WinT3RConfig | None = None) -> Path:
    """Write safetensors with the config as JSON metadata (`config` defaults to the model's)."""
    from safetensors.torch import save_file

    path = Path(path)
    if isinstance(model_or_state, torch.nn.Module):
        state = model_or_state.state_dict()
        config = config or getattr(model_or_state, "config", None)
    else:
        state = dict(model_or_state)
    if config is None:
        raise CheckpointError(f"save_checkpoint {path}: no config to store with the weights")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    metadata = {METADATA_KEY: json.dumps(config.to_dict()), "format": "wint3r_ros"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.replace(path)
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {path}: {err}") from err
    return path


def convert_checkpoint(src: str | Path, dst: str | Path,
                       config: WinT3RConfig | None = None) -> dict[str, Any]:
    """Read `src` (any accepted format), check it against the architecture, write safetensors."""
    from wint3r_ros.model.network import WinT3R

    state, stored = read_checkpoint(src)
    if stored is not None and config is not None and stored != config:
        raise CheckpointError(f"checkpoint {src}: its stored config differs from the requested one")
    cfg = stored or config or WinT3RConfig.official()
    with torch.device("meta"):
        model = WinT3R(cfg)
    report = _mismatch_report(model, state)
    if report:
        raise CheckpointError(f"checkpoint {src} does not fit this architecture: {report}")
    save_checkpoint(state, dst, cfg)
    return {"source": str(src), "output": str(dst), "tensors": len(state),
            "parameters": int(sum(v.numel() for v in state.values())),
            "bytes": Path(dst).stat().st_size}
