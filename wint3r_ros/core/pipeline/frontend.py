"""The front end of the pipeline: N streams -> approximate-time sets -> lockstep windows, with
epochs and per-camera counters. sync_node runs it on its subscriptions, process-bag on the
images it reads.

`SyncFrontEnd.add(camera, stamp_ns, item)` feeds one message to the core policy
(`core.sync.ApproximateTimePolicy`) and the window builder (`core.window.WindowBuilder`) and
returns the windows it completes, each with its index inside the current epoch. A time jump
backwards (a bag loop, a clock reset) clears the policy; the front end then closes the old epoch
with a last window over its sets not yet in one (so no synchronised set is lost) and starts a
new epoch (window numbering starts again at 0), so the fusion half starts a new reconstruction.
`flush()` ends a stream (a bag) the same way.
Messages refused before the policy (bad encoding, malformed image) are counted with
`reject(camera, reason)`, so per camera ``received == matched + dropped + rejected + pending``.

Memory: the sync queues are bounded by `queue_size` messages and the window builder by L sets;
with `SyncSettings.buffer_bytes` the images they hold (with what the caller says it holds of
the windows, e.g. sync_node's outbox) are also bounded in bytes: the queues get what the
window being built leaves of the budget, and over it the oldest waiting image is dropped
(`byte_budget`, counted per camera). A window never loses an image, so the floor is one window
plus each camera's newest image.

Seam for sync features: the policy and its settings (`SyncSettings`, built from the
SYNC_PARAMETERS values by `settings.sync_settings`) are made in `SyncFrontEnd.__init__`; the
rest of the pipeline only sees `EpochWindow`s. Not thread-safe: the node calls `add` under its
lock and publishes outside it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.core.pipeline.settings import SyncSettings
from wint3r_ros.core.sync import DROP_REASONS, SyncEvent
from wint3r_ros.core.synchronizer import Synchronizer
from wint3r_ros.core.window import Window, WindowBuilder, WindowConfig

__all__ = ["REJECT_REASONS", "SyncSettings", "EpochWindow", "SyncFrontEnd"]

REJECT_REASONS = ("bad_encoding", "bad_image", "zero_stamp", "negative_stamp")


@dataclass(frozen=True)
class EpochWindow:
    """A complete window, its index in the epoch and the epoch (both start at 0)."""

    window: Window
    index: int
    epoch: int


class SyncFrontEnd:
    """See the module docstring. camera_names: the N cameras in stream order."""

    def __init__(self, camera_names: Sequence[str], settings: SyncSettings | None = None) -> None:
        self.settings = s = settings or SyncSettings()
        names = list(camera_names)
        self.camera_names = names
        self.sync = Synchronizer(names, s.sync)
        self.policy = self.sync.policy
        self.builder = WindowBuilder(names, WindowConfig(s.window.size, s.window.overlap, "time"))
        self.epoch = 0
        self.windows_in_epoch = 0
        self.windows_total = 0
        self.rejected = [{r: 0 for r in REJECT_REASONS} for _ in names]
        self._policy_resets = 0
        self._last_set: int | None = None
        self.sets = 0
        self.peak_held_bytes = 0    # most bytes of images held after an add (with a budget)
        self._events: list[SyncEvent] = []

    # ------------------------------------------------------------------------- live settings
    def set_slop(self, slop: float) -> None:
        self.policy.slop = float(slop)

    def set_queue_size(self, size: int) -> None:
        self.policy.queue_size = int(size)

    def set_stream_timeout(self, seconds: float) -> None:
        self.policy.stream_timeout = float(seconds)

    # ----------------------------------------------------------------------------- input
    def reject(self, camera: int, reason: str) -> None:
        """Count a message of ``camera`` refused before synchronisation."""
        self.rejected[camera][reason] += 1

    def held_bytes(self) -> int:
        """Bytes of images held: waiting in the sync queues and in the window being built."""
        return self.policy.queued_bytes + self.builder.held_bytes()

    def add(self, camera: int, stamp_ns: int, item: Any, held_elsewhere: int = 0
            ) -> list[EpochWindow]:
        """Feed one message (stamp in integer nanoseconds); return the windows it completes.
        held_elsewhere: bytes of this front end's windows the caller still holds (its outbox),
        taken off the byte budget."""
        budget = self.settings.buffer_bytes
        if budget:
            self._fit_queues(budget, held_elsewhere)
        sets = self.sync.add(camera, int(stamp_ns), item)
        self._events.extend(self.sync.events())
        out: list[EpochWindow] = []
        resets = self.policy.resets
        if resets != self._policy_resets:  # a time jump cleared the policy: new epoch
            self._policy_resets = resets
            self._new_epoch(out)
        self._push(sets, out)
        if budget:   # the sets went into the window being built: the queues get what is left
            self._fit_queues(budget, held_elsewhere)
            self.policy.trim_to_budget()
            self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes() + held_elsewhere)
        return out

    def _fit_queues(self, budget: int, held_elsewhere: int) -> None:
        """The sync queues' share of the budget: what the window being built and the caller's
        windows leave (at least 1 byte: each queue then keeps only its newest message)."""
        self.policy.max_bytes = max(1, budget - self.builder.held_bytes() - held_elsewhere)

    def flush(self, drain: bool = True) -> list[EpochWindow]:
        """End of the stream: every set still possible (``drain``), then a last window over
        the sets in no window yet."""
        out: list[EpochWindow] = []
        if drain:
            self._push(self.sync.flush(), out)
        self._close_epoch(out)
        return out

    def _push(self, sets: list[Any], out: list[EpochWindow]) -> None:
        for synced in sets:
            self.sets += 1
            # order by the stamps on the rig clock (what was matched: strictly increasing even
            # when time offsets move a camera's stamps by more than a frame period)
            if self._last_set is not None and synced.aligned_stamp <= self._last_set:
                self._new_epoch(out)  # sets went back in time
            self._last_set = synced.aligned_stamp
            # integer ns on the rig clock (the items keep their exact source stamps)
            window = self.builder.push(synced, synced.aligned)
            if window is not None:
                self._emit(window, out)

    def _emit(self, window: Window, out: list[EpochWindow]) -> None:
        out.append(EpochWindow(window, self.windows_in_epoch, self.epoch))
        self.windows_in_epoch += 1
        self.windows_total += 1

    def _close_epoch(self, out: list[EpochWindow]) -> None:
        tail = self.builder.flush()
        if tail is not None:
            self._emit(tail, out)

    def _new_epoch(self, out: list[EpochWindow]) -> None:
        self._close_epoch(out)
        self.builder.reset()
        self._last_set = None
        self.epoch += 1
        self.windows_in_epoch = 0

    def events(self) -> list[SyncEvent]:
        """Policy events (time jumps, silent/recovered streams, stalls) since the last call."""
        out, self._events = self._events, []
        return out

    # ---------------------------------------------------------------------------- status
    def stats(self) -> dict[str, Any]:
        """Per camera: received (incl. rejected), matched, dropped per reason, rejected per reason,
        pending, silent, clock (offset, drift, state: `Synchronizer.clock_report`); and sets,
        windows, epoch, stalled, held_bytes (images held now) and peak_held_bytes (the most
        after an add, with the caller's share; tracked with a byte budget)."""
        ps = self.sync.stats
        cams = []
        for st, rej, clock in zip(ps.streams, self.rejected, ps.clock or []):
            cams.append({
                "name": st.name, "received": st.received + sum(rej.values()),
                "matched": st.matched, "dropped": {r: st.dropped[r] for r in DROP_REASONS},
                "rejected": dict(rej), "pending": st.pending, "silent": st.silent,
                "newest_stamp": st.newest_stamp, "clock": clock})
        return {"cameras": cams, "sets": ps.sets, "degraded_sets": ps.degraded_sets,
                "windows": self.windows_total, "epoch": self.epoch, "stalled": ps.stalled,
                "resets": ps.resets, "held_bytes": self.held_bytes(),
                "peak_held_bytes": self.peak_held_bytes}
