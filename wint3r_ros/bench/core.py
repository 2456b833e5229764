"""`wint3r-ros bench core`: synchronisation + windowing overhead per synchronised set, and how
many sets synchronisation finds on hard streams.

Synthetic rig: N cameras at `rate` Hz with per-message stamp jitter, arriving in a shuffled
order inside each frame period (optionally with dropped messages, and with neighbouring
messages swapped so a camera's frame t+1 may arrive before its frame t); each message carries a
real numpy image (H x W x 3 uint8, shared, so the cost of making images is not measured). The
timed work is exactly what a node does per message: `Synchronizer.add` and, per emitted set,
`WindowBuilder.push`. Each result counts the complete time steps offered (every camera's
message present) and the sets that are exactly one such step (`matched_steps`).

Without --cameras the document also has `reordered` (N = 4 and 8, jittered, lossy, swapped:
the matching rate with the automatic reorder window and with none, message_filters' C++ rule)
and `drift` (one camera drifting +2 ms/s for 60 s at 30 Hz: when it is detected, the drift
estimate, and the sets kept with a fixed slop and with auto_offset). Output: one JSON document
(machine, versions, settings, results).
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
from wint3r_ros.core.synchronizer import SyncConfig, Synchronizer
from wint3r_ros.core.window import WindowBuilder, WindowConfig

__all__ = ["configure", "run", "bench_core", "bench_reordered", "bench_drift", "rig_arrivals"]


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


def rig_arrivals(cameras: int, rate: float, sets: int, jitter: float, drop: float,
                 reorder: float, rng: random.Random, item: Any = None) -> list[tuple[int, int, Any]]:
    """(camera, stamp ns, (camera, frame, item)) in arrival order: each frame's cameras in a
    shuffled order, each message lost with probability `drop`, then neighbouring messages
    swapped with probability `reorder` (each message moves at most one place)."""
    period = 1.0 / rate
    arrivals = []
    for k in range(sets):
        order = list(range(cameras))
        rng.shuffle(order)
        for i in order:
            if drop and rng.random() < drop:
                continue
            stamp = 100.0 + k * period + rng.uniform(-jitter, jitter)
            arrivals.append((i, int(round(stamp * 1e9)), (i, k, item)))
    idx = 0
    while reorder and idx < len(arrivals) - 1:
        if rng.random() < reorder:
            arrivals[idx], arrivals[idx + 1] = arrivals[idx + 1], arrivals[idx]
            idx += 1
        idx += 1
    return arrivals


def _complete_steps(arrivals: list[tuple[int, int, Any]], cameras: int) -> int:
    seen: dict[int, set[int]] = {}
    for cam, _, (_, k, _) in arrivals:
        seen.setdefault(k, set()).add(cam)
    return sum(len(c) == cameras for c in seen.values())


def bench_core(cameras: int, rate: float, width: int, height: int, sets: int,
               jitter: float = 0.002, slop: float = 0.01, drop: float = 0.0,
               window: int = 4, overlap: int = 2, seed: int = 0, reorder: float = 0.0,
               reorder_window: str | float = "auto") -> dict[str, Any]:
    """Feed `sets` frame periods of a synthetic N-camera rig through sync + windows; timings
    are per emitted synchronised set (microseconds)."""
    rng = random.Random(seed)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    names = [f"cam{i}" for i in range(cameras)]
    sync = Synchronizer(names, SyncConfig(slop=slop, queue_size=10, reorder_window=reorder_window))
    builder = WindowBuilder(names, WindowConfig(window, overlap))
    arrivals = rig_arrivals(cameras, rate, sets, jitter, drop, reorder, rng, image)
    per_set_ns: list[int] = []
    pending_ns = 0
    n_sets = n_windows = matched_steps = 0
    clock = time.perf_counter_ns
    t_all = clock()
    cpu_all = time.thread_time_ns()  # CPU time: what the work costs when others share the cores
    for stream, stamp, item in arrivals:
        t0 = clock()
        out = sync.add(stream, stamp, item)
        for synced in out:
            if builder.push(synced) is not None:
                n_windows += 1
        pending_ns += clock() - t0
        if out:
            # the cost since the previous set, split over the sets this message completed
            share = pending_ns // len(out)
            per_set_ns.extend([share] * len(out))
            n_sets += len(out)
            matched_steps += sum(len({m[1] for m in s}) == 1 for s in out)
            pending_ns = 0
    total_ns = clock() - t_all
    cpu_ns = time.thread_time_ns() - cpu_all
    tail = sync.flush()
    matched_steps += sum(len({m[1] for m in s}) == 1 for s in tail)
    us = np.asarray(per_set_ns, dtype=np.float64) / 1e3
    stats = sync.stats
    complete = _complete_steps(arrivals, cameras)
    return {
        "cameras": cameras, "sets_offered": sets, "sets_emitted": n_sets + len(tail),
        "windows": n_windows, "messages": len(arrivals),
        "complete_steps": complete, "matched_steps": matched_steps,
        "match_rate": matched_steps / complete if complete else None,
        "mean_us_per_set": float(us.mean()) if len(us) else None,
        "p50_us_per_set": float(np.percentile(us, 50)) if len(us) else None,
        "p99_us_per_set": float(np.percentile(us, 99)) if len(us) else None,
        "max_us_per_set": float(us.max()) if len(us) else None,
        "wall_us_per_set_incl_loop": total_ns / 1e3 / max(n_sets, 1),
        "cpu_us_per_set_incl_loop": cpu_ns / 1e3 / max(n_sets, 1),
        "dropped": {s.name: s.dropped_total for s in stats.streams},
        "under_1ms": bool(len(us) and float(np.percentile(us, 99)) < 1000.0),
    }


def bench_reordered(rate: float, sets: int, seed: int = 0) -> list[dict[str, Any]]:
    """Matching rate on jittered (+-2 ms), lossy (2 %), swapped (10 %) 4- and 8-camera
    streams, slop 10 ms: the automatic reorder window against none (message_filters' C++
    rule, and this project's policy before the window)."""
    rows = []
    for cameras in (4, 8):
        for window in ("auto", 0.0):
            r = bench_core(cameras, rate, 8, 8, sets, jitter=0.002, slop=0.01, drop=0.02,
                           seed=seed, reorder=0.1, reorder_window=window)
            rows.append({"cameras": cameras, "reorder_window": window,
                         **{k: r[k] for k in ("messages", "complete_steps", "matched_steps",
                                              "match_rate", "mean_us_per_set", "p50_us_per_set",
                                              "cpu_us_per_set_incl_loop")}})
    return rows


def bench_drift(seconds: float = 60.0, rate: float = 30.0, cameras: int = 4,
                drift: float = 0.002, slop: float = 0.01, jitter: float = 0.001,
                seed: int = 0) -> dict[str, Any]:
    """One camera (index 2) whose stamps drift by `drift` s/s from 0: when the estimator
    reports it drifting (stream seconds), its drift estimate at 10 s and at the end, the
    first clock warning, and the true sets kept with a fixed slop and with auto_offset."""
    rng = random.Random(seed)
    period_ns = int(round(1e9 / rate))
    arrivals = []
    for k in range(int(seconds * rate)):
        t = k * period_ns
        for i in range(cameras):
            s = 100 * 10**9 + t + int(rng.uniform(-jitter, jitter) * 1e9)
            arrivals.append((i, s + (int(drift * t) if i == 2 else 0), (i, k)))
    arrivals.sort(key=lambda a: a[1])
    out: dict[str, Any] = {"cameras": cameras, "rate": rate, "seconds": seconds,
                           "drift": drift, "slop": slop, "jitter": jitter, "steps": len(arrivals) // cameras}
    for auto in (False, True):
        sync = Synchronizer([f"cam{i}" for i in range(cameras)],
                            SyncConfig(slop=slop, auto_offset=auto))
        kept, detected_at, at10, warned_at = 0, None, None, None
        for cam, stamp, item in arrivals:
            for s in sync.add(cam, stamp, item):
                kept += len({m[1] for m in s}) == 1
                t = (s.aligned_stamp - 100 * 10**9) / 1e9
                report = sync.clock_report(2)
                if detected_at is None and report["state"] in ("drifting", "near_slop"):
                    detected_at = t
                if at10 is None and t >= 10.0:
                    at10 = report["drift"]
        for e in sync.events():
            if e.kind == "clock_warning" and warned_at is None:
                warned_at = (e.stamp_ns - 100 * 10**9) / 1e9
        kept += sum(len({m[1] for m in s}) == 1 for s in sync.flush())
        out["auto_offset" if auto else "fixed_slop"] = {
            "true_sets": kept, "detected_after_s": detected_at, "drift_at_10s": at10,
            "drift_error_at_10s": None if at10 is None else abs(at10 - drift) / drift,
            "drift_at_end": sync.clock_report(2)["drift"], "first_warning_s": warned_at}
    return out


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
    parser.add_argument("--reorder", type=float, default=0.0,
                        help="probability that neighbouring messages arrive swapped (0)")
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
                                              "drop", "reorder", "window", "overlap", "seed")}
    results = [bench_core(n, args.rate, args.width, args.height, args.sets, args.jitter,
                          args.slop, args.drop, args.window, args.overlap, args.seed,
                          args.reorder)
               for n in counts]
    doc: dict[str, Any] = {
        "benchmark": "core", "what": "Synchronizer.add + WindowBuilder.push per synchronised "
        "set (microseconds); matched_steps of complete_steps", "machine": machine_info(),
        "settings": settings, "results": results}
    if args.cameras is None:
        doc["reordered"] = bench_reordered(args.rate, min(args.sets, 600), args.seed)
        doc["drift"] = bench_drift(seed=args.seed)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0
