"""A bounded, voxelised map of the confident points of a whole run (``~/map_cloud``, save_map).

The live ``~/cloud`` holds one window; `VoxelMap` keeps what the rig has seen over the whole
run, with memory that stays flat however long it runs:

- one point per voxel of edge ``voxel_size``: the running mean of the points that fell into it
  (position) and the colour of its newest point;
- at most ``max_points`` voxels. Eviction rule: when an insert takes the map over the bound, the
  voxels observed least recently (the oldest ``last_seen`` insert counter; ties: the lower voxel
  key) are removed until it holds ``max_points``. What the rig sees now is always in the map;
  places not seen for the longest time go first;
- the arrays are held in sorted voxel-key order and grown in place, so the memory is
  ``BYTES_PER_VOXEL * max_points`` at most (plus one insert's temporaries).

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
_MASK = (1 << _BITS) - 1
# key int64 + mean xyz float32 + rgb uint8 + count uint32 + last_seen int64
BYTES_PER_VOXEL = 8 + 12 + 3 + 4 + 8


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
        self.clear()

    def clear(self) -> None:
        """Forget every voxel (counters of evicted / refused points are kept)."""
        self._keys = np.zeros(0, np.int64)
        self._xyz = np.zeros((0, 3), np.float32)
        self._rgb = np.zeros((0, 3), np.uint8)
        self._count = np.zeros(0, np.uint32)
        self._seen = np.zeros(0, np.int64)
        self._tick = 0
        if not hasattr(self, "evicted"):
            self.evicted = 0
            self.refused = 0
            self.inserted = 0

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """Bytes held by the map's arrays now."""
        return int(self._keys.nbytes + self._xyz.nbytes + self._rgb.nbytes + self._count.nbytes
                   + self._seen.nbytes)

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
        n_new = np.bincount(inv, minlength=len(u)).astype(np.float64)
        sums = np.zeros((len(u), 3))
        np.add.at(sums, inv, pts.astype(np.float64))
        last = np.zeros(len(u), np.int64)
        last[inv] = np.arange(len(inv))   # the newest point of each voxel (later rows win)
        u_rgb = cols[last]
        idx = np.searchsorted(self._keys, u)
        found = idx < len(self._keys)
        found[found] = self._keys[idx[found]] == u[found]
        # known voxels: running mean (weights saturate so a voxel can still follow a drift)
        j = idx[found]
        c_old = np.minimum(self._count[j].astype(np.float64), 1000.0)
        c_add = n_new[found]
        self._xyz[j] = ((self._xyz[j] * c_old[:, None] + sums[found]) /
                        (c_old + c_add)[:, None]).astype(np.float32)
        self._rgb[j] = u_rgb[found]
        self._count[j] = np.minimum(self._count[j].astype(np.int64) + c_add.astype(np.int64),
                                    2**32 - 1).astype(np.uint32)
        self._seen[j] = self._tick
        # new voxels: inserted at their sorted positions
        new = ~found
        if new.any():
            at = idx[new]
            self._keys = np.insert(self._keys, at, u[new])
            self._xyz = np.insert(self._xyz, at, (sums[new] / n_new[new][:, None])
                                  .astype(np.float32), axis=0)
            self._rgb = np.insert(self._rgb, at, u_rgb[new], axis=0)
            self._count = np.insert(self._count, at, n_new[new].astype(np.uint32))
            self._seen = np.insert(self._seen, at, np.full(int(new.sum()), self._tick))
        self._evict()
        return len(self)

    def _evict(self) -> None:
        excess = len(self._keys) - int(self.config.max_points)
        if excess <= 0:
            return
        order = np.lexsort((self._keys, self._seen))   # oldest first, ties: lower key
        keep = np.ones(len(self._keys), bool)
        keep[order[:excess]] = False
        self._keys, self._xyz, self._rgb = self._keys[keep], self._xyz[keep], self._rgb[keep]
        self._count, self._seen = self._count[keep], self._seen[keep]
        self.evicted += excess

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(points [V, 3] float32, colours [V, 3] uint8), one per voxel, in voxel-key order."""
        return self._xyz.copy(), self._rgb.copy()

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
