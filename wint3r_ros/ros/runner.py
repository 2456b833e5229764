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

__all__ = ["run_node", "node_executable", "wants_help", "help_text", "params_files",
           "check_params_files", "check_param_arguments", "StopSignal", "stop_signals", "stop_deferred",
           "stop_requested", "signals_ignored", "init_rclpy"]


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


def check_param_arguments(args: Sequence[str]) -> None:
    """Refuse a ``-p name:=value`` whose value no ROS parameter can hold (a nested list, a
    mapping): rcl reads it as "not set" without a word, and the node would run on its default
    (``-p camera_names:=[[cam0]]``). Values YAML cannot read stay strings, as rcl takes them."""
    from wint3r_ros.errors import ConfigError
    from wint3r_ros.yaml_io import parse_yaml

    for flag, arg in zip(args, args[1:]):
        if flag not in ("-p", "--param") or ":=" not in arg:
            continue
        name, value = arg.split(":=", 1)
        try:
            parsed = parse_yaml(value, f"-p {name}", "parameter value")
        except ConfigError:
            continue
        if isinstance(parsed, dict) or (isinstance(parsed, list) and
                                        any(isinstance(v, (list, dict)) for v in parsed)):
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise ConfigError(f"-p {name}:={shown}: a nested list or a mapping is not "
                              "a ROS parameter value (rcl would leave the parameter unset and the "
                              "node would run on its default); give a flat list like [a, b]")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal(KeyboardInterrupt):
    """The first SIGINT or SIGTERM of a process whose signals `stop_signals` owns, raised in the
    main thread. A KeyboardInterrupt, so ``except KeyboardInterrupt`` and ``finally`` treat it as
    Ctrl-C; a subclass, because CPython marks an exact KeyboardInterrupt that leaves code run from
    a string (``exec``/``eval`` of source: dataclasses, namedtuple, rosbags' typestore) as
    unhandled even when a caller catches it, and a ``python -m`` process then kills itself with
    SIGINT after returning its exit code (exit -2, no traceback)."""


class _Owner:
    """What `stop_signals` knows: whether it is active, the first stop signal (0: none yet)."""

    active = False
    received = 0
    deferred = 0      # depth of `stop_deferred` blocks
    pending = False   # a stop arrived inside one: raised on leaving the outermost


def stop_requested() -> bool:
    """True once a SIGINT or SIGTERM reached a process whose signals `stop_signals` owns."""
    return _Owner.received != 0


def _on_stop_signal(signum: int, frame: object) -> None:
    first = _Owner.received == 0
    if first:
        _Owner.received = signum
    for s in STOP_SIGNALS:   # the rest of a burst: nothing left to interrupt the stop
        signal.signal(s, signal.SIG_IGN)
    if first:
        if _Owner.deferred:
            _Owner.pending = True
            return
        raise StopSignal(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def stop_deferred() -> Iterator[None]:
    """Inside, a stop signal is only recorded (rclpy's own handler has shut its context down, so
    rcl calls in there fail and count as a stop); `StopSignal` is raised on leaving. For work a
    KeyboardInterrupt must not cut in the middle: a node's constructor imports torch and loads
    the model, and an import of torch interrupted by SIGTERM aborted the process (exit -6)."""
    _Owner.deferred += 1
    try:
        yield
    finally:
        _Owner.deferred -= 1
    if not _Owner.deferred and _Owner.pending:
        _Owner.pending = False
        raise StopSignal("stopped by a signal during start-up")


@contextlib.contextmanager
def stop_signals(process: bool = True) -> Iterator[None]:
    """Own SIGINT and SIGTERM for an rclpy command or node, from start-up until the exit.

    Inside, the first SIGINT or SIGTERM raises `StopSignal` in the main thread and both are
    ignored from then on, so a burst (a terminal's Ctrl-C plus launch's SIGINT, an impatient
    user) cannot interrupt the unwinding. Enter it before importing rclpy: ``rclpy.init`` saves
    the handlers it finds and its own handler calls them after shutting its context down, so a
    signal then both stops the executors and raises here. With ``process`` (the process's own
    main), SIGINT and SIGTERM stay ignored on leaving: CPython's finalization resets a signal
    whose handler is a Python function to SIG_DFL (ignored ones it leaves alone), so a signal
    while the interpreter and DDS shut down killed the process (exit -2). Otherwise (called in
    another program, a test) the previous handlers come back. Main thread only; nested: no-op.
    """
    if threading.current_thread() is not threading.main_thread() or _Owner.active:
        yield
        return
    _Owner.active, _Owner.received, _Owner.pending = True, 0, False
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_ignored_signals(previous_hook)
    previous = {s: signal.signal(s, _on_stop_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        if process:
            _Owner.received = _Owner.received or -1   # leaving: a late signal raises nothing
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN if process else _python_handler(s, previous[s]))
        _Owner.active = False
        if not process:
            _Owner.received = 0
            sys.unraisablehook = previous_hook


def _quiet_ignored_signals(hook: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``sys.unraisablehook`` that drops CPython's "Signal 15 ignored due to race condition": a
    signal caught at C level just before its Python handler became SIG_IGN (a burst meeting
    `_on_stop_signal` or `signals_ignored`) is reported as an error with a traceback, while
    ignoring it is exactly what was asked."""
    signals = {f"Signal {int(s)} ignored due to race condition" for s in STOP_SIGNALS}

    def unraisable(info: Any) -> Any:
        if isinstance(info.exc_value, OSError) and str(info.exc_value) in signals:
            return None
        return hook(info)
    return unraisable


def _python_handler(signum: int, handler: Any) -> Any:
    # None: a handler Python did not set (inherited at start-up); Python's defaults instead
    if handler is None:
        return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    return handler


@contextlib.contextmanager
def signals_ignored(restore: bool = True) -> Iterator[None]:
    """SIGINT and SIGTERM are ignored inside the block (main thread only), and after it unless
    ``restore``.

    Used around shutdown: the node or command is already stopping (after a signal or at its
    end); a signal (a terminal Ctrl-C plus launch's SIGINT, an impatient user) must not interrupt
    joining a worker thread or closing a bag, which left a half-destroyed node, a traceback and
    SIGABRT. A process that only exits afterwards keeps ignoring them (``restore=False``; see
    `stop_signals` for why the exit needs it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s in STOP_SIGNALS:
            signal.signal(s, _python_handler(s, previous[s]) if restore else signal.SIG_IGN)


def init_rclpy(args: Sequence[str] | None = None) -> None:
    """``rclpy.init`` under `stop_signals`: a stop that came before (its StopSignal swallowed
    somewhere, e.g. turned into an ImportError by an extension module's initialisation) is
    raised again rather than lost, since the signals that follow it are ignored."""
    import rclpy

    if stop_requested():
        raise StopSignal("stopped before rclpy.init")
    rclpy.init(args=args)


def node_executable(module: str, executable: str) -> int:
    """The installed node executables (`ros2 run wint3r_ros sync_node`, launch files): own the
    signals before the node's module (rclpy, torch) is imported, then run its ``main``. A stop
    while it imports is a clean exit 0 with one line, as one during the rest of the start-up
    (`python -m wint3r_ros.ros.sync_node` imports rclpy before any code of ours runs)."""
    import importlib

    with stop_signals():
        try:
            main = importlib.import_module(module).main
        except BaseException as err:
            if not (isinstance(err, KeyboardInterrupt) or stop_requested()):
                raise
            print(f"{executable}: stopped during start-up", file=sys.stderr)
            return 0
        return main()


def run_node(factory: Callable[[], Any], args: Sequence[str] | None = None,
             executable: str = "node", summary: str = "", specs: Sequence[Any] = ()) -> int:
    """Create the node with ``factory()`` inside an initialised rclpy and spin it until shutdown.

    Signals at any moment end in a clean exit (`stop_signals` owns them from here to the exit):
    during start-up (importing rclpy, rclpy.init, the constructor: exit 0 with one line), while
    spinning (exit 0) and during shutdown (ignored: the node is already stopping). A bad
    parameter or params file exits 2 with one line.
    """
    argv = list(sys.argv if args is None else args)
    if wants_help(argv):
        try:
            print(help_text(executable, summary, specs), flush=True)
        except BrokenPipeError:   # `sync_node --help | head -1`: the reader has what it wanted
            from wint3r_ros.cli import stdout_gone

            stdout_gone()
        return 0
    with stop_signals(process=args is None):
        try:
            code = _init(argv, executable)
        except BaseException as err:   # a stop while importing rclpy or inside rclpy.init
            if not (isinstance(err, KeyboardInterrupt) or stop_requested()):
                raise
            print(f"{executable}: stopped during start-up", file=sys.stderr)
            with signals_ignored(restore=args is not None):
                _shutdown_rclpy()
            return 0
        if code is not None:
            return code
        return _spin(factory, executable, restore=args is not None)


def _shutdown_rclpy() -> None:
    rclpy = sys.modules.get("rclpy")
    if rclpy is not None and hasattr(rclpy, "try_shutdown"):
        rclpy.try_shutdown()


def _init(argv: list[str], executable: str) -> int | None:
    """rclpy.init with the node's arguments; 2 (after one line) for a configuration error."""
    try:
        check_params_files(argv)
        check_param_arguments(argv)
        init_rclpy(argv)
    except Wint3rError as err:
        print(f"{executable}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:   # rcl refusing the ROS arguments: _rclpy.RCLError
        if type(err).__name__ != "RCLError" or stop_requested():
            raise
        print(f"{executable}: error: invalid ROS arguments: {brief(err, 300)}", file=sys.stderr)
        return 2
    return None


def _spin(factory: Callable[[], Any], executable: str, restore: bool) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    node = None
    code = 0
    try:
        try:
            with stop_deferred():   # importing torch, loading the model: never cut
                node = factory()
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            if node is None:
                print(f"{executable}: stopped during start-up", file=sys.stderr)
        except Wint3rError as err:
            print(f"{executable}: error: {err}", file=sys.stderr)
            code = 2
        except Exception:
            if rclpy.ok() and not stop_requested():
                raise
            # SIGTERM / SIGINT shut the context down under the constructor or a callback: the
            # next rcl call fails (RCLError "context is invalid"); that is a stop, not a crash
            print(f"{executable}: stopped during start-up" if node is None
                  else f"{executable}: stopped", file=sys.stderr)
    finally:
        with signals_ignored(restore=restore):   # not restored: the process's main
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    return code
