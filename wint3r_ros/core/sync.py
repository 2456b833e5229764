"""Approximate- and exact-time synchronisation of N message streams (message_filters semantics,
no ROS). Stamps are integer nanoseconds throughout.

`ApproximateTimePolicy.add(stream, stamp_ns, item)` returns the sets this message completes. A
set holds one message per stream whose stamps all lie within `slop` of each other; sets come out
in time order; no message is used twice; a message that cannot be in any future set is dropped
and counted per stream and reason. Deterministic, no threads, no locks: the caller serialises
`add` calls (a ROS node matches under its lock and runs user work outside it).
`ExactTimePolicy` is the same policy with slop 0: a set is messages with identical stamps
(hardware-triggered rigs).

An optional per-message `offset_ns` moves a stamp onto the rig's clock before matching (static
camera offsets, Kalibr's `timeshift_cam_imu`, an estimated drift; see `core.synchronizer`): the
policy matches, orders and times out on the aligned stamps and hands back both, the source
stamps (`SyncedSet.stamps`, what outputs are stamped with) and the aligned ones.

How a set is chosen (the pivot search of message_filters' C++ ApproximateTime policy, written
for this project). Each stream keeps a queue sorted by stamp. While the oldest messages of the
streams span more than `slop`, the oldest of them is dropped (`no_match`) once it can never be
matched: some stream holding only newer messages will not deliver an older one any more (see
out-of-order arrival below). The newest head is the pivot; the search walks forward from the
heads, always advancing the stream with the oldest current message, over every set that
contains the pivot, and keeps the one with the smallest span. It stops as soon as no later set
can beat the best one: when the pivot would be advanced, or when the newest message seen
already makes any further span at least as large. If the search needs a message that has not
arrived, it waits, unless the stream's next message is known to come late enough (its stamp is
at least `newest + inter_message_lower_bound`) that it cannot improve the set. The best set is
emitted and older messages of its streams are dropped (`superseded`). Work per call is O(N) per
message the search looks at, a few in steady state: no search over combinations, so many
streams stay cheap (users of message_filters' Python synchroniser hit the cost of its product
search).

Out-of-order arrival inside a stream (UDP transport, merged bags, a busy executor deliver frame
t+1 before frame t): a stream's message may arrive up to `reorder_window` of stream time after
a newer message of the same stream. While a stream could still deliver such a late message
within slop of the oldest head, that head is kept (the set stays open) instead of being dropped
as `no_match`; message_filters' Python synchroniser, which never drops before its queue
overflows, finds the same sets. The wait is bounded by `reorder_window` (in stamps, never wall
time) and by `queue_size`, and costs latency only when a message is really lost. "auto" takes
1.5 of the stream's smallest recent interval, or more when the stream has been seen delivering
later than that; 0 never waits (message_filters' C++ policy).

Robustness, all in stream time (the stamps), never wall time:
- out-of-order messages are inserted in stamp order; ones no newer than what their stream has
  already emitted are `late`; a repeated stamp is a `duplicate`.
- a stamp more than `jump_back_threshold` older than its stream's newest is a time jump (a bag
  restarting, a clock reset): every queue is cleared (`reset`), a `time_jump` event is recorded,
  and the other streams' messages from the old timeline are dropped (`pre_reset`) until they
  jump too. A stream that keeps its old timeline for `stream_timeout` seconds is taken as it is
  (the jump was one stream's clock, not the rig's); the stream on the other clock then falls
  silent and is reported.
- a stream with nothing newer than `stream_timeout` seconds behind the rig's newest stamp is
  `silent` (event). Without `allow_degraded` the policy stalls (event `stalled`) and the other
  queues stay bounded by `queue_size` (`queue_overflow`); with it, sets of the streams still
  present are emitted (None in the silent streams' places) while at least `min_streams` remain.
  A silent stream's next message within the timeout brings it back (`stream_recovered`); its
  messages not newer than the last emitted set are `late` (sets stay in time order).
- `exclude(stream)` treats a stream that delivers but can never match (its clock is off by more
  than the slop; the `Synchronizer` finds it by phase) as silent until `include(stream)`; its
  messages meanwhile are dropped as `out_of_phase`.
- bytes: with `max_bytes` > 0 the queues together hold at most that many bytes of items (sized
  by `item_nbytes`: an array's nbytes, a message's data): over it, the oldest waiting message of
  the streams holding more than one is dropped (`byte_budget`); each stream keeps its newest,
  so sets still form with the smallest budget. Counts bound the queues for small images, bytes for large ones.
"""
from __future__ import annotations

import bisect
import math
import operator
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wint3r_ros.errors import ConfigError, SyncError

__all__ = ["ApproximateTimePolicy", "ExactTimePolicy", "SyncedSet", "SyncEvent", "StreamStats",
           "SyncStats", "DROP_REASONS", "EVENT_KINDS", "NS_PER_S", "ns_from_seconds", "item_nbytes"]

NS_PER_S = 1_000_000_000

# Why a message was dropped (the keys of StreamStats.dropped).
DROP_REASONS = (
    "no_match",        # no message of some other stream can ever lie within slop of it
    "superseded",      # a newer message of the same stream was matched instead
    "late",            # not newer than the last message its stream already emitted
    "stale",           # older than the silence timeout behind the rig (or queued when silent)
    "duplicate",       # same stamp as a message already queued on its stream
    "queue_overflow",  # the stream's queue exceeded queue_size (oldest dropped)
    "reset",           # queued when a time jump reset the policy
    "pre_reset",       # from the old timeline after another stream's time jump
    "out_of_phase",    # its stream is left out of the sets (`exclude`: its clock is off)
    "byte_budget",     # the queues held more than max_bytes (the oldest waiting message dropped)
)
EVENT_KINDS = ("time_jump", "stream_silent", "stream_recovered", "stalled", "resumed",
               "clock_warning", "clock_ok")


def item_nbytes(item: Any) -> int:
    """Bytes an item holds, for byte budgets: an array's ``nbytes``, a message's ``data``
    (sensor_msgs/Image, CompressedImage; rclpy or rosbags), a tuple's parts; 0 if unknown."""
    if item is None:
        return 0
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    data = getattr(item, "data", None)
    if data is not None:
        size = getattr(data, "nbytes", None)
        if isinstance(size, int):
            return size
        try:
            return len(data) * getattr(data, "itemsize", 1)
        except TypeError:
            return 0
    if isinstance(item, tuple):
        return sum(item_nbytes(x) for x in item)
    return 0


def ns_from_seconds(seconds: float) -> int:
    """Integer nanoseconds of a duration given in seconds (configuration values)."""
    return int(round(float(seconds) * NS_PER_S))


class SyncedSet(tuple):
    """One synchronised set: a tuple of N items in stream order (None for a silent stream).

    stamps: per-stream source stamps, integer ns (None where missing), what outputs carry;
    aligned: the same stamps on the rig clock (source + offset), what was matched; stamp: the
    earliest source stamp; index: the set's sequence number since construction; missing: stream
    indices absent from this (degraded) set. Sets are strictly increasing in `aligned_stamp`
    (and in `stamp` whenever offsets are constant).
    """

    stamps: tuple
    aligned: tuple
    stamp: int
    aligned_stamp: int
    index: int
    missing: tuple

    def __new__(cls, items: Sequence[Any], stamps: Sequence[int | None],
                aligned: Sequence[int | None], index: int) -> SyncedSet:
        self = super().__new__(cls, items)
        self.stamps = tuple(stamps)
        self.aligned = tuple(aligned)
        self.stamp = min(s for s in self.stamps if s is not None)
        self.aligned_stamp = min(s for s in self.aligned if s is not None)
        self.index = index
        self.missing = tuple(i for i, s in enumerate(self.stamps) if s is None)
        return self

    @property
    def span_ns(self) -> int:
        """Largest minus smallest aligned stamp in the set (<= slop)."""
        present = [s for s in self.aligned if s is not None]
        return max(present) - min(present)


@dataclass(frozen=True)
class SyncEvent:
    """Something the operator should hear about (kind in EVENT_KINDS), at stream time
    `stamp_ns`."""

    kind: str
    stream: int | None
    stamp_ns: int
    detail: str


@dataclass
class StreamStats:
    """Counters for one stream; received == matched + sum(dropped) + pending always holds.
    newest_stamp: the newest aligned stamp in ns (None before the first)."""

    name: str
    received: int = 0
    matched: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {r: 0 for r in DROP_REASONS})
    pending: int = 0
    silent: bool = False
    newest_stamp: int | None = None
    reordered: int = 0  # messages that arrived after a newer one of their stream

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


@dataclass
class SyncStats:
    """A snapshot of the policy's counters (see `ApproximateTimePolicy.stats`); `clock` holds
    per-stream offset and drift reports when a `Synchronizer` made the snapshot."""

    streams: list[StreamStats]
    sets: int
    degraded_sets: int
    resets: int
    stalled: bool
    events: dict[str, int]
    clock: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML-ready) for status messages and benchmarks."""
        doc = {
            "sets": self.sets, "degraded_sets": self.degraded_sets, "resets": self.resets,
            "stalled": self.stalled, "events": dict(self.events),
            "streams": [{"name": s.name, "received": s.received, "matched": s.matched,
                         "dropped": dict(s.dropped), "pending": s.pending, "silent": s.silent,
                         "newest_stamp": s.newest_stamp, "reordered": s.reordered}
                        for s in self.streams],
        }
        if self.clock is not None:
            doc["clock"] = [dict(c) for c in self.clock]
        return doc


def _stamp_ns(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise SyncError(f"{where}: stamp {value!r} is not integer nanoseconds")
    try:
        return operator.index(value)
    except TypeError as err:
        raise SyncError(f"{where}: stamp {value!r} is not integer nanoseconds (convert header "
                        "stamps with sec * 10**9 + nanosec)") from err


class _Stream:
    """Queue and bookkeeping of one input stream (stamps are aligned ns)."""

    __slots__ = ("stamps", "sources", "items", "sizes", "bytes", "newest", "last_emitted",
                 "silent", "excluded", "awaiting_jump", "intervals", "stats", "lower_bound",
                 "reorder", "lateness")

    def __init__(self, name: str, lower_bound: int | None, reorder: int | None) -> None:
        self.stamps: list[int] = []
        self.sources: list[int] = []
        self.items: list[Any] = []
        self.sizes: list[int] = []  # item_nbytes of each queued item
        self.bytes = 0              # their sum
        self.newest: int | None = None
        self.last_emitted: int | None = None
        self.silent = False
        self.awaiting_jump: int | None = None  # old-timeline newest stamp after a reset
        self.intervals: deque[int] = deque(maxlen=8)
        self.stats = StreamStats(name)
        self.lower_bound = lower_bound  # None: estimated from the stream's own intervals
        self.reorder = reorder          # None: "auto"
        self.lateness = 0               # largest newest - stamp seen on an out-of-order arrival
        self.excluded = False           # left out of the sets until `include`

    def next_stamp_bound(self) -> int:
        """Smallest stamp this stream's next in-order message can carry."""
        if self.lower_bound is not None:
            gap = self.lower_bound
        elif len(self.intervals) >= 2:
            gap = min(self.intervals) // 2
        else:
            gap = 0
        return self.newest + gap  # type: ignore[operator]

    def reorder_window(self) -> int | None:
        """How far (ns) behind its newest stamp a message of this stream may still arrive;
        None while unknown ("auto" before two intervals were seen: keep waiting)."""
        if self.reorder is not None:
            return self.reorder
        if len(self.intervals) < 2:
            return None
        base = min(self.intervals)
        return max(base + base // 2, self.lateness + base // 2)

    def done_up_to(self, bound: int) -> bool:
        """True when no message with a stamp <= bound can still enter this stream's queue."""
        if self.last_emitted is not None and self.last_emitted >= bound:
            return True
        window = self.reorder_window()
        return window is not None and self.newest is not None and self.newest - window > bound

    def drop_front(self, count: int, reason: str) -> None:
        if count:
            del self.stamps[:count]
            del self.sources[:count]
            del self.items[:count]
            self.bytes -= sum(self.sizes[:count])
            del self.sizes[:count]
            self.stats.dropped[reason] += count

    def pop_front(self) -> tuple[int, int, Any]:
        """The oldest queued message: (aligned stamp, source stamp, item)."""
        self.bytes -= self.sizes.pop(0)
        return self.stamps.pop(0), self.sources.pop(0), self.items.pop(0)

    def clear(self, reason: str) -> None:
        self.drop_front(len(self.stamps), reason)


class ApproximateTimePolicy:
    """Matches N streams by stamp. See the module docstring for the rule and the drop reasons.

    num_streams: N >= 1; queue_size: messages kept per stream (>= 1); slop: largest span of a
    set in seconds (>= 0; 0 = exact matching); stream_names: for stats and messages;
    inter_message_lower_bound: "auto" (half the smallest recent interval of each stream), a
    number of seconds, or one per stream (0 waits for the next message whenever in doubt, as
    message_filters does by default); reorder_window: "auto", seconds or one per stream, how
    late (in stream time) a stream's message may arrive after a newer one of the same stream;
    stream_timeout: seconds of stream time after which a stream without messages is silent;
    allow_degraded / min_streams: keep emitting sets of the present streams;
    jump_back_threshold: seconds a stamp may go back on its stream before it counts as a time
    jump; max_events: the event buffer's length; max_bytes: bytes of items all queues may hold
    together (0: bounded by queue_size only; settable at any time, the front end lowers it by
    what its windows hold).
    """

    def __init__(self, num_streams: int, queue_size: int = 10, slop: float = 0.02, *,
                 stream_names: Sequence[str] | None = None,
                 inter_message_lower_bound: str | float | Sequence[float] = "auto",
                 reorder_window: str | float | Sequence[float] = "auto",
                 stream_timeout: float = 1.0, allow_degraded: bool = False,
                 min_streams: int = 1, jump_back_threshold: float = 1.0,
                 max_events: int = 256, max_bytes: int = 0) -> None:
        def need(ok: bool, name: str, value: Any, rule: str) -> None:
            if not ok:
                raise ConfigError(f"{type(self).__name__}: {name}={value!r} {rule}")

        need(isinstance(num_streams, int) and num_streams >= 1, "num_streams", num_streams,
             "must be an integer >= 1")
        need(isinstance(queue_size, int) and queue_size >= 1, "queue_size", queue_size,
             "must be an integer >= 1")
        for name, value in (("slop", slop), ("stream_timeout", stream_timeout),
                            ("jump_back_threshold", jump_back_threshold)):
            need(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
                 name, value, "must be a finite number of seconds >= 0")
        need(stream_timeout > 0, "stream_timeout", stream_timeout, "must be > 0")
        need(jump_back_threshold > 0, "jump_back_threshold", jump_back_threshold, "must be > 0")
        need(isinstance(min_streams, int) and 1 <= min_streams <= num_streams, "min_streams",
             min_streams, f"must lie in [1, {num_streams}]")
        names = [f"stream{i}" for i in range(num_streams)] if stream_names is None else list(stream_names)
        need(len(names) == num_streams and len(set(names)) == num_streams, "stream_names", names,
             f"must be {num_streams} unique names")
        bounds = self._per_stream("inter_message_lower_bound", inter_message_lower_bound,
                                  num_streams)
        reorder = self._per_stream("reorder_window", reorder_window, num_streams)
        self.num_streams = num_streams
        self.queue_size = queue_size
        self.slop = float(slop)
        self.stream_timeout = float(stream_timeout)
        self.allow_degraded = bool(allow_degraded)
        self.min_streams = min_streams
        self.jump_back_threshold = float(jump_back_threshold)
        self.stream_names = names
        need(isinstance(max_bytes, int) and max_bytes >= 0, "max_bytes", max_bytes,
             "must be an integer >= 0 (0: no byte bound)")
        self.max_bytes = max_bytes
        self._streams = [_Stream(n, b, r) for n, b, r in zip(names, bounds, reorder)]
        self._events: deque[SyncEvent] = deque(maxlen=max_events)
        self._event_counts = {k: 0 for k in EVENT_KINDS}
        self._now: int | None = None          # stream time: newest stamp of this timeline
        self._epoch_start: int | None = None  # first stamp of this timeline
        self._last_set_stamp: int | None = None  # earliest stamp of the last set
        self._sets = 0
        self._degraded_sets = 0
        self._resets = 0
        self._stalled = False

    # Durations are set in seconds and kept in integer nanoseconds.
    @property
    def slop(self) -> float:
        return self._slop / NS_PER_S

    @slop.setter
    def slop(self, seconds: float) -> None:
        self._slop = ns_from_seconds(seconds)

    @property
    def slop_ns(self) -> int:
        return self._slop

    @property
    def stream_timeout(self) -> float:
        return self._timeout / NS_PER_S

    @stream_timeout.setter
    def stream_timeout(self, seconds: float) -> None:
        self._timeout = ns_from_seconds(seconds)

    @property
    def jump_back_threshold(self) -> float:
        return self._jump / NS_PER_S

    @jump_back_threshold.setter
    def jump_back_threshold(self, seconds: float) -> None:
        self._jump = ns_from_seconds(seconds)

    def _per_stream(self, name: str, value: str | float | Sequence[float], n: int) -> list[int | None]:
        if isinstance(value, str):
            if value != "auto":
                raise ConfigError(f"{type(self).__name__}: {name}={value!r} must be 'auto', "
                                  "seconds, or one value per stream")
            return [None] * n
        values = [value] * n if isinstance(value, (int, float)) else list(value)
        if len(values) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                       and math.isfinite(v) and v >= 0 for v in values):
            raise ConfigError(f"{type(self).__name__}: {name}={value!r} must be 'auto', "
                              f"seconds >= 0, or {n} such values")
        return [ns_from_seconds(v) for v in values]

    # ------------------------------------------------------------------------- public API
    def add(self, stream: int, stamp_ns: int, item: Any, offset_ns: int = 0) -> list[SyncedSet]:
        """Queue `item` of stream `stream` stamped `stamp_ns` (integer ns); `offset_ns` moves
        the stamp onto the rig clock for matching. Returns the sets this completes."""
        if isinstance(stream, bool) or not isinstance(stream, int) or not 0 <= stream < self.num_streams:
            raise SyncError(f"add: stream index {stream!r} out of range [0, {self.num_streams})")
        source = stamp_ns if type(stamp_ns) is int else _stamp_ns(
            stamp_ns, f"add: stream '{self.stream_names[stream]}'")
        stamp = source + (offset_ns if type(offset_ns) is int else _stamp_ns(
            offset_ns, f"add: stream '{self.stream_names[stream]}' offset"))
        st = self._streams[stream]
        st.stats.received += 1
        if self._accept(stream, st, stamp):
            self._insert(st, stamp, source, item)
        self._check_silence()
        sets = self._match(flush=False)
        if self.max_bytes:   # after matching: what just completed a set is not dropped
            self.trim_to_budget()
        return sets

    def advance_time(self, stamp_ns: int) -> list[SyncedSet]:
        """Move stream time to `stamp_ns` without a message (e.g. from /clock), so silent
        streams are noticed even when the others stop too; returns any sets that this
        releases."""
        stamp = _stamp_ns(stamp_ns, "advance_time")
        if self._now is not None and stamp > self._now:
            self._now = stamp
            self._check_silence()
            return self._match(flush=False)
        return []

    def flush(self) -> list[SyncedSet]:
        """Emit every set still possible without waiting for more messages (end of a bag)."""
        return self._match(flush=True)

    def events(self) -> list[SyncEvent]:
        """The events recorded since the last call (oldest first), and forget them."""
        out = list(self._events)
        self._events.clear()
        return out

    @property
    def stalled(self) -> bool:
        """True while a silent stream blocks every set (allow_degraded off or too few streams)."""
        return self._stalled

    @property
    def silent_streams(self) -> list[str]:
        return [s.stats.name for s in self._streams if s.silent]

    def exclude(self, stream: int, detail: str) -> None:
        """Leave stream `stream` out of the sets (its messages are dropped as `out_of_phase`)
        until `include`: for a camera whose stamps deliver but never match (its clock is off by
        more than the slop). It counts as silent: with allow_degraded the other streams go on
        while at least min_streams remain, else the policy stalls."""
        st = self._streams[stream]
        if st.excluded:
            return
        st.excluded = st.silent = True
        st.clear("out_of_phase")
        self._event("stream_silent", stream, self._now or 0, detail)

    def include(self, stream: int) -> None:
        """Take an excluded stream back; its next message within the timeout recovers it."""
        self._streams[stream].excluded = False

    @property
    def excluded_streams(self) -> list[str]:
        return [s.stats.name for s in self._streams if s.excluded]

    def stream_period_ns(self, stream: int) -> int | None:
        """The smallest recent interval between a stream's stamps (None before two)."""
        intervals = self._streams[stream].intervals
        return min(intervals) if intervals else None

    @property
    def resets(self) -> int:
        """How many time jumps reset the policy so far."""
        return self._resets

    @property
    def now_ns(self) -> int | None:
        """Stream time: the newest aligned stamp of the current timeline (None before any)."""
        return self._now

    @property
    def queued_bytes(self) -> int:
        """Bytes of the items waiting in the queues (`item_nbytes`)."""
        return sum(s.bytes for s in self._streams)

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters (copies; safe to keep)."""
        streams = []
        for s in self._streams:
            c = s.stats
            streams.append(StreamStats(c.name, c.received, c.matched, dict(c.dropped),
                                       len(s.stamps), s.silent, s.newest, c.reordered))
        return SyncStats(streams, self._sets, self._degraded_sets, self._resets, self._stalled,
                         dict(self._event_counts))

    # ---------------------------------------------------------------------------- internal
    def _event(self, kind: str, stream: int | None, stamp: int, detail: str) -> None:
        self._events.append(SyncEvent(kind, stream, stamp, detail))
        self._event_counts[kind] += 1

    def _drop(self, st: _Stream, reason: str) -> bool:
        st.stats.dropped[reason] += 1
        return False

    def _accept(self, index: int, st: _Stream, stamp: int) -> bool:
        """Decide whether a new message enters its queue; handles time jumps."""
        if st.excluded:
            return self._drop(st, "out_of_phase")
        if st.awaiting_jump is not None:
            if stamp < st.awaiting_jump - self._jump:
                st.awaiting_jump = None  # this stream has jumped to the new timeline too
            elif stamp - st.awaiting_jump <= self._timeout:
                return self._drop(st, "pre_reset")
            else:  # it kept its old timeline for a whole timeout: the jump was not rig-wide
                st.awaiting_jump = None
                self._epoch_start = stamp  # silence on this timeline counts from here
                self._event("time_jump", index, stamp,
                            f"stream '{st.stats.name}' kept its timeline after another stream's "
                            "jump; continuing on it (a stream on another clock goes silent)")
        elif st.newest is not None and stamp < st.newest - self._jump:
            self._reset(index, stamp, st.newest)
        if st.silent:
            if self._now is not None and stamp < self._now - self._timeout:
                return self._drop(st, "stale")
            # Back within the timeout: the stream takes part again. Sets stay in time order, so
            # its messages must be newer than the last set (older ones count as late).
            st.silent = False
            if st.newest is None or stamp > st.newest:
                st.newest = stamp  # alive, even if this message itself turns out late
            self._event("stream_recovered", index, stamp,
                        f"stream '{st.stats.name}' is delivering again")
            if self._last_set_stamp is not None:
                st.last_emitted = max(st.last_emitted if st.last_emitted is not None
                                      else self._last_set_stamp, self._last_set_stamp)
        if st.newest is not None and stamp < st.newest:
            st.stats.reordered += 1
            st.lateness = max(st.lateness, st.newest - stamp)
        if st.last_emitted is not None and stamp <= st.last_emitted:
            return self._drop(st, "late")
        i = bisect.bisect_left(st.stamps, stamp)
        if i < len(st.stamps) and st.stamps[i] == stamp:
            return self._drop(st, "duplicate")
        return True

    def _insert(self, st: _Stream, stamp: int, source: int, item: Any) -> None:
        i = bisect.bisect_left(st.stamps, stamp)
        st.stamps.insert(i, stamp)
        st.sources.insert(i, source)
        st.items.insert(i, item)
        size = item_nbytes(item)
        st.sizes.insert(i, size)
        st.bytes += size
        if st.newest is None or stamp > st.newest:
            if st.newest is not None:
                st.intervals.append(stamp - st.newest)
            st.newest = stamp
        if self._now is None or stamp > self._now:
            self._now = stamp
        if self._epoch_start is None:
            self._epoch_start = stamp
        if len(st.stamps) > self.queue_size:
            st.drop_front(len(st.stamps) - self.queue_size, "queue_overflow")

    def trim_to_budget(self) -> None:
        """Over max_bytes: drop the oldest waiting message of the streams holding more than one
        (each stream keeps its newest, so sets still form) until the queues fit."""
        total = self.queued_bytes
        while total > self.max_bytes:
            held = [s for s in self._streams if len(s.stamps) > 1]
            if not held:
                return
            victim = min(held, key=lambda s: s.stamps[0])
            total -= victim.sizes[0]
            victim.drop_front(1, "byte_budget")

    def _reset(self, index: int, stamp: int, previous: int) -> None:
        """A time jump on stream `index`: clear every queue and start a new timeline."""
        self._resets += 1
        self._event("time_jump", index, stamp,
                    f"stream '{self.stream_names[index]}' jumped back from "
                    f"{previous / NS_PER_S:.6f} to {stamp / NS_PER_S:.6f} s; queues cleared")
        for j, s in enumerate(self._streams):
            s.clear("reset")
            if j != index and s.newest is not None:
                s.awaiting_jump = s.newest
            s.newest = None
            s.last_emitted = None
            s.silent = False
            s.intervals.clear()
            s.lateness = 0
        self._now = None
        self._epoch_start = None
        self._last_set_stamp = None
        self._stalled = False

    def _check_silence(self) -> None:
        if self._now is None:
            return
        for j, s in enumerate(self._streams):
            if s.silent:
                continue
            last = s.newest if s.newest is not None else self._epoch_start
            if self._now - last > self._timeout:  # type: ignore[operator]
                s.silent = True
                s.clear("stale")
                what = ("no message yet" if s.newest is None
                        else f"newest stamp {s.newest / NS_PER_S:.6f} s")
                self._event("stream_silent", j, self._now,
                            f"stream '{s.stats.name}' silent for "
                            f"{(self._now - last) / NS_PER_S:.3f} s of stream time ({what}); "
                            "check its topic, QoS and clock")

    def _match(self, flush: bool) -> list[SyncedSet]:
        out: list[SyncedSet] = []
        while True:
            active = [j for j, s in enumerate(self._streams) if not s.silent]
            degraded = len(active) < self.num_streams
            if degraded and (not self.allow_degraded or len(active) < self.min_streams):
                if not self._stalled and self._now is not None:
                    self._stalled = True
                    self._event("stalled", None, self._now,
                                f"no sets: silent stream(s) {', '.join(self.silent_streams)}"
                                + ("" if self.allow_degraded else " and allow_degraded is off"))
                return out
            if self._stalled:
                self._stalled = False
                self._event("resumed", None, self._now or 0, "sets are being emitted again")
            chosen = self._search(active, flush)
            if chosen is None:
                return out
            out.append(self._emit(active, chosen))

    def _search(self, active: list[int], flush: bool) -> list[int] | None:
        """Positions (one per active stream) of the best set, or None to wait for messages."""
        queues = [self._streams[j] for j in active]
        slop = self._slop
        while True:  # drop heads that cannot be matched
            if any(not q.stamps for q in queues):
                return None
            heads = [q.stamps[0] for q in queues]
            lo, hi = min(heads), max(heads)
            if hi - lo <= slop:
                break
            bound = lo + slop
            if not flush and not any(q.stamps[0] > bound and q.done_up_to(bound) for q in queues):
                return None  # a stream may still deliver a late message that matches lo
            queues[heads.index(lo)].drop_front(1, "no_match")
        pivot = hi
        end = hi
        cur = heads
        ptr = [0] * len(queues)
        best, best_span = list(ptr), hi - lo
        while best_span > 0:
            lo = min(cur)
            if lo >= pivot:
                break  # the pivot itself would move: every set containing it has been seen
            k = cur.index(lo)
            q = queues[k]
            nxt = ptr[k] + 1
            if nxt >= len(q.stamps):
                if flush or max(end, q.next_stamp_bound()) - pivot >= best_span:
                    break  # the stream's next message cannot give a smaller span
                return None
            x = q.stamps[nxt]
            ptr[k], cur[k] = nxt, x
            if x > end:
                end = x
            if end - pivot >= best_span:
                break  # every later set spans at least end - pivot
            span = end - min(cur)
            if span < best_span:
                best, best_span = list(ptr), span
        return best

    def _emit(self, active: list[int], chosen: list[int]) -> SyncedSet:
        n = self.num_streams
        items: list[Any] = [None] * n
        stamps: list[int | None] = [None] * n
        aligned: list[int | None] = [None] * n
        for j, pos in zip(active, chosen):
            s = self._streams[j]
            s.drop_front(pos, "superseded")
            aligned[j], stamps[j], items[j] = s.pop_front()
            s.last_emitted = aligned[j]
            s.stats.matched += 1
        result = SyncedSet(items, stamps, aligned, self._sets)
        self._sets += 1
        if len(active) < n:
            self._degraded_sets += 1
        self._last_set_stamp = result.aligned_stamp
        return result


class ExactTimePolicy(ApproximateTimePolicy):
    """Exact-time matching for hardware-triggered rigs: a set is one message per stream with
    identical (aligned) stamps. The approximate policy with slop 0, so out-of-order arrival,
    silence, degraded sets and time jumps behave the same; an incomplete stamp is dropped
    (`no_match`) once a newer stamp is complete and the missing message can no longer come."""

    def __init__(self, num_streams: int, queue_size: int = 10, **kwargs: Any) -> None:
        if "slop" in kwargs:
            raise ConfigError("ExactTimePolicy: no slop (stamps must be identical); use "
                              "ApproximateTimePolicy for a tolerance")
        super().__init__(num_streams, queue_size, 0.0, **kwargs)
