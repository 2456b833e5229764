"""``train --data bag:PATH --rig RIG``: self-supervised fine-tuning on a recording with no
ground truth (photometric, smoothness, the calibrated rig), held-out sets kept out of training."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from wint3r_ros import cli
from wint3r_ros.data.bag import BagReader, BagWriter
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.checkpoint import read_checkpoint
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag, rig_path_for
from wint3r_ros.train.finetune import BagFinetuner, parse_bag_spec, split_held_out
from wint3r_ros.train.trainer import TrainConfig
from wint3r_ros.weights import TINY_CHECKPOINT


@pytest.fixture(scope="module")
def camera_only_bag(tmp_path_factory):
    """A 2-camera make-bag recording with every ground-truth topic removed (12 sets, 64x48)."""
    tmp = tmp_path_factory.mktemp("ft")
    made = make_bag(tmp / "made", MakeBagConfig(cameras=2, frames=12, scene=2001, width=64, height=48))
    bag = tmp / "cams"
    with BagReader(made.bag) as r, BagWriter(bag, "mcap") as w:
        for cam in made.rig.cameras:
            w.add_topic(cam.topic, "sensor_msgs/msg/Image")
        for x in r.messages([c.topic for c in made.rig.cameras] + ["/tf_static"]):
            w.write(x.topic, x.msg, x.log_time_ns)
    rig_path_for(bag).write_text(made.rig_path.read_text())
    return bag, rig_path_for(bag)


def _config(steps: int = 2) -> TrainConfig:
    base = TrainConfig.from_yaml("config/finetune_bag.yaml")
    return dataclasses.replace(base, steps=steps, threads=1, device="cpu", log_every=1,
                               data=dataclasses.replace(base.data, input_long_side=64))


def test_finetuning_on_a_bag_without_ground_truth_uses_only_unsupervised_terms(camera_only_bag, tmp_path):
    bag, rig = camera_only_bag
    with BagReader(bag) as r:
        assert not any(t.startswith("/ground_truth") for t in r.topics)
    ft = BagFinetuner(_config(), tmp_path / "ft", [bag], rig)
    assert ft.log["finetune"]["train_sets"] == [9] and ft.log["finetune"]["held_out_sets"] == [3]
    # clips (6 sets) only from the 9 training sets: starts 0 and 2
    assert [start for _, start in ft.train_set.index] == [0, 2]
    assert all(getattr(ft.config.loss, k) == 0 for k in ("points", "pose", "depth", "reprojection"))
    before = {k: v.clone() for k, v in ft.model.state_dict().items()}
    log = ft.run()
    row = log["train"][-1]
    assert row["photometric"] > 0 and row["rig_pose"] > 0 and "points" not in row
    after = read_checkpoint(tmp_path / "ft" / "final.safetensors")[0]
    assert max(float((after[k] - before[k]).abs().max()) for k in before) > 0
    # no ground truth: validation reports speed only
    assert math.isnan(log["val"][-1]["model"]["ate"]) and log["val"][-1]["model"]["frames_per_s"] > 0


def test_finetune_command_starts_from_a_checkpoint_and_refuses_another_architecture(camera_only_bag, tmp_path,
                                                                                      capsys):
    bag, rig = camera_only_bag
    assert cli.main(["train", "--config", "config/finetune_bag.yaml", "--data", f"bag:{bag}", "--rig", str(rig),
                     "--checkpoint", str(TINY_CHECKPOINT), "--steps", "1", "--device", "cpu",
                     "--out", str(tmp_path / "run")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["finetune"]["checkpoint"] == str(TINY_CHECKPOINT)
    assert cli.main(["train", "--config", "config/finetune_bag.yaml", "--data", f"bag:{bag}", "--rig", str(rig),
                     "--preset", "official", "--steps", "1", "--out", str(tmp_path / "bad")]) == 1
    assert "another architecture" in capsys.readouterr().err


def test_bag_specs_and_held_out_split():
    assert [p.name for p in parse_bag_spec("bag:/a/x,/b/y")] == ["x", "y"]
    with pytest.raises(ConfigError, match="bag:PATH"):
        parse_bag_spec("synthetic:train")
    from wint3r_ros.train.evaluate import Sequence

    seq = Sequence("s", np.zeros((12, 1, 2, 2, 3), np.uint8), None, None, np.arange(12.0), ["c"])
    train, held = split_held_out(seq, 0.25, 6)
    assert len(train.images) == 9 and held.stamps.tolist() == [9.0, 10.0, 11.0]
    with pytest.raises(ConfigError, match="fewer than one clip"):
        split_held_out(seq, 0.6, 6)


def test_supervised_finetuning_uses_a_make_bag_recordings_ground_truth(camera_only_bag, tmp_path):
    bag, rig = camera_only_bag
    with pytest.raises(ConfigError, match="lacks ground-truth depth or poses"):
        BagFinetuner(_config(1), tmp_path / "none", [bag], rig, supervised=True)
    made = bag.parent / "made"                       # the same recording with its ground truth
    ft = BagFinetuner(_config(1), tmp_path / "sup", [made], rig_path_for(made), supervised=True)
    row = ft.run()["train"][-1]
    assert row["points"] > 0 and row["pose"] > 0 and row["photometric"] > 0
