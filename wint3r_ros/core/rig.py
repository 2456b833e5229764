"""The `Camera` and `Rig` types: what a calibrated rig is, validated strictly.

A `Rig` is a named set of cameras rigidly mounted on one base frame. Each `Camera` carries its
topic and optical frame, its image size, pinhole intrinsics ``K`` with a distortion model, and
its pose ``T_base_camera`` (4x4, maps points from the camera's optical frame into the base
frame; optical frames follow REP-103: z forward, x right, y down). The engine's metric scale
comes from the rig's baselines, so a bad value raises `CalibrationError` naming the camera and
the field. The file formats (rig YAML, ROS camera_info YAML, Kalibr camchains) live in
`wint3r_ros.data.rig_files`.

Pixel convention: integer pixel coordinates are pixel centres (OpenCV/ROS). `Camera.scaled`
therefore maps ``c' = (c + 0.5) * s - 0.5`` and ``f' = f * s``, which matches ``cv2.resize``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import se3_inverse
from wint3r_ros.errors import CalibrationError, brief

__all__ = [
    "SCHEMA_VERSION",
    "DISTORTION_MODELS",
    "Camera",
    "Rig",
    "check_pose",
    "quaternion_xyzw_from_rotation",
    "rotation_from_quaternion_xyzw",
]

SCHEMA_VERSION = 1
# model -> number of coefficients
DISTORTION_MODELS: dict[str, int] = {"plumb_bob": 5, "equidistant": 4, "none": 0}

_ROT_TOL = 1e-6        # orthonormality of rotation matrices given as matrices (in memory)


# --------------------------------------------------------------------------------------------
# Quaternions (scalar last, like ROS)


def rotation_from_quaternion_xyzw(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix [3, 3] from a unit quaternion [x, y, z, w] (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def quaternion_xyzw_from_rotation(R: np.ndarray) -> np.ndarray:
    """Unit quaternion [4] (x, y, z, w; w >= 0) from a rotation matrix [3, 3]."""
    R = np.asarray(R, dtype=np.float64)
    tr = R[0, 0] + R[1, 1] + R[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q




# --------------------------------------------------------------------------------------------
# Camera and Rig


def _where(camera: str, fld: str) -> str:
    return f"camera '{camera}' field '{fld}'"


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera: image size, intrinsics K [3, 3], distortion, pose in the rig.

    ``T_base_camera`` [4, 4] maps points from this camera's optical frame to the rig's base frame.
    Arrays are float64 and read-only; construct a new Camera (``dataclasses.replace``) to change
    one. Invalid values raise `CalibrationError` naming the camera and field.
    """

    name: str
    topic: str
    frame_id: str
    width: int
    height: int
    K: np.ndarray
    distortion_model: str = "plumb_bob"
    distortion_coefficients: np.ndarray = field(default_factory=lambda: np.zeros(5))
    T_base_camera: np.ndarray = field(default_factory=lambda: np.eye(4))
    camera_info_topic: str | None = None
    time_offset: float = 0.0  # s added to this camera's stamps before sync (Kalibr timeshift_cam_imu)

    def __post_init__(self) -> None:
        name = self.name if isinstance(self.name, str) and self.name else "?"
        for fld in ("name", "topic", "frame_id"):
            value = getattr(self, fld)
            if not isinstance(value, str) or not value.strip():
                raise CalibrationError(f"{_where(name, fld)}: must be a non-empty string, "
                                       f"got {brief(value)}")
        if self.camera_info_topic is not None and (
                not isinstance(self.camera_info_topic, str) or not self.camera_info_topic.strip()):
            raise CalibrationError(f"{_where(name, 'camera_info_topic')}: must be a non-empty "
                                   f"string or absent, got {brief(self.camera_info_topic)}")
        for fld in ("width", "height"):
            value = getattr(self, fld)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CalibrationError(f"{_where(name, fld)}: must be a positive integer, "
                                       f"got {brief(value)}")
            object.__setattr__(self, fld, int(value))
        K = np.asarray(self.K, dtype=np.float64)
        if K.shape != (3, 3):
            raise CalibrationError(f"{_where(name, 'K')}: must be 3x3, got shape {K.shape}")
        if not np.all(np.isfinite(K)):
            raise CalibrationError(f"{_where(name, 'K')}: contains NaN or infinity: {K.tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CalibrationError(f"{_where(name, 'K')}: focal lengths must be positive, got "
                                   f"fx={K[0, 0]}, fy={K[1, 1]}")
        if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
            raise CalibrationError(f"{_where(name, 'K')}: must be [[fx, s, cx], [0, fy, cy], "
                                   f"[0, 0, 1]], got {K.tolist()}")
        object.__setattr__(self, "K", _readonly(K))
        model = self.distortion_model
        if model not in DISTORTION_MODELS:
            raise CalibrationError(f"{_where(name, 'distortion_model')}: must be one of "
                                   f"{sorted(DISTORTION_MODELS)}, got {brief(model)}")
        D = np.asarray(self.distortion_coefficients, dtype=np.float64).reshape(-1)
        if D.size != DISTORTION_MODELS[model]:
            raise CalibrationError(f"{_where(name, 'distortion_coefficients')}: model {brief(model)} "
                                   f"takes {DISTORTION_MODELS[model]} coefficients, got {D.size}")
        if not np.all(np.isfinite(D)):
            raise CalibrationError(f"{_where(name, 'distortion_coefficients')}: contains NaN or "
                                   f"infinity: {D.tolist()}")
        object.__setattr__(self, "distortion_coefficients", _readonly(D))
        T = np.asarray(self.T_base_camera, dtype=np.float64)
        check_pose(T, name, "T_base_camera", _ROT_TOL)
        object.__setattr__(self, "T_base_camera", _readonly(T))
        offset = self.time_offset
        if (isinstance(offset, bool) or not isinstance(offset, (int, float, np.floating))
                or not math.isfinite(offset) or abs(offset) > 10.0):
            raise CalibrationError(f"{_where(name, 'time_offset')}: must be seconds within "
                                   f"+-10, got {offset!r}")
        object.__setattr__(self, "time_offset", float(offset))

    # -- convenience ---------------------------------------------------------------------------
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def centre(self) -> np.ndarray:
        """Camera centre [3] in the base frame."""
        return self.T_base_camera[:3, 3].copy()

    def opencv_distortion(self) -> np.ndarray:
        """Distortion vector for OpenCV (cv2.undistort etc.; cv2.fisheye for equidistant)."""
        if self.distortion_model == "none":
            return np.zeros(5)
        return self.distortion_coefficients.copy()

    def scaled(self, width: int, height: int) -> Camera:
        """This camera with intrinsics for the image resized to ``width`` x ``height``.

        Pixel centres are at integer coordinates, so ``c' = (c + 0.5) * s - 0.5`` and
        ``f' = f * s`` per axis (what ``cv2.resize`` does); distortion is unchanged (it acts on
        normalised coordinates), and so is the pose.
        """
        for fld, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CalibrationError(f"{_where(self.name, fld)}: scaled() needs a positive "
                                       f"integer, got {brief(value)}")
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0] *= sx
        K[0, 1] *= sx
        K[1, 1] *= sy
        K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
        K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        return replace(self, width=int(width), height=int(height), K=K)

    def projection_matrix(self) -> np.ndarray:
        """P [3, 4] = [K | 0] (a monocular, unrectified camera)."""
        return np.hstack([self.K, np.zeros((3, 1))])

    def camera_info_dict(self) -> dict[str, Any]:
        """Fields of a ROS 2 ``sensor_msgs/CameraInfo`` (lower-case names, flat lists).

        Keys: ``width``, ``height``, ``distortion_model``, ``d`` (list), ``k`` (9, row-major),
        ``r`` (9, identity), ``p`` (12, [K | 0]), ``frame_id``. ``none`` distortion is written as
        ``plumb_bob`` with five zeros, the way ROS drivers publish undistorted images.
        """
        model = self.distortion_model
        d = self.distortion_coefficients.tolist()
        if model == "none":
            model, d = "plumb_bob", [0.0] * 5
        return {
            "width": self.width,
            "height": self.height,
            "distortion_model": model,
            "d": d,
            "k": self.K.reshape(-1).tolist(),
            "r": np.eye(3).reshape(-1).tolist(),
            "p": self.projection_matrix().reshape(-1).tolist(),
            "frame_id": self.frame_id,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (self.name, self.topic, self.frame_id, self.width, self.height,
                self.distortion_model, self.camera_info_topic, self.time_offset) == (
                    other.name, other.topic, other.frame_id, other.width, other.height,
                    other.distortion_model, other.camera_info_topic, other.time_offset) and all(
            np.array_equal(getattr(self, a), getattr(other, a))
            for a in ("K", "distortion_coefficients", "T_base_camera"))

    __hash__ = None  # type: ignore[assignment]


def check_pose(T: np.ndarray, camera: str, fld: str, tol: float) -> None:
    if T.shape != (4, 4):
        raise CalibrationError(f"{_where(camera, fld)}: must be 4x4, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise CalibrationError(f"{_where(camera, fld)}: contains NaN or infinity")
    if not np.allclose(T[3], [0, 0, 0, 1], atol=0, rtol=0):
        raise CalibrationError(f"{_where(camera, fld)}: last row must be [0, 0, 0, 1], "
                               f"got {T[3].tolist()}")
    R = T[:3, :3]
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    if err > tol:
        raise CalibrationError(f"{_where(camera, fld)}: rotation is not orthonormal "
                               f"(max |R R^T - I| = {err:.3g} > {tol:g})")
    det = float(np.linalg.det(R))
    if det < 0:
        raise CalibrationError(f"{_where(camera, fld)}: rotation has determinant {det:.6g} "
                               f"(a reflection, not a rotation)")


@dataclass(frozen=True, eq=False)
class Rig:
    """A named set of cameras on one base frame, in stream order (camera 0 first).

    Camera names, topics and frame ids must be unique.
    """

    name: str
    base_frame: str
    cameras: list[Camera]

    def __post_init__(self) -> None:
        for fld in ("name", "base_frame"):
            value = getattr(self, fld)
            if not isinstance(value, str) or not value.strip():
                raise CalibrationError(f"rig field '{fld}': must be a non-empty string, "
                                       f"got {brief(value)}")
        cams = list(self.cameras)
        if not cams:
            raise CalibrationError(f"rig '{self.name}' field 'cameras': needs at least one camera")
        for i, cam in enumerate(cams):
            if not isinstance(cam, Camera):
                raise CalibrationError(f"rig '{self.name}' cameras[{i}]: not a Camera "
                                       f"({type(cam).__name__})")
        for fld in ("name", "topic", "frame_id"):
            seen: dict[str, str] = {}
            for cam in cams:
                value = getattr(cam, fld)
                if value in seen:
                    raise CalibrationError(f"{_where(cam.name, fld)}: {brief(value)} is also used by "
                                           f"camera '{seen[value]}'; must be unique in the rig")
                seen[value] = cam.name
        if any(cam.frame_id == self.base_frame for cam in cams):
            raise CalibrationError(f"rig '{self.name}' field 'base_frame': {self.base_frame!r} "
                                   f"is also a camera frame_id")
        object.__setattr__(self, "cameras", cams)

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def camera_names(self) -> list[str]:
        return [cam.name for cam in self.cameras]

    def index(self, camera: str | int) -> int:
        """Stream index of a camera given by name or index."""
        if isinstance(camera, (int, np.integer)) and not isinstance(camera, bool):
            if not 0 <= camera < len(self.cameras):
                raise CalibrationError(f"rig '{self.name}': camera index {camera} out of range "
                                       f"0..{len(self.cameras) - 1}")
            return int(camera)
        for i, cam in enumerate(self.cameras):
            if cam.name == camera:
                return i
        raise CalibrationError(f"rig '{self.name}': no camera named {camera!r} "
                               f"(cameras: {', '.join(self.camera_names)})")

    def camera(self, name: str | int) -> Camera:
        """The camera with this name (or index)."""
        return self.cameras[self.index(name)]

    def T_cam_i_from_cam_j(self, i: str | int, j: str | int) -> np.ndarray:
        """4x4 transform mapping points in camera j's optical frame into camera i's."""
        Ti = self.cameras[self.index(i)].T_base_camera
        Tj = self.cameras[self.index(j)].T_base_camera
        return se3_inverse(Ti) @ Tj

    def baselines(self) -> dict[tuple[str, str], float]:
        """Distance in metres between the centres of every camera pair (i < j in stream order)."""
        out: dict[tuple[str, str], float] = {}
        for a in range(len(self.cameras)):
            for b in range(a + 1, len(self.cameras)):
                ca, cb = self.cameras[a], self.cameras[b]
                out[(ca.name, cb.name)] = float(np.linalg.norm(ca.centre - cb.centre))
        return out

    def centres(self) -> np.ndarray:
        """Camera centres [N, 3] in the base frame, stream order."""
        return np.stack([cam.centre for cam in self.cameras])

    def with_cameras(self, cameras: Iterable[Camera]) -> Rig:
        """A copy of this rig with other cameras."""
        return Rig(self.name, self.base_frame, list(cameras))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rig):
            return NotImplemented
        return (self.name, self.base_frame) == (other.name, other.base_frame) and \
            len(self.cameras) == len(other.cameras) and \
            all(a == b for a, b in zip(self.cameras, other.cameras))

    __hash__ = None  # type: ignore[assignment]
