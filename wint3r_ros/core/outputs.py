"""The output stage: the engine's frames -> the records fusion_node and process-bag publish.

`OutputStage.window(results, stamps_ns, window)` turns one step's `FrameResult`s into an
`OutputBatch` (core/pipeline/records.py): per synchronised set the base pose in the odometry
frame with its twist, per frame depth, confidence and the camera_info for the depth image's size,
the bounded path and the window's voxel-filtered cloud, all stamped with the exact source stamps.

The engine's world is the optical frame of the stream's first camera image (z forward).
REP-105's odometry frame starts where the robot starts, z up, and never jumps. `OdomFrame`
therefore anchors the odometry frame at the first base pose of a stream
(``odom_from_world = odom_from_base_last @ inv(world_from_base_first)``): identity at start-up,
and after a reset (a new stream, a new engine world) the pose continues from where the last
stream left it instead of jumping back to the origin.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wint3r_ros.core.geometry import rotation_angle, se3_inverse
from wint3r_ros.core.pipeline.records import (
    CameraInfoRecord,
    CloudRecord,
    FrameRecord,
    OutputBatch,
    PathRecord,
    PoseRecord,
    TransformRecord,
)

if TYPE_CHECKING:   # settings imports the engine (torch): `calibrate --help` stays light
    from wint3r_ros.core.pipeline.settings import OutputSettings

__all__ = ["BASE_FROM_OPTICAL", "OdomFrame", "twist_between", "voxel_downsample", "cap_points",
           "PathBuffer", "set_stamp_ns", "OutputStage"]

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


class OutputStage:
    """Engine frames -> `OutputBatch` (see the module docstring), one stage per stream of
    outputs: it keeps the odometry frame, the previous base pose (for the twist) and the path.

    settings: `OutputSettings`; rig: the calibrated rig in use (camera order = window order) or
    None: then camera 0 is assumed at the base origin looking along x (`BASE_FROM_OPTICAL`, on
    /tf_static) and the other cameras are placed from the reconstruction (on /tf)."""

    def __init__(self, settings: OutputSettings, rig: Any = None) -> None:
        self.settings = settings
        self.rig = rig
        self.odom = OdomFrame()
        self.path = PathBuffer(settings.path_max_poses)
        self._last_base: tuple[np.ndarray, int] | None = None
        self._static_sent: set[str] = set()
        self._info_warned: set[str] = set()

    def reset(self) -> None:
        """A new stream: the odometry frame is re-anchored (it continues), the path restarts."""
        self.odom.reset()
        self.path.clear()
        self._last_base = None

    def static_transforms(self, stamp_ns: int, frame_ids: Sequence[str] | None = None
                          ) -> list[TransformRecord]:
        """base_frame -> camera optical frames not sent yet: from the rig (all cameras), else
        camera 0's assumed mount (``frame_ids[0]``). Empty with publish_camera_tf off."""
        if not self.settings.publish_camera_tf:
            return []
        base = self.settings.base_frame
        if self.rig is not None:
            mounts = [(c.frame_id, c.T_base_camera) for c in self.rig.cameras]
        elif frame_ids:
            mounts = [(frame_ids[0], BASE_FROM_OPTICAL)]
        else:
            return []
        out = [TransformRecord(int(stamp_ns), base, fid, np.array(T, np.float64))
               for fid, T in mounts if fid not in self._static_sent]
        self._static_sent.update(t.child for t in out)
        return out

    def window(self, results: Sequence[Any], stamps_ns: Mapping[tuple[int, int], int],
               frame_ids: Sequence[str],
               camera_infos: Sequence[CameraInfoRecord | None] = ()) -> OutputBatch:
        """The batch of one step's results (`FrameResult`s, any order); stamps_ns: exact stamp
        per (camera_index, set_index); frame_ids / camera_infos: per camera of the window."""
        batch = OutputBatch()
        if not results:
            return batch
        by_set: dict[int, list[Any]] = {}
        for r in results:
            by_set.setdefault(r.set_index, []).append(r)
        for set_index in sorted(by_set):
            frames = sorted(by_set[set_index], key=lambda r: r.camera_index)
            self._set_pose(batch, frames, stamps_ns, frame_ids)
        newest = max(stamps_ns[(r.camera_index, r.set_index)] for r in results)
        batch.static = self.static_transforms(newest, frame_ids)
        if batch.static and self.rig is None:
            batch.notes.append(
                f"no rig_file: assuming camera {frame_ids[0]!r} is mounted at "
                f"{self.settings.base_frame}'s origin looking along its x axis; other cameras are "
                "placed from the reconstruction (relative scale)")
        for r in sorted(results, key=lambda r: (r.set_index, r.camera_index)):
            batch.frames.append(self._frame(r, stamps_ns[(r.camera_index, r.set_index)],
                                            frame_ids, camera_infos, batch.notes))
        if batch.poses and self.settings.publish_path:
            items = self.path.items()
            batch.path = PathRecord([T for T, _ in items], [s for _, s in items])
        if self.settings.publish_cloud:
            batch.cloud = self._cloud(results, newest)
        return batch

    # ------------------------------------------------------------------------------ parts
    def _base_pose(self, frames: list[Any]) -> np.ndarray | None:
        """world_from_base of a set: from the engine (rig), else camera 0 with the assumed
        mount; None when neither is there (camera 0 missing without a rig)."""
        for r in frames:
            if r.world_from_base is not None:
                return r.world_from_base
        if frames[0].camera_index == 0:
            return frames[0].world_from_cam @ se3_inverse(BASE_FROM_OPTICAL)
        return None

    def _set_pose(self, batch: OutputBatch, frames: list[Any],
                  stamps_ns: Mapping[tuple[int, int], int], frame_ids: Sequence[str]) -> None:
        stamp_ns = set_stamp_ns(stamps_ns[(r.camera_index, r.set_index)] for r in frames)
        world_from_base = self._base_pose(frames)
        if world_from_base is None:
            return
        if self.rig is None and self.settings.publish_camera_tf:
            base_from_world = se3_inverse(world_from_base)
            batch.camera_transforms += [
                TransformRecord(stamps_ns[(r.camera_index, r.set_index)],
                                self.settings.base_frame, frame_ids[r.camera_index],
                                base_from_world @ r.world_from_cam)
                for r in frames if r.camera_index != 0]
        T = self.odom.base_in_odom(world_from_base)
        lin, ang = np.zeros(3), np.zeros(3)
        if self._last_base is not None:
            lin, ang = twist_between(self._last_base[0], T, (stamp_ns - self._last_base[1]) / 1e9)
        self._last_base = (T, stamp_ns)
        self.path.append(T, stamp_ns)
        batch.poses.append(PoseRecord(stamp_ns, frames[0].set_index, T, lin, ang))

    def _frame(self, r: Any, stamp_ns: int, frame_ids: Sequence[str],
               camera_infos: Sequence[CameraInfoRecord | None], notes: list[str]) -> FrameRecord:
        h, w = r.depth_map.shape
        info: CameraInfoRecord | None = None
        if self.rig is not None:
            cam = self.rig.camera(r.camera)
            info = CameraInfoRecord.from_camera(
                cam if (cam.width, cam.height) == (w, h) else cam.scaled(w, h))
        else:
            given = camera_infos[r.camera_index] if r.camera_index < len(camera_infos) else None
            if given is not None and given.calibrated:
                info = given.resized(w, h)
            elif r.camera not in self._info_warned:
                self._info_warned.add(r.camera)
                notes.append(f"camera '{r.camera}': no rig_file and no camera_info in the "
                             "windows; its depth is published without camera_info")
        return FrameRecord(stamp_ns, r.set_index, r.camera, r.camera_index,
                           frame_ids[r.camera_index], r.depth_map,
                           r.confidence_map.with_nan_as(0.0), info,
                           r.world_from_cam, bool(r.metric))

    def _cloud(self, results: Sequence[Any], stamp_ns: int) -> CloudRecord:
        have = [r for r in results if r.points is not None and len(r.points)]
        points = np.concatenate([r.points for r in have]) if have else np.zeros((0, 3), np.float32)
        colors = np.concatenate([r.colors for r in have]) if have else np.zeros((0, 3), np.uint8)
        points, colors = voxel_downsample(self.odom.points_in_odom(points), colors,
                                          self.settings.cloud_voxel_size)
        points, colors = cap_points(points, colors, self.settings.cloud_max_points)
        return CloudRecord(int(stamp_ns), points, colors)
