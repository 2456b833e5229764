"""Checkpoint loading: formats, wrappers, safety, and one clear error per kind of problem."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from wint3r_ros.cli import main as cli_main
from wint3r_ros.errors import CheckpointError
from wint3r_ros.model.checkpoint import convert_checkpoint, load_model, read_checkpoint, save_checkpoint
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R

MARKER_NAME = "pwned.txt"


@pytest.fixture(scope="module")
def tiny() -> WinT3R:
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=3).eval()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_safetensors_round_trip_rebuilds_its_own_model(tiny, tmp_path):
    path = save_checkpoint(tiny, tmp_path / "tiny.safetensors")
    loaded = load_model(path)
    assert loaded.config == tiny.config and not loaded.training
    assert same_weights(loaded, tiny)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = tiny.step(tiny.new_stream(), images)
    b = loaded.step(loaded.new_stream(), images)
    assert torch.equal(a.pts_local, b.pts_local) and torch.equal(a.pose_enc, b.pose_enc)
    # the config travels as JSON metadata
    _, stored = read_checkpoint(path)
    assert stored == tiny.config


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict", "module"])
def test_pickled_state_dicts_load_with_or_without_wrappers(tiny, tmp_path, wrap):
    sd = tiny.state_dict()
    obj = {"bare": sd, "model": {"model": sd, "epoch": 3}, "state_dict": {"state_dict": sd},
           "module": {f"module.{k}": v for k, v in sd.items()}}[wrap]
    path = tmp_path / "weights.pth"
    torch.save(obj, path)
    loaded = load_model(path, config=WinT3RConfig.tiny())
    assert same_weights(loaded, tiny)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"no_such\.bin not found"):
        load_model(tmp_path / "no_such.bin")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_file_is_reported_as_truncated_or_corrupt(tiny, tmp_path, suffix):
    path = tmp_path / f"full{suffix}"
    if suffix == ".pt":
        torch.save(tiny.state_dict(), path)
    else:
        save_checkpoint(tiny, path)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(cut, config=WinT3RConfig.tiny())


def test_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / MARKER_NAME

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.bin"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": Payload()}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists(), "loading must not execute the pickle's code"


def test_wrong_architecture_lists_missing_unexpected_and_mismatched_keys(tiny, tmp_path):
    sd = dict(tiny.state_dict())
    sd.pop("enc_norm.weight")
    sd["extra.weight"] = torch.zeros(2)
    sd["cam_token"] = torch.zeros(1, 1, 5)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path, config=WinT3RConfig.tiny())
    message = str(info.value)
    assert "1 missing: enc_norm.weight" in message
    assert "1 unexpected: extra.weight" in message
    assert "cam_token: checkpoint [1, 1, 5] vs model [1, 1, 96]" in message


def test_a_checkpoint_for_another_config_is_a_clear_mismatch(tiny, tmp_path):
    path = save_checkpoint(tiny, tmp_path / "tiny.safetensors")
    other = WinT3RConfig.tiny().replace(dec_depth=3)
    with pytest.raises(CheckpointError, match="dec_depth: file 2 vs requested 3"):
        load_model(path, config=other)
    # without a stored config the architecture check names what does not fit
    bare = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(bare))
    with pytest.raises(CheckpointError, match="does not fit this architecture"):
        load_model(bare)  # defaults to the official architecture


def test_convert_checkpoint_command_writes_a_self_describing_safetensors(tiny, tmp_path, capsys):
    src = tmp_path / "pytorch_model.bin"
    torch.save(tiny.state_dict(), src)
    dst = tmp_path / "out.safetensors"
    assert cli_main(["convert-checkpoint", str(src), str(dst), "--preset", "tiny"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tensors"] == len(tiny.state_dict()) and summary["output"] == str(dst)
    assert same_weights(load_model(dst), tiny)
    # a wrong preset is an error printed in one line, exit code 1
    assert cli_main(["convert-checkpoint", str(src), str(tmp_path / "x.safetensors")]) == 1
    assert "does not fit this architecture" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        convert_checkpoint(tmp_path / "absent.bin", dst)
