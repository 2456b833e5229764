"""Packaging: every import is declared where each install route reads it, the rosdep keys
exist, the Dockerfiles use the same set-up as CI, and `--help` stays light (no torch, no
BrokenPipe traceback when the reader of a pipe goes away)."""
from __future__ import annotations

import ast
import configparser
import functools
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Third-party import name -> (pip requirement in setup.cfg, rosdep key in package.xml). A rosdep
# key of None says how the ROS route gets it instead (the README's venv recipe or another key).
THIRD_PARTY: dict[str, tuple[str, str | None]] = {
    "numpy": ("numpy", "python3-numpy"),
    "yaml": ("pyyaml", "python3-yaml"),
    "cv2": ("opencv-python-headless", "python3-opencv"),
    "torch": ("torch", "python3-torch"),
    "safetensors": ("safetensors", None),       # no rosdep key: the README's venv recipe
    "rosbags": ("rosbags", "python3-rosbags-pip"),
    "lz4": ("lz4", None),                        # a requirement of rosbags
    "backports": ("backports.zstd", None),       # a requirement of rosbags (zstd before 3.14)
    "matplotlib": ("matplotlib", "python3-matplotlib"),
    "tqdm": ("tqdm", "python3-tqdm"),
    "PIL": ("pillow", "python3-pil"),
}
# Test-only imports: pip extra `test` and package.xml test_depend (None: no rosdep key; the
# test that needs it skips without it).
TEST_THIRD_PARTY: dict[str, tuple[str, str | None]] = {
    "pytest": ("pytest", "python3-pytest"),
    "hypothesis": ("hypothesis", "python3-hypothesis"),
    "evo": ("evo", None),
}
# How the ROS route gets each import that has no rosdep key of its own.
NO_KEY_ROUTE = {"safetensors": "venv", "lz4": "python3-rosbags-pip",
                "backports": "python3-rosbags-pip"}
# Not on every Python: `compression` is the standard library's zstd from 3.14 on (backports
# before); `fixtures`, `test_fuzz` are the test tree's own modules.
NOT_PACKAGES = {"compression", "fixtures", "test_fuzz", "wint3r_ros"}
# ROS packages: the import name is the package name (rosdep resolves it to ros-jazzy-*).
ROS_PACKAGES = {"rclpy", "rcl_interfaces", "std_msgs", "std_srvs", "sensor_msgs", "geometry_msgs", "nav_msgs",
                "diagnostic_msgs", "tf2_msgs", "rosgraph_msgs", "builtin_interfaces",
                "visualization_msgs", "ament_index_python", "launch", "launch_ros",
                "launch_testing"}
# Non-ROS rosdep keys of package.xml, each checked to resolve with `rosdep resolve KEY
# --os=ubuntu:noble --rosdistro=jazzy` against ros/rosdistro's rosdep/*.yaml (2026-08 snapshot):
# python3-torch -> apt python3-torch, python3-rosbags-pip -> pip rosbags, ... A key that is not
# here is unverified (python3-torch-pip and python3-safetensors-pip do not exist).
VERIFIED_ROSDEP_KEYS = {"python3-numpy", "python3-yaml", "python3-opencv", "python3-torch",
                        "python3-rosbags-pip", "python3-matplotlib", "python3-tqdm", "python3-pil",
                        "python3-pytest", "python3-pytest-timeout", "python3-hypothesis",
                        "python3-ruff-pip"}


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level module -> files importing it (module level and inside functions)."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(_parsed(path)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in NOT_PACKAGES:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _package_xml() -> dict[str, set[str]]:
    """Dependency tag -> keys."""
    deps: dict[str, set[str]] = {}
    for el in ET.parse(ROOT / "package.xml").getroot():
        if el.tag.endswith("depend"):
            deps.setdefault(el.tag, set()).add((el.text or "").strip())
    return deps


def _requirement_names(lines: str) -> set[str]:
    return {re.split(r"[\s;<>=!\[~]", line.strip(), maxsplit=1)[0].lower()
            for line in lines.splitlines() if line.strip() and not line.strip().startswith("#")}


def _setup_cfg() -> tuple[set[str], set[str]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return (_requirement_names(cfg["options"]["install_requires"]),
            _requirement_names(cfg["options.extras_require"]["test"]))


def _runtime_files() -> list[Path]:
    return sorted([*ROOT.glob("wint3r_ros/**/*.py"), *ROOT.glob("launch/*.py"),
                   *ROOT.glob("scripts/nodes/*")])


def test_every_runtime_import_is_declared_in_package_xml_and_setup_cfg():
    imports = _imports(_runtime_files())
    xml = _package_xml()
    runtime_keys = xml.get("depend", set()) | xml.get("exec_depend", set())
    pip, _ = _setup_cfg()
    unknown = sorted(set(imports) - set(THIRD_PARTY) - ROS_PACKAGES)
    assert not unknown, (f"imports with no declared dependency: "
                         f"{ {m: sorted(imports[m]) for m in unknown} }; add each to package.xml, "
                         f"setup.cfg and this test's table")
    problems = []
    for module in sorted(imports):
        if module in ROS_PACKAGES:
            if module not in runtime_keys:
                problems.append(f"{module} (ROS package) not an exec_depend of package.xml")
            continue
        requirement, key = THIRD_PARTY[module]
        if requirement.lower() not in pip:
            problems.append(f"{module}: {requirement} missing from setup.cfg install_requires")
        route = key or NO_KEY_ROUTE[module]
        if route != "venv" and route not in runtime_keys:
            problems.append(f"{module}: rosdep key {route} missing from package.xml")
    assert not problems, "\n".join(problems)


def test_every_test_import_is_declared_for_tests():
    imports = _imports(sorted(ROOT.glob("test/**/*.py")))
    xml = _package_xml()
    keys = set().union(*xml.values())
    pip, pip_test = _setup_cfg()
    unknown = sorted(set(imports) - set(THIRD_PARTY) - set(TEST_THIRD_PARTY) - ROS_PACKAGES)
    assert not unknown, f"test imports with no declared dependency: {unknown}"
    for module in sorted(set(imports) & set(TEST_THIRD_PARTY)):
        requirement, key = TEST_THIRD_PARTY[module]
        assert requirement in pip_test, f"{requirement} missing from setup.cfg's test extra"
        assert key is None or key in xml.get("test_depend", set()), f"{key} not a test_depend"
    for module in sorted(set(imports) & ROS_PACKAGES):
        assert module in keys, f"{module} (ROS package) missing from package.xml"
    # pytest's configuration needs pytest-timeout (setup.cfg: timeout = ...)
    assert "pytest-timeout" in pip_test
    assert "python3-pytest-timeout" in xml.get("test_depend", set())


def test_package_xml_python_keys_are_verified_rosdep_keys():
    keys = set().union(*_package_xml().values())
    python_keys = {k for k in keys if k.startswith("python3-")}
    unverified = sorted(python_keys - VERIFIED_ROSDEP_KEYS)
    assert not unverified, (f"{unverified}: check with `rosdep resolve KEY --os=ubuntu:noble "
                            f"--rosdistro=jazzy`, then add to VERIFIED_ROSDEP_KEYS")
    assert "python3-torch-pip" not in keys and "python3-safetensors-pip" not in keys


def test_readme_venv_recipe_installs_what_rosdep_cannot():
    """The ROS route's recipe (README and Dockerfile) pip-installs every import without a
    rosdep key of its own, into a venv that sees the system packages (PEP 668)."""
    no_key = {THIRD_PARTY[m][0] for m, route in NO_KEY_ROUTE.items() if route == "venv"}
    readme = (ROOT / "README.md").read_text()
    assert "python3 -m venv --system-site-packages" in readme
    recipe = next(line for line in readme.splitlines() if "pip install" in line and "TORCH_SPEC"
                  in line)
    assert no_key <= set(recipe.split()), recipe
    docker = _dockerfile_args(ROOT / "Dockerfile")
    assert no_key <= set(docker["PIP_ONLY"].split())
    # every runtime key the Dockerfile skips is pip-installed in its venv instead
    installed = {"python3-torch": "TORCH_SPEC" in docker,
                 "python3-rosbags-pip": "rosbags" in docker["PIP_ONLY"].split()}
    assert all(installed[key] for key in docker["SKIP_KEYS"].split()), docker


def _dockerfile_lines(path: Path) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") \
            else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                out.append(" ".join(current.split()))
            current = ""
    return out


def _dockerfile_args(path: Path) -> dict[str, str]:
    args = {}
    for line in _dockerfile_lines(path):
        if line.startswith("ARG ") and "=" in line:
            name, value = line[4:].split("=", 1)
            args[name] = value.strip('"')
    return args


def test_pypi_dockerfile_runs_exactly_the_set_up_of_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    target = re.search(r"^make (\w+)\s*$", ci, re.M)
    assert target, ".ci/run no longer runs one make target"
    makefile = (ROOT / "Makefile").read_text()
    prereqs = re.search(rf"^{target.group(1)}:\s*([\w ]*)", makefile, re.M).group(1).split()
    setup_recipe = re.search(r"^setup:.*\n\t(.+)", makefile, re.M).group(1)
    assert "setup" in prereqs or target.group(1) == "setup"
    assert "scripts/setup.sh" in setup_recipe
    runs = [line[4:] for line in _dockerfile_lines(ROOT / "Dockerfile.pypi")
            if line.startswith("RUN ")]
    assert "make setup" in runs
    # nothing else installs Python packages or builds: the image is what CI tests
    for run in runs:
        assert not re.search(r"\b(pip|colcon|rosdep)\b", run), run
    assert "ARG TORCH_SPEC=torch==2.13.0" in _dockerfile_lines(ROOT / "Dockerfile.pypi")
    assert 'TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"' in (ROOT / "scripts" / "setup.sh").read_text()


def test_ros_dockerfile_builds_with_rosdep_and_colcon_on_jazzy():
    lines = _dockerfile_lines(ROOT / "Dockerfile")
    assert lines[0] == "FROM ros:jazzy"
    text = "\n".join(lines)
    assert "rosdep install --from-paths src --ignore-src" in text
    assert "colcon build --packages-select wint3r_ros" in text
    assert "python3 -m venv --system-site-packages" in text
    skipped = set(_dockerfile_args(ROOT / "Dockerfile")["SKIP_KEYS"].split())
    assert skipped <= VERIFIED_ROSDEP_KEYS   # skipping a key that does not exist hides nothing


_HELP_PROBE = """
import contextlib, io, sys
from wint3r_ros import cli
commands = [[c] for c in cli.COMMANDS] + [["bench", b] for b in cli.BENCHMARKS]
for argv in [[]] + [["bench"]] + commands:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            cli.main([*argv, "--help"])
        except SystemExit:
            pass
    print(" ".join(argv) or "-", "torch" in sys.modules, "usage: wint3r-ros" in out.getvalue())
"""


def test_help_of_every_command_does_not_import_torch():
    """`wint3r-ros [COMMAND] --help` builds that command's parser (importing its module) and
    prints the usage, all in one process: torch must still be absent after every one."""
    proc = subprocess.run([sys.executable, "-c", _HELP_PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.rsplit(" ", 2) for line in proc.stdout.splitlines()]
    assert len(rows) >= 10 and [r[0] for r in rows[:2]] == ["-", "bench"], proc.stdout
    assert all(printed == "True" for _, _, printed in rows), proc.stdout
    with_torch = [command for command, torch, _ in rows if torch == "True"]
    assert not with_torch, f"torch imported by the help of: {with_torch[0]}"


def _into_closed_pipe(args: list[str]) -> subprocess.CompletedProcess:
    """Run with stdout on a real pipe whose reader has already gone (what `| head -1` leaves
    behind once it has its line): every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [
    ["-m", "wint3r_ros.ros.sync_node", "--help"],
    ["-m", "wint3r_ros.cli", "bench", "--help"],
])

def test_help_into_a_closed_pipe_ends_without_a_traceback(args):
    pytest.importorskip("rclpy")
    proc = _into_closed_pipe(args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("node", ["sync_node", "fusion_node"])
def test_node_help_does_not_import_torch(node):
    pytest.importorskip("rclpy")
    code = ("import runpy, sys\nsys.argv = ['x', '--help']\ntry:\n"
            f"    runpy.run_module('wint3r_ros.ros.{node}', run_name='__main__')\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.stdout.startswith(f"usage: ros2 run wint3r_ros {node}"), proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == "False", proc.stderr[-2000:]


def test_sync_node_help_piped_into_head_prints_one_line():
    pytest.importorskip("rclpy")
    proc = subprocess.run(f"'{sys.executable}' -m wint3r_ros.ros.sync_node --help | head -1",
                          shell=True, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.stdout.startswith("usage: ros2 run wint3r_ros sync_node")
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr, proc.stderr
