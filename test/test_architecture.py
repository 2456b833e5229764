"""The rooms and their import arrows (docs/ARCHITECTURE.md), checked on the source: a module
may import only the rooms its room is allowed to, at module level or inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wint3r_ros"

# room -> the project rooms it may import (besides itself, errors and the package root)
ALLOWED: dict[str, set[str]] = {
    "core": {"model"},
    "model": set(),
    "data": {"core", "model"},
    "calib": {"core", "data"},
    "train": {"core", "model", "data"},
    "ros": {"core", "model", "data", "msg"},
    "offline": {"core", "model", "data", "train", "calib", "ros", "msg"},
    "bench": {"core", "model", "data", "train", "offline", "ros", "msg"},
    "weights": set(),
}
# third-party packages that mark a room: rclpy only in the rooms that talk to the live graph
RCLPY_ROOMS = {"ros", "offline", "bench"}
SHARED = {"errors", "__init__", "yaml_io", "cli", "doctor", "msg", "weights"}  # shared by every room


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _violations() -> list[str]:
    found = []
    for room, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / room).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "rclpy" and room not in RCLPY_ROOMS:
                    found.append(f"{path.relative_to(PACKAGE)} imports rclpy")
                if parts[0] != "wint3r_ros" or len(parts) < 2:
                    continue
                target = parts[1]
                if target in SHARED or target == room or target in allowed:
                    continue
                if (PACKAGE / target).is_dir():
                    found.append(f"{path.relative_to(PACKAGE)} imports {name} ({room} -> {target})")
    return sorted(set(found))


def test_every_room_imports_only_what_docs_architecture_allows():
    assert _violations() == []


def test_every_package_directory_is_a_known_room():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(ALLOWED) | {"msg"}, rooms - set(ALLOWED)
