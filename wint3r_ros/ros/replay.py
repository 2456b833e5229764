"""``wint3r-ros replay BAG``: publish a rosbag2 into the live graph with /clock.

For machines without ``ros2 bag play`` (no rosbag2 wheel exists). Messages are published as the
serialized bytes stored in the bag (rclpy's raw publish), so any message type whose Python
package is importable works, at the bag's own pace (``--rate``), with ``/clock`` following the
bag's log time so nodes with ``use_sim_time`` see bag time. ``--loop`` starts over, which makes the
clock jump backwards exactly as ``ros2 bag play --loop`` does.
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


def replay_bag(config: ReplayConfig, node) -> int:
    """Publish the bag through ``node``'s publishers; returns the number of messages published.

    The caller owns rclpy's context and the node; this function only publishes and sleeps.
    """
    from rosbags.highlevel import AnyReader
    from rosgraph_msgs.msg import Clock

    if config.rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {config.rate}")
    if not config.path.exists():
        raise BagError(f"bag {config.path} does not exist")
    published = 0
    try:
        with AnyReader([config.path]) as reader:
            connections = [c for c in reader.connections
                           if not config.topics or c.topic in config.topics]
            missing = set(config.topics) - {c.topic for c in connections}
            if missing:
                raise BagError(f"bag {config.path} has no topic(s) {sorted(missing)}; "
                               f"it has {sorted({c.topic for c in reader.connections})}")
            publishers = {}
            for c in connections:
                if c.topic not in publishers:
                    publishers[c.topic] = node.create_publisher(_message_class(c.msgtype), c.topic, _qos_for(c))
            clock_pub = node.create_publisher(Clock, "/clock", 10) if config.publish_clock else None
            _wait_for_subscribers(list(publishers.values()), config.wait_for_subscribers)
            passes = 0
            while True:
                published += _play_once(reader, connections, publishers, clock_pub, config.rate)
                passes += 1
                if not config.loop or (config.max_loops and passes >= config.max_loops):
                    break
    except BagError:
        raise
    except Exception as err:  # rosbags raises its own reader errors for corrupt/truncated bags
        if type(err).__module__.startswith("rosbags"):
            raise BagError(f"bag {config.path} could not be read after {published} messages: {err}") from err
        raise
    return published


def _wait_for_subscribers(publishers: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(p.get_subscription_count() for p in publishers):
        time.sleep(0.05)


def _play_once(reader, connections, publishers, clock_pub, rate: float) -> int:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    count = 0
    wall_start = time.monotonic()
    bag_start = None
    for connection, timestamp, rawdata in reader.messages(connections=connections):
        if bag_start is None:
            bag_start = timestamp
        if rate > 0:
            delay = wall_start + (timestamp - bag_start) / 1e9 / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if clock_pub is not None:
            clock_pub.publish(Clock(clock=Time(sec=timestamp // 1_000_000_000,
                                               nanosec=timestamp % 1_000_000_000)))
        publishers[connection.topic].publish(bytes(rawdata))
        count += 1
    return count


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory or file (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor; 0 = as fast as possible")
    parser.add_argument("--loop", action="store_true", help="start over at the end (the clock jumps back)")
    parser.add_argument("--topics", nargs="+", default=[], help="only these topics")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--wait", type=float, default=2.0,
                        help="seconds to wait for a first subscriber before playing")


def run(args: argparse.Namespace) -> int:
    import rclpy

    config = ReplayConfig(path=args.bag, rate=args.rate, loop=args.loop, topics=tuple(args.topics),
                          publish_clock=not args.no_clock, wait_for_subscribers=args.wait)
    rclpy.init()
    node = rclpy.create_node("wint3r_replay")
    try:
        count = replay_bag(config, node)
        print(f"replayed {count} messages from {config.path}")
        time.sleep(0.5)  # let reliable publishers hand off the last messages
    except KeyboardInterrupt:
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGTERM / SIGINT shut the context down while a message was being published: a stop
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
