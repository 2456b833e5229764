"""Fine-tuning on a user's own recordings: ``train --data bag:PATH[,PATH...] --rig rig.yaml``.

A bag has images but, in general, no ground truth, so by default the model learns from the
self-supervised terms only (whatever the training YAML says about the supervised ones):

- photometric: each frame and its same-camera neighbours in the window, warped with the
  predicted points and relative pose (SSIM + L1, train/losses.py);
- smoothness: edge-aware disparity smoothness;
- pose_reg: unit quaternions;
- rig (``--rig-weight``, with 2 or more cameras): the relative pose of the cameras of each set
  against the rig's calibration: rotation, direction and the baseline's length in metres
  (`losses.rig_pose_loss` with unit scales), a metric constraint that the photometric term,
  blind to a global scale, lacks.

Clips are the online windows of each bag's synchronised sets (the same windowing as the engine);
With ``supervised=True`` (``--supervised``) and bags that carry make-bag's ground truth for every
training set (``/ground_truth/<camera>/depth`` finite everywhere, ``/ground_truth/tf``), the
YAML's supervised terms (points, pose, reprojection, ...) are kept and trained on it too.

the last ``held_out`` fraction of every bag's sets is never trained on and is what validation
(the evaluation protocol, with the bag's ground truth if it has some) scores. Training starts
from any checkpoint (``--checkpoint``; the shipped tiny one by default): weights only, a fresh
optimizer.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.checkpoint import load_state_dict_into, read_checkpoint
from wint3r_ros.model.pose import pose_enc_from_world_from_cam
from wint3r_ros.train import losses
from wint3r_ros.train.dataset import ClipDataset, DataConfig, SceneData
from wint3r_ros.train.evaluate import Sequence
from wint3r_ros.train.forward import forward_clip
from wint3r_ros.train.objective import clip_loss, rig_pairs
from wint3r_ros.train.trainer import TrainConfig, Trainer

__all__ = ["SELF_SUPERVISED", "parse_bag_spec", "split_held_out", "BagScenes", "BagClipDataset",
           "BagFinetuner"]

SELF_SUPERVISED = ("photometric", "smoothness", "pose_reg")
_SUPERVISED = ("points", "depth", "pose", "rig_pose", "reprojection")


def parse_bag_spec(spec: str) -> list[Path]:
    """``bag:PATH[,PATH...]`` -> the bag paths."""
    kind, _, rest = spec.partition(":")
    paths = [Path(p) for p in rest.split(",") if p]
    if kind != "bag" or not paths:
        raise ConfigError(f"--data {spec!r}: expected bag:PATH[,PATH...]")
    return paths


def split_held_out(seq: Sequence, held_out: float, min_sets: int) -> tuple[Sequence, Sequence]:
    """(training part, held-out part) of a bag sequence: the last `held_out` of its sets."""
    t = len(seq.images)
    keep = t - max(1, round(t * held_out)) if held_out > 0 else t
    if keep < min_sets:
        raise ConfigError(f"{seq.name}: {t} sets leave {keep} for training, fewer than one clip "
                          f"({min_sets} sets); record longer or lower --held-out")

    def part(sl: slice, suffix: str) -> Sequence:
        return dataclasses.replace(
            seq, name=f"{seq.name}{suffix}", images=seq.images[sl],
            depth=None if seq.depth is None else seq.depth[sl],
            world_from_cam=None if seq.world_from_cam is None else seq.world_from_cam[sl],
            stamps=seq.stamps[sl])

    return part(slice(0, keep), ":train"), part(slice(keep, t), ":held_out")


class BagScenes:
    """The training parts of the bags as `SceneData` (no depth, identity poses: never used)."""

    def __init__(self, parts: list[Sequence], rig: Any, supervised: bool = False) -> None:
        self.parts = parts
        K = np.stack([cam.K for cam in rig.cameras])
        self.scenes = []
        for i, p in enumerate(parts):
            depth = np.zeros(p.images.shape[:4], np.float32)
            poses = np.broadcast_to(np.eye(4), (*p.images.shape[:2], 4, 4)).copy()
            if supervised:
                if p.depth is None or p.world_from_cam is None or not (
                        np.isfinite(p.depth).all() and np.isfinite(p.world_from_cam).all()):
                    raise ConfigError(f"--supervised: {p.name} lacks ground-truth depth or poses for "
                                      "some training sets (make-bag's /ground_truth topics)")
                depth, poses = p.depth.astype(np.float32), p.world_from_cam
            self.scenes.append(SceneData(i, p.images, depth, poses, K, list(rig.camera_names)))

    def load(self, seed: int) -> SceneData:
        return self.scenes[seed]

    def prepare(self, seeds: list[int]) -> None:
        return None


class BagClipDataset(ClipDataset):
    """Every clip start (multiples of the window stride) of every bag's training part."""

    def __init__(self, config: DataConfig, scenes: BagScenes) -> None:
        super().__init__(config, list(range(len(scenes.scenes))), scenes)
        self.index = [(i, start) for i, s in enumerate(scenes.scenes)
                      for start in range(0, len(s.images) - config.clip_sets + 1, config.stride)]


def _checked_checkpoint(checkpoint: str | Path | None, preset: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """(path, state_dict) of the starting weights, refused before any model is built when they
    are another architecture than `preset`."""
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.weights import TINY_CHECKPOINT

    path = Path(checkpoint) if checkpoint is not None else TINY_CHECKPOINT
    state, stored = read_checkpoint(path)
    if stored is not None and stored != WinT3RConfig.preset(preset):
        raise ConfigError(f"--checkpoint {path} is another architecture than preset {preset!r}; "
                          "pass the matching --preset")
    return path, state


class BagFinetuner(Trainer):
    """`Trainer` on bags with the self-supervised objective (see the module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: str | Path, bags: list[Path], rig_path: Path,
                 checkpoint: str | Path | None = None, held_out: float = 0.25,
                 rig_weight: float = 1.0, supervised: bool = False, echo: Any = None) -> None:
        from wint3r_ros.data.rig_files import load_rig
        from wint3r_ros.train.bag_source import bag_sequence

        rig = load_rig(rig_path)
        seqs = [bag_sequence(bag, rig_path) for bag in bags]
        sizes = {s.images.shape[1:4] for s in seqs}
        if len(sizes) != 1:
            raise ConfigError(f"--data bags differ in cameras or image size: {sorted(sizes)}")
        n, h, w = sizes.pop()
        data = dataclasses.replace(config.data, num_cameras=n, width=w, height=h, train_scenes=len(seqs),
                                   frames_per_scene=min(len(s.images) for s in seqs))
        data = dataclasses.replace(data, frames_per_scene=max(data.frames_per_scene, data.clip_sets))
        loss = config.loss if supervised else dataclasses.replace(config.loss, **{k: 0.0 for k in _SUPERVISED})
        if not any(getattr(loss, k) for k in (*SELF_SUPERVISED, *_SUPERVISED)) and not (rig_weight and n > 1):
            raise ConfigError("fine-tuning on bags needs a loss term: set loss."
                              f"{'/'.join(SELF_SUPERVISED)} > 0 in the training YAML")
        config = dataclasses.replace(config, data=data, loss=loss)
        splits = [split_held_out(s, held_out, data.clip_sets) for s in seqs]
        self.held_out_parts = [h_ for _, h_ in splits]
        self.rig = rig
        self.rig_weight = float(rig_weight) if n > 1 else 0.0
        self.checkpoint, state = _checked_checkpoint(checkpoint, config.preset)
        super().__init__(config, out_dir, echo=echo)
        load_state_dict_into(self.model, {k: v.to(self.device) for k, v in state.items()},
                             source=str(self.checkpoint))
        self.cache = BagScenes([t for t, _ in splits], rig, supervised)
        self.train_set = BagClipDataset(data, self.cache)
        self._base_from_cam = pose_enc_from_world_from_cam(
            torch.from_numpy(np.stack([c.T_base_camera for c in rig.cameras]))).float().to(self.device)
        self.log["finetune"] = {"bags": [str(b) for b in bags], "rig": str(rig_path),
                                "checkpoint": str(self.checkpoint), "held_out": held_out,
                                "rig_weight": self.rig_weight, "supervised": supervised,
                                "train_sets": [len(t.images) for t, _ in splits],
                                "held_out_sets": [len(h_.images) for h_ in self.held_out_parts],
                                "clips": len(self.train_set)}

    def train_step(self, step: int) -> dict[str, float]:
        """clip_loss (supervised weights at 0 unless --supervised) + the rig term."""
        cfg = self.config
        clip = self.train_set[self.sample_index(step)].to(self.device)
        self.set_learning_rate(step)
        out = forward_clip(self.model, clip.images, clip.windows)
        loss, terms = clip_loss(out, clip, cfg.loss)
        if self.rig_weight:
            a, b = rig_pairs(out, clip)
            if len(a):
                cam = clip.camera[out.frame_index]
                one = torch.ones((), device=self.device)
                rig, parts = losses.rig_pose_loss(out.pose_iters[:, a], out.pose_iters[:, b],
                                                  self._base_from_cam[cam[a]],
                                                  self._base_from_cam[cam[b]], one, one,
                                                  cfg.loss.pose_gamma)
                loss = loss + self.rig_weight * rig
                # logged as the supervised rig_pose term is: the same loss, against the calibration
                terms.update(rig_pose=float(rig.detach()), **{f"rig_{k}": float(v) for k, v in parts.items()})
                terms["total"] = float(loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return self.clip_and_step(terms)

    def validate(self) -> dict[str, Any]:
        """The evaluation protocol on the held-out sets of every bag."""
        from wint3r_ros.train.evaluate import evaluate

        cfg = self.config
        self.model.eval()
        try:
            report = evaluate(self.model, self.held_out_parts,
                              WindowConfig(cfg.data.window_size, cfg.data.window_overlap),
                              cfg.data.input_long_side)
        finally:
            self.model.train()
        return report["summary"]
