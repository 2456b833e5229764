"""The sync node's logic without ROS: N streams -> approximate-time sets -> lockstep windows,
with epochs and per-camera counters.

`SyncFrontEnd.add(camera, stamp_ns, item)` feeds one message to the core policy
(`core.sync.ApproximateTimePolicy`) and the window builder (`core.window.WindowBuilder`) and
returns the windows it completes, each with its index inside the current epoch. A time jump
backwards (a bag loop, a clock reset) clears the policy; the front end then starts a new epoch
(window numbering starts again at 0), so the fusion node knows to start a new reconstruction.
Messages refused before the policy (bad encoding, malformed image) are counted with
`reject(camera, reason)`, so per camera ``received == matched + dropped + rejected + pending``.

Not thread-safe: the node calls `add` under its lock and publishes outside it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.core.sync import DROP_REASONS, ApproximateTimePolicy, SyncEvent
from wint3r_ros.core.window import Window, WindowBuilder, WindowConfig
from wint3r_ros.errors import ConfigError

__all__ = ["REJECT_REASONS", "SyncSettings", "EpochWindow", "SyncFrontEnd"]

REJECT_REASONS = ("bad_encoding", "bad_image", "zero_stamp")


@dataclass(frozen=True)
class SyncSettings:
    """slop / queue_size / stream_timeout / jump_back_threshold as in ApproximateTimePolicy;
    min_cameras: 0 = every camera in every set, k > 0 = sets of at least k cameras while others
    are silent; window: L, O and the order of images (always "time" for WindowBatch)."""

    slop: float = 0.02
    queue_size: int = 10
    stream_timeout: float = 1.0
    min_cameras: int = 0
    jump_back_threshold: float = 1.0
    window: WindowConfig = WindowConfig(4, 2, "time")


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
        if s.min_cameras < 0 or s.min_cameras > len(names):
            raise ConfigError(f"min_cameras={s.min_cameras} must lie in [0, {len(names)}] "
                              f"(the number of cameras)")
        self.camera_names = names
        self.policy = ApproximateTimePolicy(
            len(names), s.queue_size, s.slop, stream_names=names, stream_timeout=s.stream_timeout,
            allow_degraded=s.min_cameras > 0, min_streams=max(1, s.min_cameras),
            jump_back_threshold=s.jump_back_threshold)
        self.builder = WindowBuilder(names, WindowConfig(s.window.size, s.window.overlap, "time"))
        self.epoch = 0
        self.windows_in_epoch = 0
        self.windows_total = 0
        self.rejected = [{r: 0 for r in REJECT_REASONS} for _ in names]
        self._policy_resets = 0
        self._builder_resets = 0
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

    def add(self, camera: int, stamp_ns: int, item: Any) -> list[EpochWindow]:
        """Feed one message (stamp in integer nanoseconds); return the windows it completes."""
        sets = self.policy.add(camera, stamp_ns, item)
        self._events.extend(self.policy.events())
        resets = self.policy.stats.resets
        if resets != self._policy_resets:  # a time jump cleared the policy: new epoch
            self._policy_resets = resets
            self._new_epoch()
        out: list[EpochWindow] = []
        for synced in sets:
            window = self.builder.push(synced)
            builder_resets = self.builder.stats["resets"]
            if builder_resets != self._builder_resets:  # sets went back in time
                self._builder_resets = builder_resets
                self._new_epoch(builder_reset=True)
            if window is not None:
                out.append(EpochWindow(window, self.windows_in_epoch, self.epoch))
                self.windows_in_epoch += 1
                self.windows_total += 1
        return out

    def _new_epoch(self, builder_reset: bool = False) -> None:
        self.epoch += 1
        self.windows_in_epoch = 0
        if not builder_reset:
            self.builder.reset()

    def events(self) -> list[SyncEvent]:
        """Policy events (time jumps, silent/recovered streams, stalls) since the last call."""
        out, self._events = self._events, []
        return out

    # ---------------------------------------------------------------------------- status
    def stats(self) -> dict[str, Any]:
        """Per camera: received (incl. rejected), matched, dropped per reason, rejected per reason,
        pending, silent; and sets, windows, epoch, stalled."""
        ps = self.policy.stats
        cams = []
        for st, rej in zip(ps.streams, self.rejected):
            cams.append({
                "name": st.name, "received": st.received + sum(rej.values()),
                "matched": st.matched, "dropped": {r: st.dropped[r] for r in DROP_REASONS},
                "rejected": dict(rej), "pending": st.pending, "silent": st.silent,
                "newest_stamp": st.newest_stamp})
        return {"cameras": cams, "sets": ps.sets, "degraded_sets": ps.degraded_sets,
                "windows": self.windows_total, "epoch": self.epoch, "stalled": ps.stalled,
                "resets": ps.resets}
