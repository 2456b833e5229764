"""The card of a trained checkpoint: how it was made and what it measured (a small JSON file).

    python -m wint3r_ros.train.card RUN_DIR METRICS_JSON OUT_JSON --command "..." --eval-command "..."
        [--rig-metrics RIG_METRICS_JSON --rig-eval-command "..."] [--previous-card OLD_CARD_JSON]

reads RUN_DIR/log.json (training config, model config, wall time, validation curve) and the
reports that `wint3r-ros eval --out` wrote (synthetic:test; synthetic-rig:test for a rig
model), and writes the card next to the shipped weights. A fine-tuned checkpoint names the card
of the weights it started from (`--previous-card`: its command and training config become
`stages[0]`).
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch

from wint3r_ros.train.dataset import SPLITS
from wint3r_ros.train.trainer import clean_json

__all__ = ["make_card", "main"]


def make_card(run_dir: str | Path, metrics: str | Path, command: str, eval_command: str,
              checkpoint_name: str = "tiny.safetensors",
              confidence_threshold: float = 1.5, rig_metrics: str | Path | None = None,
              rig_eval_command: str = "", previous_card: str | Path | None = None
              ) -> dict[str, Any]:
    """The card as a dict (see the module docstring). confidence_threshold: the value the nodes
    and process-bag use for this checkpoint when theirs is 0 (1 keeps every pixel)."""
    log = json.loads((Path(run_dir) / "log.json").read_text())
    report = json.loads(Path(metrics).read_text())
    train = log["config"]
    data = train["data"]
    summary = report["summary"]
    extra: dict[str, Any] = {}
    if rig_metrics is not None:
        rig = json.loads(Path(rig_metrics).read_text())
        extra["rig_eval"] = {"command": rig_eval_command, "protocol": rig.get("protocol"),
                             **{k: rig["summary"].get(k) for k in
                                ("model", "baselines", "ratios", "targets", "metric_scale")}}
    if previous_card is not None:
        old = json.loads(Path(previous_card).read_text())
        extra["stages"] = [{"command": old.get("command"), "training_config": old.get("training_config"),
                            "training_seconds": old.get("training_seconds")},
                           {"command": command, "init": train.get("init")}]
    extra["validation"] = log.get("val", [])
    rigs = ("1 to {} cameras, one rig per scene (data.synthetic.RigFamily)".format(
        data.get("max_cameras")) if data.get("rig_family") == "random" else data["num_cameras"])
    return clean_json({
        "checkpoint": checkpoint_name,
        "model_preset": train["preset"],
        "model_config": log["model_config"],
        "model_config_hash": log["model_config_hash"],
        "input_long_side": data["input_long_side"],
        "confidence_threshold": confidence_threshold,
        "window": {"size": data["window_size"], "overlap": data["window_overlap"]},
        "trained_on": {"rig_cameras": rigs,
                       "image": f"{data['width']}x{data['height']}",
                       "scenes": f"train seeds {SPLITS['train'][0]}..{SPLITS['train'][0] + data['train_scenes'] - 1}",
                       "frames_per_scene": data["frames_per_scene"]},
        "split": {name: f"seeds {first}..{first + size - 1}" for name, (first, size) in SPLITS.items()},
        "command": command,
        "training_config": train,
        "training_steps": train["steps"],
        "training_seconds": round(log["seconds"], 1),
        "machine": {"cpu_threads": train["threads"], "platform": platform.platform(),
                    "torch": torch.__version__},
        "eval_command": eval_command,
        "eval_protocol": report.get("protocol"),
        "metrics": summary["model"],
        "baselines": summary["baselines"],
        "ratios": summary["ratios"],
        "targets": summary["targets"],
        **extra,
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the card of a trained checkpoint")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--command", required=True, help="the training command, as run")
    parser.add_argument("--eval-command", required=True, help="the evaluation command, as run")
    parser.add_argument("--checkpoint-name", default="tiny.safetensors")
    parser.add_argument("--confidence-threshold", type=float, default=1.5,
                        help="default depth confidence threshold for this checkpoint")
    parser.add_argument("--rig-metrics", type=Path, default=None,
                        help="eval report on synthetic-rig:test (a rig model)")
    parser.add_argument("--rig-eval-command", default="", help="the rig evaluation command, as run")
    parser.add_argument("--previous-card", type=Path, default=None,
                        help="card of the weights this run started from (init)")
    args = parser.parse_args(argv)
    card = make_card(args.run_dir, args.metrics, args.command, args.eval_command,
                     args.checkpoint_name, args.confidence_threshold, args.rig_metrics,
                     args.rig_eval_command, args.previous_card)
    args.out.write_text(json.dumps(card, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
