"""The ``wint3r-ros`` command line: parse arguments, call a function, return an exit code.

Each subcommand lives next to the code it drives and exposes two functions:
``configure(parser)`` (adds its arguments) and ``run(args) -> int``. This file only wires them
together, imports them lazily (so ``--help`` stays fast and ``doctor`` works in a broken
environment), and prints the project's errors in one line.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from wint3r_ros import __version__
from wint3r_ros.errors import Wint3rError

# name -> (module, one-line help). Modules expose configure(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("wint3r_ros.doctor", "check the environment and say how to fix what is missing"),
    "replay": ("wint3r_ros.offline.replay", "publish a rosbag2 into the live graph with /clock"),
    "record": ("wint3r_ros.offline.record", "record live topics into a rosbag2 (mcap or sqlite3)"),
    "make-bag": ("wint3r_ros.offline.make_bag", "record a synthetic N-camera rig with ground truth into a rosbag2"),
    "process-bag": ("wint3r_ros.offline.process_bag_command",
                    "run the pipeline on a rosbag2, no DDS: an outputs bag (+ metrics with ground truth)"),
    "import-dataset": ("wint3r_ros.offline.import_dataset",
                       "write a published dataset sequence (TUM, Bonn, 7-Scenes, ScanNet, KITTI) as a rosbag2"),
    "recover-bag": ("wint3r_ros.offline.recover",
                    "copy what an interrupted (killed) recording or output left into a complete rosbag2"),
    "report": ("wint3r_ros.offline.report",
               "score an outputs bag against make-bag ground truth: metrics JSON, plots, PLY"),
    "calibrate": ("wint3r_ros.calib.command", "calibrate a rig from checkerboard images"),
    "convert-checkpoint": ("wint3r_ros.model.convert", "convert a WinT3R checkpoint to safetensors with its config"),
    "train": ("wint3r_ros.train.train_command",
              "train a model on simulated online windows (checkpoints, JSON log, resume)"),
    "eval": ("wint3r_ros.train.eval_command",
             "evaluate a checkpoint: ATE, RPE, depth AbsRel, delta<1.25, fps vs baselines"),
}

# Commands that run rclpy in this process: `ros.runner.stop_signals` owns their SIGINT and SIGTERM
# from before the command's module is imported until the process exits.
RCLPY_COMMANDS = ("record", "replay")

# `wint3r-ros bench <name>`: name -> (module, one-line help); same interface as COMMANDS.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "model": ("wint3r_ros.bench.model", "WinT3R network: ms per window, frames per second, peak memory"),
    "gpu": ("wint3r_ros.bench.gpu", "the whole GPU table in one run (<= 5 min): official 512x384 "
            "fp32/bf16/fp16, compile, VRAM, ROS set-to-TF; reduced on the CPU"),
    "core": ("wint3r_ros.bench.core", "sync + window overhead per synchronised set (N cameras)"),
    "ros": ("wint3r_ros.bench.ros", "ROS graph latency over DDS: sync_node, fusion_node (tiny model)"),
    "pipeline": ("wint3r_ros.bench.pipeline",
                 "process-bag frames/s on a synthetic bag, time in decode / model / write"),
    "transport": ("wint3r_ros.bench.transport",
                  "WindowBatch end-to-end latency over DDS, raw and JPEG (a bench ros preset)"),
    "soak": ("wint3r_ros.bench.soak", "memory over a long synthetic stream: sync -> windows -> engine, no DDS"),
    "map": ("wint3r_ros.bench.map", "the accumulated map over a long run: ms per window, bytes "
            "against the bound"),
    "memory": ("wint3r_ros.bench.memory", "process-bag's peak memory on large images (e.g. 3 "
               "cameras at 8000x6000) against buffer_budget_mb"),
}


def _add_table(subparsers: argparse._SubParsersAction, table: dict[str, tuple[str, str]],
               argv: list[str]) -> None:
    for name, (module, help_text) in table.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        # Import a command's module only when it is the one being run (or asked for help).
        if name in argv:
            importlib.import_module(module).configure(sub)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wint3r-ros",
        description="WinT3R streaming reconstruction for N-camera rigs (ROS 2 and offline).",
    )
    parser.add_argument("--version", action="version", version=f"wint3r-ros {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_table(subparsers, COMMANDS, argv)
    if BENCHMARKS:
        bench = subparsers.add_parser("bench", help="benchmarks (JSON out, docs/BENCHMARKS.md)")
        bench_sub = bench.add_subparsers(dest="bench", metavar="BENCHMARK")
        _add_table(bench_sub, BENCHMARKS, argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    with _signal_owner(argv):
        try:
            try:
                return _main(argv)
            finally:
                sys.stdout.flush()   # inside the try: a reader that went away is seen here
        except BrokenPipeError:
            stdout_gone()
            return 0


def _signal_owner(argv: list[str] | None) -> contextlib.AbstractContextManager:
    """`stop_signals` for an rclpy command (kept to the end when this is the process's main)."""
    words = sys.argv[1:] if argv is None else argv
    if not words or words[0] not in RCLPY_COMMANDS:
        return contextlib.nullcontext()
    from wint3r_ros.ros.runner import stop_signals

    return stop_signals(process=argv is None)


def _stop_requested() -> bool:
    """A stop signal came (under `_signal_owner`): an error raised since is part of the stop,
    e.g. an extension module whose initialisation the signal interrupted raises ImportError."""
    runner = sys.modules.get("wint3r_ros.ros.runner")
    return runner is not None and runner.stop_requested()


def stdout_gone() -> None:
    """The reader of stdout went away (``wint3r-ros --help | head -1``): point stdout at
    /dev/null so the interpreter's last flush stays quiet (no BrokenPipeError traceback)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:   # building the parser imports the command's module: Ctrl-C may land there
        parser = build_parser(argv)
    except KeyboardInterrupt:
        return 130
    except Exception:
        if not _stop_requested():
            raise
        return 130
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(module).run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if _stop_requested():
            return 130
        if not isinstance(err, Wint3rError):
            raise
        print(f"wint3r-ros {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
