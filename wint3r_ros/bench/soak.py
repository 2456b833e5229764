"""`wint3r-ros bench soak`: does a long stream stay in bounded memory? (no DDS)

N synthetic cameras (a rendered room, `--cycle` sets rendered once and cycled, so rendering is
not what is measured) feed the core pipeline exactly as process-bag and the nodes do:
`ApproximateTimePolicy` -> `WindowBuilder` -> `StreamingReconstructor` (tiny model; seeded
random weights by default, `--checkpoint default` for the shipped tiny checkpoint). Stamps keep
increasing (period 1/rate with jitter), arrivals are shuffled inside each period. A "frame" is
one synchronised set (one image per camera).

Every `--sample-every` frames it records the process RSS (current, from /proc/self/statm; on
the CPU torch allocates from the process heap, so RSS covers it), with `--tracemalloc` also
Python's traced memory (slow), and the sizes of every bounded buffer: token pool entries, the
model state's pool tokens, frames held for merging, sync queue lengths, window
ring buffers and the engine's preprocessing cache. Output: one JSON document with the curve,
RSS after the first `--reference` frames, the peak after it, RSS at the end and their ratios
(target: end / reference <= 1.10), plus machine, versions and settings.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

__all__ = ["configure", "run", "bench_soak", "rss_bytes"]

MAX_CYCLE_BYTES = 2 << 30   # the rendered frames a soak cycles through


def rss_bytes() -> int:
    """Current resident set size of this process in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _model(checkpoint: str | None, seed: int) -> Any:
    import torch

    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    if checkpoint is None:
        torch.manual_seed(seed)
        return WinT3R(WinT3RConfig.tiny()).init_weights(seed=seed).eval()
    from wint3r_ros.model.checkpoint import load_model

    if checkpoint == "default":
        from wint3r_ros.weights import TINY_CHECKPOINT

        checkpoint = str(TINY_CHECKPOINT)
    return load_model(checkpoint).eval()


def _buffers(policy: Any, builder: Any, engine: Any) -> dict[str, Any]:
    """Sizes of everything that must stay bounded."""
    st = engine.status()
    state = engine._state
    pool_tokens = getattr(state, "pool_size", lambda: None)()
    return {"pool_entries": st["pool"]["size"], "pool_bound": st["pool"]["max_entries"],
            "model_pool_size": pool_tokens, "held_frames": st["held_frames"],
            "prep_cache": len(engine._prep_cache),
            "sync_pending": sum(s.pending for s in policy.stats.streams),
            "window_buffered": sum(builder.stats["buffered"].values())}


def bench_soak(frames: int = 10000, cameras: int = 3, width: int = 96, height: int = 64,
               input_long_side: int = 64, window: int = 4, overlap: int = 2,
               sample_every: int = 250, reference: int = 1000, cycle: int = 16,
               rate: float = 10.0, checkpoint: str | None = None, threads: int = 1,
               use_tracemalloc: bool = False, seed: int = 0,
               progress: Any = None) -> dict[str, Any]:
    """Run the soak; returns the results part of the JSON document (see the module docstring)."""
    import torch

    from wint3r_ros.core.engine import EngineConfig, StreamingReconstructor
    from wint3r_ros.core.sync import ApproximateTimePolicy
    from wint3r_ros.core.window import WindowBuilder, WindowConfig
    from wint3r_ros.data.synthetic import RigConfig, SceneConfig, SyntheticRig
    from wint3r_ros.errors import ConfigError

    cycle_bytes = cycle * cameras * width * height * 3
    if cycle_bytes > MAX_CYCLE_BYTES:
        raise ConfigError(f"--cycle {cycle} sets of {cameras} x {width}x{height} images would "
                          f"hold {cycle_bytes / 2**30:.1f} GiB of rendered frames (at most "
                          f"{MAX_CYCLE_BYTES >> 30} GiB): lower --cycle or the image size")
    torch.set_num_threads(max(1, threads))
    synth = SyntheticRig(SceneConfig(seed=seed), RigConfig(num_cameras=cameras, width=width,
                                                           height=height, rate_hz=rate))
    rendered = [[f.image for f in synth.render(k)] for k in range(cycle)]
    rig = synth.rig
    names = rig.camera_names
    model = _model(checkpoint, seed)
    wcfg = WindowConfig(window, overlap)
    engine = StreamingReconstructor(model, rig, EngineConfig(
        window=wcfg, target_long_side=input_long_side, conf_threshold=1.0))
    policy = ApproximateTimePolicy(cameras, queue_size=10, slop=0.3 / rate, stream_names=names)
    builder = WindowBuilder(names, wcfg)
    rng = random.Random(seed)
    period = 1.0 / rate
    samples: list[dict[str, Any]] = []
    published = windows = 0
    if use_tracemalloc:
        tracemalloc.start()
    t_start = time.perf_counter()

    def sample(k: int) -> None:
        gc.collect()
        s: dict[str, Any] = {"frames": k, "rss_mb": rss_bytes() / 2**20,
                             "seconds": time.perf_counter() - t_start,
                             "windows": windows, "frames_published": published,
                             **_buffers(policy, builder, engine)}
        if use_tracemalloc:
            s["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
        samples.append(s)
        if progress is not None:
            progress(s)

    with torch.inference_mode():
        sample(0)
        for k in range(frames):
            order = list(range(cameras))
            rng.shuffle(order)
            images = rendered[k % cycle]
            for c in order:
                stamp = int(round((100.0 + k * period + rng.uniform(-0.05, 0.05) * period) * 1e9))
                for synced in policy.add(c, stamp, images[c]):
                    w = builder.push(synced)
                    if w is not None:
                        windows += 1
                        published += len(engine.process(w))
            if (k + 1) % sample_every == 0 or k + 1 == frames:
                sample(k + 1)
        for synced in policy.flush():
            w = builder.push(synced)
            if w is not None:
                published += len(engine.process(w))
        tail = builder.flush()
        if tail is not None:
            published += len(engine.process(tail))
        published += len(engine.flush())
    if use_tracemalloc:
        tracemalloc.stop()
    ref = next((s for s in samples if s["frames"] >= reference), samples[-1])
    after = [s for s in samples if s["frames"] >= ref["frames"]]
    peak_after = max(s["rss_mb"] for s in after)
    end = samples[-1]["rss_mb"]
    bounded_keys = ("pool_entries", "held_frames", "prep_cache",
                    "sync_pending", "window_buffered")
    return {
        "frames": frames, "images": frames * cameras, "windows": windows,
        "frames_published": published, "seconds": time.perf_counter() - t_start,
        "rss_mb_at_reference": ref["rss_mb"], "reference_frames": ref["frames"],
        "rss_mb_peak_after_reference": peak_after, "rss_mb_end": end,
        "end_over_reference": end / ref["rss_mb"] if ref["rss_mb"] else None,
        "peak_over_reference": peak_after / ref["rss_mb"] if ref["rss_mb"] else None,
        "within_10_percent": bool(ref["rss_mb"] and peak_after <= 1.10 * ref["rss_mb"]),
        "buffer_max": {key: max(s[key] for s in samples) for key in bounded_keys},
        "engine_counters": dict(engine.counters),
        "sync": policy.stats.as_dict(),
        "curve": samples,
    }


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=10000, help="synchronised sets (10000)")
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--width", type=int, default=96, help="image width (96)")
    parser.add_argument("--height", type=int, default=64, help="image height (64)")
    parser.add_argument("--input-long-side", type=int, default=64,
                        help="model input long side, multiple of 16 (64)")
    parser.add_argument("--window", type=int, default=4, help="window size L (4)")
    parser.add_argument("--overlap", type=int, default=2, help="window overlap O (2)")
    parser.add_argument("--sample-every", type=int, default=250, help="frames between samples")
    parser.add_argument("--reference", type=int, default=1000,
                        help="frames after which memory is the reference (1000)")
    parser.add_argument("--cycle", type=int, default=16, help="rendered sets, cycled (16)")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate, Hz (stamps only)")
    parser.add_argument("--checkpoint", default=None,
                        help="'default' (the shipped tiny weights) or a path; default: seeded "
                             "random tiny weights")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python memory (slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument("--progress", action="store_true", help="print each sample to stderr")


def run(args: argparse.Namespace) -> int:
    import sys

    from wint3r_ros.bench.core import machine_info
    from wint3r_ros.errors import ConfigError

    if args.frames < 1 or args.cameras < 1 or args.sample_every < 1 or args.cycle < 1:
        raise ConfigError(f"--frames {args.frames}, --cameras {args.cameras}, --sample-every "
                          f"{args.sample_every}, --cycle {args.cycle}: all must be >= 1")
    settings = {"frames": args.frames, "cameras": args.cameras, "width": args.width,
                "height": args.height, "input_long_side": args.input_long_side,
                "window": args.window, "overlap": args.overlap,
                "sample_every": args.sample_every, "reference": args.reference,
                "cycle": args.cycle, "rate": args.rate, "checkpoint": args.checkpoint,
                "threads": args.threads, "use_tracemalloc": args.tracemalloc, "seed": args.seed}

    def progress(s: dict[str, Any]) -> None:
        print(json.dumps(s), file=sys.stderr, flush=True)

    results = bench_soak(**settings, progress=progress if args.progress else None)
    doc = {"benchmark": "soak", "what": "process RSS over a long synthetic stream through sync "
           "-> windows -> engine (tiny model), no DDS", "machine": machine_info(),
           "settings": settings, "results": results}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
