"""Device and precision (model/runtime.py): every precision resolves or is a clear ConfigError,
reduced precisions stay within their documented tolerance of fp32 (model/accuracy.py), the heads
stay float32, int8 quantises only the transformer blocks."""
from __future__ import annotations

import pytest
import torch

from wint3r_ros.errors import ConfigError
from wint3r_ros.model import runtime
from wint3r_ros.model.accuracy import deviation, within_tolerance
from wint3r_ros.model.checkpoint import load_model
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.model.runtime import prepare_model, resolve_device, resolve_precision
from wint3r_ros.weights import TINY_CHECKPOINT


def test_devices_resolve_or_fail_with_the_offending_value():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_each_precision_resolves_on_the_cpu_or_is_a_clear_config_error(monkeypatch):
    cpu = torch.device("cpu")
    assert [resolve_precision(p, cpu) for p in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    with pytest.raises(ConfigError, match="fp16 is not supported on the CPU; use bf16"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="fp64"):
        resolve_precision("fp64", cpu)
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("auto", cpu, width=1024) == "bf16"  # the official encoder
    assert resolve_precision("auto", cpu, width=192) == "fp32"  # tiny: bf16 is slower there
    tiny = prepare_model(WinT3R(WinT3RConfig.tiny()), "cpu", "auto")
    assert tiny.precision == "fp32"
    monkeypatch.setattr(runtime, "cpu_bf16_native", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"


def test_int8_on_cuda_and_bf16_on_an_old_gpu_are_refused(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Old GPU")
    with pytest.raises(ConfigError, match="int8 runs on the CPU only"):
        resolve_precision("int8", cuda)
    with pytest.raises(ConfigError, match="Old GPU has no bfloat16"):
        resolve_precision("bf16", cuda)
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("fp16", cuda) == "fp16"


def test_cpu_bf16_detection_agrees_with_the_cpu_flags():
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags here")
    assert runtime.cpu_bf16_native() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.fixture(scope="module")
def shipped_windows():
    """The shipped tiny model's first window in fp32, bf16 and int8 on the same images."""
    images = torch.randn(4, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    out = {}
    for precision in ("fp32", "bf16", "int8"):
        model = load_model(TINY_CHECKPOINT, precision=precision)
        assert model.precision == precision
        out[precision] = model.step(model.new_stream(), images)
    return out


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_within_its_documented_tolerance_of_fp32(shipped_windows, precision):
    dev = deviation(shipped_windows["fp32"], shipped_windows[precision])
    assert within_tolerance(dev), dev
    assert dev["pts_rel"] > 0  # it really ran in another precision
    assert dev["conf_rel"] < 0.02


def test_bf16_on_the_cpu_runs_the_blocks_in_bf16_and_the_heads_in_fp32():
    model = prepare_model(WinT3R(WinT3RConfig.tiny()).init_weights(0), "cpu", "bf16")
    seen = {}
    model.enc_blocks[0].mlp.fc1.register_forward_hook(lambda m, i, o: seen.update(block=o.dtype))
    model.pts_head.register_forward_hook(lambda m, i, o: seen.update(head=o[0].dtype))
    model.cam_head.pose_branch.register_forward_hook(lambda m, i, o: seen.update(cam=o.dtype))
    out = model.step(model.new_stream(), torch.randn(4, 3, 32, 32))
    assert seen["block"] == torch.bfloat16 and seen["head"] == seen["cam"] == torch.float32
    # the blocks' linear weights are stored in bf16 (autocast would round them at every call)
    assert model.enc_blocks[0].mlp.fc1.weight.dtype == torch.bfloat16
    assert model.enc_blocks[0].norm1.weight.dtype == torch.float32
    assert model.pts_head.projects[0].weight.dtype == model.cam_head.pose_branch.fc1.weight.dtype == torch.float32
    with pytest.raises(ConfigError, match="converted to bf16"):
        prepare_model(model, "cpu", "fp32")
    assert out.pts_local.dtype == out.pose_enc.dtype == torch.float32


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precisions_run_the_published_float16_rope_of_the_encoder(precision):
    config = WinT3RConfig.tiny().replace(enc_rope_mode="fp16_table")  # as the official preset
    model = prepare_model(WinT3R(config).init_weights(0), "cpu", precision)
    out = model.step(model.new_stream(), torch.randn(4, 3, 32, 32))
    assert torch.isfinite(out.pts_local).all() and torch.isfinite(out.pose_enc).all()


def test_int8_quantises_only_the_transformer_blocks_and_cannot_be_undone():
    model = prepare_model(WinT3R(WinT3RConfig.tiny()).init_weights(0), "cpu", "int8")
    assert "quantized" in type(model.enc_blocks[0].attn.qkv).__module__
    assert "quantized" in type(model.dec_blocks_state[0].mlp.fc2).__module__
    assert isinstance(model.cam_head.trunk[0].attn.qkv, torch.nn.Linear)
    assert isinstance(model.decoder_embed, torch.nn.Linear)
    with pytest.raises(ConfigError, match="converted to int8"):
        prepare_model(model, "cpu", "fp32")


def test_prepared_model_is_in_eval_mode_and_outputs_need_no_grad():
    model = prepare_model(WinT3R(WinT3RConfig.tiny()).init_weights(0).train(), "cpu", "bf16")
    assert not model.training and model.precision == "bf16"
    out = model.step(model.new_stream(), torch.randn(2, 3, 32, 32))
    assert torch.is_inference(out.pts_local) and not out.pose_enc.requires_grad


def test_training_forward_is_differentiable_with_gradient_checkpointing():
    model = WinT3R(WinT3RConfig.tiny()).init_weights(0).train()
    model.gradient_checkpointing = True
    out = model(torch.randn(4, 3, 32, 32))
    loss = out["pts_local"].mean() + out["pose_enc_iters"].pow(2).mean()
    loss.backward()
    assert model.enc_blocks[0].attn.qkv.weight.grad is not None
    assert model.cam_head.embed_pose.weight.grad is not None
    assert out["frame_index"].tolist() == [0, 1, 2, 3]
