"""Bad command-line arguments: a wrong type or an unknown choice is argparse's usage error (exit 2);
a wrong value, a missing or malformed file is the project's error in one line (exit 1, no
traceback), naming the argument or the file."""
from __future__ import annotations

import pytest

from wint3r_ros.cli import main


def _bad_yaml(tmp_path):
    p = tmp_path / "train.yaml"
    p.write_text("steps: many\n")
    return str(p)


def _pickle_with_code(tmp_path):
    import torch

    marker = tmp_path / "EXECUTED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": Payload()}, path)
    return str(path)


CASES = [
    (lambda t: ["bench", "core", "--cameras", "0"], "--cameras 0"),
    (lambda t: ["bench", "soak", "--frames", "0"], "--frames 0"),
    (lambda t: ["bench", "transport", "--sets", "0"], "--sets 0"),
    (lambda t: ["bench", "model", "--height", "30", "--device", "cpu"], "30"),
    (lambda t: ["convert-checkpoint", str(t / "missing.bin"), str(t / "out.safetensors")],
     "missing.bin"),
    (lambda t: ["convert-checkpoint", _pickle_with_code(t), str(t / "out.safetensors")],
     "refused"),
    (lambda t: ["train", "--config", _bad_yaml(t), "--out", str(t / "run")], "'steps'"),
    (lambda t: ["make-bag", str(t / "bag"), "--cameras", "0"], "num_cameras"),
    (lambda t: ["process-bag", str(t / "in"), str(t / "out"), "--threads", "-1"],
     "--threads: torch_threads: -1 is out of range"),
]


@pytest.mark.parametrize("argv, needle", CASES)
def test_project_errors_are_one_line_with_exit_code_1(argv, needle, tmp_path, capsys):
    code = main(argv(tmp_path))
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wint3r-ros ") and "error:" in lines[0], err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "EXECUTED").exists(), "a pickle's code ran"


@pytest.mark.parametrize("argv", [
    ["bench", "core", "--cameras", "three"],
    ["bench", "transport", "--transports", "png"],
    ["no-such-command"],
    ["make-bag"],
])
def test_malformed_arguments_are_usage_errors_with_exit_code_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err
