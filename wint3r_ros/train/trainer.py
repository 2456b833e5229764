"""The training loop: fixed seeds, a deterministic sample order, checkpoints, a JSON log, resume.

Sample k of the run is clip `epoch_order(len, seed, k // len)[k % len]`, so the order depends
only on the step: a run resumed from a checkpoint at step s continues exactly as the
uninterrupted run would (same samples, same optimizer and schedule state, same RNG state).

Files under the output directory:
    checkpoints/step_NNNNNN.safetensors   model weights + WinT3RConfig (model.checkpoint)
    checkpoints/step_NNNNNN.pt            optimizer, schedule, step, RNG, training config
    last.safetensors / last.pt            the newest checkpoint (copies)
    final.safetensors                     the weights at the end of the run
    log.json                              config, per-step losses, validation metrics
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import CheckpointError, ConfigError, reject_unknown_fields
from wint3r_ros.model.checkpoint import load_state_dict_into, read_checkpoint, save_checkpoint
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.train.dataset import ClipDataset, DataConfig, SceneCache, epoch_order, split_seeds
from wint3r_ros.train.forward import forward_clip
from wint3r_ros.train.objective import LossWeights, clip_loss

__all__ = ["OptimConfig", "TrainConfig", "Trainer", "config_hash", "checkpoint_pair", "clean_json"]


def config_hash(config: WinT3RConfig) -> str:
    """Short, stable hash of a model configuration (names a trained checkpoint's architecture)."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to min_lr_ratio x lr; global-norm clipping."""

    lr: float = 3e-4
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def lr_factor(self, step: int, total: int) -> float:
        """Multiplier of lr at `step` (0-based) of `total`."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, total - self.warmup_steps)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * cos


_YAML_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
               "None": (type(None),)}


def _check_types(cls: type, data: Any, where: str) -> dict[str, Any]:
    """`data` as a dict whose plain values (int, float, str, bool fields of the dataclass `cls`)
    have their field's type; ConfigError names the field otherwise."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of settings, got {data!r}")
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        parts = [p.strip() for p in str(f.type).split("|")]
        if not all(p in _YAML_TYPES for p in parts):
            continue  # a nested config: checked by its own reader
        value = data[f.name]
        ok = any(isinstance(value, _YAML_TYPES[p]) for p in parts) and \
            not (isinstance(value, bool) and "bool" not in parts)
        if not ok:
            raise ConfigError(f"{where} field '{f.name}': must be {f.type}, got {value!r}")
    return dict(data)


def _from_mapping(cls: type, data: Mapping[str, Any] | None, where: str) -> Any:
    data = _check_types(cls, data, where)
    reject_unknown_fields(cls, data, where)
    try:
        return cls(**data)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from err


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (the YAML file, see config/train_tiny.yaml).

    preset: model preset; seed: weights init and data order; steps: optimizer steps;
    threads: torch CPU threads (0 = torch's default); device: auto | cpu | cuda[:N];
    log_every / val_every / checkpoint_every: in steps (0 = never, except at the end);
    val_frames: sets per validation scene (validation runs the evaluation protocol);
    init: weights to start from ("" = random init, "tiny" = the shipped tiny checkpoint, or a
    .safetensors path; same model config); curriculum_steps: over these first steps the cameras
    per clip grow from 1 to data.max_cameras in equal stages (0 = all cameras from the start).
    """

    preset: str = "tiny"
    seed: int = 0
    steps: int = 3000
    threads: int = 2
    device: str = "auto"
    log_every: int = 25
    val_every: int = 500
    checkpoint_every: int = 500
    val_frames: int = 16
    init: str = ""
    curriculum_steps: int = 0
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps} must be >= 1")
        for name in ("log_every", "val_every", "checkpoint_every", "threads", "curriculum_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        WinT3RConfig.preset(self.preset)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        data = dict(data)
        optim = _from_mapping(OptimConfig, data.pop("optim", None), "optim")
        data_cfg = DataConfig.from_dict(_check_types(DataConfig, data.pop("data", None), "data"))
        loss = LossWeights.from_dict(_check_types(LossWeights, data.pop("loss", None), "loss"))
        top = _from_mapping(cls, data, "training config")
        return dataclasses.replace(top, optim=optim, data=data_cfg, loss=loss)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        from wint3r_ros.yaml_io import load_yaml

        path = Path(path)
        data = load_yaml(path, "training config") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"training config {path}: expected a mapping at the top level")
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"training config {path}: {err}") from err

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def checkpoint_pair(path: str | Path) -> tuple[Path, Path]:
    """(weights .safetensors, state .pt) of a checkpoint given either file (or its stem)."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".pt") else path
    weights, state = stem.with_suffix(".safetensors"), stem.with_suffix(".pt")
    for p in (weights, state):
        if not p.is_file():
            raise CheckpointError(f"resume: {p} not found (a checkpoint is a .safetensors file "
                                  "with its .pt training state beside it)")
    return weights, state


class Trainer:
    """One training run of `config` writing into `out_dir` (see the module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: str | Path,
                 echo: Callable[[str], None] | None = None) -> None:
        from wint3r_ros.model.network import WinT3R
        from wint3r_ros.model.runtime import resolve_device

        self.config = config
        self.out = Path(out_dir)
        self.echo = echo or (lambda msg: print(msg, file=sys.stderr, flush=True))
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.model_config = WinT3RConfig.preset(config.preset)
        self.model = WinT3R(self.model_config).init_weights(config.seed).to(self.device)
        if config.init:
            self._load_init(config.init)
        self.model.train()
        o = config.optim
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}], lr=o.lr, betas=(o.beta1, o.beta2))
        self.cache = SceneCache(config.data)
        self.train_set = ClipDataset(config.data, split_seeds("train", config.data.train_scenes),
                                     self.cache)
        self.step = 0
        self.log: dict[str, Any] = {"config": config.to_dict(),
                                    "model_config": self.model_config.to_dict(),
                                    "model_config_hash": config_hash(self.model_config),
                                    "train": [], "val": [], "seconds": 0.0}

    # ---------------------------------------------------------------------------- state
    def _load_init(self, init: str) -> None:
        """Start from trained weights (fine-tuning); the model configs must be equal."""
        from wint3r_ros.weights import TINY_CHECKPOINT

        path = Path(TINY_CHECKPOINT) if init == "tiny" else Path(init).expanduser()
        if not path.is_file():
            raise CheckpointError(f"init: {path} not found (use '', 'tiny' or a .safetensors file)")
        state_dict, stored = read_checkpoint(path)
        if stored is not None and stored != self.model_config:
            raise CheckpointError(f"init: {path} has another model config (hash "
                                  f"{config_hash(stored)}, this run {config_hash(self.model_config)})")
        load_state_dict_into(self.model, {k: v.to(self.device) for k, v in state_dict.items()},
                             source=str(path))

    def cameras_at(self, step: int) -> int | None:
        """The curriculum: cameras per clip at `step` (None = every camera of the scene)."""
        cfg = self.config
        if not cfg.curriculum_steps or step >= cfg.curriculum_steps:
            return None
        return 1 + step * cfg.data.max_cameras // cfg.curriculum_steps

    def save(self) -> Path:
        """Write checkpoints/step_NNNNNN.{safetensors,pt} and the last.* copies."""
        ckdir = self.out / "checkpoints"
        ckdir.mkdir(parents=True, exist_ok=True)
        stem = ckdir / f"step_{self.step:06d}"
        save_checkpoint(self.model, stem.with_suffix(".safetensors"))
        state = {"step": self.step, "optimizer": self.optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "config": self.config.to_dict(),
                 "model_config_hash": config_hash(self.model_config),
                 "seconds": self.log["seconds"]}
        tmp = stem.with_suffix(".pt.partial")
        torch.save(state, tmp)
        tmp.replace(stem.with_suffix(".pt"))
        for suffix in (".safetensors", ".pt"):
            shutil.copyfile(stem.with_suffix(suffix), (self.out / "last").with_suffix(suffix))
        self._write_log()
        return stem.with_suffix(".safetensors")

    def resume(self, path: str | Path) -> None:
        """Restore weights, optimizer, step and RNG from a checkpoint of this configuration."""
        weights, state_path = checkpoint_pair(path)
        state_dict, stored = read_checkpoint(weights)
        if stored is not None and stored != self.model_config:
            raise CheckpointError(f"resume: {weights} was trained with another model config "
                                  f"(hash {config_hash(stored)}, this run {config_hash(self.model_config)})")
        load_state_dict_into(self.model, {k: v.to(self.device) for k, v in state_dict.items()},
                             source=str(weights))
        try:
            state = torch.load(state_path, map_location=self.device, weights_only=True)
        except Exception as err:  # torch raises many kinds for a bad file
            raise CheckpointError(f"resume: {state_path} cannot be read: {err}") from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.log["seconds"] = float(state.get("seconds", 0.0))
        # the run's history: this output directory's log, else the log of the checkpoint's run
        candidates = [self.out / "log.json", weights.parent / "log.json",
                      weights.parent.parent / "log.json"]
        log_path = next((p for p in candidates if p.is_file()), None)
        if log_path is not None:
            old = json.loads(log_path.read_text())
            self.log["train"] = [r for r in old.get("train", []) if r["step"] <= self.step]
            self.log["val"] = [r for r in old.get("val", []) if r["step"] <= self.step]
        self.log.setdefault("resumed_from", []).append({"checkpoint": str(weights), "step": self.step})

    def _write_log(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "log.json.partial"
        tmp.write_text(json.dumps(clean_json(self.log), indent=1))
        tmp.replace(self.out / "log.json")

    # ----------------------------------------------------------------------------- loop
    def sample_index(self, step: int) -> int:
        n = len(self.train_set)
        return epoch_order(n, self.config.seed, step // n)[step % n]

    def set_learning_rate(self, step: int) -> None:
        """The schedule's learning rate for `step` (warm-up, then cosine decay)."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.optim.lr * cfg.optim.lr_factor(step, cfg.steps)

    def clip_and_step(self, terms: dict[str, float]) -> dict[str, float]:
        """Clip the accumulated gradients, step the optimizer; grad_norm and lr into `terms`."""
        if self.config.optim.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
            terms["grad_norm"] = float(norm)
        self.optimizer.step()
        terms["lr"] = self.optimizer.param_groups[0]["lr"]
        return terms

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step on the clip of `step`; returns the logged terms."""
        clip = self.train_set.clip(self.sample_index(step), self.cameras_at(step)).to(self.device)
        self.set_learning_rate(step)
        out = forward_clip(self.model, clip.images, clip.windows)
        loss, terms = clip_loss(out, clip, self.config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return self.clip_and_step(terms)

    def validate(self) -> dict[str, Any]:
        """The evaluation protocol on the first val scenes (short sequences)."""
        from wint3r_ros.train.evaluate import evaluate, synthetic_sequences

        cfg = self.config
        self.model.eval()
        try:
            seqs = synthetic_sequences(split_seeds("val", cfg.data.val_scenes), cfg.val_frames, cfg.data)
            report = evaluate(self.model, seqs, WindowConfig(cfg.data.window_size,
                                                             cfg.data.window_overlap),
                              cfg.data.input_long_side)
        finally:
            self.model.train()
        return report["summary"]

    def run(self) -> dict[str, Any]:
        """Train from the current step to `config.steps`; returns the final log."""
        cfg = self.config
        self.echo(f"training {cfg.preset} (config {config_hash(self.model_config)}) on "
                  f"{self.device}: {len(self.train_set)} clips from {cfg.data.train_scenes} scenes, "
                  f"steps {self.step} -> {cfg.steps}")
        t_render = time.perf_counter()
        self.cache.prepare(self.train_set.seeds)
        self.log["seconds"] += time.perf_counter() - t_render
        bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc="train", dynamic_ncols=True)
        window: list[dict[str, float]] = []
        t_last = time.perf_counter()
        while self.step < cfg.steps:
            terms = self.train_step(self.step)
            self.step += 1
            now = time.perf_counter()
            self.log["seconds"] += now - t_last
            t_last = now
            window.append(terms)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{terms['total']:.3f}")
            end = self.step == cfg.steps
            if (cfg.log_every and self.step % cfg.log_every == 0) or end:
                keys = dict.fromkeys(k for t in window for k in t)  # 1-camera clips: no rig term
                row = {k: sum(t[k] for t in window if k in t) / sum(k in t for t in window)
                       for k in keys}
                row.update(step=self.step, seconds=round(self.log["seconds"], 1))
                self.log["train"].append(row)
                window = []
                if bar is None:
                    self.echo(f"step {self.step}/{cfg.steps} loss {row['total']:.4f} "
                              f"points {row.get('points', 0):.4f} pose {row.get('pose', 0):.4f} "
                              f"rig {row.get('rig_pose', 0):.4f} "
                              f"lr {row['lr']:.2e} {row['seconds']:.0f}s")
            if (cfg.val_every and self.step % cfg.val_every == 0) or end:
                summary = self.validate()
                self.log["val"].append({"step": self.step, **summary})
                m = summary["model"]
                self.echo(f"val step {self.step}: abs_rel {m['abs_rel']:.4f} "
                          f"(x{summary['ratios']['abs_rel_vs_constant_depth']:.2f} const) "
                          f"ate {m['ate']:.4f} (x{summary['ratios']['ate_vs_static']:.2f} static)"
                          + _scale_line(summary.get("metric_scale")))
                t_last = time.perf_counter()
            if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or end:
                self.save()
            elif cfg.log_every and self.step % cfg.log_every == 0:
                self._write_log()
        if bar is not None:
            bar.close()
        save_checkpoint(self.model, self.out / "final.safetensors")
        self._write_log()
        return self.log


def _scale_line(scale: dict[str, Any] | None) -> str:
    if not scale:
        return ""
    return (f"; metric scale on {scale['accepted_share']:.0%} of sets, error "
            f"{scale['scale_error_median']:.3f}, metric abs_rel {scale['abs_rel_metric']:.3f}")


def clean_json(obj: Any) -> Any:
    """A copy of obj that strict JSON accepts: NaN/inf -> None, paths and tuples converted."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
