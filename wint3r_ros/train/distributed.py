"""Multi-process training with torch.distributed: ``torchrun --nproc_per_node N wint3r-ros train``.

`DistributedTrainer` is the `Trainer` with a global batch of ``clips_per_step`` clips per
optimizer step, split across the ranks:

- the sampler: global sample k is clip ``Trainer.sample_index(k)`` (a fixed function of k, as in
  one process); step s takes samples ``s*B .. s*B + B-1`` and rank r of W takes every W-th of
  them from r, so the ranks see disjoint clips and together exactly the single-process batch;
- DistributedDataParallel (gloo on the CPU, nccl on GPUs, one GPU per rank from LOCAL_RANK)
  averages the gradients; each rank's loss is its clips' sum / B, so the averaged gradient is
  the mean over the global batch, as one process with B clips computes it (then the same norm
  clipping and AdamW step on every rank: the weights stay equal);
- rank 0 renders the scene cache (the others wait), validates (the summary is broadcast),
  writes checkpoints, the log (with the clips every rank saw) and final.safetensors; the other
  ranks write into a scratch directory that is removed at the end;
- resume works across world sizes: the state holds the step, the order depends only on the
  step and B, so a run saved at step s with W ranks continues with any W' dividing B.

Environment (set by torchrun): RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. With
WORLD_SIZE 1 (or unset) it runs in this process without torch.distributed.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from wint3r_ros.errors import ConfigError
from wint3r_ros.train.forward import forward_clip
from wint3r_ros.train.objective import clip_loss
from wint3r_ros.train.trainer import TrainConfig, Trainer

__all__ = ["DistributedEnv", "distributed_env", "rank_samples", "DistributedTrainer"]


@dataclasses.dataclass(frozen=True)
class DistributedEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_env() -> DistributedEnv:
    """RANK / WORLD_SIZE / LOCAL_RANK from the environment (torchrun's), checked."""
    try:
        env = DistributedEnv(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                             int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as err:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {err}") from err
    if env.world_size < 1 or not 0 <= env.rank < env.world_size:
        raise ConfigError(f"RANK={env.rank} must lie in [0, WORLD_SIZE={env.world_size})")
    return env


def rank_samples(step: int, clips_per_step: int, rank: int, world_size: int) -> list[int]:
    """Global sample numbers of `rank` at `step`: every world_size-th of the step's batch."""
    return list(range(step * clips_per_step + rank, (step + 1) * clips_per_step, world_size))


class _ClipObjective(torch.nn.Module):
    """The model's clip forward + loss as one module, so DDP sees the forward it syncs."""

    def __init__(self, model: torch.nn.Module, loss_config: Any) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config

    def forward(self, clip: Any) -> tuple[torch.Tensor, dict[str, float]]:
        out = forward_clip(self.model, clip.images, clip.windows)
        return clip_loss(out, clip, self.loss_config)


class DistributedTrainer(Trainer):
    """`Trainer` over the ranks of torchrun (see the module docstring)."""

    def __init__(self, config: TrainConfig, out_dir: str | Path, clips_per_step: int | None = None,
                 env: DistributedEnv | None = None, echo: Callable[[str], None] | None = None) -> None:
        self.env = env or distributed_env()
        self.clips_per_step = clips_per_step or self.env.world_size
        if self.clips_per_step % self.env.world_size:
            raise ConfigError(f"--clips-per-step {self.clips_per_step} must be a multiple of the "
                              f"{self.env.world_size} ranks")
        backend = "gloo"
        if config.device in ("auto", "cuda") and torch.cuda.is_available():
            config = dataclasses.replace(config, device=f"cuda:{self.env.local_rank}")
            backend = "nccl"
        self.final_out = Path(out_dir)
        scratch = None if self.env.main else tempfile.mkdtemp(prefix=f"wint3r_rank{self.env.rank}_")
        super().__init__(config, self.final_out if scratch is None else scratch,
                         echo=echo if self.env.main else (lambda msg: None))
        self._scratch = scratch
        self.ddp = None
        if self.env.world_size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(backend)
            if self.env.main:
                self.cache.prepare(self.train_set.seeds)      # rendered once, by rank 0
            dist.barrier()
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                _ClipObjective(self.model, config.loss), device_ids=ids, find_unused_parameters=True)
        self.log["distributed"] = {"world_size": self.env.world_size, "backend": backend,
                                   "clips_per_step": self.clips_per_step}
        self.log.setdefault("clips", [])

    def train_step(self, step: int) -> dict[str, float]:
        """One optimizer step on this rank's share of the global batch of `step`."""
        cfg = self.config
        self.set_learning_rate(step)
        samples = rank_samples(step, self.clips_per_step, self.env.rank, self.env.world_size)
        clips = [self.sample_index(k) for k in samples]
        objective = self.ddp or _ClipObjective(self.model, cfg.loss)
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for i, index in enumerate(clips):
            clip = self.train_set[index].to(self.device)
            last = i == len(clips) - 1
            sync = self.ddp.no_sync() if self.ddp is not None and not last else nullcontext()
            with sync:
                loss, terms = objective(clip)
                (loss / self.clips_per_step).backward()
            for k, v in terms.items():
                totals[k] = totals.get(k, 0.0) + float(v) / len(clips)
        self.clip_and_step(totals)
        self._record_clips(step, clips)
        return totals

    def _record_clips(self, step: int, clips: list[int]) -> None:
        per_rank = [clips]
        if self.ddp is not None:
            import torch.distributed as dist

            per_rank = [None] * self.env.world_size
            dist.all_gather_object(per_rank, clips)
        self.log["clips"].append({"step": step, "ranks": per_rank})

    def validate(self) -> dict[str, Any]:
        """Rank 0 runs the evaluation protocol; every rank gets its summary."""
        summary = super().validate() if self.env.main else None
        if self.ddp is not None:
            import torch.distributed as dist

            box = [summary]
            dist.broadcast_object_list(box, src=0)
            summary = box[0]
        return summary

    def run(self) -> dict[str, Any]:
        try:
            return super().run()
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
            if self.ddp is not None:
                import torch.distributed as dist

                dist.barrier()
                dist.destroy_process_group()
