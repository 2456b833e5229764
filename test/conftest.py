"""Shared test set-up: an isolated DDS domain per test run and rclpy helpers.

Nothing here imports rclpy at module level, so the ROS-free tests run without a ROS install.
"""
from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# test/fixtures/ is importable as `fixtures` from every test module
if str(REPO / "test") not in sys.path:
    sys.path.insert(0, str(REPO / "test"))

# One DDS domain per pytest process, so parallel runs on one machine never see each other's
# topics; subprocesses started by tests inherit it. Discovery stays on loopback.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def shared_file(*parts: str) -> Path:
    """A file of ../shared; skipped with a reason when absent, a failure under CI=true."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing; CI always has ../shared beside the repository")
        pytest.skip(f"{path} not found: clone the repository with ../shared beside it to run this")
    return path


@pytest.fixture
def rclpy_context():
    """A fresh rclpy Context, initialised for one test and shut down after it."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        context.try_shutdown()


def spin_until(executor, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Spin ``executor`` until ``predicate()`` holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


@pytest.fixture
def spin() -> Callable[..., bool]:
    """The ``spin_until(executor, predicate, timeout)`` helper, as a fixture."""
    return spin_until


@pytest.fixture
def shared() -> Callable[..., Path]:
    """The ``shared_file(*parts)`` helper, as a fixture."""
    return shared_file
