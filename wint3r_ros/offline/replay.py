"""``wint3r-ros replay BAG``: publish a rosbag2 into the live graph with /clock.

For machines without ``ros2 bag play`` (no rosbag2 wheel exists). Messages are published as the
serialized bytes stored in the bag (rclpy's raw publish), so any message type whose Python
package is importable works, at the bag's own pace (``--rate``), with ``/clock`` following the
bag's log time so nodes with ``use_sim_time`` see bag time. ``--loop`` starts over, which makes the
clock jump backwards exactly as ``ros2 bag play --loop`` does. Playing starts once every topic
played has a subscriber (``--wait`` seconds at most; topics still without one are named).
SIGINT and SIGTERM stop it within 50 ms, also while it waits between messages; ``--max-gap``
shortens long pauses. The bag is read through `wint3r_ros.data.bag.BagReader` (corrupt or
killed bags: one-line `BagError`).
"""
from __future__ import annotations

import argparse
import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from wint3r_ros.errors import BagError, ConfigError

__all__ = ["ReplayConfig", "replay_bag", "configure", "run"]


@dataclass(frozen=True)
class ReplayConfig:
    """What to play and how fast; ``rate`` 0 plays as fast as possible."""

    path: Path
    rate: float = 1.0
    loop: bool = False
    topics: tuple[str, ...] = ()
    publish_clock: bool = True
    wait_for_subscribers: float = 0.0
    max_loops: int = 0  # with loop: stop after this many passes (0 = until interrupted)
    max_gap: float = 0.0  # cap on a pause between messages, seconds of bag time (0 = none)


def _message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class (the package must be importable)."""
    parts = msgtype.split("/")
    if len(parts) == 2:  # 'pkg/Type' (ROS 1 style names in some bags)
        parts = [parts[0], "msg", parts[1]]
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError, IndexError) as err:
        raise BagError(f"message type {msgtype!r} of the bag is not importable here ({err}); "
                       f"build or install its interface package, or leave the topic out with --topics") from err


def _qos_for(connection):
    """Reliable, depth 100; transient local where the recording offered it (e.g. /tf_static)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    offered = str(getattr(getattr(connection, "ext", None), "offered_qos_profiles", "") or "")
    transient = connection.topic == "/tf_static" or "durability: 1" in offered \
        or "transient_local" in offered.lower()
    return QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE)


class _Stopped(Exception):
    """The context was shut down (SIGINT, SIGTERM, external shutdown) while playing."""


def _sleep(seconds: float, context) -> None:
    """Sleep, waking every 50 ms to see whether the context was shut down (rclpy's signal
    handler shuts it down on SIGINT and SIGTERM but cannot interrupt a plain time.sleep)."""
    deadline = time.monotonic() + seconds
    while True:
        if not context.ok():
            raise _Stopped
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def replay_bag(config: ReplayConfig, node, log=None) -> int:
    """Publish the bag through ``node``'s publishers; returns the number of messages published.

    The caller owns rclpy's context and the node; this function only publishes and sleeps. It
    returns early (with the count so far) once the context is shut down, e.g. by a signal, or on
    the `StopSignal` of a process whose signals `ros.runner.stop_signals` owns.
    Waits between messages are capped at ``max_gap`` seconds of bag time (0: never).
    """
    from wint3r_ros.data.bag import BagReader
    from wint3r_ros.ros.runner import StopSignal

    if config.rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {config.rate}")
    if config.max_gap < 0:
        raise ConfigError(f"--max-gap must be >= 0, got {config.max_gap}")
    log = log or node.get_logger().warning
    published = [0]    # _play_once counts here, so a stop part-way keeps the count
    try:   # a stop while opening the bag or creating publishers is a stop too (0 messages)
        with BagReader(config.path) as reader:
            _replay(reader, config, node, log, published)
    except (_Stopped, StopSignal):
        pass
    return published[0]


def _replay(reader, config: ReplayConfig, node, log, published: list[int]) -> None:
    """Create the publishers and play the bag (``published`` counts what went out)."""
    from rosgraph_msgs.msg import Clock

    if reader.incomplete:
        log(f"bag {config.path} is marked incomplete: {reader.incomplete}")
    connections = [c for c in reader.connections
                   if not config.topics or c.topic in config.topics]
    missing = set(config.topics) - {c.topic for c in connections}
    if missing:
        raise BagError(f"bag {config.path} has no topic(s) {sorted(missing)}; "
                       f"it has {sorted({c.topic for c in reader.connections})}")
    span_s = (reader.end_time_ns - reader.start_time_ns) / 1e9
    if config.rate > 0 and not config.max_gap and span_s > 86400:
        log(f"bag {config.path} spans {span_s / 86400:.0f} days of log time (a message "
            f"logged long before the others?); playing it takes that long: pass --max-gap "
            f"to skip long pauses")
    publishers = {}
    for c in connections:
        if c.topic not in publishers:
            publishers[c.topic] = node.create_publisher(_message_class(c.msgtype), c.topic,
                                                        _qos_for(c))
    clock_pub = node.create_publisher(Clock, "/clock", 10) if config.publish_clock else None
    _wait_for_subscribers(publishers, config.wait_for_subscribers, node.context, log)
    passes = 0
    while True:
        _play_once(reader, [c.topic for c in connections], publishers, clock_pub, config,
                   node.context, published)
        passes += 1
        if not config.loop or (config.max_loops and passes >= config.max_loops):
            break


def _wait_for_subscribers(publishers: dict, timeout: float, context, log) -> None:
    """Wait until every topic of the bag has a subscriber, at most ``timeout`` seconds (a node
    still starting would miss the first messages); then name the topics nobody subscribes."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [t for t, p in publishers.items() if not p.get_subscription_count()]
        if not missing or time.monotonic() >= deadline:
            break
        _sleep(0.05, context)
    if missing and timeout > 0:
        log(f"no subscriber after {timeout:g} s on {len(missing)} topic(s) "
            f"{sorted(missing)[:6]}; playing them anyway (--topics leaves topics out)")


def _play_once(reader, topics, publishers, clock_pub, config: ReplayConfig, context,
               published: list[int]) -> None:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    wall_start = time.monotonic()
    bag_start = previous = None
    skipped = 0      # bag time (ns) of the pauses cut to max_gap
    gap_ns = int(config.max_gap * 1e9)
    for connection, timestamp, rawdata in reader.raw_messages(topics):
        if bag_start is None:
            bag_start = previous = timestamp
        if gap_ns and timestamp - previous > gap_ns:
            skipped += timestamp - previous - gap_ns
        previous = timestamp
        if config.rate > 0:
            delay = wall_start + (timestamp - bag_start - skipped) / 1e9 / config.rate \
                - time.monotonic()
            if delay > 0:
                _sleep(delay, context)
        if not context.ok():
            raise _Stopped
        if clock_pub is not None:
            clock_pub.publish(Clock(clock=Time(sec=timestamp // 1_000_000_000,
                                               nanosec=timestamp % 1_000_000_000)))
        publishers[connection.topic].publish(bytes(rawdata))
        published[0] += 1


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory or file (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor; 0 = as fast as possible")
    parser.add_argument("--loop", action="store_true", help="start over at the end (the clock jumps back)")
    parser.add_argument("--topics", nargs="+", default=[], help="only these topics")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--wait", type=float, default=5.0,
                        help="seconds to wait, at most, until every topic played has a "
                             "subscriber (default 5)")
    parser.add_argument("--max-gap", type=float, default=0.0,
                        help="play a pause between messages longer than this many seconds (bag "
                             "time) as this long; 0 = play pauses as recorded")


def run(args: argparse.Namespace) -> int:
    import rclpy

    from wint3r_ros.ros.runner import init_rclpy, signals_ignored, stop_requested

    config = ReplayConfig(path=args.bag, rate=args.rate, loop=args.loop, topics=tuple(args.topics),
                          publish_clock=not args.no_clock, wait_for_subscribers=args.wait,
                          max_gap=args.max_gap)
    node = None
    count, finished = 0, False
    try:
        init_rclpy()
        node = rclpy.create_node("wint3r_replay")
        count = replay_bag(config, node)
        finished = rclpy.ok() and not stop_requested()
        if finished:
            print(f"replayed {count} messages from {config.path}")
            _sleep(0.5, node.context)  # let reliable publishers hand off the last messages
    except (KeyboardInterrupt, _Stopped):
        pass
    except Exception:
        if rclpy.ok() and not stop_requested():
            raise
        # a signal shut the context down under an rcl call (creating publishers): a stop
    finally:
        with signals_ignored(restore=False):   # the command only exits afterwards (cli's
            # `stop_signals` owns SIGINT and SIGTERM)
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    if not finished:   # a stop at any moment once rclpy was imported (signal, shutdown)
        print(f"stopped after {count} messages from {config.path}")
    return 0
