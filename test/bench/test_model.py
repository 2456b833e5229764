"""Device/precision helpers and the `bench model` command."""
from __future__ import annotations

import json

import pytest
import torch

from wint3r_ros.cli import main as cli_main
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.model.runtime import prepare_model, resolve_device, resolve_precision


def test_devices_resolve_or_fail_with_the_offending_value():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_cpu_runs_every_precision_as_fp32_and_unknown_precision_is_refused():
    cpu = torch.device("cpu")
    assert [resolve_precision(p, cpu) for p in ("fp32", "bf16", "fp16")] == ["fp32"] * 3
    with pytest.raises(ConfigError, match="fp64"):
        resolve_precision("fp64", cpu)


def test_prepared_model_is_in_eval_mode_and_outputs_need_no_grad():
    model = prepare_model(WinT3R(WinT3RConfig.tiny()).init_weights(0).train(), "cpu", "bf16")
    assert not model.training and model.precision == "fp32"
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


def test_bench_model_prints_json_with_times_memory_and_the_naive_comparison(capsys):
    code = cli_main(["bench", "model", "--preset", "tiny", "--height", "32", "--width", "48",
                     "--device", "cpu", "--iterations", "2", "--warmup", "0", "--compare-naive"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    res = data["results"]
    assert data["settings"]["window"] == 4 and data["settings"]["weights"] == "random"
    assert res["ms_per_window"] > 0 and res["fps"] > 0 and len(res["times_s"]) == 2
    assert res["naive"]["ms_per_window"] > 0 and res["cached_over_naive"] > 0
    assert max(res["max_rel_diff"].values()) <= 1e-5
    assert res["peak_memory"]["process_max_rss_mb"] > 0
    assert data["machine"]["torch"] == torch.__version__


def test_bench_sequence_mode_and_bad_sizes(capsys):
    assert cli_main(["bench", "model", "--height", "32", "--width", "32", "--sequence", "5",
                     "--device", "cpu", "--iterations", "1", "--warmup", "0"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res["ms_per_frame"] == pytest.approx(res["ms_per_sequence"] / 5)
    assert cli_main(["bench", "model", "--height", "30", "--device", "cpu"]) == 1
    assert "multiples of 16" in capsys.readouterr().err
