"""A bounded, voxelised map of the confident points of a whole run (``~/map_cloud``, save_map).

The live ``~/cloud`` holds one window; `VoxelMap` keeps what the rig has seen over the whole
run, with memory that stays flat however long it runs:

- one point per voxel of edge ``voxel_size``: the running mean of the points that fell into it
  (position) and the colour of its newest point;
- at most ``max_points`` voxels. Eviction rule: when an insert takes the map over the bound, the
  voxels observed least recently (the oldest insert counter; ties: the lower voxel key) are
  removed until it holds ``max_points - max_points // 10`` (90 %: evicting in batches keeps
  the cost of an insert low). What the rig sees now is always in the map; places not seen for
  the longest time go first;
- the voxels live in one structured array sorted by voxel key (``BYTES_PER_VOXEL`` each) and a
  small sorted array of new voxels merged into it from time to time, so an insert costs
  O(M log V) for M points and the memory is ``BYTES_PER_VOXEL * max_points`` at most (plus one
  insert's temporaries).

Points are in the odometry frame (metres with a metric rig, model units otherwise). A voxel key
packs the three integer voxel coordinates in 21 bits each: a point further than
``2**20 * voxel_size`` from the origin (52 km at 5 cm) is refused and counted, never wrapped.
No ROS, no data/ (core room).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wint3r_ros.errors import ConfigError

__all__ = ["MapConfig", "VoxelMap", "RunMap", "BYTES_PER_VOXEL"]

_BITS = 21
_HALF = 1 << (_BITS - 1)
# key, running-mean position, newest colour, points seen, the insert that saw it last
_VOXEL = np.dtype([("key", "<i8"), ("xyz", "<f4", 3), ("rgb", "u1", 3), ("count", "<u4"),
                   ("seen", "<i8")])
BYTES_PER_VOXEL = _VOXEL.itemsize + 8   # 35 + the key's contiguous copy


@dataclass(frozen=True)
class MapConfig:
    """voxel_size: voxel edge (m, or model units without metric scale), > 0; max_points: most
    voxels kept (the eviction rule is in the module docstring), >= 1."""

    voxel_size: float = 0.05
    max_points: int = 500_000

    def __post_init__(self) -> None:
        if not (np.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise ConfigError(f"map voxel_size must be a positive number, got {self.voxel_size!r}")
        if int(self.max_points) < 1:
            raise ConfigError(f"map max_points must be >= 1, got {self.max_points!r}")

    @property
    def max_bytes(self) -> int:
        """Upper bound of the map's arrays in bytes."""
        return BYTES_PER_VOXEL * int(self.max_points)


class VoxelMap:
    """The accumulated map (module docstring). Not thread-safe: one owner inserts and reads."""

    def __init__(self, config: MapConfig | None = None) -> None:
        self.config = config or MapConfig()
        self._main = np.zeros(0, _VOXEL)    # sorted by key
        self._new = np.zeros(0, _VOXEL)     # sorted by key, keys not in _main
        self._main_keys = np.zeros(0, np.int64)   # contiguous copies of the keys (searchsorted)
        self._new_keys = np.zeros(0, np.int64)
        self._tick = 0
        self.evicted = 0
        self.refused = 0
        self.inserted = 0

    def __len__(self) -> int:
        return len(self._main) + len(self._new)

    @property
    def nbytes(self) -> int:
        """Bytes held by the map's arrays now."""
        return int(self._main.nbytes + self._new.nbytes + self._main_keys.nbytes
                   + self._new_keys.nbytes)

    def _voxel_keys(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keys of the representable points, their mask)."""
        ijk = np.floor(pts.astype(np.float64) / self.config.voxel_size)
        ok = (np.abs(ijk) < _HALF - 1).all(1)
        ijk = ijk[ok].astype(np.int64) + _HALF
        keys = (ijk[:, 0] << (2 * _BITS)) | (ijk[:, 1] << _BITS) | ijk[:, 2]
        return keys, ok

    def insert(self, points: np.ndarray, colors: np.ndarray | None = None) -> int:
        """Add points [M, 3] (odometry frame) with colours [M, 3] uint8 (grey without).
        Non-finite and out-of-range points are refused (counted). Returns the voxels now held."""
        pts = np.asarray(points, np.float32).reshape(-1, 3)
        cols = (np.full((len(pts), 3), 128, np.uint8) if colors is None
                else np.asarray(colors, np.uint8).reshape(-1, 3))
        if len(cols) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(cols)} colours")
        finite = np.isfinite(pts).all(1)
        pts, cols = pts[finite], cols[finite]
        keys, ok = self._voxel_keys(pts)
        self.refused += int((~finite).sum() + (~ok).sum())
        pts, cols = pts[ok], cols[ok]
        self._tick += 1
        if not len(keys):
            return len(self)
        self.inserted += len(keys)
        u, inv = np.unique(keys, return_inverse=True)
        batch = np.zeros(len(u), _VOXEL)
        batch["key"] = u
        batch["count"] = np.bincount(inv, minlength=len(u))
        sums = np.stack([np.bincount(inv, weights=pts[:, d], minlength=len(u))
                         for d in range(3)], 1)
        last = np.zeros(len(u), np.int64)
        last[inv] = np.arange(len(inv))   # the newest point of each voxel (later rows win)
        batch["rgb"] = cols[last]
        batch["xyz"] = sums / batch["count"][:, None]
        batch["seen"] = self._tick
        fresh = np.ones(len(u), bool)
        for table, keys in ((self._main, self._main_keys), (self._new, self._new_keys)):
            fresh &= ~self._update(table, keys, batch)
        if fresh.any():
            new = np.concatenate([self._new, batch[fresh]])
            self._new = new[np.argsort(new["key"], kind="stable")]
            self._new_keys = np.ascontiguousarray(self._new["key"])
            if len(self) > self.config.max_points or \
                    len(self._new) > max(4096, self.config.max_points // 8):
                self._merge()
        return len(self)

    @staticmethod
    def _update(table: np.ndarray, keys: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Fold the batch's voxels that ``table`` holds into it (running mean whose weight
        saturates at 1000 points, so a voxel can still follow a drift); returns that mask."""
        if not len(table):
            return np.zeros(len(batch), bool)
        idx = np.searchsorted(keys, batch["key"])
        found = idx < len(table)
        found[found] = keys[idx[found]] == batch["key"][found]
        j, b = idx[found], batch[found]
        c_old = np.minimum(table["count"][j], 1000).astype(np.float64)[:, None]
        c_add = b["count"].astype(np.float64)[:, None]
        table["xyz"][j] = (table["xyz"][j] * c_old + b["xyz"] * c_add) / (c_old + c_add)
        table["rgb"][j] = b["rgb"]
        table["count"][j] = np.minimum(table["count"][j].astype(np.int64) + b["count"], 2**32 - 1)
        table["seen"][j] = b["seen"]
        return found

    def _merge(self) -> None:
        """The new voxels into the main array (sorted, O(V)); then the eviction rule."""
        at = np.searchsorted(self._main_keys, self._new_keys)
        self._main = np.insert(self._main, at, self._new)
        self._new, self._new_keys = np.zeros(0, _VOXEL), np.zeros(0, np.int64)
        if len(self._main) > self.config.max_points:
            self._evict(len(self._main) - (self.config.max_points - self.config.max_points // 10))
        self._main_keys = np.ascontiguousarray(self._main["key"])

    def _evict(self, excess: int) -> None:
        """Remove the ``excess`` least recently seen voxels (ties: the lower keys), in O(V)."""
        seen = self._main["seen"]
        threshold = np.partition(seen, excess - 1)[excess - 1]
        drop = seen < threshold
        ties = np.flatnonzero(seen == threshold)     # in key order: the lower keys first
        drop[ties[:excess - int(drop.sum())]] = True
        self._main = self._main[~drop]
        self.evicted += excess

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(points [V, 3] float32, colours [V, 3] uint8), one per voxel."""
        both = np.concatenate([self._main, self._new])
        return both["xyz"].copy(), both["rgb"].copy()

    def stats(self) -> dict[str, int | float]:
        """Counters for status and save_map's settings."""
        return {"voxels": len(self), "max_points": int(self.config.max_points),
                "voxel_size": float(self.config.voxel_size), "bytes": self.nbytes,
                "max_bytes": self.config.max_bytes, "evicted": self.evicted,
                "refused": self.refused, "inserted": self.inserted}


class RunMap:
    """What ``save_map`` writes and ``~/map_cloud`` shows: the `VoxelMap` of the run's clouds and
    the base trajectory (odometry frame), the newest ``max_poses`` poses (oldest dropped, so
    memory stays flat: 136 bytes a pose). Thread-safe: the pipeline's worker adds, a service or
    a timer of the node takes a consistent `snapshot`."""

    def __init__(self, config: MapConfig | None = None, max_poses: int = 1_000_000) -> None:
        import threading
        from collections import deque

        self.cloud = VoxelMap(config)
        self._poses: deque = deque(maxlen=max(1, int(max_poses)))
        self._lock = threading.Lock()
        self.version = 0   # bumped by every change (a publisher republishes only what changed)

    def add_cloud(self, points: np.ndarray, colors: np.ndarray | None) -> None:
        if len(points):
            with self._lock:
                self.cloud.insert(points, colors)
                self.version += 1

    def add_pose(self, stamp_ns: int, odom_from_base: np.ndarray) -> None:
        with self._lock:
            self._poses.append((int(stamp_ns), np.array(odom_from_base, np.float64)))

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, list[int], np.ndarray, dict]:
        """(points [V, 3], colours [V, 3], stamps_ns, odom_from_base [P, 4, 4], map stats),
        copies taken together."""
        with self._lock:
            points, colors = self.cloud.points()
            stamps = [s for s, _ in self._poses]
            poses = np.stack([T for _, T in self._poses]) if self._poses else np.zeros((0, 4, 4))
            return points, colors, stamps, poses, self.cloud.stats()
