"""`wint3r-ros train --preset tiny --config config/train_tiny.yaml --out DIR [--resume CKPT]`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True,
                        help="training YAML (see config/train_tiny.yaml)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory: checkpoints/, last.*, final.safetensors, log.json")
    parser.add_argument("--preset", choices=("tiny", "official"), default=None,
                        help="model preset (default: the config's)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="checkpoint to continue from (.safetensors or .pt of a pair)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: config's)")
    parser.add_argument("--cache-dir", default=None, help="override data.cache_dir (rendered scenes)")
    parser.add_argument("--data", default=None,
                        help="bag:PATH[,PATH...]: fine-tune on your recordings with the "
                             "self-supervised terms (needs --rig; train/finetune.py)")
    parser.add_argument("--rig", type=Path, default=None, help="rig YAML of the --data bags")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="--data bag: start from these weights (default: the shipped tiny ones)")
    parser.add_argument("--held-out", type=float, default=0.25,
                        help="--data bag: last fraction of each bag's sets kept out of training "
                             "and validated on (default 0.25)")
    parser.add_argument("--rig-weight", type=float, default=1.0,
                        help="--data bag: weight of the calibrated-rig term (2+ cameras; default 1)")
    parser.add_argument("--supervised", action="store_true",
                        help="--data bag: also train the YAML's supervised terms on the bags' "
                             "make-bag ground truth (/ground_truth topics)")
    parser.add_argument("--clips-per-step", type=int, default=None,
                        help="global batch: clips per optimizer step, split across torchrun's ranks "
                             "(default: 1 per rank; train/distributed.py)")


def run(args: argparse.Namespace) -> int:
    # imported here, not at the top: the trainer imports torch, and `--help` must stay fast
    from wint3r_ros.train.trainer import TrainConfig, Trainer, config_hash

    config = TrainConfig.from_yaml(args.config)
    changes = {}
    if args.preset is not None:
        changes["preset"] = args.preset
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.device is not None:
        changes["device"] = args.device
    if args.cache_dir is not None:
        changes["data"] = dataclasses.replace(config.data, cache_dir=args.cache_dir)
    config = dataclasses.replace(config, **changes) if changes else config
    if args.data is not None:
        from wint3r_ros.errors import ConfigError
        from wint3r_ros.train.finetune import BagFinetuner, parse_bag_spec

        if args.rig is None:
            raise ConfigError("--data bag:... needs --rig (the bags' rig YAML, e.g. BAG.rig.yaml)")
        trainer = BagFinetuner(config, args.out, parse_bag_spec(args.data), args.rig,
                               args.checkpoint, args.held_out, args.rig_weight, args.supervised)
    elif args.clips_per_step is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from wint3r_ros.train.distributed import DistributedTrainer

        trainer: Trainer = DistributedTrainer(config, args.out, args.clips_per_step)
    else:
        trainer = Trainer(config, args.out)
    if args.resume is not None:
        trainer.resume(args.resume)
    log = trainer.run()
    summary = {"out": str(args.out), "final": str(Path(args.out) / "final.safetensors"),
               "steps": trainer.step, "seconds": round(log["seconds"], 1),
               "model_config_hash": config_hash(trainer.model_config),
               "val": log["val"][-1]["model"] if log["val"] else None}
    if getattr(trainer, "env", None) is None or trainer.env.main:
        print(json.dumps(summary))
    return 0
