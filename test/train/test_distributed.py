"""``torchrun --nproc_per_node 2 wint3r-ros train`` on the CPU (gloo): the ranks see disjoint
clips, the weights equal one process with the same global batch, and a 2-rank checkpoint
resumes in one process to the same weights."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wint3r_ros.model.checkpoint import read_checkpoint
from wint3r_ros.train.distributed import DistributedEnv, DistributedTrainer, rank_samples
from wint3r_ros.yaml_io import dump_yaml

TOL = 1e-5      # float32 all-reduce sums in another order than one process's accumulation


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[0]


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """A 4-step run of 2 gloo ranks (1 clip each per step), checkpoint at step 2."""
    from wint3r_ros.train.dataset import DataConfig
    from wint3r_ros.train.trainer import OptimConfig, TrainConfig

    tmp = tmp_path_factory.mktemp("ddp")
    data = DataConfig(num_cameras=2, width=64, height=48, frames_per_scene=6, window_size=2,
                      window_overlap=1, windows_per_clip=2, input_long_side=64, train_scenes=2,
                      val_scenes=1, cache_dir=str(tmp / "cache"))
    config = dataclasses.replace(TrainConfig(), steps=4, threads=1, device="cpu", log_every=1,
                                 val_every=0, checkpoint_every=2, val_frames=4, data=data,
                                 optim=OptimConfig(lr=1e-3, warmup_steps=1))
    path = tmp / "train.yaml"
    path.write_text(dump_yaml(config.to_dict()))
    out = tmp / "ddp_out"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run([str(Path(sys.executable).with_name("torchrun")), "--standalone",
                          "--nproc_per_node", "2", "-m", "wint3r_ros.cli", "train",
                          "--config", str(path), "--out", str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return config, out, run


def test_two_gloo_ranks_see_disjoint_clips_of_the_single_process_batch(two_ranks):
    config, out, run = two_ranks
    log = json.loads((out / "log.json").read_text())
    assert log["distributed"] == {"world_size": 2, "backend": "gloo", "clips_per_step": 2}
    assert [r["step"] for r in log["clips"]] == [0, 1, 2, 3]
    single = DistributedTrainer(config, out.parent / "probe", clips_per_step=2, env=DistributedEnv())
    for row in log["clips"]:
        r0, r1 = row["ranks"]
        assert len(r0) == len(r1) == 1 and not set(r0) & set(r1)
        expected = [single.sample_index(k) for k in rank_samples(row["step"], 2, 0, 1)]
        assert r0 + r1 == expected
    assert len(json.loads(run.stdout.strip().splitlines()[-1])) > 0     # one summary, from rank 0
    assert run.stdout.count('"final"') == 1


def test_two_ranks_end_with_the_weights_of_one_process_with_the_same_global_batch(two_ranks, tmp_path):
    config, out, _ = two_ranks
    single = DistributedTrainer(config, tmp_path / "single", clips_per_step=2, env=DistributedEnv())
    single.run()
    diff = _max_diff(_weights(out / "final.safetensors"), _weights(tmp_path / "single" / "final.safetensors"))
    print(f"two ranks vs one process: max |dw| {diff:.3g}")
    assert diff < TOL
    start = DistributedTrainer(config, tmp_path / "start", clips_per_step=2, env=DistributedEnv())
    moved = _max_diff(_weights(out / "final.safetensors"),
                      {k: v.detach().cpu() for k, v in start.model.state_dict().items()})
    print(f"training moved the weights by up to {moved:.3g}")
    assert moved > 100 * TOL                        # training changed the weights: a real check


def test_a_two_rank_checkpoint_resumes_in_one_process_to_the_same_weights(two_ranks, tmp_path):
    config, out, _ = two_ranks
    resumed = DistributedTrainer(config, tmp_path / "resumed", clips_per_step=2, env=DistributedEnv())
    resumed.resume(out / "checkpoints" / "step_000002.safetensors")
    assert resumed.step == 2
    resumed.run()
    diff = _max_diff(_weights(out / "final.safetensors"), _weights(tmp_path / "resumed" / "final.safetensors"))
    assert diff < TOL


def test_the_global_batch_must_split_evenly_across_the_ranks(tmp_path):
    from wint3r_ros.errors import ConfigError
    from wint3r_ros.train.trainer import TrainConfig

    with pytest.raises(ConfigError, match="multiple of the 2 ranks"):
        DistributedTrainer(TrainConfig(), tmp_path, clips_per_step=3, env=DistributedEnv(0, 2, 0))
    assert rank_samples(5, 4, 1, 2) == [21, 23] and rank_samples(5, 4, 0, 2) == [20, 22]
