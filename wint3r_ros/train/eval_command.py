"""`wint3r-ros eval --checkpoint CKPT --data synthetic:test [--bag BAG --rig RIG]`: the protocol of
docs/EVALUATION.md, printed and written as JSON (model, baselines, ratios, per sequence)."""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from wint3r_ros.data.datasets import DATASETS
from wint3r_ros.errors import ConfigError

__all__ = ["configure", "run", "format_table", "PROTOCOL"]

# The protocol's defaults (docs/EVALUATION.md): the rig, the windows and the sequence length.
PROTOCOL = {"cameras": 1, "width": 128, "height": 96, "frames": 24, "window": 4, "overlap": 2}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="weights (default: the shipped tiny checkpoint)")
    parser.add_argument("--data", default="synthetic:test",
                        help="synthetic:SPLIT (1-camera rig, --cameras) | synthetic-rig:SPLIT (a random rig "
                             "per scene) with SPLIT test | val | train (default synthetic:test), or "
                             "a dataset KIND:PATH (tum, bonn, 7scenes, scannet, kitti, kitti-depth; "
                             "docs/EVALUATION.md, Real datasets)")
    parser.add_argument("--bag", type=Path, default=None,
                        help="evaluate a rosbag2 recording instead (needs --rig)")
    parser.add_argument("--rig", type=Path, default=None, help="rig YAML of --bag")
    parser.add_argument("--gt-topic", default=None,
                        help="--bag: ground truth from this TF, Odometry or PoseStamped topic "
                             "(default: make-bag's /ground_truth/tf)")
    parser.add_argument("--gt-frame", default=None,
                        help="--bag: the frame whose pose --gt-topic gives: the rig's base frame, "
                             "a camera frame, or one tied to the base by /tf_static (Odometry: "
                             "default its child frame)")
    parser.add_argument("--gt-max-gap", type=float, default=0.1,
                        help="--bag: interpolate ground truth between samples at most this many "
                             "seconds apart (default 0.1)")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"synchronised sets per sequence (default {PROTOCOL['frames']}; "
                             "a bag: all; a dataset: its protocol's)")
    parser.add_argument("--start", type=int, default=None,
                        help="a dataset: first frame (default: the dataset's protocol)")
    parser.add_argument("--stride", type=int, default=None,
                        help="a dataset: take every N-th frame (default: the dataset's protocol)")
    parser.add_argument("--trajectories", type=Path, default=None,
                        help="write each sequence's estimated and true camera trajectories here "
                             "in the TUM format (NAME.est.tum, NAME.gt.tum; evo reads them)")
    parser.add_argument("--scenes", type=int, default=None,
                        help="first N scenes of the split (default: all 20)")
    parser.add_argument("--cameras", type=int, default=PROTOCOL["cameras"],
                        help=f"synthetic rig cameras (default {PROTOCOL['cameras']})")
    parser.add_argument("--input-long-side", type=int, default=None,
                        help="model input long side (default: the checkpoint card's, else 128)")
    parser.add_argument("--window", type=int, default=PROTOCOL["window"], help="window length L")
    parser.add_argument("--overlap", type=int, default=PROTOCOL["overlap"], help="window overlap O")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32",
                        choices=("auto", "fp32", "bf16", "fp16", "int8"),
                        help="model precision (docs/MODEL.md, Device and precision)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")


_ROWS = (("ate", "ATE (m, Sim3)", ("static_pose", "constant_velocity_pose")),
         ("rpe_trans", "RPE trans (m)", ("static_pose", "constant_velocity_pose")),
         ("rpe_rot_deg", "RPE rot (deg)", ("static_pose", "constant_velocity_pose")),
         ("abs_rel", "depth Abs Rel (median-scaled)", ("constant_median_depth",)),
         ("delta1", "delta < 1.25 (median-scaled)", ("constant_median_depth",)))
_BASELINE_NAMES = {"static_pose": "static", "constant_velocity_pose": "const. velocity",
                   "constant_median_depth": "const. depth"}


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a readable table: each metric, the model, every baseline and the ratio
    model / baseline; then the metric-scale results (no median scaling) on their own."""
    def num(x: Any, spec: str = ".4f") -> str:
        return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)

    model, baselines = summary["model"], summary["baselines"]
    lines = [f"{'metric':<30} {'model':>9}  {'baseline':<16} {'value':>9} {'model/baseline':>15}"]
    for key, label, names in _ROWS:
        for i, name in enumerate(names):
            value = baselines.get(name, {}).get(key)
            ratio = (model.get(key) / value) if value and model.get(key) is not None \
                and math.isfinite(value) and math.isfinite(model[key]) else None
            lines.append(f"{label if i == 0 else '':<30} {num(model.get(key)) if i == 0 else '':>9}  "
                         f"{_BASELINE_NAMES[name]:<16} {num(value):>9} {num(ratio, '.2f'):>15}")
    lines.append(f"{'frames/s (engine)':<30} {num(model.get('frames_per_s'), '.1f'):>9}")
    scale = summary.get("metric_scale")
    if scale:
        lines += ["", f"metric scale ({scale['sequences']} calibrated rig sequences; no median scaling):",
                  f"  sets with an accepted scale      {num(scale['accepted_share'], '.1%')} "
                  f"(after the first two windows {num(scale['accepted_share_after_2_windows'], '.1%')}; "
                  f"{scale['sequences_with_scale']} of {scale['sequences']} sequences ever metric)",
                  f"  scale error (median / mean)      {num(scale['scale_error_median'], '.3f')} / "
                  f"{num(scale['scale_error_mean'], '.3f')} over {scale['metric_frames']} metric frames",
                  f"  metric depth Abs Rel             {num(scale['abs_rel_metric'], '.4f')}",
                  f"  ATE of metric frames (SE3, m)    {num(scale['ate_se3_metric'], '.4f')}"]
    return "\n".join(lines)


def _long_side(args: argparse.Namespace, checkpoint: Path) -> int:
    if args.input_long_side is not None:
        return args.input_long_side
    card = checkpoint.with_suffix(".json")
    if card.is_file():
        try:
            return int(json.loads(card.read_text())["input_long_side"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"checkpoint card {card}: no readable input_long_side") from err
    return 128


def export_trajectories(folder: Path, seq: Any, est: Any) -> None:
    """NAME[_CAMERA].est.tum and .gt.tum of one sequence (camera-to-world, frames with a true
    pose only, so both files hold the same stamps)."""
    import numpy as np

    from wint3r_ros.train.dataset_source import write_tum_trajectory

    if seq.world_from_cam is None:
        return
    stamps = seq.stamps_ns if seq.stamps_ns is not None else np.round(seq.stamps * 1e9).astype(np.int64)
    name = seq.name.replace(":", "_").replace("/", "_")
    for c, camera in enumerate(seq.camera_names):
        known = np.isfinite(seq.world_from_cam[:, c]).all((-2, -1))
        stem = name if len(seq.camera_names) == 1 else f"{name}_{camera}"
        write_tum_trajectory(folder / f"{stem}.est.tum", stamps[known], est[known, c])
        write_tum_trajectory(folder / f"{stem}.gt.tum", stamps[known], seq.world_from_cam[known, c])


def run(args: argparse.Namespace) -> int:
    import torch  # here, not at the top: `--help` stays fast

    from wint3r_ros.core.window import WindowConfig
    from wint3r_ros.model.checkpoint import load_model
    from wint3r_ros.train.dataset import DATA_KINDS, DataConfig, parse_data_spec, split_seeds
    from wint3r_ros.train.evaluate import evaluate, synthetic_sequences
    from wint3r_ros.train.trainer import clean_json, config_hash
    from wint3r_ros.weights import TINY_CHECKPOINT

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or TINY_CHECKPOINT
    model = load_model(checkpoint, device=args.device, precision=args.precision)
    long_side = _long_side(args, checkpoint)
    window = WindowConfig(args.window, args.overlap)
    protocol: dict[str, Any] = {"window": args.window, "overlap": args.overlap,
                                "input_long_side": long_side,
                                "ate": "sim3 umeyama over all camera centres per sequence",
                                "depth": "per-frame median scaling, all pixels, averaged over frames"}
    if args.bag is not None:
        if args.rig is None:
            raise ConfigError("--bag needs --rig (the rig YAML, e.g. BAG.rig.yaml from make-bag)")
        from wint3r_ros.train.bag_source import bag_sequence

        sequences = [bag_sequence(args.bag, args.rig, args.frames, gt_topic=args.gt_topic,
                                  gt_frame=args.gt_frame, gt_max_gap_ns=round(args.gt_max_gap * 1e9))]
        protocol.update(data=f"bag:{args.bag}", rig=str(args.rig), gt_topic=args.gt_topic,
                        gt_frame=args.gt_frame)
    elif args.data.partition(":")[0] in DATASETS:
        from wint3r_ros.train.dataset_source import dataset_sequences, protocol_for

        kind = args.data.partition(":")[0]
        chosen = protocol_for(kind, args.start, args.frames, args.stride)
        sequences = dataset_sequences(args.data, chosen)
        protocol.update(data=args.data, **{k: v for k, v in asdict(chosen).items()},
                        depth=f"median scaling per {chosen.depth_scaling}, depth capped at "
                              f"{chosen.max_depth} m")
    else:
        kind, split = parse_data_spec(args.data)
        frames = args.frames or PROTOCOL["frames"]
        seeds = split_seeds(split, args.scenes)
        data = DataConfig(num_cameras=args.cameras, width=PROTOCOL["width"],
                          height=PROTOCOL["height"], window_size=args.window,
                          window_overlap=args.overlap, windows_per_clip=1,
                          frames_per_scene=max(frames, args.window), input_long_side=long_side,
                          rig_family=DATA_KINDS[kind])
        sequences = synthetic_sequences(seeds, frames, data)
        protocol.update(data=args.data, seeds=[seeds[0], seeds[-1]], frames=frames,
                        cameras="one rig per scene (data.synthetic.RigFamily)"
                        if data.rig_family == "random" else args.cameras,
                        image=f"{PROTOCOL['width']}x{PROTOCOL['height']}")

    def progress(scores: dict[str, Any]) -> None:
        pose = scores.get("model_pose", {})
        depth = scores.get("model_depth", {})
        print(f"{scores['name']}: ate {pose.get('ate', float('nan')):.4f} "
              f"abs_rel {depth.get('abs_rel', float('nan')):.4f}", file=sys.stderr, flush=True)

    report = evaluate(model, sequences, window, long_side, progress=progress,
                      trajectory=None if args.trajectories is None else
                      partial(export_trajectories, args.trajectories))
    report = {"checkpoint": str(checkpoint), "model_config_hash": config_hash(model.config),
              "device": str(next(model.parameters()).device), "precision": model.precision,
              "protocol": protocol, **report}
    report = clean_json(report)
    s = report["summary"]
    m, b = s["model"], s["baselines"]
    print(json.dumps({"model": m, "baselines": b, "ratios": s["ratios"], "targets": s["targets"],
                      "metric_scale": s.get("metric_scale")}, indent=1))
    print(format_table(s), file=sys.stderr)  # stdout stays one JSON document
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0
