"""Broken checkpoints as a user meets them: an interrupted download (zero bytes, cut short), a
stored config that would build an unbounded model or holds NaN, a pickle that carries code.
Every one is one CheckpointError line naming the file, in the library and in the commands that
load weights (convert-checkpoint, process-bag, fusion_node)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from wint3r_ros.cli import main as cli_main
from wint3r_ros.errors import CheckpointError, ConfigError
from wint3r_ros.model.checkpoint import read_checkpoint, save_checkpoint
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.loader import load_reconstruction_model
from wint3r_ros.model.network import WinT3R

REPO = Path(__file__).resolve().parents[2]
SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


@pytest.fixture(scope="module")
def full_files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a complete tiny checkpoint in each format."""
    folder = tmp_path_factory.mktemp("full")
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=1)
    out = {}
    for suffix in SUFFIXES:
        path = folder / f"w{suffix}"
        if suffix == ".safetensors":
            save_checkpoint(model, path)
        else:
            torch.save(model.state_dict(), path)
        out[suffix] = path.read_bytes()
    return out


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_zero_byte_checkpoint_is_one_clear_error(tmp_path, suffix):
    path = tmp_path / f"download{suffix}"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"download\.\w+ is empty \(0 bytes\)"):
        read_checkpoint(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("keep", [1, 8, 9, 100, 0.5, -16])
def test_cut_checkpoint_is_truncated_or_corrupt_never_refused_or_a_raw_error(
        full_files, tmp_path, suffix, keep):
    data = full_files[suffix]
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[:n])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "truncated or corrupt" in message and str(path) in message
    assert "\n" not in message and "refused" not in message


def test_refused_pickle_names_what_it_refused_without_torchs_advice(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never print",))

    path = tmp_path / "evil.bin"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Payload()}, path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "refused" in message and "print" in message
    assert "weights_only=False" not in message and "two options" not in message
    assert "\n" not in message


def _safetensors_with_config(path: Path, config: dict) -> Path:
    save_file({"w": torch.zeros(2)}, str(path),
              metadata={"wint3r_config": json.dumps(config), "format": "wint3r_ros"})
    return path


def test_a_huge_stored_config_is_refused_before_anything_is_built(tmp_path):
    config = WinT3RConfig.tiny().to_dict() | {"enc_depth": 200_000}
    path = _safetensors_with_config(tmp_path / "huge.safetensors", config)
    assert path.stat().st_size < 1024
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"enc_depth=200000: expected an integer in \[1, 64\]"):
        read_checkpoint(path)
    assert time.perf_counter() - t0 < 5.0  # not a timing claim: 200 000 blocks take minutes


@pytest.mark.parametrize("field, value, message", [
    ("mlp_ratio", math.nan, r"mlp_ratio=nan: expected a finite number"),
    ("norm_eps", math.inf, r"norm_eps=inf: expected a finite number"),
    ("rope_base", -math.inf, r"rope_base=-inf"),
    ("dec_embed_dim", 96.0, r"dec_embed_dim=96\.0: expected an integer"),
    ("window_size", True, r"window_size=True: expected an integer"),
    ("state_size", 10**9, r"state_size=1000000000"),
    ("head_upsample_dims", [64, 32, 10**6], r"head_upsample_dims=\(64, 32, 1000000\): integers"),
    ("head_upsample_dims", 7, r"head_upsample_dims=7: expected a list"),
    ("state_pe", ["2d"], r"state_pe=\['2d'\]: expected a string"),
    ("max_pool_tokens", 10**12, r"max_pool_tokens=1000000000000"),
])
def test_stored_config_values_out_of_range_or_nan_are_refused(tmp_path, field, value, message):
    config = WinT3RConfig.tiny().to_dict() | {field: value}
    path = _safetensors_with_config(tmp_path / "bad.safetensors", config)
    with pytest.raises(CheckpointError, match="its stored config is invalid: WinT3RConfig: " + message):
        read_checkpoint(path)
    with pytest.raises(ConfigError, match=message):
        WinT3RConfig.from_dict(config)


def test_presets_are_inside_the_bounds():
    for name in ("tiny", "official"):
        assert WinT3RConfig.from_dict(WinT3RConfig.preset(name).to_dict()) == WinT3RConfig.preset(name)


def test_convert_checkpoint_with_an_empty_file_is_one_line(tmp_path, capsys):
    src = tmp_path / "pytorch_model.bin"
    src.write_bytes(b"")
    assert cli_main(["convert-checkpoint", str(src), str(tmp_path / "out.safetensors")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is empty (0 bytes)" in err and str(src) in err
    assert not (tmp_path / "out.safetensors").exists()


def test_the_nodes_loader_turns_a_broken_checkpoint_into_a_config_error(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"\x80\x02")
    with pytest.raises(ConfigError, match=r"checkpoint: checkpoint .*w\.pth: cannot be read"):
        load_reconstruction_model(str(path), "tiny", "cpu", "fp32")


def test_process_bag_with_an_empty_checkpoint_is_one_line(tmp_path, capsys):
    bag = tmp_path / "in"
    assert cli_main(["make-bag", str(bag), "--cameras", "1", "--frames", "2", "--width", "32",
                     "--height", "32", "--no-depth"]) == 0
    empty = tmp_path / "model.pt"
    empty.write_bytes(b"")
    capsys.readouterr()
    code = cli_main(["process-bag", str(bag), str(tmp_path / "out"), "--checkpoint", str(empty),
                     "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "model.pt is empty (0 bytes)" in err[0], err


def test_fusion_node_with_an_empty_checkpoint_exits_with_one_line(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")
    empty = tmp_path / "model.safetensors"
    empty.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "wint3r_ros.ros.fusion_node", "--ros-args",
         "-p", f"checkpoint:={empty}", "-p", "camera_names:=[cam0]"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "model.safetensors is empty (0 bytes)" in result.stderr
    assert "Traceback" not in result.stderr and "IndexError" not in result.stderr
