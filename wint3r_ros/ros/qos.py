"""Named QoS profiles, the input QoS chosen by parameter, and a watchdog for silent topics.

A QoS mismatch in ROS 2 delivers nothing and says nothing (a reliable subscriber never hears a
best-effort camera; a bag recorded best-effort is replayed best-effort). So:
- camera inputs default to sensor data (best effort, keep last 5), which hears both best-effort
  and reliable publishers; ``reliable`` (no loss, for bags played with reliable QoS) and
  ``best_available`` (match what the publishers offer) are selectable by parameter;
- outputs are reliable; /tf_static is transient local (late joiners get it);
- `TopicWatchdog` warns when an expected topic stays silent, and says why it probably is:
  no publisher (name/namespace/remapping), a QoS or type mismatch (with the publisher's QoS
  and the parameter that fixes it), or, with use_sim_time, a missing /clock. It also logs the
  middleware's own "incompatible QoS" event for a subscription at once.

`explain_silence` (the diagnosis) needs no node and is tested on its own.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from wint3r_ros.errors import ConfigError

__all__ = ["SENSOR_DATA", "RELIABLE_INPUT", "BEST_AVAILABLE_INPUT", "OUTPUT", "WINDOWS", "TF",
           "TF_STATIC", "TF_STATIC_LISTENER", "LATCHED", "INPUT_QOS_NAMES", "input_qos",
           "BAG_MODE_DEPTH", "windows_qos",
           "describe", "PublisherInfo", "explain_silence", "TopicWatchdog"]

SENSOR_DATA = qos_profile_sensor_data  # best effort, keep last 5, volatile
RELIABLE_INPUT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.VOLATILE)
BEST_AVAILABLE_INPUT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                  reliability=ReliabilityPolicy.BEST_AVAILABLE,
                                  durability=DurabilityPolicy.BEST_AVAILABLE)
OUTPUT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# WindowBatch messages are large: a short reliable history, the fusion node queues itself.
WINDOWS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=4,
                     reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
TF = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
TF_STATIC = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
LATCHED = TF_STATIC
# tf2_ros's /tf_static subscription: depth 100 keeps every latched publisher's message until read
TF_STATIC_LISTENER = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)

INPUT_QOS_NAMES = ("sensor_data", "reliable", "best_available")
# bag_mode: reliable subscriptions deep enough to hold a bag's backlog while a node waits
BAG_MODE_DEPTH = 1000


def windows_qos(bag_mode: bool = False) -> QoSProfile:
    """WINDOWS, or in bag mode the same reliable profile with a BAG_MODE_DEPTH history."""
    if not bag_mode:
        return WINDOWS
    return QoSProfile(history=WINDOWS.history, depth=BAG_MODE_DEPTH,
                      reliability=WINDOWS.reliability, durability=WINDOWS.durability)


def input_qos(name: str, depth: int | None = None) -> QoSProfile:
    """The camera-input profile for parameter value ``name`` (see INPUT_QOS_NAMES); ``depth``
    overrides the history depth."""
    profiles = {"sensor_data": SENSOR_DATA, "reliable": RELIABLE_INPUT,
                "best_available": BEST_AVAILABLE_INPUT}
    if name not in profiles:
        raise ConfigError(f"input_qos={name!r}: expected one of {', '.join(INPUT_QOS_NAMES)}")
    base = profiles[name]
    return QoSProfile(history=base.history, depth=base.depth if depth is None else int(depth),
                      reliability=base.reliability, durability=base.durability)


def _policy_name(value: Any) -> str:
    return getattr(value, "name", str(value)).lower()


def describe(profile: QoSProfile) -> str:
    """'reliable/volatile, keep last 10' style text of a profile."""
    hist = "keep all" if profile.history == HistoryPolicy.KEEP_ALL else f"keep last {profile.depth}"
    return f"{_policy_name(profile.reliability)}/{_policy_name(profile.durability)}, {hist}"


@dataclass(frozen=True)
class PublisherInfo:
    """What the graph says about one publisher of a topic."""

    node: str
    topic_type: str
    reliability: Any
    durability: Any

    @classmethod
    def from_endpoint(cls, info: Any) -> PublisherInfo:
        ns = info.node_namespace.rstrip("/")
        return cls(f"{ns}/{info.node_name}", info.topic_type, info.qos_profile.reliability,
                   info.qos_profile.durability)


def explain_silence(topic: str, type_name: str, ours: QoSProfile,
                    publishers: Sequence[PublisherInfo], *, qos_parameter: str = "input_qos",
                    use_sim_time: bool = False, clock_seen: bool = True,
                    similar_topics: Sequence[str] = ()) -> str:
    """The most likely reason why nothing arrives on ``topic``, as advice a user can act on."""
    if use_sim_time and not clock_seen:
        return ("use_sim_time is true but nothing was received on /clock: play the bag with "
                "'ros2 bag play --clock' (or 'wint3r-ros replay'), or set use_sim_time:=false")
    if not publishers:
        hint = f"; topics with a similar name: {', '.join(similar_topics)}" if similar_topics else ""
        return (f"no publisher on {topic}: check the topic name, namespace and remappings, "
                f"or whether the camera driver / bag is running{hint}")
    wrong_type = [p for p in publishers if p.topic_type != type_name]
    if wrong_type:
        p = wrong_type[0]
        return (f"{p.node} publishes {topic} as {p.topic_type}, this node expects {type_name}: "
                "remap the topic to one of the expected type")
    best_effort = [p for p in publishers if p.reliability == ReliabilityPolicy.BEST_EFFORT]
    if ours.reliability == ReliabilityPolicy.RELIABLE and best_effort:
        fix = f"set {qos_parameter}:=sensor_data" if qos_parameter else "make the publisher reliable"
        return (f"QoS mismatch: {best_effort[0].node} publishes {topic} best effort but this node "
                f"subscribes reliable; a reliable subscription never hears a best-effort "
                f"publisher: {fix}")
    volatile = [p for p in publishers if p.durability == DurabilityPolicy.VOLATILE]
    if ours.durability == DurabilityPolicy.TRANSIENT_LOCAL and volatile:
        fix = f"set {qos_parameter}:=sensor_data or reliable" if qos_parameter else \
            "make the publisher transient local"
        return (f"QoS mismatch: {volatile[0].node} publishes {topic} volatile but this node "
                f"subscribes transient local: {fix}")
    names = ", ".join(p.node for p in publishers[:3])
    return (f"{len(publishers)} publisher(s) ({names}) with compatible QoS "
            f"({', '.join(sorted({_policy_name(p.reliability) for p in publishers}))}) but no "
            "message arrived: check ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE on both sides, "
            "that the publisher is actually publishing, and the network for large messages")


def _similar(topic: str, known: Sequence[str]) -> list[str]:
    leaf = topic.rstrip("/").rsplit("/", 1)[-1]
    return [t for t in known if t != topic and t.rstrip("/").rsplit("/", 1)[-1] == leaf][:3]


class TopicWatchdog:
    """Warns (rate-limited, wall time) about expected topics that stay silent; attach to a node.

    ``watch(topic, type_name, qos)`` registers a topic, ``mark(topic)`` is called by the
    subscription callback (cheap). Every ``period`` seconds of wall time, a topic silent for
    ``timeout`` seconds gets one warning: a topic that never delivered gets `explain_silence`'s
    diagnosis (network, QoS, names), repeated every ``repeat`` seconds while it stays silent; a
    topic that did deliver and stopped gets one line, once ("no input for N s; bag ended or
    cameras stopped?") and is listed in ``stopped``. Its recovery is logged once. ``clock_seen``
    (optional) tells whether /clock has been received, for nodes with use_sim_time.
    """

    def __init__(self, node: Any, timeout: float = 5.0, period: float = 1.0, repeat: float = 30.0,
                 clock_seen: Callable[[], bool] | None = None,
                 qos_parameter: str = "input_qos") -> None:
        from rclpy.clock import Clock, ClockType

        self._node = node
        self.timeout = float(timeout)
        self.repeat = float(repeat)
        self._clock_seen = clock_seen
        self._qos_parameter = qos_parameter
        self._topics: dict[str, dict[str, Any]] = {}
        self._start = time.monotonic()
        self.warnings: dict[str, str] = {}  # topic -> last diagnosis (for status/diagnostics)
        # topics that delivered and then went quiet (a bag ended, cameras stopped): a WARN, not
        # an ERROR, and no network advice
        self.stopped: set[str] = set()
        self._timer = node.create_timer(period, self.check, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def watch(self, topic: str, type_name: str, profile: QoSProfile) -> None:
        self._topics[topic] = {"type": type_name, "qos": profile, "last": None, "warned": None,
                               "silent": False}

    def mark(self, topic: str) -> None:
        entry = self._topics.get(topic)
        if entry is not None:
            entry["last"] = time.monotonic()

    def incompatible_qos_callback(self, topic: str) -> Callable[[Any], None]:
        """A SubscriptionEventCallbacks(incompatible_qos=...) handler logging the mismatch."""
        def report(event: Any) -> None:
            from rclpy.event_handler import qos_policy_name_from_kind

            policy = qos_policy_name_from_kind(event.last_policy_kind)
            ours = describe(self._topics[topic]["qos"]) if topic in self._topics else "?"
            fix = (f"set {self._qos_parameter} to match it (sensor_data hears every publisher)"
                   if self._qos_parameter else "change the publisher's QoS to match")
            text = (f"{topic}: a publisher offers QoS incompatible with this subscription "
                    f"({policy}; ours: {ours}); {fix}")
            self.warnings[topic] = text
            self._node.get_logger().warning(text)
        return report

    def check(self) -> None:
        now = time.monotonic()
        resolve = getattr(self._node, "resolve_topic_name", None)
        for topic, e in self._topics.items():
            since = e["last"] if e["last"] is not None else self._start
            silent = now - since > self.timeout
            if not silent:
                if e["silent"]:
                    self._node.get_logger().info(f"{topic} is delivering again")
                    self.warnings.pop(topic, None)
                    self.stopped.discard(topic)
                e["silent"], e["warned"] = False, None
                continue
            e["silent"] = True
            name = resolve(topic) if resolve is not None else topic
            if e["last"] is not None:   # it did deliver: the source stopped, said once
                if e["warned"] is None:
                    e["warned"] = now
                    self.stopped.add(topic)
                    self.warnings[topic] = text = (
                        f"{name}: no input for {now - since:.0f} s; bag ended or cameras stopped?")
                    self._node.get_logger().warning(text)
                continue
            if e["warned"] is not None and now - e["warned"] < self.repeat:
                continue
            e["warned"] = now
            try:
                pubs = [PublisherInfo.from_endpoint(p)
                        for p in self._node.get_publishers_info_by_topic(name)]
                known = [t for t, _ in self._node.get_topic_names_and_types()]
            except Exception:  # the graph API can fail during shutdown; say what we know
                pubs, known = [], []
            use_sim = bool(self._node.get_parameter("use_sim_time").value) \
                if self._node.has_parameter("use_sim_time") else False
            reason = explain_silence(
                name, e["type"], e["qos"], pubs, qos_parameter=self._qos_parameter,
                use_sim_time=use_sim, clock_seen=self._clock_seen() if self._clock_seen else True,
                similar_topics=_similar(name, known))
            text = f"{name}: nothing received yet for {now - since:.1f} s. Likely cause: {reason}"
            self.warnings[topic] = text
            self._node.get_logger().warning(text)

    def silent_topics(self) -> list[str]:
        return [t for t, e in self._topics.items() if e["silent"]]

    def destroy(self) -> None:
        self._node.destroy_timer(self._timer)

