"""`wint3r-ros bench transport`: end-to-end latency of a WindowBatch through DDS, raw and JPEG.

A preset of `bench ros` (see wint3r_ros/bench/ros.py for what is timed): 3 cameras (by
default), sync_node only, run once per transport. The number is ``sync_end_to_end_ms``: from
publishing the last image of a window's newest set to receiving that window's WindowBatch in
another node (camera images over DDS, matching, windowing, batch building incl. JPEG encoding,
the batch over DDS); ``image_bytes_per_batch`` is its image payload. Output: one JSON document
with machine, versions, settings and one result per transport.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate, Hz")
    parser.add_argument("--sets", type=int, default=60, help="synchronised sets per transport")
    parser.add_argument("--transports", nargs="+", choices=("raw", "jpeg"), default=["raw", "jpeg"])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.bench.core import machine_info
    from wint3r_ros.bench.ros import bench_ros
    from wint3r_ros.errors import ConfigError

    if args.cameras < 1 or args.sets < 1 or args.rate <= 0:
        raise ConfigError(f"--cameras {args.cameras}, --sets {args.sets}, --rate {args.rate}: "
                          "all must be positive")
    settings = {k: getattr(args, k) for k in ("cameras", "width", "height", "rate", "sets")}
    results = {}
    for transport in args.transports:
        r = bench_ros(**settings, transport=transport, fusion=False)
        results[transport] = {"end_to_end_ms": r["sync_end_to_end_ms"],
                              "sync_internal_ms": r["sync_internal_ms"],
                              "image_bytes_per_batch": r["image_bytes_per_batch"],
                              "windows": r["windows"], "sets_published": r["sets_published"],
                              "sync_drops": r["sync_drops"]}
    doc = {"benchmark": "transport", "what": "WindowBatch end-to-end latency over DDS (ms): "
           "last image of a window published -> its WindowBatch received (a preset of bench ros)",
           "machine": machine_info(), "settings": {**settings, "transports": args.transports},
           "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
