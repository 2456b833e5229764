"""The camera token pool as a first-class object: what each pool entry is, and which to evict.

WinT3R appends one camera token per frame per window to its pool, and every later window's
poses attend to the whole pool, so an unbounded pool grows with the stream (memory and time).
`TokenPool` mirrors the model's pool entry by entry (camera, stamp, window, slot) and, when it
exceeds `max_entries`, says which slots to keep; the engine passes them to the model's
`StreamState.keep_pool(indices)` and to `TokenPool.keep(indices)`, keeping both in step.

Eviction policy, "the newest per camera plus keyframes": entries are ranked, and the best
`max_entries` kept, by
  1. the anchor: every entry of the stream's first window (the world frame is defined there);
  2. the newest `recent_per_camera` entries of each camera (default: two windows' worth);
  3. keyframe entries, newest keyframe first; a keyframe window is every `keyframe_every`-th
     window counted from the anchor (window indices anchor, anchor + k, anchor + 2k, ...);
  4. everything else, newest first.
Ties inside a rank go to the newer entry. So the pool keeps the world anchor, a recent history
of every camera (a rig camera is never starved by the others) and a sparse, evenly spaced
memory of the past, within a fixed bound (users of streaming models hit out-of-memory errors
after a few dozen frames without one).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wint3r_ros.errors import ConfigError, InputError

__all__ = ["PoolEntry", "CameraPoolView", "TokenPool"]


@dataclass(frozen=True)
class PoolEntry:
    """One pool entry: the camera and source stamp of its frame, the window that produced it,
    whether that window is a keyframe window, and `slot`, its current position in the pool."""

    camera: str
    stamp: float
    window_index: int
    keyframe: bool
    slot: int


@dataclass(frozen=True)
class CameraPoolView:
    """What the pool holds of one camera: entry count, keyframe entries, stamps and ages
    (seconds behind `now`) oldest first, the windows they came from, and token L2 norms."""

    camera: str
    size: int
    keyframes: int
    stamps: tuple[float, ...]
    ages: tuple[float, ...]
    windows: tuple[int, ...]
    token_norms: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        norms = np.asarray(self.token_norms) if self.token_norms else None
        return {"camera": self.camera, "size": self.size, "keyframes": self.keyframes,
                "oldest_age": max(self.ages) if self.ages else None,
                "newest_age": min(self.ages) if self.ages else None,
                "token_norm_mean": float(norms.mean()) if norms is not None else None}


class TokenPool:
    """Metadata and eviction for the model's camera token pool (see the module docstring).

    camera_names: the rig's cameras; max_entries: the bound (None: unbounded, like the authors);
    keyframe_every: every k-th window is a keyframe window (k >= 1); recent_per_camera: entries
    per camera always kept (None: 2 * frames_per_window // cameras); frames_per_window: frames
    one window adds (L * N); used to check that the bound holds the anchor and a new window.
    """

    def __init__(self, camera_names: Sequence[str], max_entries: int | None = None,
                 keyframe_every: int = 4, recent_per_camera: int | None = None,
                 frames_per_window: int | None = None) -> None:
        self.camera_names = tuple(camera_names)
        if not self.camera_names:
            raise ConfigError("TokenPool: camera_names must not be empty")
        if isinstance(keyframe_every, bool) or not isinstance(keyframe_every, int) or keyframe_every < 1:
            raise ConfigError(f"TokenPool: keyframe_every={keyframe_every!r} must be an integer >= 1")
        if max_entries is not None:
            if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
                raise ConfigError(f"TokenPool: max_entries={max_entries!r} must be an integer >= 1 or None")
            if frames_per_window is not None and max_entries < 2 * frames_per_window:
                raise ConfigError(f"TokenPool: max_entries={max_entries} cannot hold the anchor "
                                  f"window and a new one ({frames_per_window} frames each); use "
                                  f">= {2 * frames_per_window}")
        if recent_per_camera is None:
            per_window = frames_per_window or len(self.camera_names)
            recent_per_camera = max(1, 2 * per_window // len(self.camera_names))
        if recent_per_camera < 0:
            raise ConfigError(f"TokenPool: recent_per_camera={recent_per_camera} must be >= 0")
        self.max_entries = max_entries
        self.keyframe_every = keyframe_every
        self.recent_per_camera = recent_per_camera
        self._cams: list[str] = []
        self._stamps: list[float] = []
        self._windows: list[int] = []
        self._anchor: int | None = None
        self.evicted = 0

    # ------------------------------------------------------------------------- bookkeeping
    def __len__(self) -> int:
        return len(self._cams)

    def is_keyframe_window(self, window_index: int) -> bool:
        """True for the anchor window and every keyframe_every-th window after it."""
        if self._anchor is None:
            return True
        return (window_index - self._anchor) % self.keyframe_every == 0

    def add_window(self, window_index: int, frames: Sequence[tuple[str, float]]) -> None:
        """Record the entries one model step appended: (camera, stamp) per frame, in the order
        the frames were given to the model."""
        for cam, _ in frames:
            if cam not in self.camera_names:
                raise InputError(f"TokenPool.add_window: unknown camera {cam!r} "
                                 f"(cameras: {', '.join(self.camera_names)})")
        if self._anchor is None:
            self._anchor = window_index
        for cam, stamp in frames:
            self._cams.append(cam)
            self._stamps.append(float(stamp))
            self._windows.append(int(window_index))

    @property
    def entries(self) -> list[PoolEntry]:
        """Every entry, slot order (oldest first)."""
        return [PoolEntry(c, s, w, self.is_keyframe_window(w), i)
                for i, (c, s, w) in enumerate(zip(self._cams, self._stamps, self._windows))]

    def check_size(self, model_pool_size: int) -> None:
        """Raise InputError if the model's pool and this mirror disagree in size."""
        if model_pool_size != len(self):
            raise InputError(f"TokenPool: the model's pool has {model_pool_size} entries, the "
                             f"mirror {len(self)}; was the pool changed behind the engine's back?")

    # ---------------------------------------------------------------------------- eviction
    def plan_eviction(self) -> list[int] | None:
        """Slots to keep (sorted) when the pool exceeds max_entries, else None."""
        n = len(self)
        if self.max_entries is None or n <= self.max_entries:
            return None
        rank = np.full(n, 3, dtype=np.int64)
        seen: dict[str, int] = {c: 0 for c in self.camera_names}
        for i in range(n - 1, -1, -1):  # newest first
            w = self._windows[i]
            if w == self._anchor:
                rank[i] = 0
            elif seen[self._cams[i]] < self.recent_per_camera:
                rank[i] = 1
            elif self.is_keyframe_window(w):
                rank[i] = 2
            seen[self._cams[i]] += 1
        # sort by (rank, newest first); slot index breaks ties (newer = larger)
        order = np.lexsort((-np.arange(n), rank))
        return sorted(int(i) for i in order[: self.max_entries])

    def keep(self, indices: Sequence[int]) -> None:
        """Keep only the entries at `indices` (what the model's keep_pool was given)."""
        idx = sorted(set(int(i) for i in indices))
        if idx and (idx[0] < 0 or idx[-1] >= len(self)):
            raise InputError(f"TokenPool.keep: indices must lie in [0, {len(self)}), got {idx[:8]}")
        self.evicted += len(self) - len(idx)
        self._cams = [self._cams[i] for i in idx]
        self._stamps = [self._stamps[i] for i in idx]
        self._windows = [self._windows[i] for i in idx]

    # ------------------------------------------------------------------------ introspection
    def camera_views(self, tokens: Any = None, now: float | None = None) -> dict[str, CameraPoolView]:
        """Per-camera view of the pool. tokens: the model's pool tokens [P, C] (torch or numpy,
        P == len(self)) for token norms; now: stream time for ages (default: newest stamp)."""
        norms: np.ndarray | None = None
        if tokens is not None:
            t = tokens.detach().float().cpu().numpy() if hasattr(tokens, "detach") else np.asarray(tokens)
            if t.ndim != 2 or t.shape[0] != len(self):
                raise InputError(f"TokenPool.camera_views: tokens {tuple(t.shape)} do not match the "
                                 f"pool's {len(self)} entries ([P, C] expected)")
            norms = np.linalg.norm(t.astype(np.float64), axis=1)
        if now is None:
            now = max(self._stamps) if self._stamps else 0.0
        views = {}
        for cam in self.camera_names:
            idx = [i for i, c in enumerate(self._cams) if c == cam]
            views[cam] = CameraPoolView(
                camera=cam, size=len(idx),
                keyframes=sum(self.is_keyframe_window(self._windows[i]) for i in idx),
                stamps=tuple(self._stamps[i] for i in idx),
                ages=tuple(now - self._stamps[i] for i in idx),
                windows=tuple(self._windows[i] for i in idx),
                token_norms=tuple(float(norms[i]) for i in idx) if norms is not None else ())
        return views

    def stats(self) -> dict[str, Any]:
        """size, bound, evicted so far and per-camera sizes (for status messages)."""
        return {"size": len(self), "max_entries": self.max_entries, "evicted": self.evicted,
                "anchor_window": self._anchor,
                "per_camera": {c: self._cams.count(c) for c in self.camera_names}}
