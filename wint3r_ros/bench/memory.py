"""`wint3r-ros bench memory`: peak memory of process-bag on large images, against the budget.

Writes a bag of ``--cameras`` cameras at ``--width`` x ``--height`` rgb8 (a moving gradient,
``--sets`` sets at 10 Hz) into a temporary folder, runs ``wint3r-ros process-bag`` on it in a
child process with sync_node's ``buffer_budget_mb`` set to ``--budget-mb``, and reports the
child's peak RSS (the kernel's maxrss), the most bytes of images its front end held (the
``buffers:`` line) and what one window of images takes (the floor no budget goes below). The
issue-22 case is ``--cameras 3 --width 8000 --height 6000`` (137 MiB images; about 5 GB of disk
per 12 sets plus the outputs). Output: one JSON document (machine, versions, settings, results).
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["configure", "run", "bench_memory"]

_PERIOD_NS = 100_000_000
_T0 = 1_700_000_000 * 10**9


def write_bag(path: Path, cameras: int, width: int, height: int, sets: int) -> list[str]:
    """A bag of ``sets`` sets of ``cameras`` rgb8 images (a gradient rolled a little per
    frame); the image topics."""
    from wint3r_ros.data.bag import BagWriter
    from wint3r_ros.data.messages import image_from_array

    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    del x, y
    topics = [f"/cam{c}/image_raw" for c in range(cameras)]
    with BagWriter(path) as w:
        for k in range(sets):
            for c, topic in enumerate(topics):
                stamp = _T0 + k * _PERIOD_NS + c * 1000
                img = np.roll(base, 8 * k + 50 * c, axis=1)
                w.write(topic, image_from_array(img, "rgb8", stamp, f"cam{c}_optical_frame"), stamp)
    return topics


def bench_memory(cameras: int = 3, width: int = 8000, height: int = 6000, sets: int = 8,
                 budget_mb: int = 1024, window_length: int = 4, threads: int = 1,
                 workdir: Path | None = None) -> dict[str, Any]:
    """Write the bag, run process-bag on it in a child process; the figures (module docstring)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        topics = write_bag(root / "in", cameras, width, height, sets)
        write_s = time.perf_counter() - t0
        sync = root / "sync.yaml"
        sync.write_text("sync_node:\n  ros__parameters:\n"
                        f"    buffer_budget_mb: {budget_mb}\n    window_length: {window_length}\n")
        cmd = [sys.executable, "-m", "wint3r_ros.cli", "process-bag", str(root / "in"),
               str(root / "out"), "--topics", *topics, "--sync-config", str(sync),
               "--threads", str(threads), "--no-progress"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise RuntimeError(f"process-bag failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    held = re.search(r"buffers: at most ([0-9.]+) MiB", proc.stdout)
    frames = re.search(r"wrote .*?: (\d+) frames", proc.stdout)
    image = width * height * 3
    return {"peak_rss_mb": peak_kb / 1024 if peak_kb > before else None,
            "buffers_peak_mb": float(held.group(1)) if held else None,
            "budget_mb": budget_mb, "image_mb": image / 2**20,
            "window_floor_mb": image * (window_length + 1) * cameras / 2**20,
            "frames_out": int(frames.group(1)) if frames else 0,
            "process_bag_s": wall, "write_bag_s": write_s,
            "warned": "buffer_budget_mb" in proc.stderr or "images of" in proc.stderr}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--height", type=int, default=6000)
    parser.add_argument("--sets", type=int, default=8, help="synchronised sets in the bag")
    parser.add_argument("--budget-mb", type=int, default=1024, help="sync_node's buffer_budget_mb")
    parser.add_argument("--window-length", type=int, default=4, help="window L")
    parser.add_argument("--threads", type=int, default=1, help="process-bag --threads")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the temporary bags go (default: the system's temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.bench.core import machine_info
    from wint3r_ros.data.messages import MAX_IMAGE_BYTES
    from wint3r_ros.errors import ConfigError

    if min(args.cameras, args.width, args.height, args.sets, args.window_length) < 1 or \
            args.budget_mb < 0 or args.threads < 1:
        raise ConfigError("--cameras, --width, --height, --sets, --window-length, --threads must "
                          f"be >= 1 and --budget-mb >= 0 (got {vars(args)})")
    if args.width * args.height * 3 > MAX_IMAGE_BYTES:
        raise ConfigError(f"--width {args.width} x --height {args.height} rgb8 is above the "
                          f"{MAX_IMAGE_BYTES >> 20} MiB every input refuses")
    settings = {k: getattr(args, k) for k in ("cameras", "width", "height", "sets", "budget_mb",
                                              "window_length", "threads")}
    doc = {"benchmark": "memory", "what": "process-bag peak RSS on large images against "
           "buffer_budget_mb", "machine": machine_info(), "settings": settings,
           "results": bench_memory(**settings, workdir=args.workdir)}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
