"""rosbag2 reading and writing (mcap and sqlite3) on top of ``rosbags``, no ROS install needed.

`BagReader` streams messages without loading the bag: in log-time order (`messages`) or in
header-stamp order (`messages_by_stamp`, a sort-merge through a small bounded buffer, because
recorders log a message when it arrives, not when it was captured). `BagWriter` writes what
``ros2 bag record`` writes: message definitions (in the project's typestore, which includes
the package's own messages) and offered QoS profiles per topic (transient local for
``/tf_static``), and it always closes the bag, so what was written before an exception or
Ctrl-C stays a valid bag. A missing, corrupt or truncated bag raises `BagError` with its path.

Interrupted outputs. While a `BagWriter` is open its directory holds a file ``INCOMPLETE``
(the reason inside); a clean `close()` removes it, a close after an exception leaves it with
the reason, and SIGKILL / the OOM killer / a full disk leave it too. Data reaches the disk at
least every ``flush_every_s`` (1 s): the mcap writer closes its chunk, the sqlite3 writer
commits. So a killed writer leaves every message older than about a second in complete mcap
chunks or committed rows; `recover_bag` (``wint3r-ros recover-bag``) copies them into a new,
complete bag (`wint3r_ros.data.bag_recovery`). `BagReader` reads a closed bag marked
incomplete (``incomplete`` says why) and refuses a bag that cannot be read without recovery with
a message that says how to recover it.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import shutil
import signal
import sqlite3
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from wint3r_ros.data.messages import project_typestore
from wint3r_ros.errors import BagError, ConfigError, brief

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
    "INCOMPLETE_MARKER",
    "incomplete_reason",
    "is_rosbags_error",
    "storage_files",
    "hot_journal",
    "rolled_back_copy",
]

STORAGE_FORMATS = ("mcap", "sqlite3")
TF_STATIC_TOPIC = "/tf_static"
_INFINITE = (9223372036, 854775807)     # rmw's "infinite" duration, as ros2 bag writes it
INCOMPLETE_MARKER = "INCOMPLETE"        # in a bag directory while it is written (see above)
_MAX_LOG_TIME = 2**63 - 1
_SQLITE_JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


# --------------------------------------------------------------------------------------------
# QoS profiles (rosbags' Qos tuples, as ros2 bag stores them in metadata.yaml)


def qos_profile(reliable: bool = True, transient_local: bool = False, depth: int = 10) -> Any:
    """A rosbags ``Qos`` (keep-last ``depth``; infinite deadline/lifespan/lease like rmw)."""
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

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
    size: int = 0     # serialized bytes (what the reorder buffer's byte budget counts)


# Errors that mean "this file is not a readable bag", raised by rosbags or the libraries under
# it: its own errors, the YAML of metadata.yaml, apsw (rosbags reads sqlite3 through it) and the
# decompressors, plus the plain errors a corrupt length or offset produces while decoding.
_LIBRARY_MODULES = ("rosbags", "ruamel", "apsw", "lz4", "zstd", "backports.zstd",
                    "compression.zstd", "_zstd")


def is_rosbags_error(err: BaseException) -> bool:
    """True for what rosbags (or the storage under it) raises on a corrupt or cut bag."""
    return type(err).__module__.startswith(_LIBRARY_MODULES) or isinstance(
        err, (sqlite3.Error, struct.error, EOFError, UnicodeDecodeError, KeyError, IndexError,
              ValueError, AssertionError, OSError, OverflowError, MemoryError, TypeError))


def storage_files(path: Path) -> list[Path]:
    """The storage files (.mcap, .db3) of a bag directory, sorted."""
    return sorted(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))


def _storage_file(path: Path) -> Path | None:
    """A bag directory without metadata.yaml (the recorder was killed): its one storage file."""
    files = storage_files(path)
    return files[0] if len(files) == 1 else None


def hot_journal(target: Path) -> Path | None:
    """The rollback journal an interrupted sqlite3 writer left beside ``target``, if any."""
    if target.suffix != ".db3" or not target.is_file():
        return None
    journal = target.with_name(target.name + "-journal")
    try:
        with journal.open("rb") as f:     # a hot journal starts with sqlite's magic number
            return journal if f.read(8) == _SQLITE_JOURNAL_MAGIC else None
    except OSError:
        return None


def rolled_back_copy(db3: Path, workdir: Path) -> Path:
    """A copy of ``db3`` with its hot journal rolled back by sqlite itself (readers open bags
    immutable, which ignores the journal), holding exactly the committed rows."""
    copy = workdir / db3.name
    shutil.copyfile(db3, copy)
    shutil.copyfile(db3.with_name(db3.name + "-journal"),
                    copy.with_name(copy.name + "-journal"))
    try:
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()   # rolls back
    except sqlite3.Error as err:
        raise BagError(f"{db3}: sqlite cannot roll back its journal: {brief(err)}") from err
    copy.with_name(copy.name + "-journal").unlink(missing_ok=True)   # not hot after all
    return copy


def incomplete_reason(path: str | Path) -> str | None:
    """Why the bag at ``path`` is incomplete, or None when it was closed cleanly.

    Incomplete: its writer left the ``INCOMPLETE`` marker (interrupted, failed, or still
    writing), or it is a directory with a storage file and no metadata.yaml (a recorder killed
    before closing, ours or ``ros2 bag record``'s)."""
    path = Path(path)
    if not path.is_dir():
        return None
    marker = path / INCOMPLETE_MARKER
    if marker.exists():
        try:
            text = marker.read_text(errors="replace")[:300].strip()
        except OSError:
            text = ""
        return text or "its writer did not finish"
    if not (path / "metadata.yaml").exists() and storage_files(path):
        return "it has no metadata.yaml (the recorder was stopped before closing it)"
    return None


_OPEN_WRITERS: set[Path] = set()   # bags this process is writing (its own pid in markers)


def _process_alive(pid: int) -> bool:
    """Another process with this id runs (our own id in an old marker: a reused id)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:      # exists, owned by someone else
        return True
    return True


def _recover_hint(path: Path) -> str:
    return (f"`wint3r-ros recover-bag {path} {path}.recovered` copies every message that "
            f"reached the disk into a new, complete bag")


class BagReader:
    """A rosbag2 opened for streaming reads; use as a context manager.

    ``path`` is the bag directory (or one ``.mcap`` / ``.db3`` file). A directory whose
    metadata.yaml is missing but that holds one storage file (a recording that was killed) is
    read from that file. Errors raise `BagError` naming the path. ``incomplete`` is None for a
    bag that was closed cleanly, else the reason (see `incomplete_reason`); a killed mcap
    recording cannot be read in place and is refused with the `recover_bag` command to run.
    """

    def __init__(self, path: str | Path) -> None:
        from rosbags.highlevel import AnyReader

        self.path = Path(path)
        self._reader = None
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        target = self.path
        self.incomplete = incomplete_reason(self.path)
        if self.path.is_dir() and not (self.path / "metadata.yaml").exists():
            target = _storage_file(self.path)
            if target is None:
                raise BagError(f"bag {self.path} has no metadata.yaml and no single .mcap/.db3 "
                               f"storage file: not a rosbag2")
        if hot_journal(target):
            why = self.incomplete or "its writer stopped mid-transaction"
            raise BagError(f"bag {self.path} is incomplete ({why}): its sqlite3 file has a hot "
                           f"journal and reading it in place could mix in uncommitted data: "
                           f"{_recover_hint(self.path)}")
        self._typestore = project_typestore()
        try:
            reader = AnyReader([target], default_typestore=self._typestore)
            reader.open()
        except Exception as err:
            if not is_rosbags_error(err):
                raise
            if self.incomplete:
                raise BagError(f"bag {self.path} is incomplete ({self.incomplete}) and cannot "
                               f"be read as it is: {_recover_hint(self.path)}") from err
            raise BagError(f"bag {self.path} cannot be opened (corrupt, truncated or not a "
                           f"rosbag2): {brief(err, 200)}") from err
        self._reader = reader
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

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ------------------------------------------------------------------------------
    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type, for every topic in the bag."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def connections(self) -> list[Any]:
        """rosbags connections: ``topic``, ``msgtype``, ``ext.offered_qos_profiles``."""
        return list(self._reader.connections)

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
                yield BagMessage(conn.topic, conn.msgtype, int(log_time), int(stamp), msg,
                                 len(raw))
        except BagError:
            raise
        except Exception as err:
            if is_rosbags_error(err):
                hint = f"; {_recover_hint(self.path)}" if self.incomplete else ""
                raise BagError(f"bag {self.path} is corrupt or truncated: reading failed after "
                               f"{self.messages_read} messages: {type(err).__name__}: "
                               f"{brief(err, 200)}{hint}") from err
            raise

    def raw_messages(self, topics: Sequence[str] | None = None
                     ) -> Iterator[tuple[Any, int, bytes]]:
        """(connection, log time, serialized bytes) in log-time order, not deserialized; the
        connection has ``topic``, ``msgtype`` and ``ext.offered_qos_profiles``. Read errors
        raise `BagError` as in `messages`."""
        if self._reader is None:
            raise BagError(f"bag {self.path} is closed")
        if topics is not None:
            self._check_topics(topics)
        connections = [c for c in self._reader.connections
                       if topics is None or c.topic in set(topics)]
        count = 0
        try:
            for conn, log_time, raw in self._reader.messages(connections=connections):
                count += 1
                yield conn, int(log_time), raw
        except Exception as err:
            if is_rosbags_error(err):
                raise BagError(f"bag {self.path} is corrupt or truncated: reading failed after "
                               f"{count} messages: {type(err).__name__}: {brief(err, 200)}"
                               ) from err
            raise

    def messages_by_stamp(self, topics: Sequence[str] | None = None, *,
                          max_buffer: int | None = None,
                          max_delay_s: float = 1.0,
                          max_buffer_bytes: int = 256 << 20,
                          jump_back_s: float | None = None) -> Iterator[BagMessage]:
        """Messages in header-stamp order (ties: log order), through a bounded buffer.

        A message is released once ``max_buffer`` messages wait behind it (default: 16 per
        topic), once the buffer holds more than ``max_buffer_bytes`` (256 MiB: sixteen 8000x6000
        images per topic would be GBs), or once the log time has moved ``max_delay_s`` past its
        stamp. A message that was logged later than that arrives late and is yielded anyway
        (out of order); ``late_messages`` counts them. A stamp more than ``jump_back_s`` behind
        the newest one read (a recording of a bag played in a loop, a clock reset) starts a new
        timeline: the buffered messages of the old one are released first, so the two are never
        mixed.
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

        held = 0

        def pop() -> BagMessage:
            nonlocal last, held
            item = heapq.heappop(heap)[2]
            held -= item.size
            if last is not None and item.stamp_ns < last:
                self.late_messages += 1
            else:
                last = item.stamp_ns
            return item

        jump = None if jump_back_s is None else int(jump_back_s * 1e9)
        newest = None
        for m in self.messages(topics):
            if jump is not None and newest is not None and m.stamp_ns < newest - jump:
                while heap:          # the old timeline first, whole
                    yield pop()
                newest = last = None
            newest = m.stamp_ns if newest is None else max(newest, m.stamp_ns)
            heapq.heappush(heap, (m.stamp_ns, next(counter), m))
            held += m.size
            while heap and (len(heap) > limit or held > max_buffer_bytes or
                            heap[0][0] <= m.log_time_ns - delay):
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
    so messages written so far stay readable; a block that raised leaves the bag marked
    incomplete (the ``INCOMPLETE`` file says why). Topics are added on first write with
    `default_qos`, or explicitly with `add_topic`. Every ``flush_every_s`` seconds what was
    written reaches the disk (mcap: the chunk is closed and flushed; sqlite3: a commit), so a
    killed writer loses at most that much. ``replace_incomplete``: an existing bag at ``path``
    that an interrupted writer left incomplete is removed first (outputs that a rerun
    reproduces); any other existing path is refused.
    """

    def __init__(self, path: str | Path, storage: str = "mcap", *,
                 custom_data: dict[str, str] | None = None, typestore: Any = None,
                 flush_every_s: float = 1.0, replace_incomplete: bool = False) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGE_FORMATS:
            raise ConfigError(f"bag storage must be one of {STORAGE_FORMATS}, got {storage!r}")
        self.path = Path(path)
        self._writer = None
        self.replaced: str | None = None
        if self.path.exists() or self.path.is_symlink():
            reason = incomplete_reason(self.path)
            if reason is None or not replace_incomplete:
                what = f"is incomplete ({reason}); recover it ({_recover_hint(self.path)}) " \
                       f"or remove it" if reason else "already exists; choose a new path or " \
                       "remove it"
                raise BagError(f"output bag {self.path} {what}")
            self._remove_incomplete(reason)
        self.storage = storage
        self.typestore = typestore or project_typestore()
        self.flush_every_s = float(flush_every_s)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = Writer(self.path, version=9, storage_plugin=plugin)
            for key, value in (custom_data or {}).items():
                writer.set_custom_data(key, value)
            writer.open()
            (self.path / INCOMPLETE_MARKER).write_text(
                f"being written by process {os.getpid()} since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S')}; if that process is gone it was "
                f"killed\n")
        except Exception as err:
            if isinstance(err, OSError) or type(err).__module__.startswith("rosbags"):
                raise BagError(f"cannot create bag {self.path}: "
                               f"{getattr(err, 'strerror', None) or brief(err, 200)}") from err
            raise
        self._writer = writer
        _OPEN_WRITERS.add(self.path.resolve())
        self._last_flush = time.monotonic()
        self._topics: dict[str, _Topic] = {}
        self._deferred: list[tuple[str, Any]] = []
        self.counts: dict[str, int] = {}

    def _remove_incomplete(self, reason: str) -> None:
        """Delete a bag directory an interrupted writer left behind (bag files only), unless
        the process named in its marker is still running (it is still being written)."""
        import re

        found = re.match(r"being written by process (\d+) ", reason)
        if self.path.resolve() in _OPEN_WRITERS or (found and _process_alive(int(found.group(1)))):
            raise BagError(f"output bag {self.path} is being written by process "
                           f"{found.group(1)}, which is still running")
        allowed = {".mcap", ".db3", ".yaml", ".tmp", ".db3-journal", ".db3-wal", ".db3-shm"}
        if not self.path.is_dir() or any(
                p.is_dir() or (p.name != INCOMPLETE_MARKER and not any(
                    p.name.endswith(x) for x in allowed)) for p in self.path.iterdir()):
            raise BagError(f"output bag {self.path} is incomplete ({reason}) but holds other "
                           f"files; remove it yourself")
        shutil.rmtree(self.path)
        self.replaced = reason

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

    def write_with_next(self, topic: str, msg: Any) -> None:
        """Write ``msg`` (e.g. ``/tf_static``) at the log time of the next message written, so
        the bag's time span is that of its data (a message at log time 0 makes a bag span 56
        years, and players sleep that long). Unless another message follows, it is written at
        close, at log time 0."""
        msgtype = getattr(msg, "__msgtype__", None)
        if topic not in self._topics and msgtype is not None:
            self.add_topic(topic, msgtype)
        self._deferred.append((topic, msg))

    def write_raw(self, topic: str, data: bytes | memoryview, log_time_ns: int) -> None:
        """Write an already CDR-serialized message on a declared topic.

        A log time outside rosbag2's range (unsigned nanoseconds since 1970: a negative stamp)
        is refused here, before it reaches the storage, whose index it would break."""
        if self._writer is None:
            raise BagError(f"bag {self.path} is closed")
        if topic not in self._topics:
            raise BagError(f"bag {self.path}: topic {topic} was not added (add_topic first)")
        t = int(log_time_ns)
        if not 0 <= t <= _MAX_LOG_TIME:
            raise BagError(f"bag {self.path}: topic {topic}: log time {t} ns is outside "
                           f"rosbag2's range (0 .. 2^63-1 ns since 1970); a negative stamp "
                           f"(a clock before 1970) cannot be stored")
        while self._deferred:
            d_topic, d_msg = self._deferred.pop(0)
            self.write(d_topic, d_msg, t)
        try:
            self._writer.write(self._topics[topic].connection, t, data)
            self.counts[topic] += 1
            self.flush_if_due()
        except OSError as err:
            raise BagError(f"bag {self.path}: writing failed: {err.strerror or err}; the bag "
                           f"is incomplete") from err

    def flush_if_due(self) -> None:
        """`flush` when ``flush_every_s`` has passed since the last one (writes call this; a
        recorder of sparse topics calls it between messages too)."""
        if self._writer is not None and \
                time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        """Put everything written so far on disk (mcap: close the chunk; sqlite3: commit)."""
        storage = getattr(self._writer, "storage", None)
        if storage is None:
            return
        if hasattr(storage, "close_chunk"):
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
        elif hasattr(storage, "conn"):
            storage.conn.commit()
        self._last_flush = time.monotonic()

    def close(self, complete: bool = True, reason: str = "") -> None:
        """Finish the bag: storage index and metadata.yaml (idempotent). ``complete`` False
        leaves the ``INCOMPLETE`` marker with ``reason``: the bag is valid but partial."""
        if self._writer is None:
            return
        marker = self.path / INCOMPLETE_MARKER
        try:
            while self._deferred:   # nothing followed them
                d_topic, d_msg = self._deferred.pop(0)
                self.write(d_topic, d_msg, 0)
        finally:
            writer, self._writer = self._writer, None
            _OPEN_WRITERS.discard(self.path.resolve())
        try:
            writer.close()
        except Exception as err:
            with contextlib.suppress(Exception):
                writer.abort()
            with contextlib.suppress(OSError):
                marker.write_text(f"closing failed: {brief(err, 200)}\n")
            raise BagError(f"bag {self.path}: closing failed: {brief(err, 200)}; the bag is "
                           f"marked incomplete") from err
        try:
            if complete:
                marker.unlink(missing_ok=True)
            else:
                marker.write_text(f"{reason or 'interrupted'}; the bag holds "
                                  f"{sum(self.counts.values())} messages written before\n")
        except OSError as err:
            raise BagError(f"bag {self.path}: cannot update {marker.name}: "
                           f"{err.strerror or err}") from err

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            what = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else \
                f"stopped by {exc_type.__name__}: {brief(exc, 160)}"
            self.close(complete=False, reason=what)

    def __del__(self) -> None:  # a writer dropped without close() still leaves a valid bag
        try:
            self.close(complete=False, reason="its writer was dropped without being closed")
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


# --------------------------------------------------------------------------------------------
# Recovering what an interrupted writer left
