"""Hostile and odd YAML files, given where a user gives them: ``process-bag --rig``, ``calibrate
--check``, ``process-bag --model-config``, ``train --config`` and a node's ``--params-file``.

One reader (`wint3r_ros.yaml_io`) serves them all: a "billion laughs" file (nested anchors and
aliases, 2 KB that expand to GBs) is refused at once with one line, as are non-UTF-8 text and a
100 000-deep list (which overflowed Python's recursion); ``1e-3`` is a number, as in YAML 1.2;
no error message repeats an unbounded value."""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from wint3r_ros.cli import main
from wint3r_ros.errors import ConfigError, Wint3rError, brief
from wint3r_ros.yaml_io import dump_yaml, load_yaml

REPO = Path(__file__).resolve().parents[2]


def _laughs(path: Path) -> Path:
    """Nine levels of nine aliases each: 9^9 (387 million) strings once expanded; 1 KB."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("cameras: *a9")
    path.write_text("\n".join(lines) + "\n")
    return path


def _deep(path: Path) -> Path:
    path.write_text("cameras: " + "[" * 100_000 + "]" * 100_000 + "\n")
    return path


def _latin1(path: Path) -> Path:
    path.write_bytes("name: caméra\ncameras: []\n".encode("latin-1"))
    return path


HOSTILE = [(_laughs, "anchors and aliases"), (_deep, "nested more than"),
           (_latin1, "not UTF-8 text (byte 0xe9")]


def _one_line(code: int, err: str, needle: str, expect_code: int = 1) -> str:
    lines = err.strip().splitlines()
    assert code == expect_code, err
    assert len(lines) == 1 and "error:" in lines[0] and needle in lines[0], err
    assert "Traceback" not in err
    assert len(lines[0]) < 600
    return lines[0]


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("make, needle", HOSTILE)
def test_process_bag_rig_file_that_is_hostile_is_one_line(make, needle, tmp_path, capsys):
    rig = make(tmp_path / "rig.yaml")
    before = _max_rss_mb()
    code = main(["process-bag", str(tmp_path / "in"), str(tmp_path / "out"), "--rig", str(rig),
                 "--no-progress"])
    line = _one_line(code, capsys.readouterr().err, needle)
    assert "rig.yaml" in line
    assert _max_rss_mb() - before < 200, "the file was expanded"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, needle", HOSTILE)
def test_calibrate_check_of_a_hostile_rig_file_is_one_line(make, needle, tmp_path, capsys):
    rig = make(tmp_path / "rig.yaml")
    (tmp_path / "imgs").mkdir()
    code = main(["calibrate", "--check", str(rig), "--images", str(tmp_path / "imgs"),
                 "--board", "9x6", "--square", "0.04"])
    _one_line(code, capsys.readouterr().err, needle)


@pytest.mark.parametrize("make, needle", HOSTILE)
def test_training_and_parameter_files_that_are_hostile_are_one_line(make, needle, tmp_path,
                                                                     capsys):
    bad = make(tmp_path / "config.yaml")
    code = main(["train", "--config", str(bad), "--out", str(tmp_path / "run")])
    _one_line(code, capsys.readouterr().err, needle)
    code = main(["process-bag", str(tmp_path / "in"), str(tmp_path / "out"), "--model-config",
                 str(bad), "--no-progress"])
    _one_line(code, capsys.readouterr().err, needle)


def test_a_node_with_a_hostile_rig_file_or_params_file_exits_2_with_one_line(tmp_path):
    """The nodes read ``rig_file`` and ``--params-file`` with the same reader (subprocess: the
    real executable, the real argument)."""
    rig = _laughs(tmp_path / "rig.yaml")
    params = _latin1(tmp_path / "params.yaml")
    for extra, needle in ((["-p", f"rig_file:={rig}"], "anchors and aliases"),
                          (["--params-file", str(params)], "not UTF-8"),
                          (["--params-file", str(tmp_path / "missing.yaml")],
                           "missing.yaml: cannot read parameter file")):
        result = subprocess.run(
            [sys.executable, "-m", "wint3r_ros.ros.sync_node", "--ros-args", *extra],
            capture_output=True, text=True, timeout=120, cwd=REPO)
        line = _one_line(result.returncode, result.stderr, needle, expect_code=2)
        assert line.startswith("sync_node: error:")


def test_yaml_12_exponent_floats_are_numbers_and_our_own_files_round_trip(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: 1e-3\nb: 2E+5\nc: -1.5e3\nd: 7\ne: 0.5\nf: 1e\ng: '1e-3'\n")
    assert load_yaml(path) == {"a": 1e-3, "b": 2e5, "c": -1500.0, "d": 7, "e": 0.5, "f": "1e",
                               "g": "1e-3"}
    shared = [1.0, 2.0]
    path.write_text(dump_yaml({"x": shared, "y": shared}))   # no anchors in what we write
    assert load_yaml(path) == {"x": [1.0, 2.0], "y": [1.0, 2.0]}
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        load_yaml(path)
    path.write_bytes(b"a: " + b"x" * (2 << 20))
    with pytest.raises(ConfigError, match="larger than this reader accepts"):
        load_yaml(path)
    # values whose constructor fails were raw ValueErrors
    for text in ("a: " + "9" * 5000, "a: 2001-13-45", "a: !!int x", "a: !!timestamp 2001-02-30"):
        path.write_text(text)
        with pytest.raises(ConfigError, match="x.yaml: not valid YAML .*a value cannot be read"):
            load_yaml(path)


def test_a_training_config_with_1e_minus_3_is_accepted(tmp_path):
    from wint3r_ros.train.trainer import TrainConfig

    path = tmp_path / "train.yaml"
    path.write_text("optim:\n  lr: 1e-3\n")
    assert TrainConfig.from_yaml(path).optim.lr == pytest.approx(1e-3)


def test_error_messages_never_carry_unbounded_values():
    huge = ["x" * 1000] * 10_000
    assert len(brief(huge)) < 120 and len(brief("y" * 10**6)) < 120
    err = Wint3rError("value " + "z" * 10**6)
    assert len(str(err)) < 2100 and "message cut" in str(err)


def test_every_yaml_read_of_the_package_goes_through_yaml_io():
    """One reader: no module of the package, launch file or script parses YAML another way."""
    import re

    pattern = re.compile(r"yaml\.(safe_)?load\(|yaml\.(full_)?load_all\(|\bYAML\(|"
                         r"yaml\.unsafe_load|yaml\.parse\(|yaml\.compose\(")
    offenders = []
    for folder in ("wint3r_ros", "launch", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            if path.name == "yaml_io.py":
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_random_yaml_documents_of_nasty_scalars_parse_or_give_config_error():
    """300 random documents built from scalars whose constructors fail or surprise (huge
    integers, impossible dates, tags, binary, merge keys, sets, anchors): a value or a
    ConfigError, never another exception."""
    import random

    from wint3r_ros.yaml_io import parse_yaml

    atoms = ["9" * 5000, "0x" + "f" * 5000, "2001-13-45", "2001-02-30 25:61:61", "!!int x",
             "!!float y", "!!binary zz", "!!timestamp 1", "!!set {a, b}", "!!omap [a: 1]",
             "!!python/name:os.system", "<<: {a: 1}", "&a [1]", "*a", "1e999", "-.inf", ".nan",
             "~", "yes", "0o17", "1_000", "'\\u0000'", '"\\x00"', "[", "{", "? a", "- -", "%TAG",
             "!<tag:yaml.org,2002:str> s", "1:2:3", "0b101", "\t", "é", ""]
    rng = random.Random(1e-3)
    for _ in range(300):
        lines = [f"{rng.choice(['a', 'b', 'c', '- x', '  d'])}: {rng.choice(atoms)}"
                 for _ in range(rng.randint(1, 4))]
        text = "\n".join(lines)
        try:
            parse_yaml(text, "doc.yaml")
        except ConfigError as err:
            assert str(err).startswith("doc.yaml: ") and "\n" not in str(err), text
