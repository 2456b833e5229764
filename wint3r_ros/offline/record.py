"""``wint3r-ros record OUT --topics ...``: write live topics into a rosbag2 (mcap or sqlite3).

For machines without ``ros2 bag record`` (no rosbag2 wheel exists). Subscriptions are raw (the
serialized bytes go to the bag untouched, no deserialization cost) and are written through
`wint3r_ros.data.bag.BagWriter`, so the bag carries the message definitions of the project's
typestore (standard types plus wint3r_ros's own) and offered QoS profiles, and it is closed
properly on Ctrl-C or SIGTERM. Each topic's type is taken from the graph once a publisher
appears; the subscription QoS follows the publishers (best effort if any publisher is best
effort, transient local if all are, as ``ros2 bag record`` adapts). Log times come from the
node's clock: wall time, or bag time with ``--use-sim-time``.
"""
from __future__ import annotations

import argparse
import importlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wint3r_ros.data.bag import STORAGE_FORMATS, BagWriter
from wint3r_ros.errors import BagError, ConfigError

__all__ = ["TopicRecorder", "configure", "run"]


def _message_class(msgtype: str) -> Any:
    """'pkg/msg/Type' -> the rclpy message class (its package must be importable)."""
    pkg, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class TopicRecorder:
    """Attach to ``node``; records ``topics`` into a new bag at ``path`` until `close()`.

    Callbacks only append the raw bytes to the writer under a lock (cheap). A topic whose type
    is not yet known is subscribed as soon as `poll_graph()` sees a publisher for it; a topic
    whose type the typestore or this Python lacks is skipped with a reason in ``skipped``.
    """

    def __init__(self, node: Any, path: str | Path, topics: Sequence[str],
                 storage: str = "mcap", log: Callable[[str], None] | None = None) -> None:
        if storage not in STORAGE_FORMATS:
            raise ConfigError(f"storage must be one of {STORAGE_FORMATS}, got {storage!r}")
        if not topics:
            raise ConfigError("record: give at least one topic")
        self._node = node
        self._log = log or (lambda text: None)
        self._writer: BagWriter | None = BagWriter(Path(path), storage)
        self._lock = threading.Lock()
        self._pending = list(dict.fromkeys(topics))
        self._subscriptions: list[Any] = []
        self.counts: dict[str, int] = {t: 0 for t in self._pending}
        self.skipped: dict[str, str] = {}
        try:
            self.poll_graph()
        except BaseException:   # Ctrl-C or a shut-down context while subscribing: a bag
            self.close()        # closed now is a complete (empty) recording, not a dropped one
            raise

    @property
    def path(self) -> Path:
        return self._writer.path if self._writer is not None else Path()

    @property
    def pending(self) -> list[str]:
        """Topics with no publisher seen yet."""
        return list(self._pending)

    def _qos(self, topic: str) -> Any:
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        infos = self._node.get_publishers_info_by_topic(topic)
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for i in infos)
        latched = bool(infos) and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
        return QoSProfile(
            depth=100,
            reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched or topic == "/tf_static"
            else DurabilityPolicy.VOLATILE)

    def poll_graph(self) -> list[str]:
        """Subscribe to every pending topic that now has a publisher; returns those still pending."""
        if self._writer is None:
            return list(self._pending)
        types = dict(self._node.get_topic_names_and_types())
        for topic in list(self._pending):
            if topic not in types or not self._node.get_publishers_info_by_topic(topic):
                continue
            self._pending.remove(topic)
            msgtype = types[topic][0]
            try:
                msg_class = _message_class(msgtype)
                with self._lock:
                    self._writer.add_topic(topic, msgtype)
            except (ImportError, AttributeError, ValueError, BagError) as err:
                self.skipped[topic] = f"type {msgtype} cannot be recorded here: {err}"
                self._log(f"not recording {topic}: {self.skipped[topic]}")
                continue
            self._subscriptions.append(self._node.create_subscription(
                msg_class, topic, self._writer_callback(topic), self._qos(topic), raw=True))
        return list(self._pending)

    def _writer_callback(self, topic: str) -> Callable[[bytes], None]:
        def write(raw: bytes) -> None:
            stamp = self._node.get_clock().now().nanoseconds
            with self._lock:
                if self._writer is not None:
                    self._writer.write_raw(topic, raw, stamp)
                    self.counts[topic] += 1
        return write

    def flush_if_due(self) -> None:
        """Put what was recorded on disk if a second has passed (a killed recorder of sparse
        topics then loses at most about a second, not everything since the last message)."""
        with self._lock:
            if self._writer is not None:
                self._writer.flush_if_due()

    def close(self) -> None:
        """Finish the bag (metadata written); safe to call twice."""
        with self._lock:
            writer, self._writer = self._writer, None
        for sub in self._subscriptions:
            try:
                self._node.destroy_subscription(sub)
            except Exception:  # the context may already be shut down
                pass
        self._subscriptions.clear()
        if writer is not None:
            writer.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--topics", nargs="+", required=True, help="topics to record")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap",
                        help="rosbag2 storage (default mcap)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="seconds (wall time) to record; 0 = until Ctrl-C / SIGTERM")
    parser.add_argument("--use-sim-time", action="store_true",
                        help="log times from /clock (bag time) instead of wall time")


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from wint3r_ros.ros.runner import init_rclpy, signals_ignored, stop_requested

    if args.duration < 0:
        raise ConfigError(f"--duration must be >= 0, got {args.duration}")
    node = executor = recorder = None
    try:
        init_rclpy()
        node = rclpy.create_node("wint3r_record", parameter_overrides=[
            Parameter("use_sim_time", value=bool(args.use_sim_time))])
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        recorder = TopicRecorder(node, args.out, args.topics, args.format,
                                 log=node.get_logger().warning)
        print(f"recording {len(args.topics)} topic(s) to {args.out}", flush=True)
        deadline = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        next_poll = 0.0
        while rclpy.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            recorder.flush_if_due()
            if time.monotonic() >= next_poll and recorder.pending:
                recorder.poll_graph()
                next_poll = time.monotonic() + 0.5
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok() and not stop_requested():
            raise
        # SIGINT / SIGTERM shut the context down under an rcl call (start-up, a graph poll):
        # a stop like any other
    finally:
        with signals_ignored(restore=False):   # a signal must not cut the bag's close; the
            # command only exits afterwards (cli's `stop_signals` owns SIGINT and SIGTERM)
            if recorder is not None:
                recorder.close()
            if executor is not None:
                executor.shutdown()
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    if recorder is None:
        return 130
    print(f"recorded {sum(recorder.counts.values())} messages to {args.out}", flush=True)
    for topic, count in recorder.counts.items():
        note = " (no publisher seen)" if topic in recorder.pending else (
            f" (skipped: {recorder.skipped[topic]})" if topic in recorder.skipped else "")
        print(f"  {topic}: {count}{note}", flush=True)
    return 0
