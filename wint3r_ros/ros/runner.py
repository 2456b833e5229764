"""`main()` for the nodes: init, spin, clean exit on Ctrl-C / SIGTERM / external shutdown.

Exit codes: 0 after a shutdown of any kind (SIGINT, SIGTERM, external shutdown, at any moment:
during start-up, spinning or shutting down), 2 for a configuration error (one line on stderr
saying which parameter or params file and why; no traceback for a user mistake), 0 for
``--help``.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from wint3r_ros.errors import Wint3rError, brief

__all__ = ["run_node", "wants_help", "help_text", "params_files", "check_params_files",
           "signals_ignored"]


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


def params_files(args: Sequence[str]) -> list[str]:
    """The files given with ``--params-file`` after ``--ros-args`` (in order)."""
    files, in_ros = [], False
    for i, a in enumerate(args):
        if a == "--ros-args":
            in_ros = True
        elif a == "--":
            in_ros = False
        elif in_ros and a == "--params-file":
            files.append(args[i + 1] if i + 1 < len(args) else "")
    return files


def check_params_files(args: Sequence[str]) -> None:
    """Refuse a missing, unreadable or malformed ``--params-file`` before rcl sees it (rcl's
    own error is a traceback); each one is read with the project's YAML reader."""
    from wint3r_ros.errors import ConfigError
    from wint3r_ros.yaml_io import load_yaml

    for path in params_files(args):
        if not path:
            raise ConfigError("--params-file needs a file name")
        doc = load_yaml(path, "parameter file")
        if not isinstance(doc, dict):
            raise ConfigError(f"parameter file {path}: not a mapping of node names to "
                              f"ros__parameters")


@contextlib.contextmanager
def signals_ignored(restore: bool = True) -> Iterator[None]:
    """SIGINT and SIGTERM are ignored inside the block (main thread only), and after it unless
    ``restore``.

    Used around shutdown: the first signal already stopped the node; a second one (a terminal
    Ctrl-C plus launch's SIGINT, an impatient user) must not interrupt joining the worker
    thread, which left a half-destroyed node, a traceback and SIGABRT. A process that only exits
    afterwards keeps ignoring them (``restore=False``), so a late signal cannot interrupt the
    interpreter's exit either.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if not restore:   # ignored again: rclpy's shutdown may have put its saved handler back
            previous = {s: signal.SIG_IGN for s in previous}
        for s, handler in previous.items():
            if handler is None:   # installed from C (rclpy): Python's defaults afterwards
                handler = signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL
            signal.signal(s, handler)


def run_node(factory: Callable[[], Any], args: Sequence[str] | None = None,
             executable: str = "node", summary: str = "", specs: Sequence[Any] = ()) -> int:
    """Create the node with ``factory()`` inside an initialised rclpy and spin it until shutdown.

    Signals at any moment end in a clean exit: during start-up (the context is shut down under
    the constructor: exit 0 with one line), while spinning (exit 0) and during shutdown (ignored:
    the node is already stopping). A bad parameter or params file exits 2 with one line.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    argv = list(sys.argv if args is None else args)
    if wants_help(argv):
        try:
            print(help_text(executable, summary, specs), flush=True)
        except BrokenPipeError:   # `sync_node --help | head -1`: the reader has what it wanted
            from wint3r_ros.cli import stdout_gone

            stdout_gone()
        return 0
    try:
        check_params_files(argv)
        rclpy.init(args=argv)
    except Wint3rError as err:
        print(f"{executable}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:   # rcl refusing the ROS arguments: _rclpy.RCLError
        if type(err).__name__ != "RCLError":
            raise
        print(f"{executable}: error: invalid ROS arguments: {brief(err, 300)}", file=sys.stderr)
        return 2
    node = None
    code = 0
    try:
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
        except Exception:
            if rclpy.ok():
                raise
            # SIGTERM / SIGINT shut the context down under the constructor or a callback: the
            # next rcl call fails (RCLError "context is invalid"); that is a stop, not a crash
            print(f"{executable}: stopped during start-up" if node is None
                  else f"{executable}: stopped", file=sys.stderr)
    finally:
        with signals_ignored(restore=args is not None):   # args None: the process's main
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    return code
