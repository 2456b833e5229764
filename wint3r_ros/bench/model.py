"""`wint3r-ros bench model`: time the WinT3R network, JSON out.

Streaming (default): a stream of windows of `--window` frames advancing by the config's stride
(new frames per window = stride); each timed window is one `step`. `--sequence N` instead times
`online_inference` over an N-frame sequence (the authors' online mode). `--compare-naive` runs
the same input again without the encoder cache (every frame encoded in every window, the
authors' schedule), alternating the two window by window (or sequence by sequence) so that
machine load hits both alike, and reports both times, their ratio and the largest difference.
`--variants fp32+nocache,fp32,fp32+compile,bf16,int8` runs the same input in each variant
(precision, torch.compile, encoder cache; bench/variants.py) taking turns, and reports per variant
its time, its ratio to the first and its outputs' deviation from the first (points, confidence,
poses: model/accuracy.py), plus a markdown table (`--markdown FILE`).
Weights are random (this measures speed, not quality). Peak memory is the process's maximum RSS
on the CPU, `torch.cuda.max_memory_allocated` on CUDA. The load average comes with every run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # torch is imported where it runs: `--help` stays fast
    import torch

__all__ = ["configure", "run", "build_random_model", "bench_stream", "bench_sequence"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=("tiny", "official"), default="tiny")
    parser.add_argument("--height", type=int, default=64, help="image height (multiple of 16)")
    parser.add_argument("--width", type=int, default=96, help="image width (multiple of 16)")
    parser.add_argument("--window", type=int, default=None,
                        help="frames per window (default: the preset's window size)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16", "int8"),
                        default="fp32", help="auto: bf16 where the device has it natively")
    parser.add_argument("--iterations", type=int, default=3, help="timed windows (or sequences)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed windows (or sequences) first")
    parser.add_argument("--sequence", type=int, default=None,
                        help="time online_inference over this many frames instead of single windows")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compare-naive", action="store_true",
                        help="also run without the encoder cache; report both and the difference")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the transformer blocks (the first window compiles)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=None,
                        help="comma list PRECISION[+compile][+nocache], e.g. "
                             "fp32+nocache,fp32,bf16,int8: all on the same input, the first is "
                             "the reference for time ratios and accuracy")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="with --variants: write the markdown table here")


def build_random_model(preset: str, device: torch.device, window: int | None = None,
                       seed: int = 0) -> torch.nn.Module:
    """A model of `preset` with random weights, built on the meta device then materialised."""
    import torch

    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    cfg = WinT3RConfig.preset(preset)
    if window is not None and window != cfg.window_size:
        cfg = cfg.replace(window_size=window, window_stride=max(1, window // 2))
    with torch.device("meta"):
        model = WinT3R(cfg)
    model.to_empty(device=device)
    return model.init_weights(seed).eval()


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _frames(n: int, h: int, w: int, seed: int, device: torch.device) -> torch.Tensor:
    import torch

    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed)).to(device)


def _max_diff(a: list[Any], b: list[Any], names: tuple[str, ...],
              relative: bool = False) -> dict[str, float]:
    """Largest |a - b| per output over all windows; relative: divided by max(|b|.max(), 1)
    (confidence is 1 + exp(x): its absolute differences grow with its magnitude)."""
    def diff(x: Any, y: Any) -> float:
        d = float((x - y).abs().max())
        return d / max(float(y.abs().max()), 1.0) if relative else d
    return {n: max(diff(getattr(x, n), getattr(y, n)) for x, y in zip(a, b)) for n in names}


def _max_deviation(reference: list[Any], other: list[Any]) -> dict[str, float]:
    """The largest of accuracy.deviation over paired outputs (windows or sequences)."""
    from wint3r_ros.model.accuracy import deviation

    devs = [deviation(r, o) for r, o in zip(reference, other)]
    return {k: max(d[k] for d in devs) for k in devs[0]}


def bench_stream(model, h: int, w: int, iterations: int, warmup: int, seed: int,
                 modes: tuple[bool, ...] = (True,)) -> dict[bool, tuple[list[float], list[Any]]]:
    """Seconds per timed window and every window's output, per mode (True: encoder cache on).

    With two modes, two streams see the same windows and the modes alternate window by window,
    so a change in machine load affects both alike.
    """
    cfg = model.config
    device = next(model.parameters()).device
    s, stride = cfg.window_size, cfg.window_stride
    bank = _frames((warmup + iterations - 1) * stride + s, h, w, seed, device)
    states = {mode: model.new_stream() for mode in modes}
    results: dict[bool, tuple[list[float], list[Any]]] = {mode: ([], []) for mode in modes}
    for i in range(warmup + iterations):
        idx = list(range(i * stride, i * stride + s))
        for mode in modes:
            _sync(device)
            t0 = time.perf_counter()
            out = model.step(states[mode], bank[idx], keys=idx if mode else None)
            _sync(device)
            if i >= warmup:
                results[mode][0].append(time.perf_counter() - t0)
            results[mode][1].append(out)
    return results


def bench_sequence(model, n: int, h: int, w: int, iterations: int, warmup: int, seed: int,
                   modes: tuple[bool, ...] = (True,)) -> dict[bool, tuple[list[float], list[Any]]]:
    """Seconds per online_inference over n frames and its last output, per mode (alternating)."""
    from wint3r_ros.model.inference import online_inference

    device = next(model.parameters()).device
    images = _frames(n, h, w, seed, device)
    results: dict[bool, tuple[list[float], list[Any]]] = {mode: ([], []) for mode in modes}
    for i in range(warmup + iterations):
        for mode in modes:
            _sync(device)
            t0 = time.perf_counter()
            out = online_inference(model, images, use_cache=mode)
            _sync(device)
            if i >= warmup:
                results[mode][0].append(time.perf_counter() - t0)
            results[mode][1][:] = [out]
    return results


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where the numbers come from: CPU, cores, threads, versions, GPU."""
    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    from wint3r_ros.model.runtime import cpu_bf16_native

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu": cpu, "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cpu_bf16_native": cpu_bf16_native(),
            "load_average": list(os.getloadavg())}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _peak_memory_mb(device: torch.device) -> dict[str, float]:
    import torch

    out = {"process_max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if device.type == "cuda":
        out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from wint3r_ros.errors import ConfigError
    from wint3r_ros.model.runtime import maybe_compile, prepare_model, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.height % 16 or args.width % 16 or args.height <= 0 or args.width <= 0:
        raise ConfigError(f"--height {args.height} --width {args.width}: multiples of 16 needed")
    if args.iterations < 1 or args.warmup < 0:
        raise ConfigError("--iterations must be >= 1 and --warmup >= 0")
    device = resolve_device(args.device)
    if args.variants:
        return run_variants_command(args, device)
    t0 = time.perf_counter()
    model = build_random_model(args.preset, device, args.window, args.seed)
    prepare_model(model, device, args.precision)
    maybe_compile(model, args.compile)
    build_s = time.perf_counter() - t0
    cfg = model.config
    settings = {"preset": args.preset, "height": args.height, "width": args.width,
                "window": cfg.window_size, "stride": cfg.window_stride, "device": str(device),
                "precision": model.precision, "iterations": args.iterations,
                "warmup": args.warmup, "sequence": args.sequence, "compile": bool(args.compile),
                "parameters": sum(p.numel() for p in model.parameters()),
                "weights": "random", "model_build_s": round(build_s, 2)}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result: dict[str, Any] = {}
    modes = (True, False) if args.compare_naive else (True,)
    if args.sequence:
        runs = bench_sequence(model, args.sequence, args.height, args.width, args.iterations,
                              args.warmup, args.seed, modes)
        unit, per = "ms_per_sequence", args.sequence
    else:
        runs = bench_stream(model, args.height, args.width, args.iterations, args.warmup,
                            args.seed, modes)
        unit, per = "ms_per_window", cfg.window_stride

    def summary(times: list[float]) -> dict[str, Any]:
        mean = sum(times) / len(times)
        out = {unit: 1000 * mean, f"min_{unit}": 1000 * min(times),
               "fps": per / mean, "times_s": times}
        if args.sequence:
            out["ms_per_frame"] = 1000 * mean / args.sequence
        else:  # fps: new frames per second (the stream rate); every window re-reads the overlap
            out["window_frames_per_s"] = cfg.window_size / mean
        return out

    result.update(summary(runs[True][0]))
    if args.compare_naive:
        result["naive"] = summary(runs[False][0])
        result["cached_over_naive"] = result[unit] / result["naive"][unit]
        result["cached_over_naive_min"] = min(runs[True][0]) / min(runs[False][0])
        outputs = ("pts_local", "conf", "pose_enc")
        result["max_abs_diff"] = _max_diff(runs[True][1], runs[False][1], outputs)
        result["max_rel_diff"] = _max_diff(runs[True][1], runs[False][1], outputs, relative=True)
    result["peak_memory"] = _peak_memory_mb(device)
    print(json.dumps({"benchmark": "model", "settings": settings, "machine": machine_info(device),
                      "results": result}))
    return 0


def _variant_calls(models: dict[str, Any], variants: list[Any], args: argparse.Namespace,
                   device: torch.device) -> tuple[dict[str, Any], float, str]:
    """One callable per variant (call i -> output), frames per call and the unit's name."""
    from wint3r_ros.model.inference import online_inference

    cfg = next(iter(models.values())).config
    if args.sequence:
        images = _frames(args.sequence, args.height, args.width, args.seed, device)
        calls = {v.name: (lambda i, m=models[v.name], c=v.cache: online_inference(m, images, use_cache=c))
                 for v in variants}
        return calls, float(args.sequence), "sequence"
    s, stride = cfg.window_size, cfg.window_stride
    bank = _frames((args.warmup + args.iterations - 1) * stride + s, args.height, args.width,
                   args.seed, device)
    streams = {v.name: models[v.name].new_stream() for v in variants}

    def window(i: int, v: Any) -> Any:
        idx = list(range(i * stride, i * stride + s))
        return models[v.name].step(streams[v.name], bank[idx], keys=idx if v.cache else None)

    return {v.name: (lambda i, v=v: window(i, v)) for v in variants}, float(stride), "window"


def run_variants_command(args: argparse.Namespace, device: torch.device) -> int:
    """`bench model --variants ...`: every variant on the same input, JSON (+ markdown)."""
    from wint3r_ros.bench.variants import markdown_table, parse_variants, run_variants, summarise, variant_model

    variants = parse_variants(args.variants)
    load_before = list(os.getloadavg())
    t0 = time.perf_counter()
    base = build_random_model(args.preset, device, args.window, args.seed)
    models = {v.name: variant_model(base, v, device) for v in variants}
    build_s = time.perf_counter() - t0
    calls, per_call, unit = _variant_calls(models, variants, args, device)
    runs = run_variants(models, calls, args.iterations, args.warmup, device,
                        interleave=device.type != "cuda")
    rows = summarise(runs, per_call, unit, args.warmup)
    cfg = base.config
    settings = {"preset": args.preset, "height": args.height, "width": args.width,
                "window": cfg.window_size, "stride": cfg.window_stride, "device": str(device),
                "variants": [v.name for v in variants], "reference": variants[0].name,
                "iterations": args.iterations, "warmup": args.warmup, "sequence": args.sequence,
                "weights": "random", "model_build_s": round(build_s, 2),
                "interleaved": device.type != "cuda"}
    table = markdown_table(rows, unit)
    doc = {"benchmark": "model", "settings": settings, "machine": machine_info(device),
           "load_average_before": load_before,
           "results": {"variants": rows, "peak_memory": _peak_memory_mb(device),
                       "markdown": table}}
    text = json.dumps(doc)
    print(text)
    if args.out is not None:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.markdown is not None:
        args.markdown.write_text(table + "\n")
    return 0
