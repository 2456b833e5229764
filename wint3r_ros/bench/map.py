"""`wint3r-ros bench map`: the accumulated map (`core.voxel_map.VoxelMap`) over a long run.

A synthetic rig drives down a corridor: every window inserts ``--points`` points spread over a
box ``--span`` m long that moves ``--step`` m per window, so part of each window falls into
voxels seen before and part into new ones. Measured per insert: milliseconds (median, mean,
p99, max: the merges and evictions are the slow ones), and over the run: voxels held, bytes of
the map's arrays against their bound, voxels evicted, process peak RSS. Output: one JSON
document (machine, versions, settings, results).
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.voxel_map import MapConfig, VoxelMap

__all__ = ["configure", "run", "bench_map"]


def bench_map(windows: int = 300, points: int = 10_000, max_points: int = 500_000,
              voxel_size: float = 0.05, span: float = 4.0, step: float = 0.5,
              seed: int = 0) -> dict[str, Any]:
    """Insert ``windows`` windows of ``points`` points; timings and memory (module docstring)."""
    rng = np.random.default_rng(seed)
    m = VoxelMap(MapConfig(voxel_size, max_points))
    ms, sizes = [], []
    for k in range(windows):
        pts = np.column_stack([k * step + rng.uniform(0, span, points),
                               rng.uniform(-3, 3, points),
                               rng.uniform(0, 2, points)]).astype(np.float32)
        cols = rng.integers(0, 256, (points, 3), dtype=np.uint8)
        t0 = time.perf_counter()
        m.insert(pts, cols)
        ms.append((time.perf_counter() - t0) * 1e3)
        sizes.append(m.nbytes)
    t = np.array(ms)
    return {"insert_ms": {"median": float(np.median(t)), "mean": float(t.mean()),
                          "p99": float(np.percentile(t, 99)), "max": float(t.max())},
            "voxels": len(m), "bytes": m.nbytes, "max_bytes": m.config.max_bytes,
            "peak_bytes": max(sizes), "evicted": m.evicted, "inserted_points": m.inserted,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--windows", type=int, default=300, help="windows inserted")
    parser.add_argument("--points", type=int, default=10_000, help="points per window")
    parser.add_argument("--max-points", type=int, default=500_000, help="the map's bound (voxels)")
    parser.add_argument("--voxel-size", type=float, default=0.05, help="voxel edge, m")
    parser.add_argument("--span", type=float, default=4.0, help="length of a window's box, m")
    parser.add_argument("--step", type=float, default=0.5, help="how far the box moves, m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.bench.core import machine_info
    from wint3r_ros.errors import ConfigError

    if args.windows < 1 or args.points < 1 or args.max_points < 1 or not args.voxel_size > 0:
        raise ConfigError(f"--windows {args.windows}, --points {args.points}, --max-points "
                          f"{args.max_points} must be >= 1 and --voxel-size {args.voxel_size} > 0")
    settings = {"windows": args.windows, "points": args.points, "max_points": args.max_points,
                "voxel_size": args.voxel_size, "span": args.span, "step": args.step,
                "seed": args.seed}
    doc = {"benchmark": "map", "what": "VoxelMap inserts over a long synthetic run: ms per "
           "window, memory against the bound", "machine": machine_info(), "settings": settings,
           "results": bench_map(**settings)}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
