"""The pipeline's output records: plain data, no ROS, stamps as exact integer nanoseconds.

The output stage (`core.outputs.OutputStage`) turns the engine's frames into one `OutputBatch`
per window (or per flush / reset); `wint3r_ros.data.messages.output_messages` turns a batch into
ROS messages, for fusion_node's publishers and process-bag's bag writer alike. Every stamp is the
source image's header stamp, carried as an integer from the input to the message.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SourceMap", "CameraInfoRecord", "WindowInput", "PoseRecord", "FrameRecord", "TransformRecord",
           "CloudRecord", "PathRecord", "StatusRecord", "OutputBatch", "full_size"]


class SourceMap:
    """A per-pixel map (depth, confidence) kept at the model's crop size and made at the source
    image's size only when asked (`np.asarray(m)` or `m.full()`, a new array each time), so a
    window's outputs hold model-size maps and only the message being built holds one at the
    camera's size (8000x6000: 183 MiB a map).

    crop: the map on the model's crop; shape: (H, W) of the source image; to_source: crop map ->
    source-size map (the engine's `CropMapping.depth_to_source`); nan_to: NaN replaced by this
    value in what `full` returns (None: kept)."""

    __slots__ = ("crop", "shape", "_to_source", "_nan_to")
    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, crop: np.ndarray, shape: tuple[int, int],
                 to_source: Callable[[np.ndarray], np.ndarray], nan_to: float | None = None) -> None:
        self.crop = crop
        self.shape = (int(shape[0]), int(shape[1]))
        self._to_source = to_source
        self._nan_to = nan_to

    def full(self) -> np.ndarray:
        """The map at the source size, float32 [H, W]."""
        out = np.asarray(self._to_source(self.crop), dtype=np.float32)
        if self._nan_to is not None:
            np.nan_to_num(out, copy=False, nan=self._nan_to)
        return out

    def with_nan_as(self, value: float) -> SourceMap:
        """The same map with NaN shown as ``value``."""
        return SourceMap(self.crop, self.shape, self._to_source, value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.full()
        return out if dtype is None else out.astype(dtype, copy=False)


def full_size(m: np.ndarray | SourceMap) -> np.ndarray:
    """An array for a map that may be a `SourceMap`."""
    return m.full() if isinstance(m, SourceMap) else m


@dataclass(frozen=True)
class CameraInfoRecord:
    """The fields of a sensor_msgs/CameraInfo: size, distortion model and D, K (9), R (9) and P
    (12), row-major, and binning."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]
    binning_x: int = 0
    binning_y: int = 0

    @classmethod
    def from_camera(cls, camera: Any) -> CameraInfoRecord:
        """The camera_info of a calibrated `Camera` (R = I, P = [K | 0])."""
        info = camera.camera_info_dict()
        return cls(int(info["width"]), int(info["height"]), str(info["distortion_model"]),
                   tuple(map(float, info["d"])), tuple(map(float, info["k"])),
                   tuple(map(float, info["r"])), tuple(map(float, info["p"])))

    @property
    def calibrated(self) -> bool:
        """A size and a non-zero K (width 0 or K all zero: an uncalibrated camera)."""
        return self.width > 0 and self.height > 0 and any(self.k)

    def resized(self, width: int, height: int) -> CameraInfoRecord:
        """For the image resized to ``width`` x ``height``: K and P scaled with pixel centres at
        integers (``c' = (c + 0.5) s - 0.5``, as `Camera.scaled`), distortion unchanged."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        K = np.asarray(self.k, np.float64).reshape(3, 3).copy()
        P = np.asarray(self.p, np.float64).reshape(3, 4).copy()
        for M in (K, P):
            M[0, :3] *= (sx, sx, 1.0)
            M[1, 1] *= sy
            M[0, 2] = (M[0, 2] + 0.5) * sx - 0.5
            M[1, 2] = (M[1, 2] + 0.5) * sy - 0.5
        P[0, 3] *= sx
        P[1, 3] *= sy
        return CameraInfoRecord(int(width), int(height), self.distortion_model, self.d,
                                tuple(K.reshape(-1)), self.r, tuple(P.reshape(-1)),
                                self.binning_x, self.binning_y)


@dataclass
class WindowInput:
    """One window as the fusion half receives it (from a WindowBatch, or straight from the
    front end offline): stamps_ns[t][c] and images[t][c] (RGB [H, W, 3] uint8), None where a
    camera is missing from a (degraded) set; frame_ids: optical frame per camera; camera_infos:
    per camera (None: none sent); index / epoch: the window's number in its epoch and the epoch
    (a new epoch starts a new reconstruction); overlap: O; stamp_ns: the window's header stamp."""

    index: int
    epoch: int
    overlap: int
    camera_names: list[str]
    frame_ids: list[str]
    stamps_ns: list[list[int | None]]
    images: list[list[np.ndarray | None]]
    camera_infos: list[CameraInfoRecord | None]
    stamp_ns: int

    @property
    def num_steps(self) -> int:
        return len(self.stamps_ns)


@dataclass(frozen=True)
class PoseRecord:
    """The base's pose of one synchronised set: odom_from_base [4, 4] in world_frame at the
    set's stamp (its newest image), and the twist since the previous set (m/s, rad/s, in the
    base frame)."""

    stamp_ns: int
    set_index: int
    odom_from_base: np.ndarray
    linear: np.ndarray
    angular: np.ndarray


@dataclass(frozen=True)
class FrameRecord:
    """One camera image's outputs: depth and confidence [H, W] float32 at the source size (NaN
    where invalid / below the threshold; a `SourceMap`, made full size when a message is
    built, or an array), the camera_info for that size (None: unknown), in
    the camera's optical frame at the image's own stamp; world_from_cam [4, 4] and whether the
    units are metres."""

    stamp_ns: int
    set_index: int
    camera: str
    camera_index: int
    frame_id: str
    depth: np.ndarray | SourceMap
    confidence: np.ndarray | SourceMap
    info: CameraInfoRecord | None
    world_from_cam: np.ndarray
    metric: bool


@dataclass(frozen=True)
class TransformRecord:
    """parent -> child transform [4, 4] (maps child points into parent) at stamp_ns."""

    stamp_ns: int
    parent: str
    child: str
    transform: np.ndarray


@dataclass(frozen=True)
class CloudRecord:
    """The window's point cloud in world_frame: points [M, 3] float32, colours [M, 3] uint8,
    stamped with the newest frame of the window."""

    stamp_ns: int
    points: np.ndarray
    colors: np.ndarray


@dataclass(frozen=True)
class PathRecord:
    """The newest poses of the base (odom_from_base [P, 4, 4]) with their stamps."""

    poses: Sequence[np.ndarray]
    stamps_ns: Sequence[int]


@dataclass(frozen=True)
class StatusRecord:
    """One ReconstructionStatus: counters, timings (s), the drop reasons, scale and state."""

    stamp_ns: int
    window_index: int
    latency_sec: float = 0.0
    model_sec: float = 0.0
    fps: float = 0.0
    frames_in: int = 0
    frames_out: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    pool_size: int = 0
    scale: float = 1.0
    scale_is_metric: bool = False
    resets: int = 0
    state: str = "ok"


@dataclass
class OutputBatch:
    """Everything one step of the pipeline publishes, in publishing order: static transforms
    (base -> camera mounts, once), per set the base pose (TF, odometry), camera transforms from
    the reconstruction (no rig), per frame depth / confidence / camera_info, the path and the
    cloud; window: the index of the window that produced it (None for a flush or a reset);
    notes: one-off warnings for the shell to log."""

    static: list[TransformRecord] = field(default_factory=list)
    poses: list[PoseRecord] = field(default_factory=list)
    camera_transforms: list[TransformRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    path: PathRecord | None = None
    cloud: CloudRecord | None = None
    window: int | None = None
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.static or self.poses or self.frames or self.camera_transforms)
