"""Run one model in several variants (precision, torch.compile, encoder cache) on the same input.

A variant is written `PRECISION[+compile][+nocache]` (e.g. `fp32+nocache`, `bf16+compile`,
`int8`). Every variant is a WinT3R that shares the reference model's float32 weights (int8 adds
its own quantised copies of the blocks' linear layers), so the official model's 3 GB are held
once. The first variant is the reference: every other one reports its time and its outputs'
deviation (model/accuracy.py) relative to it.

`interleave=True` (CPU, a shared machine): the variants take turns window by window (sequence by
sequence), so a change in machine load hits all alike. `interleave=False` (a dedicated GPU): each
variant runs its windows back to back, so its peak memory is its own.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wint3r_ros.errors import ConfigError

__all__ = ["Variant", "parse_variants", "variant_model", "run_variants", "summarise",
           "markdown_table"]


@dataclass(frozen=True)
class Variant:
    """A precision, whether the transformer blocks are compiled, whether the encoder cache is used."""

    precision: str = "fp32"
    compile: bool = False
    cache: bool = True

    @property
    def name(self) -> str:
        return self.precision + ("+compile" if self.compile else "") + ("" if self.cache else "+nocache")

    @classmethod
    def parse(cls, text: str) -> Variant:
        from wint3r_ros.model.runtime import PRECISION_CHOICES

        parts = [p for p in text.strip().lower().split("+") if p]
        if not parts or parts[0] not in PRECISION_CHOICES:
            raise ConfigError(f"variant {text!r}: expected PRECISION[+compile][+nocache] with "
                              f"PRECISION one of {list(PRECISION_CHOICES)}")
        unknown = set(parts[1:]) - {"compile", "nocache"}
        if unknown:
            raise ConfigError(f"variant {text!r}: unknown option(s) {sorted(unknown)}; "
                              "expected +compile, +nocache")
        return cls(parts[0], "compile" in parts[1:], "nocache" not in parts[1:])


def parse_variants(text: str) -> list[Variant]:
    """'fp32+nocache,fp32,bf16' -> variants (the first is the reference); no duplicates."""
    variants = [Variant.parse(t) for t in text.split(",") if t.strip()]
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ConfigError(f"--variants {text!r}: a comma list of distinct variants, e.g. "
                          "fp32+nocache,fp32,bf16")
    return variants


def variant_model(base: torch.nn.Module, variant: Variant, device: torch.device) -> torch.nn.Module:
    """A WinT3R sharing `base`'s weights, prepared for `variant` (precision, compile)."""
    from wint3r_ros.model.network import WinT3R
    from wint3r_ros.model.runtime import maybe_compile, prepare_model

    with torch.device("meta"):
        model = WinT3R(base.config)
    model.load_state_dict(base.state_dict(), assign=True)
    prepare_model(model, device, variant.precision)
    return maybe_compile(model, variant.compile)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_variants(models: dict[str, torch.nn.Module], calls: dict[str, Callable[[int], Any]],
                 iterations: int, warmup: int, device: torch.device,
                 interleave: bool = True) -> dict[str, dict[str, Any]]:
    """Time `calls[name](i)` (i = 0 .. warmup + iterations - 1) per variant.

    Returns per variant: `times_s` (timed calls, wall clock), `cpu_s` (the same calls' process
    CPU time: on a shared machine far steadier than the wall clock), `first_s` (the first call:
    includes compilation), `outputs` (every call's output) and, on CUDA, `peak_vram_mb` (meaningful with
    interleave=False).
    """
    names = list(calls)
    out = {n: {"times_s": [], "cpu_s": [], "outputs": [], "first_s": None} for n in names}

    def one(name: str, i: int) -> None:
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        result = calls[name](i)
        _sync(device)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if i == 0:
            out[name]["first_s"] = elapsed
        if i >= warmup:
            out[name]["times_s"].append(elapsed)
            out[name]["cpu_s"].append(cpu)
        out[name]["outputs"].append(result)

    total = warmup + iterations
    if interleave:
        for i in range(total):
            order = names[i % len(names):] + names[:i % len(names)]  # who goes first rotates
            for name in order:
                one(name, i)
    else:
        for name in names:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            for i in range(total):
                one(name, i)
            if device.type == "cuda":
                out[name]["peak_vram_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def summarise(runs: dict[str, dict[str, Any]], frames_per_call: float, unit: str,
              warmup: int) -> list[dict[str, Any]]:
    """One row per variant: mean / min / p50 / p99 ms, frames/s, ratio to the reference (the
    first variant; mean and min) and the deviation of its outputs from the reference's."""
    from wint3r_ros.model.accuracy import deviation

    names = list(runs)
    ref = runs[names[0]]
    rows = []
    for name in names:
        r = runs[name]
        t = np.asarray(r["times_s"]) * 1000
        row: dict[str, Any] = {
            "variant": name, f"ms_per_{unit}": float(t.mean()), f"min_ms_per_{unit}": float(t.min()),
            "p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)),
            "frames_per_s": frames_per_call * 1000 / float(t.mean()),
            "first_call_s": r["first_s"], "times_s": r["times_s"],
            "ratio_to_reference": float(t.mean()) / (1000 * float(np.mean(ref["times_s"]))),
            "ratio_to_reference_min": float(t.min()) / (1000 * float(np.min(ref["times_s"]))),
            f"cpu_ms_per_{unit}": 1000 * float(np.mean(r["cpu_s"])),
            "cpu_ratio_to_reference": float(np.mean(r["cpu_s"])) / float(np.mean(ref["cpu_s"])),
        }
        if "peak_vram_mb" in r:
            row["peak_vram_mb"] = r["peak_vram_mb"]
        pairs = list(zip(ref["outputs"][warmup:] or ref["outputs"], r["outputs"][warmup:] or r["outputs"]))
        devs = [deviation(a, b) for a, b in pairs]
        row["deviation"] = {k: max(d[k] for d in devs) for k in devs[0]}
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]], unit: str) -> str:
    """The rows as a markdown table (times, frames/s, ratio, accuracy, peak VRAM when measured)."""
    vram = any(r.get("peak_vram_mb") is not None for r in rows)
    head = ["variant", f"ms per {unit} (mean / min)", "p50 / p99 ms", "frames/s",
            "x reference (mean / min)", "CPU s, x reference", "points rel.", "transl. / scale",
            "rot. deg"]
    head += ["peak VRAM MB"] if vram else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        d = r["deviation"]
        cells = [r["variant"], f"{r[f'ms_per_{unit}']:.1f} / {r[f'min_ms_per_{unit}']:.1f}",
                 f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}", f"{r['frames_per_s']:.2f}",
                 f"{r['ratio_to_reference']:.3f} / {r['ratio_to_reference_min']:.3f}",
                 f"{r[f'cpu_ms_per_{unit}'] / 1000:.2f}, {r['cpu_ratio_to_reference']:.3f}",
                 f"{d['pts_rel']:.2e}", f"{d['trans_rel']:.2e}", f"{d['rot_deg']:.3f}"]
        cells += [f"{r['peak_vram_mb']:.0f}" if r.get("peak_vram_mb") is not None else "-"] if vram else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
