"""`main()` for the nodes: init, spin, clean exit on Ctrl-C / SIGTERM / external shutdown.

Exit codes: 0 after a shutdown of any kind, 2 for a configuration error (one line on stderr
saying which parameter and why; no traceback for a user mistake), 0 for ``--help``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from wint3r_ros.errors import Wint3rError

__all__ = ["run_node", "wants_help", "help_text"]


def wants_help(args: Sequence[str]) -> bool:
    """True when -h/--help comes before any --ros-args."""
    for a in args[1:]:
        if a == "--ros-args":
            return False
        if a in ("-h", "--help"):
            return True
    return False


def help_text(executable: str, summary: str, specs: Sequence[Any]) -> str:
    """Usage and the parameter list (name, default, meaning, range) of a node."""
    lines = [f"usage: ros2 run wint3r_ros {executable} [--ros-args -p NAME:=VALUE ... "
             f"--params-file FILE -r FROM:=TO]",
             f"       python -m wint3r_ros.ros.{executable} [--ros-args ...]", "", summary, "",
             "parameters:"]
    for s in specs:
        extra = f" [{s.constraints}]" if s.constraints else ""
        lines.append(f"  {s.name} (default {s.default!r}): {s.description}{extra}")
    return "\n".join(lines)


def run_node(factory: Callable[[], Any], args: Sequence[str] | None = None,
             executable: str = "node", summary: str = "", specs: Sequence[Any] = ()) -> int:
    """Create the node with ``factory()`` inside an initialised rclpy and spin it until shutdown."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    argv = list(sys.argv if args is None else args)
    if wants_help(argv):
        print(help_text(executable, summary, specs))
        return 0
    rclpy.init(args=argv)
    node = None
    code = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Wint3rError as err:
        print(f"{executable}: error: {err}", file=sys.stderr)
        code = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
