"""``wint3r-ros doctor``: what the environment has, what it lacks, and the fix for each gap.

Every check runs in isolation and never raises, so the doctor works in exactly the broken
environments it is meant to diagnose.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["Check", "run_checks", "configure", "run"]


@dataclass
class Check:
    """One line of the report: ``ok`` False with ``required`` True makes the exit code 1."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, f"{platform.python_version()} at {sys.executable}",
                 "use Python 3.10 or newer (make setup uses python3.11)")


def _torch() -> Check:
    try:
        torch = importlib.import_module("torch")
    except Exception as err:  # any import failure is the finding
        return Check("torch", False, f"not importable ({err})", "run 'make setup' (installs torch==2.13.0)")
    cuda = torch.cuda.is_available()
    devices = f", {torch.cuda.device_count()} CUDA device(s)" if cuda else ", CUDA not available (CPU)"
    return Check("torch", True, f"{torch.__version__}{devices}")


def _ament_prefix() -> Check:
    value = os.environ.get("AMENT_PREFIX_PATH", "")
    if not value:
        return Check("AMENT_PREFIX_PATH", False, "not set",
                     "'source scripts/env.sh' (or source your ROS 2 setup.bash and install/setup.bash)")
    return Check("AMENT_PREFIX_PATH", True, value)


def _rclpy() -> Check:
    try:
        rclpy = importlib.import_module("rclpy")
        from rclpy.utilities import get_rmw_implementation_identifier
        rmw = get_rmw_implementation_identifier()
    except Exception as err:
        return Check("rclpy", False, f"not usable ({type(err).__name__}: {err})",
                     "'make setup' then 'source scripts/env.sh' (or source your ROS 2 install)")
    distro = os.environ.get("ROS_DISTRO", "jazzy (PyPI wheels)")
    return Check("rclpy", True, f"{getattr(rclpy, '__file__', '?')}; RMW {rmw}; ROS {distro}")


def _interfaces() -> Check:
    try:
        from std_srvs.srv import Trigger  # noqa: F401

        from wint3r_ros.msg import ReconstructionStatus, WindowBatch  # noqa: F401
        from wint3r_ros.srv import SaveMap  # noqa: F401
    except Exception as err:
        return Check("wint3r_ros messages", False, f"not importable ({err})",
                     "build them: 'make setup' (colcon build, std_srvs wheel) then "
                     "'source scripts/env.sh'")
    return Check("wint3r_ros messages", True, "wint3r_ros/msg/WindowBatch, ReconstructionStatus, "
                 "srv/SaveMap; std_srvs/srv/Trigger")


def _tf2_msgs() -> Check:
    try:
        importlib.import_module("tf2_msgs.msg").TFMessage  # noqa: B018
    except Exception as err:
        return Check("tf2_msgs", False, f"not importable ({err})",
                     "'make setup' builds it locally when no ROS install provides it")
    return Check("tf2_msgs", True, "tf2_msgs/msg/TFMessage")


def _share_dir() -> Check:
    try:
        from ament_index_python.packages import get_package_share_directory
        share = get_package_share_directory("wint3r_ros")
    except Exception as err:
        return Check("package share dir", False, f"not found ({type(err).__name__}: {err})",
                     "'make setup' then 'source scripts/env.sh' so install/ is on AMENT_PREFIX_PATH")
    return Check("package share dir", True, share)


def _discovery() -> Check:
    value = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") or os.environ.get("ROS_LOCALHOST_ONLY")
    return Check("DDS discovery range", True, value or "default (SUBNET)",
                 "" if value else "set ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST to keep DDS on this machine",
                 required=False)


CHECKS: list[Callable[[], Check]] = [
    _python, _torch, _ament_prefix, _rclpy, _interfaces, _tf2_msgs, _share_dir, _discovery,
]


def run_checks() -> list[Check]:
    """Run every check; a check that crashes is reported as failed, never raised."""
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception as err:
            results.append(Check(check.__name__.strip("_"), False, f"check crashed: {err}"))
    return results


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    results = run_checks()
    failed = [c for c in results if not c.ok and c.required]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in results]}, indent=2))
    else:
        for c in results:
            mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
            print(f"[{mark}] {c.name}: {c.detail}")
            if c.fix and (not c.ok or not c.required):
                print(f"       fix: {c.fix}")
        print("all required checks passed" if not failed
              else f"missing: {', '.join(c.name for c in failed)}")
    return 1 if failed else 0
