"""rosbag2 reading and writing (mcap and sqlite3) on top of ``rosbags``, no ROS install needed.

`BagReader` streams messages without loading the bag: in log-time order (`messages`) or in
header-stamp order (`messages_by_stamp`, a sort-merge through a small bounded buffer, because
recorders log a message when it arrives, not when it was captured). `BagWriter` writes what
``ros2 bag record`` writes: message definitions (in the project's typestore, which includes
the package's own messages) and offered QoS profiles per topic (transient local for
``/tf_static``), and it always closes the bag, so what was written before an exception or
Ctrl-C stays a valid bag. A missing, corrupt or truncated bag raises `BagError` with its path.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import signal
import sqlite3
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

from wint3r_ros.data.messages import project_typestore
from wint3r_ros.errors import BagError, ConfigError

__all__ = [
    "STORAGE_FORMATS",
    "BagMessage",
    "BagReader",
    "BagWriter",
    "project_typestore",
    "qos_profile",
    "default_qos",
    "QOS_RELIABLE",
    "QOS_SENSOR_DATA",
    "QOS_TF_STATIC",
    "TF_STATIC_TOPIC",
    "sigterm_as_interrupt",
]

STORAGE_FORMATS = ("mcap", "sqlite3")
TF_STATIC_TOPIC = "/tf_static"
_INFINITE = (9223372036, 854775807)     # rmw's "infinite" duration, as ros2 bag writes it


# --------------------------------------------------------------------------------------------
# QoS profiles (rosbags' Qos tuples, as ros2 bag stores them in metadata.yaml)


def qos_profile(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Any:
    """A rosbags ``Qos`` (keep-last ``depth``; infinite deadline/lifespan/lease like rmw)."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    return Qos(
        history=QosHistory.KEEP_LAST, depth=depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=QosTime(*_INFINITE), lifespan=QosTime(*_INFINITE),
        liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=QosTime(*_INFINITE),
        avoid_ros_namespace_conventions=False)


QOS_RELIABLE = qos_profile(reliable=True, depth=10)
QOS_SENSOR_DATA = qos_profile(reliable=False, depth=5)
QOS_TF_STATIC = qos_profile(reliable=True, transient_local=True, depth=1)


def default_qos(topic: str) -> Any:
    """The profile a well-behaved publisher offers: transient local for /tf_static, reliable
    otherwise (reliable publishers serve both reliable and best-effort subscribers)."""
    return QOS_TF_STATIC if topic == TF_STATIC_TOPIC else QOS_RELIABLE


# --------------------------------------------------------------------------------------------
# Reading


class BagMessage(NamedTuple):
    """One message: topic, type, log time (when recorded), stamp (header stamp when the type
    has a header, else the log time; nanoseconds) and the deserialized message."""

    topic: str
    msgtype: str
    log_time_ns: int
    stamp_ns: int
    msg: Any


def _is_rosbags_error(err: BaseException) -> bool:
    return type(err).__module__.startswith(("rosbags", "ruamel")) or isinstance(
        err, (sqlite3.Error, struct.error, EOFError, UnicodeDecodeError, KeyError, IndexError,
              ValueError, AssertionError, OSError))


def _storage_file(path: Path) -> Path | None:
    """A bag directory without metadata.yaml (the recorder was killed): its one storage file."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    return files[0] if len(files) == 1 else None


class BagReader:
    """A rosbag2 opened for streaming reads; use as a context manager.

    ``path`` is the bag directory (or one ``.mcap`` / ``.db3`` file). A directory whose
    metadata.yaml is missing but that holds one storage file (a recording that was killed) is
    read from that file. Errors raise `BagError` naming the path.
    """

    def __init__(self, path: str | Path) -> None:
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        target = self.path
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            target = _storage_file(self.path)
            if target is None:
                raise BagError(f"bag {self.path} has no metadata.yaml and no single .mcap/.db3 "
                               f"storage file: not a rosbag2")
        self._typestore = project_typestore()
        try:
            self._reader = AnyReader([target], default_typestore=self._typestore)
            self._reader.open()
        except Exception as err:
            if _is_rosbags_error(err):
                raise BagError(f"bag {self.path} cannot be opened (corrupt, truncated or not a "
                               f"rosbag2): {err}") from err
            raise
        self._stamped: dict[str, bool] = {}
        self.messages_read = 0
        self.late_messages = 0

    # -- context -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ------------------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type, for every topic in the bag."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    def message_count(self, topic: str) -> int:
        """Number of messages on ``topic`` (from the bag's index)."""
        self._check_topics([topic])
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def offered_qos(self, topic: str) -> list[Any]:
        """The QoS profiles the topic's publishers offered when recorded (rosbags ``Qos``)."""
        self._check_topics([topic])
        out: list[Any] = []
        for c in self._reader.connections:
            if c.topic == topic:
                out.extend(getattr(c.ext, "offered_qos_profiles", []) or [])
        return out

    @property
    def custom_data(self) -> dict[str, str]:
        """metadata.yaml custom_data (empty when absent)."""
        data: dict[str, str] = {}
        for reader in self._reader.readers:
            meta = getattr(getattr(reader, "storage", None), "metadata", None)
            data.update(getattr(meta, "custom", None) or {})
        return data

    @property
    def start_time_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_time_ns(self) -> int:
        return int(self._reader.end_time)

    def _check_topics(self, topics: Iterable[str]) -> None:
        missing = sorted(set(topics) - set(self.topics))
        if missing:
            raise BagError(f"bag {self.path} has no topic(s) {missing}; it has "
                           f"{sorted(self.topics)}")

    # -- messages ------------------------------------------------------------------------------
    def _has_header(self, msgtype: str) -> bool:
        if msgtype not in self._stamped:
            fields = None
            for store in (self._reader.typestore, self._typestore):
                if msgtype in store.fielddefs:
                    fields = store.fielddefs[msgtype][1]
                    break
            self._stamped[msgtype] = bool(fields) and fields[0][0] == "header" and \
                fields[0][1][1] == "std_msgs/msg/Header"
        return self._stamped[msgtype]

    def _deserialize(self, raw: bytes, msgtype: str) -> Any:
        store = self._reader.typestore if msgtype in self._reader.typestore.fielddefs \
            else self._typestore
        return store.deserialize_cdr(raw, msgtype)

    def messages(self, topics: Sequence[str] | None = None) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) in log-time order, deserialized one at a time.

        A read failure part-way (a truncated or corrupt file) raises `BagError` saying how
        many messages were read before it.
        """
        if self._reader is None:
            raise BagError(f"bag {self.path} is closed")
        if topics is not None:
            self._check_topics(topics)
            connections = [c for c in self._reader.connections if c.topic in set(topics)]
            if not connections:
                return
        else:
            connections = list(self._reader.connections)
        try:
            for conn, log_time, raw in self._reader.messages(connections=connections):
                msg = self._deserialize(raw, conn.msgtype)
                stamp = log_time
                if self._has_header(conn.msgtype):
                    stamp = int(msg.header.stamp.sec) * 1_000_000_000 + \
                        int(msg.header.stamp.nanosec)
                self.messages_read += 1
                yield BagMessage(conn.topic, conn.msgtype, int(log_time), int(stamp), msg)
        except BagError:
            raise
        except Exception as err:
            if _is_rosbags_error(err):
                raise BagError(f"bag {self.path} is corrupt or truncated: reading failed after "
                               f"{self.messages_read} messages: {type(err).__name__}: {err}"
                               ) from err
            raise

    def messages_by_stamp(self, topics: Sequence[str] | None = None, *,
                          max_buffer: int | None = None,
                          max_delay_s: float = 1.0) -> Iterator[BagMessage]:
        """Messages in header-stamp order (ties: log order), through a bounded buffer.

        A message is released once ``max_buffer`` messages wait behind it (default: 16 per
        topic) or once the log time has moved ``max_delay_s`` past its stamp. A message that
        was logged later than that arrives late and is yielded anyway (out of order);
        ``late_messages`` counts them.
        """
        n_topics = len(topics) if topics is not None else max(1, len(self.topics))
        limit = max_buffer if max_buffer is not None else 16 * n_topics
        if limit < 1:
            raise ConfigError(f"max_buffer must be >= 1, got {limit}")
        delay = int(max_delay_s * 1e9)
        heap: list[tuple[int, int, BagMessage]] = []
        counter = itertools.count()
        last = None
        self.late_messages = 0

        def pop() -> BagMessage:
            nonlocal last
            item = heapq.heappop(heap)[2]
            if last is not None and item.stamp_ns < last:
                self.late_messages += 1
            else:
                last = item.stamp_ns
            return item

        for m in self.messages(topics):
            heapq.heappush(heap, (m.stamp_ns, next(counter), m))
            while heap and (len(heap) > limit or heap[0][0] <= m.log_time_ns - delay):
                yield pop()
        while heap:
            yield pop()


# --------------------------------------------------------------------------------------------
# Writing


@dataclass
class _Topic:
    connection: Any
    msgtype: str


class BagWriter:
    """Writes a new rosbag2 (``storage`` mcap or sqlite3) with definitions and QoS per topic.

    Use as a context manager: the bag is closed (metadata written) even when the block raises,
    so messages written so far stay readable. Topics are added on first write with
    `default_qos`, or explicitly with `add_topic`.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", *,
                 custom_data: dict[str, str] | None = None, typestore: Any = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGE_FORMATS:
            raise ConfigError(f"bag storage must be one of {STORAGE_FORMATS}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"output bag {self.path} already exists; choose a new path or "
                           f"remove it")
        self.storage = storage
        self.typestore = typestore or project_typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        try:
            self._writer.open()
        except Exception as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from err
        self._topics: dict[str, _Topic] = {}
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str, qos: Any | Sequence[Any] | None = None) -> None:
        """Declare ``topic`` with its type and offered QoS (one ``Qos`` or a list)."""
        if self._writer is None:
            raise BagError(f"bag {self.path} is closed")
        if topic in self._topics:
            if self._topics[topic].msgtype != msgtype:
                raise BagError(f"bag {self.path}: topic {topic} already has type "
                               f"{self._topics[topic].msgtype}, cannot add {msgtype}")
            return
        if msgtype not in self.typestore.fielddefs:
            raise BagError(f"bag {self.path}: topic {topic}: message type {msgtype!r} is not "
                           f"in the typestore")
        profiles = [default_qos(topic)] if qos is None else (
            list(qos) if isinstance(qos, (list, tuple)) and qos and
            not hasattr(qos, "history") else [qos])
        conn = self._writer.add_connection(topic, msgtype, typestore=self.typestore,
                                           offered_qos_profiles=profiles)
        self._topics[topic] = _Topic(conn, msgtype)
        self.counts[topic] = 0

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Serialize and write ``msg`` (a rosbags message) at ``log_time_ns``."""
        msgtype = getattr(msg, "__msgtype__", None)
        if msgtype is None:
            raise BagError(f"bag {self.path}: topic {topic}: {type(msg).__name__} is not a "
                           f"rosbags message")
        if topic not in self._topics:
            self.add_topic(topic, msgtype)
        elif self._topics[topic].msgtype != msgtype:
            raise BagError(f"bag {self.path}: topic {topic} has type "
                           f"{self._topics[topic].msgtype}, got a {msgtype}")
        self.write_raw(topic, self.typestore.serialize_cdr(msg, msgtype), log_time_ns)

    def write_raw(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Write an already CDR-serialized message on a declared topic."""
        if self._writer is None:
            raise BagError(f"bag {self.path} is closed")
        if topic not in self._topics:
            raise BagError(f"bag {self.path}: topic {topic} was not added (add_topic first)")
        self._writer.write(self._topics[topic].connection, int(log_time_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag: storage index and metadata.yaml (idempotent)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as err:
                raise BagError(f"bag {self.path}: closing failed: {err}") from err

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a writer dropped without close() still leaves a valid bag
        try:
            self.close()
        except Exception:
            pass


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only), so ``finally``
    clauses run and writers close their bags when a process is stopped politely."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
