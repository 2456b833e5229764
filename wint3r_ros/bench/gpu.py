"""`wint3r-ros bench gpu`: the whole GPU table in one short run (GPU time is rare: one command,
at most about 5 minutes, everything in one JSON document and one markdown table).

On CUDA (the full setting):
1. the network: the official preset at 512x384, a stream of 4-frame windows (stride 2, encoder
   cache on), random weights, in fp32 / bf16 / fp16, each without and with torch.compile: ms per
   window (mean, p50, p99), new frames/s, peak VRAM (each variant runs back to back, after a
   reset of the peak), the first window's time (compilation) and the deviation of each
   variant's outputs from fp32 (model/accuracy.py);
2. the ROS graph: 3 synthetic cameras -> sync_node -> fusion_node over DDS in one process
   (bench/ros.py), fusion_node on the GPU with the official architecture (random weights written
   to a temporary safetensors) in bf16 at input 512: set -> /tf and set -> depth latency, model
   ms per window, drops.
A time budget (`--budget-s`, default 200 s for the network part; the graph part takes about a
minute more) skips the variants that would not fit; each skipped one is listed with the reason.

Without CUDA (`--device cpu`, the reduced setting tested in CI): the tiny preset at 64x96, fp32
and bf16 (fp16 is listed as unsupported on the CPU), compile only with `--compile`, and the ROS
graph with the tiny model at input 64 on a short stream. Same JSON fields.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it runs: `--help` stays fast
    import torch

__all__ = ["configure", "run", "bench_gpu", "FULL", "REDUCED"]

FULL = {"preset": "official", "height": 384, "width": 512, "iterations": 20, "warmup": 3,
        "precisions": ("fp32", "bf16", "fp16"), "compile": (False, True),
        "ros_input_long_side": 512, "ros_sets": 60, "ros_precision": "bf16", "ros_image": (640, 480)}
REDUCED = {"preset": "tiny", "height": 64, "width": 96, "iterations": 3, "warmup": 1,
           "precisions": ("fp32", "bf16", "fp16"), "compile": (False,),
           "ros_input_long_side": 64, "ros_sets": 10, "ros_precision": "fp32", "ros_image": (160, 120)}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto, cuda, cuda:N (the full setting) or cpu (the reduced one)")
    parser.add_argument("--compile", action="store_true",
                        help="on the CPU: also the compiled variants (minutes); CUDA always has them")
    parser.add_argument("--iterations", type=int, default=None, help="timed windows per variant")
    parser.add_argument("--budget-s", type=float, default=200.0,
                        help="seconds for the network part; variants that would not fit are skipped")
    parser.add_argument("--no-ros", action="store_true", help="leave out the ROS graph part")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--markdown", type=Path, default=None, help="write the markdown table here")


def _variants(setting: dict[str, Any], device: torch.device, with_compile: bool) -> tuple[list, list]:
    """(runnable variants, [(name, reason)] of those this device cannot run)."""
    from wint3r_ros.bench.variants import Variant
    from wint3r_ros.errors import ConfigError
    from wint3r_ros.model.runtime import resolve_precision

    runnable, unsupported = [], []
    compiles = setting["compile"] if device.type == "cuda" or not with_compile else (False, True)
    for comp in compiles:
        for precision in setting["precisions"]:
            v = Variant(precision, compile=comp)
            try:
                resolve_precision(precision, device)
            except ConfigError as err:
                if not comp:
                    unsupported.append((v.name, str(err)))
                continue
            runnable.append(v)
    return runnable, unsupported


def bench_network(setting: dict[str, Any], device: torch.device, with_compile: bool,
                  budget_s: float) -> dict[str, Any]:
    """Part 1: every variant of the network on the same stream of windows (see module doc)."""

    from wint3r_ros.bench.model import _frames, build_random_model
    from wint3r_ros.bench.variants import run_variants, summarise, variant_model

    variants, unsupported = _variants(setting, device, with_compile)
    base = build_random_model(setting["preset"], device)
    cfg = base.config
    s, stride, it, wu = cfg.window_size, cfg.window_stride, setting["iterations"], setting["warmup"]
    bank = _frames((wu + it - 1) * stride + s, setting["height"], setting["width"], 0, device)
    start = time.perf_counter()
    runs: dict[str, Any] = {}
    skipped = [{"variant": n, "reason": r} for n, r in unsupported]
    for v in variants:
        spent = time.perf_counter() - start
        guess = max((sum(r["times_s"]) for r in runs.values()), default=0.0)
        if v.compile:  # compilation: as long as the last one took, 60 s before any was measured
            guess += max((r["first_s"] for n, r in runs.items() if "+compile" in n), default=60.0)
        if runs and spent + guess > budget_s:
            skipped.append({"variant": v.name, "reason": f"time budget ({budget_s:.0f} s) spent"})
            continue
        model = variant_model(base, v, device)
        stream = model.new_stream()

        def window(i: int, model=model, stream=stream) -> Any:
            idx = list(range(i * stride, i * stride + s))
            return model.step(stream, bank[idx], keys=idx)

        runs.update(run_variants({v.name: model}, {v.name: window}, it, wu, device,
                                 interleave=False))
        del model, stream
    rows = summarise(runs, float(stride), "window", wu) if runs else []
    for row in rows:
        row.pop("times_s", None)
        row.pop("cpu_s", None)
        row.setdefault("peak_vram_mb", None)
    return {"preset": setting["preset"], "height": setting["height"], "width": setting["width"],
            "window": s, "stride": stride, "iterations": it, "warmup": wu,
            "reference": rows[0]["variant"] if rows else None, "variants": rows,
            "skipped": skipped, "seconds": time.perf_counter() - start}


def bench_graph(setting: dict[str, Any], device: torch.device, threads: int) -> dict[str, Any]:
    """Part 2: 3 cameras through sync_node -> fusion_node over DDS (bench/ros.py)."""
    import torch

    from wint3r_ros.bench.ros import bench_ros

    params: dict[str, Any] = {"device": str(device), "precision": setting["ros_precision"]}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wint3r_bench_gpu_") as tmp:
        if setting["preset"] == "official":
            from wint3r_ros.bench.model import build_random_model
            from wint3r_ros.model.checkpoint import save_checkpoint

            path = save_checkpoint(build_random_model("official", torch.device("cpu")),
                                   Path(tmp) / "official_random.safetensors")
            params.update(checkpoint=str(path), model_preset="official")
        width, height = setting["ros_image"]
        result = bench_ros(cameras=3, width=width, height=height, rate=15.0, sets=setting["ros_sets"],
                           transport="raw", fusion=True,
                           input_long_side=setting["ros_input_long_side"], threads=threads,
                           fusion_params=params)
    result["settings"] = {"cameras": 3, "image": f"{width}x{height} rgb8", "rate_hz": 15.0,
                          "sets": setting["ros_sets"], "model_preset": setting["preset"],
                          "input_long_side": setting["ros_input_long_side"], **params}
    result["settings"].pop("checkpoint", None)
    result["seconds"] = time.perf_counter() - start
    return result


def _markdown(network: dict[str, Any], graph: dict[str, Any] | None) -> str:
    from wint3r_ros.bench.variants import markdown_table

    lines = [f"network: {network['preset']} preset, {network['width']}x{network['height']}, "
             f"windows of {network['window']} (stride {network['stride']}), reference "
             f"{network['reference']}", ""]
    if network["variants"]:
        lines.append(markdown_table(network["variants"], "window"))
    lines += [f"- skipped {s['variant']}: {s['reason']}" for s in network["skipped"]]
    if graph is not None:
        def cell(key: str) -> str:
            st = graph.get(key)
            return "-" if not st else f"{st['p50']:.1f} / {st['p99']:.1f}"

        lines += ["", "ROS graph (3 cameras, sync_node -> fusion_node over DDS), ms p50 / p99:", "",
                  "| set -> /tf | set -> depth | model per window | fusion internal | windows | drops |",
                  "|---|---|---|---|---|---|",
                  f"| {cell('set_to_tf_ms')} | {cell('set_to_depth_ms')} | {cell('model_ms')} | "
                  f"{cell('fusion_internal_ms')} | {graph.get('fusion_windows')} | "
                  f"{sum((graph.get('fusion_drops') or {}).values())} |"]
    return "\n".join(lines)


def bench_gpu(device: torch.device, with_compile: bool = False, iterations: int | None = None,
              budget_s: float = 200.0, ros: bool = True, threads: int = 1) -> dict[str, Any]:
    """Both parts; the full setting on CUDA, the reduced one elsewhere."""
    import torch

    from wint3r_ros.bench.model import machine_info

    setting = dict(FULL if device.type == "cuda" else REDUCED)
    if iterations is not None:
        setting["iterations"] = iterations
    start = time.perf_counter()
    load_before = list(os.getloadavg())
    network = bench_network(setting, device, with_compile, budget_s)
    graph = bench_graph(setting, device, threads) if ros else None
    machine = machine_info(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        machine["gpu_memory_mb"] = props.total_memory / 2**20
    return {"benchmark": "gpu", "mode": "full" if device.type == "cuda" else "reduced (CPU)",
            "device": str(device), "machine": machine, "load_average_before": load_before,
            "network": network, "ros_graph": graph, "total_s": time.perf_counter() - start,
            "markdown": _markdown(network, graph)}


def run(args: argparse.Namespace) -> int:
    import torch

    from wint3r_ros.errors import ConfigError
    from wint3r_ros.model.runtime import resolve_device

    if args.iterations is not None and args.iterations < 1:
        raise ConfigError("--iterations must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    doc = bench_gpu(device, args.compile, args.iterations, args.budget_s, not args.no_ros,
                    args.threads or 1)
    print(json.dumps(doc))
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(doc["markdown"] + "\n")
    return 0
