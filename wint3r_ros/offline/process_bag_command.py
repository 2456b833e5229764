"""``wint3r-ros process-bag``: the command line of `offline.process_bag` (arguments, the rig or
the bag's camera_info, the summary it prints, the exit code: 1 when no frame came out)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wint3r_ros.errors import ConfigError
from wint3r_ros.offline.process_bag import ProcessResult, process_bag
from wint3r_ros.offline.process_config import FLAG_PARAMETERS, ProcessConfig, settings_from_files

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    from wint3r_ros.data.bag import STORAGE_FORMATS

    parser.add_argument("input", type=Path, help="input rosbag2 (directory, .mcap or .db3)")
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--rig", type=Path, default=None,
                        help="rig calibration YAML (default: INPUT.rig.yaml beside the input, "
                             "as make-bag writes it)")
    parser.add_argument("--topics", nargs="+", default=None,
                        help="image topics (Image or CompressedImage) in the rig's camera order "
                             "(default: the rig's); without a rig file: the cameras cam0, cam1, "
                             "... in relative scale, as the nodes without rig_file")
    parser.add_argument("--camera-info", nargs="+", default=None, metavar="FILE",
                        help="no rig file: a ROS camera_info YAML per --topics entry (the "
                             "output camera_info's intrinsics)")
    parser.add_argument("--camera-info-topics", nargs="+", default=None, metavar="TOPIC",
                        help="no rig file: the bag's CameraInfo topic per --topics entry "
                             "(default: each image topic's sibling camera_info, where present)")
    parser.add_argument("--checkpoint", default=None,
                        help="model weights (default: the shipped tiny checkpoint)")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="fusion_node parameter YAML (e.g. config/wint3r.yaml): checkpoint, "
                             "preset, input size, confidence threshold, pool, cloud, frames")
    parser.add_argument("--sync-config", type=Path, default=None,
                        help="sync_node parameter YAML (e.g. config/rig.yaml): slop, "
                             "queue_size, min_cameras, window_length, window_overlap")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap",
                        help="output storage (default mcap)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--input-long-side", type=int, default=None,
                        help="model input long side (default: the checkpoint card's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--confidence-threshold", type=float, default=None,
                        help="depth below this model confidence is NaN (default 0: the "
                             "checkpoint card's value, as fusion_node; 1: keep all)")
    parser.add_argument("--max-sets", type=int, default=0,
                        help="stop after this many synchronised sets (0: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--save-map", type=Path, default=None, metavar="DIR",
                        help="also write the accumulated map into DIR: map.ply, map.pcd, "
                             "trajectory.tum, rig.yaml, settings.yaml (as ~/save_map)")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.data.rig_files import load_rig
    from wint3r_ros.errors import CalibrationError
    from wint3r_ros.offline.make_bag import rig_path_for

    cfg = settings_from_files(args.sync_config, args.model_config,
                              {k: getattr(args, k) for k in FLAG_PARAMETERS},
                              topics=tuple(args.topics or ()), storage=args.format,
                              max_sets=args.max_sets, progress=False if args.no_progress else None,
                              camera_info_files=tuple(args.camera_info or ()),
                              camera_info_topics=tuple(args.camera_info_topics or ()))
    rig_path = args.rig or rig_path_for(args.input)
    rig = None
    if Path(rig_path).is_file():
        try:
            rig = load_rig(rig_path)
        except CalibrationError as err:
            raise ConfigError(f"--rig {rig_path}: {err}") from err
    elif args.rig is not None or not args.topics:
        raise ConfigError(f"no rig file {rig_path}: pass --rig RIG.yaml (make-bag writes "
                          f"BAG.rig.yaml beside the bag; `wint3r-ros calibrate` makes one), or "
                          f"--topics T0 T1 ... for relative scale with the bag's camera_info")
    result = process_bag(args.input, args.out, rig, cfg, map_dir=args.save_map)
    _report(result, len(rig.cameras) if rig is not None else len(args.topics), cfg)
    if result.map_files:
        print(f"map: {', '.join(result.map_files)}")
    if result.frames_out == 0:
        print(f"process-bag: error: no frame came out of {args.input}: {result.frames_in} images "
              f"read, dropped {_drop_text(result.drops)}", file=sys.stderr)
        return 1
    return 0


def _drop_text(drops: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in drops.items() if v) or "none"


def _report(result: ProcessResult, cameras: int, cfg: ProcessConfig) -> None:
    print(f"wrote {result.out}: {result.frames_out} frames ({result.sets} sets x "
          f"{cameras} cameras, {result.windows} windows), {result.frames_dropped} "
          f"dropped, {result.frames_per_s:.1f} frames/s")
    print(f"weights: {result.weights}")
    if "meaningless" in result.weights:
        print("WARNING: the model weights are random: poses and depth are meaningless")
    if result.frames_dropped:
        print(f"WARNING: {result.frames_dropped} of {result.frames_in} images dropped "
              f"({_drop_text(result.drops)})"
              + (f"; silent camera(s) {', '.join(result.silent_cameras)} (sync_node's "
                 "min_cameras in --sync-config keeps the others going)"
                 if result.silent_cameras else ""), file=sys.stderr)
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    if result.buffer_budget_bytes:
        print(f"buffers: at most {result.peak_buffer_bytes / 2**20:.1f} MiB of images waiting for "
              f"a match or a window (buffer_budget_mb {result.buffer_budget_bytes >> 20})")
    if result.metrics is not None:
        m = result.metrics
        if m["depth_frames"] == 0 and result.frames_out:
            given = cfg.fusion["confidence_threshold"] or "of the checkpoint's card"
            print(f"note: no depth pixel passed the confidence threshold {given}; lower it "
                  f"with --confidence-threshold (1 keeps every pixel)")

        def f(x: Any) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        print(f"metrics ({result.metrics_path}): ATE {f(m['ate'])} m, RPE {f(m['rpe_trans'])} m "
              f"/ {f(m['rpe_rot_deg'])} deg, depth Abs Rel {f(m['abs_rel'])}, delta<1.25 "
              f"{f(m['delta1'])}")
