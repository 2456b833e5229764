"""The synchroniser a pipeline uses: a sync policy (approximate or exact) on stamps moved onto
the rig clock by per-camera time offsets, with each camera's clock offset and drift estimated
online and, optionally, compensated. Everything configured by one `SyncConfig`.

Per message: aligned stamp = source stamp + time_offsets[camera] (static: a parameter, or
Kalibr's `timeshift_cam_imu`, t_imu = t_cam + shift, so cameras calibrated against one IMU
land on its clock) - the estimated offset (only with `auto_offset`). The policy matches the
aligned stamps; sets carry both (`SyncedSet.stamps` are the source stamps outputs are stamped
with). Every set then feeds `core.clock.ClockEstimator` with its stamps after the static
offsets; each camera's measured offset (+ = its stamps are later than the rig's) and drift are
in `stats.clock` and the status. A camera whose remaining offset (after static and automatic
correction) reaches `offset_warn_fraction` of the slop, or that drifts toward the slop fast
enough to reach it within `warn_horizon` seconds, raises a `clock_warning` event (and
`clock_ok` when it is back); with `auto_offset` the correction follows a slowly drifting camera
so its sets keep matching. A camera already beyond the slop is in no set, so nothing is
fitted; after 2 s without a set its phase against the other cameras' newest stamps (modulo their
frame period) is reported as `phase_offset_s` (state `no_sets`), and the camera whose phase is
off gets a `clock_warning` naming the static offset that would bring it back. With
`min_cameras` > 0 such a camera (while most cameras agree) is also left out of the sets, so the
others go on in degraded sets instead of waiting for it, and taken back once its phase is
within the slop again. See `core.clock` for cameras at different rates.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.core.clock import ClockEstimate, ClockEstimator
from wint3r_ros.core.sync import (
    NS_PER_S,
    ApproximateTimePolicy,
    ExactTimePolicy,
    SyncedSet,
    SyncEvent,
    SyncStats,
    ns_from_seconds,
)
from wint3r_ros.errors import ConfigError

__all__ = ["SYNC_POLICIES", "SyncConfig", "Synchronizer"]

SYNC_POLICIES = ("approximate", "exact")


@dataclass(frozen=True)
class SyncConfig:
    """Synchronisation settings (durations in seconds).

    sync_policy: "approximate" (slop) or "exact" (identical stamps, hardware trigger; slop
    unused); slop: largest spread of a set's aligned stamps; queue_size: messages kept per
    camera; reorder_window: "auto" or seconds, how late a camera's message may arrive after a
    newer one of the same camera (0: never wait; message_filters' C++ behaviour);
    stream_timeout: stream time after which a camera without messages is silent; min_cameras:
    0 = every camera in every set, k > 0 = sets of at least k cameras while others are silent;
    jump_back_threshold: how far a stamp may go back before it is a time jump; time_offsets:
    seconds added to each camera's stamps (empty = none; Kalibr's timeshift_cam_imu);
    auto_offset: compensate each camera's estimated offset (approximate policy only);
    clock_window: seconds of sets the offset/drift fit uses; offset_warn_fraction: warn when a
    camera's remaining offset reaches this fraction of the slop; warn_horizon: also warn when a
    drift will take it there within this many seconds; drift_threshold: smallest drift (s/s)
    reported as drifting (it must also be 5 standard errors from zero).
    """

    sync_policy: str = "approximate"
    slop: float = 0.02
    queue_size: int = 10
    reorder_window: str | float = "auto"
    stream_timeout: float = 1.0
    min_cameras: int = 0
    jump_back_threshold: float = 1.0
    time_offsets: tuple[float, ...] = ()
    auto_offset: bool = False
    clock_window: float = 10.0
    offset_warn_fraction: float = 0.5
    warn_horizon: float = 30.0
    drift_threshold: float = 5e-5

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"sync: {name}={getattr(self, name)!r} {rule}")

        def seconds(value: Any) -> bool:
            return (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value))

        need(self.sync_policy in SYNC_POLICIES, "sync_policy", f"must be one of {SYNC_POLICIES}")
        need(seconds(self.slop) and self.slop >= 0, "slop", "must be seconds >= 0")
        need(isinstance(self.queue_size, int) and self.queue_size >= 1, "queue_size",
             "must be an integer >= 1")
        need(self.reorder_window == "auto" or (seconds(self.reorder_window)
                                               and self.reorder_window >= 0),
             "reorder_window", "must be 'auto' or seconds >= 0")
        for name in ("stream_timeout", "jump_back_threshold", "clock_window", "warn_horizon"):
            need(seconds(getattr(self, name)) and getattr(self, name) > 0, name,
                 "must be seconds > 0")
        need(isinstance(self.min_cameras, int) and self.min_cameras >= 0, "min_cameras",
             "must be an integer >= 0 (0 = every camera in every set)")
        need(isinstance(self.time_offsets, tuple)
             and all(seconds(v) for v in self.time_offsets), "time_offsets",
             "must be a tuple of seconds, one per camera (empty = none)")
        need(seconds(self.offset_warn_fraction) and 0 < self.offset_warn_fraction <= 1,
             "offset_warn_fraction", "must lie in (0, 1]")
        need(seconds(self.drift_threshold) and self.drift_threshold >= 0, "drift_threshold",
             "must be >= 0 (s/s)")
        need(not (self.auto_offset and self.sync_policy == "exact"), "auto_offset",
             "needs sync_policy 'approximate' (exact stamps cannot absorb a drifting estimate)")


class Synchronizer:
    """Sync policy + time offsets + clock estimation for the cameras `camera_names` (stream
    order). Same calls as the policy: `add(camera, stamp_ns, item)`, `advance_time`, `flush`,
    `events`, `stats`. Not thread-safe (the caller serialises calls)."""

    # the fitted line is extrapolated at most this far past its newest sample
    MAX_EXTRAPOLATION_NS = NS_PER_S
    # and refitted after this much stream time with auto_offset (twice that without)
    REFIT_NS = NS_PER_S // 2
    # cameras in no set for NO_SET_NS are probed by phase every PROBE_NS
    NO_SET_NS = 2 * NS_PER_S
    PROBE_NS = NS_PER_S // 2

    def __init__(self, camera_names: Sequence[str], config: SyncConfig | None = None) -> None:
        self.config = c = config or SyncConfig()
        names = list(camera_names)
        n = len(names)
        if c.min_cameras > n:
            raise ConfigError(f"sync: min_cameras={c.min_cameras} must lie in [0, {n}] "
                              "(the number of cameras)")
        if c.time_offsets and len(c.time_offsets) != n:
            raise ConfigError(f"sync: time_offsets has {len(c.time_offsets)} values for {n} "
                              f"cameras {names}; give one per camera or none")
        common = dict(stream_names=names, reorder_window=c.reorder_window,
                      stream_timeout=c.stream_timeout, allow_degraded=c.min_cameras > 0,
                      min_streams=max(1, c.min_cameras),
                      jump_back_threshold=c.jump_back_threshold)
        if c.sync_policy == "exact":
            self.policy: ApproximateTimePolicy = ExactTimePolicy(n, c.queue_size, **common)
        else:
            self.policy = ApproximateTimePolicy(n, c.queue_size, c.slop, **common)
        self.camera_names = names
        self.static_ns = [ns_from_seconds(v) for v in c.time_offsets] or [0] * n
        self.clock = ClockEstimator(n, c.clock_window)
        self._fits: list[ClockEstimate] = [self.clock.estimate(i) for i in range(n)]
        self._correction = [0] * n           # ns subtracted by auto_offset, last message
        self._correction_at = [0] * n        # and that message's stamp
        self._auto = c.auto_offset
        self._refit_at: int | None = None
        self._warned = [False] * n
        # cameras in no set: their newest stamp (after the static offset), when they were last
        # in a set, and the phase offset measured from the newest stamps of every camera
        self._latest: list[int | None] = [None] * n
        self._in_set: list[int | None] = [None] * n
        self._phase: list[int | None] = [None] * n
        self._phase_warned = [False] * n
        self._probe_at: int | None = None
        self._first: int | None = None
        self._resets = 0
        self._events: list[SyncEvent] = []
        self._event_counts = {"clock_warning": 0, "clock_ok": 0}

    # ------------------------------------------------------------------------- public API
    def add(self, camera: int, stamp_ns: int, item: Any) -> list[SyncedSet]:
        """Feed one message (stamp in integer ns); return the sets it completes."""
        static = self.static_ns
        if type(camera) is not int or not 0 <= camera < len(static):
            return self.policy.add(camera, stamp_ns, item)  # raises SyncError naming it
        offset = static[camera]
        if self._auto:
            est = self._fits[camera].offset_at(stamp_ns, self.MAX_EXTRAPOLATION_NS) \
                if type(stamp_ns) is int else 0
            self._correction[camera] = est
            self._correction_at[camera] = stamp_ns
            offset -= est
        sets = self.policy.add(camera, stamp_ns, item, offset)
        if sets or self.policy.resets != self._resets:
            self._observe(sets)
        if type(stamp_ns) is int:
            now = self._latest[camera] = stamp_ns + static[camera]
            if self._probe_at is None or now >= self._probe_at:
                self._probe_at = now + self.PROBE_NS
                self._probe(now)
        return sets

    def advance_time(self, stamp_ns: int) -> list[SyncedSet]:
        return self._observe(self.policy.advance_time(stamp_ns))

    def flush(self) -> list[SyncedSet]:
        return self._observe(self.policy.flush())

    def events(self) -> list[SyncEvent]:
        """Policy and clock events since the last call, oldest first."""
        out = self._events + self.policy.events()
        self._events = []
        return sorted(out, key=lambda e: e.stamp_ns) if len(out) > 1 else out

    @property
    def stalled(self) -> bool:
        return self.policy.stalled

    @property
    def silent_streams(self) -> list[str]:
        return self.policy.silent_streams

    @property
    def stats(self) -> SyncStats:
        """The policy's counters plus, per camera, its clock report (`clock_report`)."""
        s = self.policy.stats
        for k, v in self._event_counts.items():
            s.events[k] = v
        s.clock = [self.clock_report(i) for i in range(len(self.camera_names))]
        return s

    def clock_report(self, camera: int) -> dict[str, Any]:
        """time_offset_s (static), offset_s (measured against the rig after the static offset,
        + = later), drift (s/s) and drift_ppm, correction_s (subtracted by auto_offset),
        samples, state: unknown | ok | drifting | near_slop | no_sets; phase_offset_s: for a
        camera in no set for 2 s, its stamps against the other cameras' newest (modulo their
        frame period), what a static time offset would need to remove (else None)."""
        fit = self.clock.estimate(camera)  # the newest fit (the warnings follow the refits)
        phase = self._phase[camera]
        return {
            "name": self.camera_names[camera],
            "time_offset_s": self.static_ns[camera] / NS_PER_S,
            "offset_s": None if fit.offset_ns is None else fit.offset_ns / NS_PER_S,
            "drift": fit.drift,
            "drift_ppm": None if fit.drift is None else fit.drift * 1e6,
            "correction_s": self._correction[camera] / NS_PER_S,
            "samples": fit.samples,
            "state": "no_sets" if phase is not None else self._state(camera, fit),
            "phase_offset_s": None if phase is None else phase / NS_PER_S,
        }

    # ---------------------------------------------------------------------------- internal
    def _observe(self, sets: list[SyncedSet]) -> list[SyncedSet]:
        resets = self.policy.resets
        if resets != self._resets:  # a time jump: the old timeline's clock samples are void
            self._resets = resets
            self.clock.reset()
            self._fits = [self.clock.estimate(i) for i in range(len(self.camera_names))]
            self._refit_at = None
            n = len(self.camera_names)
            self._latest, self._in_set, self._phase = [None] * n, [None] * n, [None] * n
            self._phase_warned = [False] * n
            self._probe_at = self._first = None
        if not sets:
            return sets
        static = self.static_ns if any(self.static_ns) else None
        in_set = self._in_set
        for s in sets:
            for i, t in enumerate(s.stamps):
                if t is not None:
                    in_set[i] = s.aligned_stamp
        for s in sets:
            self.clock.observe(s.stamps if static is None else
                               [None if t is None else t + o for t, o in zip(s.stamps, static)])
        now = sets[-1].aligned_stamp
        if self._refit_at is None or now >= self._refit_at:
            # auto_offset follows the fit: twice as often as the reports need it
            self._refit_at = now + (self.REFIT_NS if self._auto else 2 * self.REFIT_NS)
            self._refit(now)
        return sets

    def _probe(self, now: int) -> None:
        """Phase offset of every camera that has been in no set for NO_SET_NS of stream time:
        its newest stamp against each other camera's newest, folded into +-half that camera's
        frame period (its smallest recent interval), the median over the cameras (itself at 0).
        One clock_warning per episode for a camera whose phase is the problem (at least
        offset_warn_fraction of the slop)."""
        if self._first is None:
            self._first = now
        n = len(self.camera_names)
        for i in range(n):
            mine = self._latest[i]
            since = self._in_set[i] if self._in_set[i] is not None else self._first
            if mine is None or now - since < self.NO_SET_NS:
                if self._phase[i] is not None and self._phase_warned[i]:
                    self._phase_warned[i] = False
                    self._event_counts["clock_ok"] += 1
                    self._events.append(SyncEvent("clock_ok", i, now, (
                        f"camera '{self.camera_names[i]}' is in synchronised sets again")))
                self._phase[i] = None
                continue
            diffs = [0]  # against itself: the median is the rig's, as in the sets
            for j in range(n):
                other = self._latest[j]
                period = self.policy.stream_period_ns(j)
                if j != i and other is not None and period:
                    diffs.append((mine - other + period // 2) % period - period // 2)
            if not diffs:
                continue
            diffs.sort()
            m = len(diffs)
            phase = diffs[m // 2] if m % 2 else (diffs[m // 2 - 1] + diffs[m // 2]) // 2
            culprit = abs(phase) >= self.config.offset_warn_fraction * self.policy.slop_ns
            if culprit and not self._phase_warned[i]:
                self._phase_warned[i] = True
                self._event_counts["clock_warning"] += 1
                self._events.append(SyncEvent(
                    "clock_warning", i, now,
                    f"camera '{self.camera_names[i]}' is in no synchronised set: its stamps are "
                    f"{phase / 1e6:+.1f} ms from the other cameras' (phase, modulo their frame "
                    f"period; slop {self.policy.slop * 1e3:.1f} ms). If that is its clock, add "
                    f"{-phase / NS_PER_S:+.4f} s to its time offset (time_offsets, or time_offset "
                    "in the rig file); else check its trigger and stamps"))
            self._phase[i] = phase
        if self.policy.allow_degraded:
            self._leave_out_of_phase_cameras()

    def _leave_out_of_phase_cameras(self) -> None:
        """With min_cameras > 0: a camera whose phase is off while most cameras agree is left
        out of the sets (the others go on, degraded) and taken back once its phase is within
        half the warning level again."""
        limit = self.config.offset_warn_fraction * self.policy.slop_ns
        n = len(self.camera_names)
        excluded = set(self.policy.excluded_streams)
        off = []
        for i, name in enumerate(self.camera_names):
            phase = self._phase[i]
            if name in excluded and phase is not None and abs(phase) < 0.5 * limit:
                self.policy.include(i)
            elif phase is not None and abs(phase) >= limit:
                off.append(i)
        if off and n - len(off) >= max(self.config.min_cameras, n // 2 + 1):
            for i in off:
                if self.camera_names[i] not in excluded:
                    self.policy.exclude(i, (
                        f"stream '{self.camera_names[i]}' left out of the sets: its stamps are "
                        f"{self._phase[i] / 1e6:+.1f} ms off the other cameras' (beyond the slop); "
                        "taken back when its phase returns"))

    def _refit(self, now: int) -> None:
        for i in range(len(self.camera_names)):
            self._fits[i] = fit = self.clock.estimate(i)
            state = self._state(i, fit)
            warn = state == "near_slop"
            if warn != self._warned[i]:
                self._warned[i] = warn
                kind = "clock_warning" if warn else "clock_ok"
                self._event_counts[kind] += 1
                self._events.append(SyncEvent(kind, i, now, self._describe(i, fit, warn)))

    def _remaining_ns(self, camera: int, fit: ClockEstimate) -> int:
        """The offset the policy still sees (after auto_offset's correction)."""
        if not self.config.auto_offset:
            return fit.offset_ns or 0
        # the fit and the correction at the same time (the fit may be newer than the message)
        at = self._correction_at[camera]
        return fit.offset_at(at, self.MAX_EXTRAPOLATION_NS) - self._correction[camera]

    def _state(self, camera: int, fit: ClockEstimate) -> str:
        if fit.offset_ns is None:
            return "unknown"
        c = self.config
        if c.sync_policy == "exact":
            return "ok"
        slop = self.policy.slop_ns  # the live value (slop can change at run time)
        remaining = self._remaining_ns(camera, fit)
        drifting = fit.detected and abs(fit.drift or 0.0) >= c.drift_threshold
        # hysteresis: a warned camera is clear again only well inside the limits
        relax = 0.7 if self._warned[camera] else 1.0
        if abs(remaining) >= relax * c.offset_warn_fraction * slop:
            return "near_slop"
        if drifting and not c.auto_offset and (fit.drift or 0.0) * remaining >= 0:
            seconds_left = (slop - abs(remaining)) / NS_PER_S / abs(fit.drift or 1.0)
            if seconds_left <= c.warn_horizon / relax:
                return "near_slop"
        return "drifting" if drifting else "ok"

    def _describe(self, camera: int, fit: ClockEstimate, warn: bool) -> str:
        name = self.camera_names[camera]
        offset_ms = (fit.offset_ns or 0) / 1e6
        drift = fit.drift or 0.0
        if not warn:
            left = self._remaining_ns(camera, fit) / 1e6
            return f"camera '{name}': clock offset {left:+.2f} ms (after corrections) is within the slop again"
        return (f"camera '{name}': clock offset {offset_ms:+.2f} ms against the rig, drift "
                f"{drift * 1e3:+.3f} ms/s, slop {self.policy.slop * 1e3:.1f} ms: its sets will "
                "stop matching; set time_offsets, enable auto_offset or check its clock/trigger")
