"""`wint3r-ros bench pipeline`: process-bag throughput on a synthetic bag, and where time goes.

A make-bag recording (N cameras, `--frames` sets, `--width` x `--height`, scene `--seed`) is
written to a temporary directory (not timed; nor is loading the model), then `process_bag` runs on it exactly as
``wint3r-ros process-bag`` does (tiny model: the shipped checkpoint by default, or seeded
random weights with ``--random-weights``; the speed is the same). Reported: frames (images) per
second over the whole run (open to close, including ground-truth scoring) and the seconds and
share of each phase: read + decode (bag reading, CDR deserialisation, image conversion),
sync + windows, model (the engine: preprocessing, network, merge, points), write (building the
output messages and writing the bag), score (against the bag's ground truth), other (the rest).
One JSON document with machine, versions and settings.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["configure", "run", "bench_pipeline"]


def bench_pipeline(cameras: int = 3, frames: int = 60, width: int = 128, height: int = 96,
                   storage: str = "mcap", threads: int = 1, random_weights: bool = False,
                   input_long_side: int = 0, seed: int = 0, repeats: int = 1) -> dict[str, Any]:
    """Make the bag, run process_bag `repeats` times; results of each run and the best."""
    import torch

    from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
    from wint3r_ros.offline.process_bag import ProcessConfig, process_bag

    model = None
    if random_weights:
        from wint3r_ros.model.config import WinT3RConfig
        from wint3r_ros.model.network import WinT3R

        model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=seed).eval()
    runs = []
    with tempfile.TemporaryDirectory(prefix="wint3r_bench_pipeline_") as tmp:
        made = make_bag(Path(tmp) / "input", MakeBagConfig(
            cameras=cameras, frames=frames, scene=seed, storage=storage, width=width,
            height=height))
        for k in range(repeats):
            cfg = ProcessConfig(fusion={"device": "cpu", "input_long_side": input_long_side,
                                        "torch_threads": threads},
                                storage=storage, progress=False)
            res = process_bag(made.bag, Path(tmp) / f"out{k}", made.rig, cfg, model=model,
                              log=lambda text: None)
            total = res.timings["total"]
            phases = {k2: v for k2, v in res.timings.items() if k2 not in ("total", "load_model")}
            other = max(0.0, total - sum(phases.values()))
            runs.append({
                "frames_out": res.frames_out, "sets": res.sets, "windows": res.windows,
                "frames_dropped": res.frames_dropped, "seconds": total,
                "frames_per_s": res.frames_out / total if total > 0 else None,
                "sets_per_s": res.sets / total if total > 0 else None,
                "phase_seconds": {**phases, "other": other},
                "phase_share": {k2: v / total for k2, v in {**phases, "other": other}.items()},
                "load_model_seconds": res.timings["load_model"],
                "torch_threads": torch.get_num_threads(),
                "weights": res.weights, "output_messages": sum(res.counts.values())})
    best = max(runs, key=lambda r: r["frames_per_s"] or 0.0)
    return {"best": best, "runs": runs}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=3, help="cameras (3)")
    parser.add_argument("--frames", type=int, default=60, help="synchronised sets (60)")
    parser.add_argument("--width", type=int, default=128, help="image width (128)")
    parser.add_argument("--height", type=int, default=96, help="image height (96)")
    parser.add_argument("--format", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1; 0: auto, as the nodes' torch_threads)")
    parser.add_argument("--input-long-side", type=int, default=0,
                        help="model input long side (0: the checkpoint card's, 128)")
    parser.add_argument("--random-weights", action="store_true",
                        help="seeded random tiny weights instead of the shipped checkpoint")
    parser.add_argument("--repeats", type=int, default=2, help="runs on the same bag (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.bench.core import machine_info
    from wint3r_ros.errors import ConfigError

    if args.cameras < 1 or args.frames < 1 or args.repeats < 1:
        raise ConfigError(f"--cameras {args.cameras}, --frames {args.frames}, --repeats "
                          f"{args.repeats}: all must be >= 1")
    settings = {"cameras": args.cameras, "frames": args.frames, "width": args.width,
                "height": args.height, "storage": args.format, "threads": args.threads,
                "input_long_side": args.input_long_side, "random_weights": args.random_weights,
                "repeats": args.repeats, "seed": args.seed, "model": "tiny", "device": "cpu"}
    results = bench_pipeline(args.cameras, args.frames, args.width, args.height, args.format,
                             args.threads, args.random_weights, args.input_long_side, args.seed,
                             args.repeats)
    doc = {"benchmark": "pipeline", "what": "process-bag on a make-bag synthetic bag: frames "
           "(images) per second, seconds and share per phase (read+decode, sync+windows, model, "
           "write)", "machine": machine_info(), "settings": settings, "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0
