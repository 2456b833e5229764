"""What fusion_node and process-bag publish, computed without ROS: the base trajectory in the
odometry frame, velocities, the point cloud reduction and the bounded path.

The engine's world is the optical frame of the stream's first camera image (z forward).
REP-105's odometry frame starts where the robot starts, z up, and never jumps. `OdomFrame`
therefore anchors the odometry frame at the first base pose of a stream
(``odom_from_world = odom_from_base_last @ inv(world_from_base_first)``): identity at start-up,
and after a reset (a new stream, a new engine world) the pose continues from where the last
stream left it instead of jumping back to the origin.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import rotation_angle, se3_inverse

__all__ = ["BASE_FROM_OPTICAL", "OdomFrame", "twist_between", "voxel_downsample", "cap_points",
           "PathBuffer", "set_stamp_ns"]

# An optical frame (z forward, x right, y down) seen from a REP-103 body frame (x forward,
# y left, z up): the mounting assumed for camera 0 when no rig calibration is given.
BASE_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0, 0.0],
                              [-1.0, 0.0, 0.0, 0.0],
                              [0.0, -1.0, 0.0, 0.0],
                              [0.0, 0.0, 0.0, 1.0]])


class OdomFrame:
    """odom_from_world for the current stream, continuous across resets (module docstring)."""

    def __init__(self) -> None:
        self.odom_from_world: np.ndarray | None = None
        self.last_odom_from_base = np.eye(4)

    def reset(self) -> None:
        """A new stream (new engine world): re-anchor at its first base pose."""
        self.odom_from_world = None

    def base_in_odom(self, world_from_base: np.ndarray) -> np.ndarray:
        """odom_from_base [4, 4] of a base pose in the engine's world."""
        T = np.asarray(world_from_base, np.float64)
        if self.odom_from_world is None:
            self.odom_from_world = self.last_odom_from_base @ se3_inverse(T)
        out = self.odom_from_world @ T
        self.last_odom_from_base = out
        return out

    def points_in_odom(self, points_world: np.ndarray) -> np.ndarray:
        """points [M, 3] from the engine's world into the odometry frame (float32)."""
        if self.odom_from_world is None:
            return np.asarray(points_world, np.float32)
        T = self.odom_from_world
        return (np.asarray(points_world, np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


def _rotation_vector(R: np.ndarray) -> np.ndarray:
    angle = float(rotation_angle(R))
    if angle < 1e-12:
        return np.zeros(3)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    s = np.sin(angle)
    if abs(s) < 1e-9:  # angle near pi: axis from the symmetric part
        axis = np.sqrt(np.clip((np.diag(R) + 1.0) / 2.0, 0.0, None))
        return axis * angle
    return w / (2.0 * s) * angle


def twist_between(T0: np.ndarray, T1: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(linear [3] m/s, angular [3] rad/s) of the body moving from pose T0 to T1 in dt seconds,
    both expressed in the body frame at T1 (nav_msgs/Odometry's twist convention)."""
    if not dt > 0:
        return np.zeros(3), np.zeros(3)
    R1 = T1[:3, :3]
    linear = R1.T @ (T1[:3, 3] - T0[:3, 3]) / dt
    angular = _rotation_vector(T0[:3, :3].T @ R1) / dt
    return linear, angular


def voxel_downsample(points: np.ndarray, colors: np.ndarray | None, voxel: float
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """One point per voxel of edge ``voxel`` (the first in input order; non-finite points are
    removed); voxel <= 0 only removes non-finite points."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    ok = np.isfinite(pts).all(1)
    pts = pts[ok]
    cols = None if colors is None else np.asarray(colors)[ok]
    if voxel > 0 and len(pts):
        keys = np.floor(pts / np.float32(voxel)).astype(np.int64)
        _, first = np.unique(keys, axis=0, return_index=True)
        first.sort()
        pts = pts[first]
        cols = None if cols is None else cols[first]
    return pts, cols


def cap_points(points: np.ndarray, colors: np.ndarray | None, max_points: int
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """At most ``max_points``, evenly spread over the input order (deterministic)."""
    n = len(points)
    if n <= max_points:
        return points, colors
    idx = np.linspace(0, n - 1, max_points).round().astype(np.int64)
    return points[idx], None if colors is None else colors[idx]


class PathBuffer:
    """The newest ``max_poses`` (pose [4, 4], stamp) pairs of the base, oldest first."""

    def __init__(self, max_poses: int) -> None:
        self._poses: deque = deque(maxlen=max(1, int(max_poses)))

    def append(self, T: np.ndarray, stamp: Any) -> None:
        self._poses.append((np.array(T, np.float64), stamp))

    def clear(self) -> None:
        self._poses.clear()

    def __len__(self) -> int:
        return len(self._poses)

    def items(self) -> list[tuple[np.ndarray, Any]]:
        return list(self._poses)


def set_stamp_ns(stamps_ns: Sequence[int]) -> int:
    """The stamp published for a synchronised set: its newest image stamp, so a listener that
    looks up any of the set's images at its own stamp interpolates instead of extrapolating."""
    return max(int(s) for s in stamps_ns)
