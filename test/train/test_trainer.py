"""The training loop learns, resumes exactly, and reads its config strictly."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import yaml

from wint3r_ros import cli
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.checkpoint import read_checkpoint
from wint3r_ros.train.dataset import ClipDataset
from wint3r_ros.train.forward import forward_clip
from wint3r_ros.train.objective import LossWeights, clip_loss
from wint3r_ros.train.trainer import OptimConfig, TrainConfig, Trainer


def test_a_few_steps_on_one_clip_reduce_every_supervised_term(small_train, tmp_path):
    weights = LossWeights(points=1, pose=1, photometric=0.1, smoothness=0.01, reprojection=0.01,
                          pose_reg=0.01)
    cfg = dataclasses.replace(small_train, loss=weights,
                              optim=OptimConfig(lr=1e-3, warmup_steps=1, min_lr_ratio=1.0))
    trainer = Trainer(cfg, tmp_path / "run")
    clip = ClipDataset(cfg.data, [5])[0]

    def losses() -> dict[str, float]:
        with torch.no_grad():
            return clip_loss(forward_clip(trainer.model, clip.images, clip.windows), clip, weights)[1]

    before = losses()
    assert set(before) >= {"points", "pose", "photometric", "smoothness", "reprojection", "pose_reg"}
    for _ in range(12):
        out = forward_clip(trainer.model, clip.images, clip.windows)
        loss, _ = clip_loss(out, clip, weights)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
    after = losses()
    assert after["total"] < 0.7 * before["total"]
    assert after["points"] < before["points"] and after["pose"] < before["pose"]


def test_resume_continues_exactly_like_the_uninterrupted_run(small_train, tmp_path):
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(small_train.to_dict()))
    straight = tmp_path / "straight"
    assert cli.main(["train", "--config", str(config_path), "--out", str(straight)]) == 0
    for name in ("final.safetensors", "last.pt", "checkpoints/step_000002.pt",
                 "checkpoints/step_000004.safetensors", "log.json"):
        assert (straight / name).is_file(), name

    resumed = Trainer(small_train, tmp_path / "resumed")
    resumed.resume(straight / "checkpoints" / "step_000002.safetensors")
    assert resumed.step == 2
    resumed.run()
    a, _ = read_checkpoint(straight / "final.safetensors")
    b, _ = read_checkpoint(tmp_path / "resumed" / "final.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)
    opt_a = torch.load(straight / "last.pt", weights_only=True)["optimizer"]["state"]
    opt_b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.allclose(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"], atol=1e-7) for i in opt_a)
    log_a = json.loads((straight / "log.json").read_text())
    log_b = json.loads((tmp_path / "resumed" / "log.json").read_text())
    assert [r["step"] for r in log_a["train"]] == [1, 2, 3, 4]
    assert [round(r["total"], 4) for r in log_a["train"][2:]] == \
        [round(r["total"], 4) for r in log_b["train"][2:]]
    assert log_a["val"] and "abs_rel" in log_a["val"][-1]["model"]


def test_training_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("steps: 10\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_yaml(path)
    path.write_text("loss:\n  points: -1\n")
    with pytest.raises(ConfigError, match="loss.points"):
        TrainConfig.from_yaml(path)
    path.write_text("data:\n  colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        TrainConfig.from_yaml(path)


def test_the_shipped_training_config_parses():
    from pathlib import Path

    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "config" / "train_tiny.yaml")
    assert cfg.preset == "tiny" and cfg.data.window_size == 4 and cfg.data.window_overlap == 2


def test_learning_rate_warms_up_then_decays_to_the_floor():
    o = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert o.lr_factor(0, 100) == pytest.approx(0.1)
    assert o.lr_factor(9, 100) == pytest.approx(1.0)
    assert o.lr_factor(100, 100) == pytest.approx(0.1)


def test_the_rig_recipe_parses_and_its_curriculum_grows_from_one_camera(tmp_path):
    from pathlib import Path

    from wint3r_ros.weights import TINY_CHECKPOINT

    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "config" / "train_rig.yaml")
    assert cfg.data.rig_family == "random" and cfg.loss.rig_pose > 0 and cfg.init
    small = dataclasses.replace(cfg, init="tiny", threads=1, device="cpu",
                                data=dataclasses.replace(cfg.data, train_scenes=1,
                                                         cache_dir=str(tmp_path / "cache")))
    trainer = Trainer(small, tmp_path / "run")
    # fine-tuning starts from the given weights, exactly
    state, _ = read_checkpoint(TINY_CHECKPOINT)
    name, tensor = next(iter(state.items()))
    assert torch.equal(dict(trainer.model.state_dict())[name], tensor)
    stages = [trainer.cameras_at(s) for s in (0, 39, 40, 80, 120, 159, 160, 449)]
    assert stages == [1, 1, 2, 3, 4, 4, None, None]  # 160 steps: 1, 2, 3, 4 cameras, then all
    from wint3r_ros.errors import CheckpointError

    with pytest.raises(CheckpointError, match="init"):
        Trainer(dataclasses.replace(small, init=str(tmp_path / "missing.safetensors")), tmp_path / "r2")


def test_the_rig_term_joins_the_objective_for_pairs_of_one_set(small_train):
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R
    from wint3r_ros.train.objective import rig_pairs

    data = small_train.data  # 2 cameras, windows of 2 sets overlapping by 1, clips of 3 sets
    clip = ClipDataset(data, [4])[0]
    model = WinT3R(WinT3RConfig.tiny()).init_weights(0)
    with torch.no_grad():
        out = forward_clip(model, clip.images, clip.windows)
    a, b = rig_pairs(out, clip)
    # each window occurrence of a set gives one (cam0, cam1) pair: 2 windows x 2 sets
    fi = out.frame_index
    assert len(a) == 4
    assert (clip.camera[fi[a]] == 0).all() and (clip.camera[fi[b]] == 1).all()
    assert torch.equal(clip.step[fi[a]], clip.step[fi[b]])
    assert torch.equal(out.window_index[a], out.window_index[b])
    _, terms = clip_loss(out, clip, LossWeights(points=0, pose=0, rig_pose=1.0))
    assert set(terms) >= {"rig_pose", "rig_rot", "rig_dir", "rig_baseline"} and terms["rig_pose"] > 0
