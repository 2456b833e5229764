"""Device and precision: `device=auto|cpu|cuda[:N]`, `precision=auto|fp32|bf16|fp16|int8`.

Weights stay float32 (int8: the transformer blocks' linear layers are quantised). The heads,
the residual streams and the camera token pool run in float32 in every precision (as published);
what changes is the transformer blocks' matmuls:

    precision  CUDA                          CPU
    fp32       float32                       float32
    bf16       autocast bfloat16 (GPUs with  autocast bfloat16: fast with AVX512-BF16 or AMX,
               bf16)                         runs (slowly) without
    fp16       autocast float16              refused (ConfigError): use bf16
    int8       refused (ConfigError)         dynamic int8 quantisation of the blocks' linears
    auto       bf16 where supported, else    bf16 where the CPU has it natively and the model is
               fp16                          wide (official), else fp32
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from functools import lru_cache

import torch

from wint3r_ros.errors import ConfigError

__all__ = ["PRECISIONS", "PRECISION_CHOICES", "resolve_device", "resolve_precision",
           "cpu_bf16_native", "autocast", "prepare_model", "maybe_compile", "quantize_int8",
           "store_blocks_bf16",
           "TRANSFORMER_BLOCKS", "default_torch_threads", "set_torch_threads"]

# The autocast dtype of each precision (int8 runs its quantised linears without autocast).
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": None}
PRECISION_CHOICES = ("auto", *PRECISIONS)
# torch_threads=0 ("auto"): half the cores this process may use, at least 1, at most this many.
# torch's own default (one thread per core) collapses as soon as another process wants a core:
# 2-camera 256x192 process-bag with one busy-loop process on a 2-core machine ran 2.7-3.5
# frames/s with 1 thread and 0.3-0.7 with 2 (= torch's default there): docs/BENCHMARKS.md.
MAX_AUTO_THREADS = 4
# The module lists holding the transformer blocks (what bf16/int8 and torch.compile act on).
TRANSFORMER_BLOCKS = ("enc_blocks", "dec_blocks", "dec_blocks_state")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N' -> a torch.device."""
    if isinstance(spec, torch.device):
        return spec
    text = (spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={spec!r}: this torch build or machine has no CUDA device "
                              f"(torch {torch.__version__}); use device=cpu or auto")
        device = torch.device(text)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={spec!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise ConfigError(f"device={spec!r}: expected auto, cpu, cuda or cuda:N")


@lru_cache(maxsize=1)
def cpu_bf16_native() -> bool:
    """True when this CPU computes bfloat16 matmuls natively (AVX512-BF16 or AMX-BF16)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        if any(getattr(torch.cpu, name)() for name in probes if hasattr(torch.cpu, name)):
            return True
    except RuntimeError:  # pragma: no cover - a torch build without the probes
        pass
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")),
                         [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _int8_engine() -> str | None:
    """The quantised-kernel engine for dynamic int8 linears on this CPU, or None."""
    engines = torch.backends.quantized.supported_engines
    return next((e for e in ("x86", "fbgemm", "onednn") if e in engines), None)


# `auto` on a CPU with native bf16 picks bf16 only for models at least this wide: narrower
# matmuls (the tiny preset, 192 wide) run slower in bf16 than in fp32 (docs/MODEL.md).
AUTO_BF16_MIN_WIDTH = 512


def resolve_precision(precision: str, device: torch.device, width: int | None = None) -> str:
    """The precision that runs on `device` for the requested one (`auto` resolved; `width`, the
    model's encoder width, lets `auto` keep fp32 for small models on the CPU); a precision the
    device cannot run is a ConfigError that says what to use instead."""
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision={precision!r}: expected one of {list(PRECISION_CHOICES)}")
    device = torch.device(device)
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if bf16_ok else "fp16"
        if precision == "bf16" and not bf16_ok:
            raise ConfigError(f"precision=bf16: {torch.cuda.get_device_name(device)} has no "
                              "bfloat16; use fp16 or fp32")
        if precision == "int8":
            raise ConfigError("precision=int8 runs on the CPU only (dynamic quantisation); on "
                              "CUDA use bf16 or fp16")
        return precision
    if device.type != "cpu":
        if precision in ("auto", "fp32"):
            return "fp32"
        raise ConfigError(f"precision={precision!r} on device {device}: only fp32 is supported")
    if precision == "auto":
        wide = width is None or width >= AUTO_BF16_MIN_WIDTH
        return "bf16" if cpu_bf16_native() and wide else "fp32"
    if precision == "fp16":
        native = "natively" if cpu_bf16_native() else "slowly: no AVX512-BF16/AMX here"
        raise ConfigError(f"precision=fp16 is not supported on the CPU; use bf16 (runs {native}) "
                          "or fp32")
    if precision == "int8" and _int8_engine() is None:
        raise ConfigError(f"precision=int8: this torch build (torch {torch.__version__}) has no "
                          "quantised CPU engine; use bf16 or fp32")
    return precision


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """Autocast for `precision` on `device` (bf16 on CPU and CUDA, fp16 on CUDA); 'fp32' and
    'int8' disable autocast inside (the heads use it to stay float32 in every precision)."""
    device = torch.device(device)
    dtype = PRECISIONS.get(precision)
    if device.type not in ("cuda", "cpu"):
        yield
    elif dtype is None or dtype == torch.float32:
        with torch.autocast(device.type, enabled=False):
            yield
    else:
        with torch.autocast(device.type, dtype=dtype):
            yield


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the linear layers of the transformer blocks (not the heads) by dynamically
    quantised int8 ones: weights int8 per output channel, activations quantised per call.

    Irreversible: the model's state_dict changes; load a fresh model for another precision.
    """
    engine = _int8_engine()
    if engine is None:
        raise ConfigError("precision=int8: no quantised CPU engine in this torch build")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        for name in TRANSFORMER_BLOCKS:
            quantize_dynamic(getattr(model, name), {torch.nn.Linear: per_channel_dynamic_qconfig},
                             dtype=torch.qint8, inplace=True)
    return model


def store_blocks_bf16(model: torch.nn.Module) -> torch.nn.Module:
    """Keep the transformer blocks' linear weights in bfloat16 (CPU bf16). Autocast would round
    them to bf16 at every call anyway (same numbers); stored so, the official model saves 3.7 GB
    of conversions per window (measured: 28 % of a bf16 window at 224x320) and 1.5 GB of memory.
    Norms, heads and everything outside the blocks stay float32."""
    for name in TRANSFORMER_BLOCKS:
        for module in getattr(model, name).modules():
            if isinstance(module, torch.nn.Linear):
                module.to(torch.bfloat16)
    return model


def prepare_model(model: torch.nn.Module, device: str | torch.device = "auto",
                  precision: str = "fp32") -> torch.nn.Module:
    """Move `model` to `device`, set its precision (`auto` resolved; int8 quantised, CPU bf16
    with the blocks' linear weights stored in bf16), put it in eval mode; returns it.
    `model.precision` says what runs. int8 and CPU bf16 change the weights: another precision
    afterwards is a ConfigError (load the model again)."""
    dev = resolve_device(device)
    config = getattr(model, "config", None)
    resolved = resolve_precision(precision, dev, getattr(config, "enc_embed_dim", None))
    stored = getattr(model, "weights_precision", "fp32")
    if stored != "fp32" and resolved != stored:
        raise ConfigError(f"precision={precision!r}: this model's blocks were converted to "
                          f"{stored} (quantised to int8 or stored in bf16); load it again for "
                          "another precision")
    model.to(dev)
    if stored == "fp32" and resolved == "int8":
        quantize_int8(model.eval())
        model.weights_precision = "int8"
    elif stored == "fp32" and resolved == "bf16" and dev.type == "cpu":
        store_blocks_bf16(model)
        model.weights_precision = "bf16"
    model.precision = resolved
    if hasattr(model, "rope"):
        model.rope.clear()
    return model.eval()


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile each transformer block (encoder, both decoders) when `enabled`.

    Off by default: compilation takes seconds to minutes at the first window and again for each
    new resolution (inductor; on the CPU it needs a C compiler); numbers stay within float
    tolerance. docs/MODEL.md has the measured gain per device.
    """
    if not enabled:
        return model
    for name in TRANSFORMER_BLOCKS:
        for block in getattr(model, name):
            block.compile(dynamic=False)
    return model


def default_torch_threads(cores: int | None = None) -> int:
    """CPU threads for torch when the setting is 0: ``max(1, min(4, cores // 2))``, cores being
    the CPUs this process may run on (its affinity mask, so a container's limit counts)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_AUTO_THREADS, (cores or 1) // 2))


def set_torch_threads(threads: int) -> int:
    """Set torch's intra-op CPU threads: ``threads`` when > 0, else `default_torch_threads()`.
    Returns the number now in force."""
    n = threads if threads > 0 else default_torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
