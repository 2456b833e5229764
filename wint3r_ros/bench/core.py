"""`wint3r-ros bench core`: synchronisation + windowing overhead per synchronised set.

Synthetic rig: N cameras at `rate` Hz with per-message stamp jitter, arriving in a shuffled
order inside each frame period (and optionally with dropped messages); each message carries a
real numpy image (H x W x 3 uint8, shared, so the cost of making images is not measured). The
timed work is exactly what a node does per message: `ApproximateTimePolicy.add` and, per
emitted set, `WindowBuilder.push`. Output: one JSON document (machine, versions, settings,
results per camera count).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from importlib import metadata
from typing import Any

import numpy as np

import wint3r_ros
from wint3r_ros.core.sync import ApproximateTimePolicy
from wint3r_ros.core.window import WindowBuilder, WindowConfig

__all__ = ["configure", "run", "bench_core"]


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": sys.version.split()[0],
            "versions": {"numpy": np.__version__, "torch": _version("torch"),
                         "wint3r_ros": wint3r_ros.__version__},
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def bench_core(cameras: int, rate: float, width: int, height: int, sets: int,
               jitter: float = 0.002, slop: float = 0.01, drop: float = 0.0,
               window: int = 4, overlap: int = 2, seed: int = 0) -> dict[str, Any]:
    """Feed `sets` frame periods of a synthetic N-camera rig through sync + windows; timings
    are per emitted synchronised set (microseconds)."""
    rng = random.Random(seed)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    names = [f"cam{i}" for i in range(cameras)]
    policy = ApproximateTimePolicy(cameras, queue_size=10, slop=slop, stream_names=names)
    builder = WindowBuilder(names, WindowConfig(window, overlap))
    period = 1.0 / rate
    arrivals = []
    for k in range(sets):
        order = list(range(cameras))
        rng.shuffle(order)
        for i in order:
            if drop and rng.random() < drop:
                continue
            stamp = 100.0 + k * period + rng.uniform(-jitter, jitter)
            arrivals.append((i, int(round(stamp * 1e9)), (i, k, image)))
    per_set_ns: list[int] = []
    pending_ns = 0
    n_sets = n_windows = 0
    clock = time.perf_counter_ns
    t_all = clock()
    for stream, stamp, item in arrivals:
        t0 = clock()
        out = policy.add(stream, stamp, item)
        for synced in out:
            if builder.push(synced) is not None:
                n_windows += 1
        pending_ns += clock() - t0
        if out:
            # the cost since the previous set, split over the sets this message completed
            share = pending_ns // len(out)
            per_set_ns.extend([share] * len(out))
            n_sets += len(out)
            pending_ns = 0
    total_ns = clock() - t_all
    us = np.asarray(per_set_ns, dtype=np.float64) / 1e3
    stats = policy.stats
    return {
        "cameras": cameras, "sets_offered": sets, "sets_emitted": n_sets, "windows": n_windows,
        "messages": len(arrivals),
        "mean_us_per_set": float(us.mean()) if len(us) else None,
        "p50_us_per_set": float(np.percentile(us, 50)) if len(us) else None,
        "p99_us_per_set": float(np.percentile(us, 99)) if len(us) else None,
        "max_us_per_set": float(us.max()) if len(us) else None,
        "wall_us_per_set_incl_loop": total_ns / 1e3 / max(n_sets, 1),
        "dropped": {s.name: s.dropped_total for s in stats.streams},
        "under_1ms": bool(len(us) and float(np.percentile(us, 99)) < 1000.0),
    }


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=None,
                        help="number of cameras (default: every N from 1 to 8)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz (30)")
    parser.add_argument("--width", type=int, default=640, help="image width (640)")
    parser.add_argument("--height", type=int, default=480, help="image height (480)")
    parser.add_argument("--sets", type=int, default=3000, help="frame periods to feed (3000)")
    parser.add_argument("--jitter", type=float, default=0.002, help="stamp jitter, +- s (0.002)")
    parser.add_argument("--slop", type=float, default=0.01, help="sync slop in s (0.01)")
    parser.add_argument("--drop", type=float, default=0.0, help="message drop probability (0)")
    parser.add_argument("--window", type=int, default=4, help="window size L (4)")
    parser.add_argument("--overlap", type=int, default=2, help="window overlap O (2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.errors import ConfigError

    if args.cameras is not None and args.cameras < 1:
        raise ConfigError(f"--cameras {args.cameras}: must be >= 1")
    if args.rate <= 0 or args.sets < 1 or args.width < 1 or args.height < 1:
        raise ConfigError(f"--rate {args.rate}, --sets {args.sets}, --width {args.width}, "
                          f"--height {args.height}: all must be positive")
    counts = [args.cameras] if args.cameras is not None else list(range(1, 9))
    settings = {k: getattr(args, k) for k in ("rate", "width", "height", "sets", "jitter", "slop",
                                              "drop", "window", "overlap", "seed")}
    results = [bench_core(n, args.rate, args.width, args.height, args.sets, args.jitter,
                          args.slop, args.drop, args.window, args.overlap, args.seed)
               for n in counts]
    doc = {"benchmark": "core", "what": "ApproximateTimePolicy.add + WindowBuilder.push per "
           "synchronised set (microseconds)", "machine": machine_info(), "settings": settings,
           "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0
