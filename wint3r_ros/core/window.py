"""Lockstep windows of L synchronised sets over N cameras, advancing by L - O sets.

`WindowBuilder.push(set)` takes one synchronised set (a tuple of N items in camera order, None
for a camera missing from a degraded set; a `SyncedSet` brings its stamps) and returns a `Window`
whenever one is complete: the first after L sets, then one every L - O sets, each repeating the
last O sets of the previous one (WinT3R's published schedule is L = 4, O = 2). Per-camera ring
buffers hold at most L entries each, so memory is bounded whatever the stream length. Items are
opaque (images, messages, handles); the window only orders them.

Image order inside a window: "time" (time-major: step 0 of every camera, then step 1, ...) or
"camera" (camera-major: every step of camera 0, then camera 1, ...).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.core.sync import item_nbytes
from wint3r_ros.errors import ConfigError, SyncError

__all__ = ["WindowConfig", "Frame", "Window", "RingBuffer", "WindowBuilder", "ORDERS"]

ORDERS = ("time", "camera")


@dataclass(frozen=True)
class WindowConfig:
    """size: L sets per window; overlap: O sets shared with the previous window (0 <= O < L);
    order: image order inside a window, "time" or "camera" (see the module docstring)."""

    size: int = 4
    overlap: int = 2
    order: str = "time"

    def __post_init__(self) -> None:
        L, O = self.size, self.overlap
        if isinstance(L, bool) or not isinstance(L, int) or L < 1:
            raise ConfigError(f"window size L={L!r} must be an integer >= 1")
        if isinstance(O, bool) or not isinstance(O, int) or not 0 <= O < L:
            raise ConfigError(f"window overlap O={O!r} must be an integer with 0 <= O < L "
                              f"(window size L={L})")
        if self.order not in ORDERS:
            raise ConfigError(f"window order={self.order!r} must be one of {ORDERS}")

    @property
    def stride(self) -> int:
        """New sets per window after the first: L - O."""
        return self.size - self.overlap


@dataclass(frozen=True)
class Frame:
    """One image of a window: step (0..L-1 inside the window), camera name and index, source
    stamp, the item, and set_index (sequence number of its synchronised set, global).
    `key` = (camera_index, set_index) identifies the frame across overlapping windows."""

    step: int
    camera: str
    camera_index: int
    stamp: float
    item: Any
    set_index: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.camera_index, self.set_index)


@dataclass(frozen=True)
class Window:
    """L (or fewer, at a flush) lockstep steps of N cameras.

    index: window number since the builder started (0, 1, ...); camera_names: N names;
    frames: the present images in model order (`order`); stamps[step][camera]: source stamps
    (None where the camera is missing); set_indices[step]: each step's set number;
    first_new_step: steps before it were in the previous window (0 for the first window).
    """

    index: int
    camera_names: tuple[str, ...]
    order: str
    frames: tuple[Frame, ...]
    stamps: tuple[tuple[float | None, ...], ...]
    set_indices: tuple[int, ...]
    first_new_step: int

    @property
    def num_steps(self) -> int:
        return len(self.stamps)

    @property
    def items(self) -> list[Any]:
        """The frames' items in model order."""
        return [f.item for f in self.frames]

    @property
    def keys(self) -> list[tuple[int, int]]:
        return [f.key for f in self.frames]

    @property
    def stamp(self) -> float:
        """Earliest stamp of the window's newest step (the window's 'time' for latency rules)."""
        return min(s for s in self.stamps[-1] if s is not None)

    @property
    def new_frames(self) -> list[Frame]:
        """Frames this window is the first to contain."""
        return [f for f in self.frames if f.step >= self.first_new_step]

    def camera_frames(self, camera: str | int) -> list[Frame]:
        """Frames of one camera (by name or index), oldest first."""
        idx = camera if isinstance(camera, int) else self.camera_names.index(camera)
        return sorted((f for f in self.frames if f.camera_index == idx), key=lambda f: f.step)


class RingBuffer:
    """A fixed-capacity FIFO: appending to a full buffer forgets its oldest entry."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"RingBuffer capacity={capacity} must be >= 1")
        self._data: deque = deque(maxlen=capacity)

    @property
    def capacity(self) -> int:
        return self._data.maxlen  # type: ignore[return-value]

    def append(self, entry: Any) -> None:
        self._data.append(entry)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __getitem__(self, i: int) -> Any:
        return self._data[i]


class WindowBuilder:
    """Turns synchronised sets into lockstep windows (see the module docstring).

    camera_names: the N cameras in stream order; config: a WindowConfig.
    """

    def __init__(self, camera_names: Sequence[str], config: WindowConfig | None = None) -> None:
        names = tuple(camera_names)
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"WindowBuilder: camera_names={list(names)!r} must be non-empty and unique")
        self.config = config or WindowConfig()
        self.camera_names = names
        L = self.config.size
        # per camera: (set_index, stamp, item, item_nbytes) | None
        self._buffers = [RingBuffer(L) for _ in names]
        self._held_bytes = 0        # sum of the held entries' item_nbytes (kept as they change)
        self._steps: RingBuffer = RingBuffer(L)            # (set_index, stamps)
        self._new = 0               # sets pushed since the last window
        self._windows = 0
        self._sets = 0
        self._resets = 0
        self._last_stamp: float | None = None

    # ------------------------------------------------------------------------- public API
    def push(self, synced_set: Sequence[Any], stamps: Sequence[float | None] | None = None,
             set_index: int | None = None) -> Window | None:
        """Add one synchronised set; return the window it completes, if any.

        stamps default to `synced_set.stamps` (a SyncedSet); set_index to `synced_set.index` or a
        running count. A set not newer than the previous one (a time jump upstream) restarts the
        windows (counted in `resets`) instead of mixing timelines.
        """
        items = tuple(synced_set)
        n = len(self.camera_names)
        if len(items) != n:
            raise SyncError(f"WindowBuilder.push: set has {len(items)} items, expected {n} "
                            f"(cameras {', '.join(self.camera_names)})")
        stamps = tuple(getattr(synced_set, "stamps", None) if stamps is None else stamps)
        if len(stamps) != n:
            raise SyncError(f"WindowBuilder.push: {len(stamps)} stamps for {n} cameras")
        for cam, item, stamp in zip(self.camera_names, items, stamps):
            if (item is None) != (stamp is None):
                raise SyncError(f"WindowBuilder.push: camera '{cam}' has item {type(item).__name__} "
                                f"but stamp {stamp!r}; both or neither must be None")
            if stamp is not None and not math.isfinite(stamp):
                raise SyncError(f"WindowBuilder.push: camera '{cam}' stamp {stamp!r} is not finite")
        present = [s for s in stamps if s is not None]
        if not present:
            raise SyncError("WindowBuilder.push: a set needs at least one camera")
        t = min(present)
        if self._last_stamp is not None and t <= self._last_stamp:
            self.reset()
            self._resets += 1
        self._last_stamp = t
        if set_index is None:
            own = getattr(synced_set, "index", None)  # a SyncedSet's sequence number
            set_index = own if isinstance(own, int) else self._sets
        self._sets += 1
        for buf, item, stamp in zip(self._buffers, items, stamps):
            if len(buf) == buf.capacity and buf[0] is not None:   # forgotten by this append
                self._held_bytes -= buf[0][3]
            size = item_nbytes(item)
            self._held_bytes += size
            buf.append(None if item is None else (set_index, stamp, item, size))
        self._steps.append((set_index, stamps))
        self._new += 1
        need = self.config.size if self._windows == 0 else self.config.stride
        if len(self._steps) == self.config.size and self._new >= need:
            return self._emit(first_new_step=self.config.size - self._new)
        return None

    def flush(self) -> Window | None:
        """At the end of a stream: a last window over the newest (up to L) sets if some sets are
        in no window yet; it may overlap the previous window by more than O, or be shorter."""
        if self._new == 0 or not len(self._steps):
            return None
        return self._emit(first_new_step=max(0, len(self._steps) - self._new))

    def reset(self) -> None:
        """Forget buffered sets (window numbering continues)."""
        for buf in self._buffers:
            buf.clear()
        self._held_bytes = 0
        self._steps.clear()
        self._new = 0
        self._last_stamp = None

    def held_bytes(self) -> int:
        """Bytes of the items the builder holds (the last L sets; `core.sync.item_nbytes`)."""
        return self._held_bytes

    @property
    def stats(self) -> dict[str, Any]:
        """windows and sets so far, resets, and per-camera buffer occupancy."""
        return {"windows": self._windows, "sets": self._sets, "resets": self._resets,
                "buffered": {c: sum(e is not None for e in b)
                             for c, b in zip(self.camera_names, self._buffers)},
                "capacity": self.config.size}

    # ---------------------------------------------------------------------------- internal
    def _emit(self, first_new_step: int) -> Window:
        L = len(self._steps)
        frames: list[Frame] = []
        if self.config.order == "time":
            order = [(s, c) for s in range(L) for c in range(len(self.camera_names))]
        else:
            order = [(s, c) for c in range(len(self.camera_names)) for s in range(L)]
        for s, c in order:
            entry = self._buffers[c][s]
            if entry is not None:
                frames.append(Frame(s, self.camera_names[c], c, entry[1], entry[2], entry[0]))
        window = Window(self._windows, self.camera_names, self.config.order, tuple(frames),
                        tuple(step[1] for step in self._steps),
                        tuple(step[0] for step in self._steps), first_new_step)
        self._windows += 1
        self._new = 0
        return window
