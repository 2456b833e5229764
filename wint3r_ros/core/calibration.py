"""Rig and camera calibration: the `Camera` and `Rig` types and their file formats.

A `Rig` is a named set of cameras rigidly mounted on one base frame. Each `Camera` carries its
topic and optical frame, its image size, pinhole intrinsics ``K`` with a distortion model, and
its pose ``T_base_camera`` (4x4, maps points from the camera's optical frame into the base
frame; optical frames follow REP-103: z forward, x right, y down). The engine's metric scale
comes from the rig's baselines, so everything loaded here is validated strictly: a bad value
raises `CalibrationError` naming the file, the camera and the field.

The project's rig YAML (``version: 1``)::

    version: 1                          # schema version; only 1 exists
    name: front_rig                     # rig name
    base_frame: base_link               # TF frame the camera poses are given in
    cameras:                            # one entry per camera, in stream order
      - name: cam0                      # unique; used in logs, topics, reports
        topic: /cam0/image_raw          # sensor_msgs/Image topic
        frame_id: cam0_optical_frame    # unique optical TF frame (REP-103)
        camera_info_topic: /cam0/camera_info   # optional
        width: 640                      # image size in pixels (positive integers)
        height: 480
        K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]   # 3x3 intrinsics, pixels; skew allowed
        distortion_model: plumb_bob     # plumb_bob (5: k1 k2 p1 p2 k3) | equidistant (4: k1..k4)
                                        # | none (0)
        distortion_coefficients: [k1, k2, p1, p2, k3]
        T_base_camera:                  # camera optical frame -> base frame
          translation: [x, y, z]        # metres
          quaternion_xyzw: [qx, qy, qz, qw]   # scalar last, unit norm (|q| - 1 < 1e-3)

Keys are strict: an unknown or missing key, a wrong type (a string where a number belongs, a
float where an integer belongs, a boolean anywhere numeric), NaN or infinity, a non-unit
quaternion or a non-orthonormal rotation all raise `CalibrationError`.

Other formats:

* ROS camera_info YAML (the ``camera_calibration_parsers`` format written by
  ``camera_calibration``): `load_camera_info_yaml` reads one camera (K, D, size; R and P describe
  stereo rectification, which the rig does not use, and are ignored) and
  `save_camera_info_yaml` writes one per camera (R = I, P = [K | 0]).
* Kalibr camchain YAML (``cam0`` .. ``camN``): `load_kalibr_camchain` chains ``T_cn_cnm1`` so
  cam0 is the base (or the IMU, when every camera has ``T_cam_imu`` and ``imu_base=True``).

Pixel convention: integer pixel coordinates are pixel centres (OpenCV/ROS). `Camera.scaled`
therefore maps ``c' = (c + 0.5) * s - 0.5`` and ``f' = f * s``, which matches ``cv2.resize``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from wint3r_ros.errors import CalibrationError

__all__ = [
    "SCHEMA_VERSION",
    "DISTORTION_MODELS",
    "Camera",
    "Rig",
    "load_rig",
    "save_rig",
    "rig_from_dict",
    "rig_to_dict",
    "load_camera_info_yaml",
    "camera_from_camera_info_dict",
    "save_camera_info_yaml",
    "camera_info_yaml_dict",
    "load_kalibr_camchain",
    "rig_from_kalibr_dict",
    "quaternion_xyzw_from_rotation",
    "rotation_from_quaternion_xyzw",
]

SCHEMA_VERSION = 1
# model -> number of coefficients
DISTORTION_MODELS: dict[str, int] = {"plumb_bob": 5, "equidistant": 4, "none": 0}

_ROT_TOL = 1e-6        # orthonormality of rotation matrices given as matrices (in memory)
_QUAT_NORM_TOL = 1e-3  # |q| must be within this of 1 in files (people round quaternions)
_FILE_ROT_TOL = 1e-4   # orthonormality of 4x4 matrices read from files (Kalibr)


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


def _orthonormalize(R: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(R)
    return u @ vt


def _inv_se3(T: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


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

    def __post_init__(self) -> None:
        name = self.name if isinstance(self.name, str) and self.name else "?"
        for fld in ("name", "topic", "frame_id"):
            value = getattr(self, fld)
            if not isinstance(value, str) or not value.strip():
                raise CalibrationError(f"{_where(name, fld)}: must be a non-empty string, "
                                       f"got {value!r}")
        if self.camera_info_topic is not None and (
                not isinstance(self.camera_info_topic, str) or not self.camera_info_topic.strip()):
            raise CalibrationError(f"{_where(name, 'camera_info_topic')}: must be a non-empty "
                                   f"string or absent, got {self.camera_info_topic!r}")
        for fld in ("width", "height"):
            value = getattr(self, fld)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CalibrationError(f"{_where(name, fld)}: must be a positive integer, "
                                       f"got {value!r}")
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
                                   f"{sorted(DISTORTION_MODELS)}, got {model!r}")
        D = np.asarray(self.distortion_coefficients, dtype=np.float64).reshape(-1)
        if D.size != DISTORTION_MODELS[model]:
            raise CalibrationError(f"{_where(name, 'distortion_coefficients')}: model {model!r} "
                                   f"takes {DISTORTION_MODELS[model]} coefficients, got {D.size}")
        if not np.all(np.isfinite(D)):
            raise CalibrationError(f"{_where(name, 'distortion_coefficients')}: contains NaN or "
                                   f"infinity: {D.tolist()}")
        object.__setattr__(self, "distortion_coefficients", _readonly(D))
        T = np.asarray(self.T_base_camera, dtype=np.float64)
        _check_pose(T, name, "T_base_camera", _ROT_TOL)
        object.__setattr__(self, "T_base_camera", _readonly(T))

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

    def scaled(self, width: int, height: int) -> "Camera":
        """This camera with intrinsics for the image resized to ``width`` x ``height``.

        Pixel centres are at integer coordinates, so ``c' = (c + 0.5) * s - 0.5`` and
        ``f' = f * s`` per axis (what ``cv2.resize`` does); distortion is unchanged (it acts on
        normalised coordinates), and so is the pose.
        """
        for fld, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise CalibrationError(f"{_where(self.name, fld)}: scaled() needs a positive "
                                       f"integer, got {value!r}")
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
                self.distortion_model, self.camera_info_topic) == (
                    other.name, other.topic, other.frame_id, other.width, other.height,
                    other.distortion_model, other.camera_info_topic) and all(
            np.array_equal(getattr(self, a), getattr(other, a))
            for a in ("K", "distortion_coefficients", "T_base_camera"))

    __hash__ = None  # type: ignore[assignment]


def _check_pose(T: np.ndarray, camera: str, fld: str, tol: float) -> None:
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
                                       f"got {value!r}")
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
                    raise CalibrationError(f"{_where(cam.name, fld)}: {value!r} is also used by "
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
        return _inv_se3(Ti) @ Tj

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

    def with_cameras(self, cameras: Iterable[Camera]) -> "Rig":
        """A copy of this rig with other cameras."""
        return Rig(self.name, self.base_frame, list(cameras))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rig):
            return NotImplemented
        return (self.name, self.base_frame) == (other.name, other.base_frame) and \
            len(self.cameras) == len(other.cameras) and \
            all(a == b for a, b in zip(self.cameras, other.cameras))

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# Strict field readers


class _Fields:
    """Reads typed values out of one YAML mapping, raising errors that say where."""

    def __init__(self, data: Any, where: str, allowed: Iterable[str]):
        if not isinstance(data, Mapping):
            raise CalibrationError(f"{where}: must be a mapping, got {type(data).__name__}")
        self.data, self.where = data, where
        unknown = sorted(str(k) for k in data if k not in set(allowed))
        if unknown:
            raise CalibrationError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))} "
                                   f"(allowed: {', '.join(sorted(allowed))})")

    def _field(self, key: str) -> str:
        return f"{self.where} field '{key}'"

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise CalibrationError(f"{self._field(key)}: missing")
        return self.data[key]

    def string(self, key: str, default: str | None = None, required: bool = True) -> str | None:
        if key not in self.data or self.data[key] is None:
            if required and default is None:
                raise CalibrationError(f"{self._field(key)}: missing")
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise CalibrationError(f"{self._field(key)}: must be a non-empty string, "
                                   f"got {value!r}")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CalibrationError(f"{self._field(key)}: must be an integer, got {value!r}")
        if value <= 0:
            raise CalibrationError(f"{self._field(key)}: must be positive, got {value}")
        return value

    def numbers(self, key: str, shape: tuple[int, ...] | None = None,
                value: Any = None) -> np.ndarray:
        """A list (or nested list) of finite numbers; ``shape`` checks the nesting."""
        value = self.raw(key) if value is None else value
        return _numbers(value, self._field(key), shape)


def _numbers(value: Any, where: str, shape: tuple[int, ...] | None) -> np.ndarray:
    def walk(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CalibrationError(f"{where}: must contain only numbers, got {v!r}")
        if not math.isfinite(v):
            raise CalibrationError(f"{where}: contains {v!r}; NaN and infinity are not allowed")
        return float(v)

    if not isinstance(value, (list, tuple)):
        raise CalibrationError(f"{where}: must be a list of numbers, got {value!r}")
    nested = walk(value)
    try:
        arr = np.array(nested, dtype=np.float64)
    except ValueError as err:
        raise CalibrationError(f"{where}: ragged nested list {value!r}") from err
    if shape is not None and arr.shape != shape:
        want = "x".join(map(str, shape))
        raise CalibrationError(f"{where}: must have shape {want}, got "
                               f"{'x'.join(map(str, arr.shape)) or 'scalar'}")
    return arr


def _read_yaml(path: str | Path, what: str) -> Any:
    from wint3r_ros.yaml_io import load_yaml

    return load_yaml(path, what, error=CalibrationError)


def _write_yaml(data: Any, path: str | Path, header: str = "") -> None:
    path = Path(path)
    from wint3r_ros.yaml_io import dump_yaml

    text = dump_yaml(data, sort_keys=False, default_flow_style=None, width=100)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + text)
    except OSError as err:
        raise CalibrationError(f"{path}: cannot write: {err.strerror or err}") from err


# --------------------------------------------------------------------------------------------
# The project's rig YAML

_RIG_KEYS = ("version", "name", "base_frame", "cameras")
_CAMERA_KEYS = ("name", "topic", "frame_id", "camera_info_topic", "width", "height", "K",
                "distortion_model", "distortion_coefficients", "T_base_camera")
_POSE_KEYS = ("translation", "quaternion_xyzw")


def _pose_from_dict(data: Any, where: str, camera: str) -> np.ndarray:
    f = _Fields(data, where, _POSE_KEYS)
    t = f.numbers("translation", (3,))
    q = f.numbers("quaternion_xyzw", (4,))
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > _QUAT_NORM_TOL:
        raise CalibrationError(f"{where} field 'quaternion_xyzw': must be a unit quaternion "
                               f"[x, y, z, w], got norm {norm:.6g} (a non-orthonormal rotation)")
    T = np.eye(4)
    T[:3, :3] = rotation_from_quaternion_xyzw(q)
    T[:3, 3] = t
    return T


def _pose_to_dict(T: np.ndarray) -> dict[str, list[float]]:
    return {"translation": [float(x) for x in T[:3, 3]],
            "quaternion_xyzw": [float(x) for x in quaternion_xyzw_from_rotation(T[:3, :3])]}


def _camera_from_dict(data: Any, index: int, source: str) -> Camera:
    label = f"cameras[{index}]"
    if isinstance(data, Mapping) and isinstance(data.get("name"), str):
        label = f"camera '{data['name']}'"
    where = f"{source}: {label}"
    f = _Fields(data, where, _CAMERA_KEYS)
    name = f.string("name")
    model = f.string("distortion_model")
    if model not in DISTORTION_MODELS:
        raise CalibrationError(f"{where} field 'distortion_model': must be one of "
                               f"{sorted(DISTORTION_MODELS)}, got {model!r}")
    D = f.numbers("distortion_coefficients")
    if D.ndim != 1 or D.size != DISTORTION_MODELS[model]:
        raise CalibrationError(f"{where} field 'distortion_coefficients': model {model!r} takes "
                               f"{DISTORTION_MODELS[model]} coefficients, got {D.size}")
    T = _pose_from_dict(f.raw("T_base_camera"), f"{where} field 'T_base_camera'", name)
    values = dict(
        name=name, topic=f.string("topic"), frame_id=f.string("frame_id"),
        width=f.integer("width"), height=f.integer("height"), K=f.numbers("K", (3, 3)),
        distortion_model=model, distortion_coefficients=D, T_base_camera=T,
        camera_info_topic=f.string("camera_info_topic", required=False),
    )
    try:
        return Camera(**values)
    except CalibrationError as err:
        raise CalibrationError(f"{source}: {err}") from err


def rig_from_dict(data: Any, source: str = "rig") -> Rig:
    """Build a `Rig` from the parsed rig YAML (see the module docstring); ``source`` names it."""
    f = _Fields(data, source, _RIG_KEYS)
    version = f.raw("version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise CalibrationError(f"{source} field 'version': unsupported rig schema version "
                               f"{version!r} (this package reads version {SCHEMA_VERSION})")
    cams = f.raw("cameras")
    if not isinstance(cams, list) or not cams:
        raise CalibrationError(f"{source} field 'cameras': must be a non-empty list of cameras, "
                               f"got {cams!r}")
    cameras = [_camera_from_dict(c, i, source) for i, c in enumerate(cams)]
    try:
        return Rig(name=f.string("name"), base_frame=f.string("base_frame"), cameras=cameras)
    except CalibrationError as err:
        raise CalibrationError(f"{source}: {err}") from err


def rig_to_dict(rig: Rig) -> dict[str, Any]:
    """The rig YAML mapping (plain Python types) for `rig`."""
    cams = []
    for cam in rig.cameras:
        d: dict[str, Any] = {"name": cam.name, "topic": cam.topic, "frame_id": cam.frame_id}
        if cam.camera_info_topic is not None:
            d["camera_info_topic"] = cam.camera_info_topic
        d.update({
            "width": cam.width, "height": cam.height,
            "K": [[float(x) for x in row] for row in cam.K],
            "distortion_model": cam.distortion_model,
            "distortion_coefficients": [float(x) for x in cam.distortion_coefficients],
            "T_base_camera": _pose_to_dict(cam.T_base_camera),
        })
        cams.append(d)
    return {"version": SCHEMA_VERSION, "name": rig.name, "base_frame": rig.base_frame,
            "cameras": cams}


def load_rig(path: str | Path) -> Rig:
    """Read the project's rig YAML; errors name the file, camera and field."""
    return rig_from_dict(_read_yaml(path, "rig calibration"), str(path))


def save_rig(rig: Rig, path: str | Path, comment: str = "") -> None:
    """Write `rig` as the project's rig YAML (an optional ``# comment`` header first)."""
    header = "".join(f"# {line}\n" for line in comment.splitlines()) if comment else ""
    _write_yaml(rig_to_dict(rig), path, header)


# --------------------------------------------------------------------------------------------
# ROS camera_info YAML (camera_calibration_parsers)

_CAMINFO_KEYS = ("image_width", "image_height", "camera_name", "camera_matrix",
                 "distortion_model", "distortion_coefficients", "rectification_matrix",
                 "projection_matrix")
_MATRIX_KEYS = ("rows", "cols", "data")


def _ros_matrix(data: Any, where: str, rows: int | None, cols: int | None) -> np.ndarray:
    f = _Fields(data, where, _MATRIX_KEYS)
    r, c = f.raw("rows"), f.raw("cols")
    for key, v in (("rows", r), ("cols", c)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise CalibrationError(f"{where} field '{key}': must be a non-negative integer, "
                                   f"got {v!r}")
    flat = f.numbers("data")
    if flat.ndim != 1 or flat.size != r * c:
        raise CalibrationError(f"{where} field 'data': {r}x{c} matrix needs {r * c} numbers, "
                               f"got {flat.size}")
    if (rows is not None and r != rows) or (cols is not None and c != cols):
        raise CalibrationError(f"{where}: must be {rows if rows is not None else 'N'}x"
                               f"{cols if cols is not None else 'N'}, got {r}x{c}")
    return flat.reshape(r, c)


def camera_from_camera_info_dict(data: Any, source: str = "camera_info", *,
                                 name: str | None = None, topic: str | None = None,
                                 frame_id: str | None = None,
                                 T_base_camera: np.ndarray | None = None,
                                 camera_info_topic: str | None = None) -> Camera:
    """A `Camera` from a parsed camera_calibration_parsers YAML mapping.

    ``name`` defaults to ``camera_name``; ``topic`` to ``/<name>/image_raw``; ``frame_id`` to
    ``<name>_optical_frame``; the pose to identity. A plumb_bob ``D`` of 4 numbers is padded with
    k3 = 0; ``rational_polynomial`` and other models raise.
    """
    f = _Fields(data, source, _CAMINFO_KEYS)
    cam_name = name or f.string("camera_name", required=False) or Path(source).stem
    where = f"{source}: camera '{cam_name}'"
    width, height = f.integer("image_width"), f.integer("image_height")
    K = _ros_matrix(f.raw("camera_matrix"), f"{where} field 'camera_matrix'", 3, 3)
    model = f.string("distortion_model")
    D = _ros_matrix(f.raw("distortion_coefficients"),
                    f"{where} field 'distortion_coefficients'", None, None).reshape(-1)
    for key, shape in (("rectification_matrix", (3, 3)), ("projection_matrix", (3, 4))):
        if f.has(key):
            _ros_matrix(f.raw(key), f"{where} field '{key}'", *shape)
    if model == "plumb_bob":
        if D.size == 4:
            D = np.append(D, 0.0)
        elif D.size == 0:
            model = "none"
        elif D.size != 5:
            raise CalibrationError(f"{where} field 'distortion_coefficients': plumb_bob takes 5 "
                                   f"coefficients (k1 k2 p1 p2 k3), got {D.size}")
    elif model in ("equidistant", "fisheye"):
        model = "equidistant"
    else:
        raise CalibrationError(f"{where} field 'distortion_model': {model!r} is not supported "
                               f"(use plumb_bob or equidistant)")
    try:
        return Camera(
            name=cam_name, topic=topic or f"/{cam_name}/image_raw",
            frame_id=frame_id or f"{cam_name}_optical_frame", width=width, height=height,
            K=K, distortion_model=model, distortion_coefficients=D,
            T_base_camera=np.eye(4) if T_base_camera is None else T_base_camera,
            camera_info_topic=camera_info_topic,
        )
    except CalibrationError as err:
        raise CalibrationError(f"{source}: {err}") from err


def load_camera_info_yaml(path: str | Path, **kwargs: Any) -> Camera:
    """Read a ROS camera_info YAML file; keyword arguments as `camera_from_camera_info_dict`."""
    return camera_from_camera_info_dict(_read_yaml(path, "camera_info"), str(path), **kwargs)


def camera_info_yaml_dict(camera: Camera) -> dict[str, Any]:
    """The camera_calibration_parsers YAML mapping for one camera (R = I, P = [K | 0])."""
    info = camera.camera_info_dict()
    return {
        "image_width": camera.width,
        "image_height": camera.height,
        "camera_name": camera.name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": info["k"]},
        "distortion_model": info["distortion_model"],
        "distortion_coefficients": {"rows": 1, "cols": len(info["d"]), "data": info["d"]},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": info["r"]},
        "projection_matrix": {"rows": 3, "cols": 4, "data": info["p"]},
    }


def save_camera_info_yaml(camera: Camera, path: str | Path) -> None:
    """Write one camera as a ROS camera_info YAML file (``camera_info_url: file://...``)."""
    _write_yaml(camera_info_yaml_dict(camera), path)


# --------------------------------------------------------------------------------------------
# Kalibr camchain YAML

_KALIBR_CAM_KEYS = ("camera_model", "intrinsics", "distortion_model", "distortion_coeffs",
                    "resolution", "rostopic", "T_cn_cnm1", "T_cam_imu", "cam_overlaps",
                    "timeshift_cam_imu", "line_delay")
_KALIBR_DISTORTION = {"radtan": "plumb_bob", "equidistant": "equidistant", "none": "none"}


def rig_from_kalibr_dict(data: Any, source: str = "camchain", *, name: str = "kalibr_rig",
                         base_frame: str | None = None, imu_base: bool = False) -> Rig:
    """A `Rig` from a parsed Kalibr camchain mapping (``cam0`` .. ``camN``).

    Kalibr's ``T_cn_cnm1`` maps points from camera n-1 into camera n; they are chained so the
    base is cam0 (``base_frame`` defaults to ``rig_base``, at cam0's optical frame), or the IMU
    when ``imu_base`` is set (every camera then needs ``T_cam_imu``; ``base_frame`` defaults to
    ``imu``). Cameras are named after their keys; frames are ``<key>_optical_frame``.
    """
    if not isinstance(data, Mapping) or not data:
        raise CalibrationError(f"{source}: a Kalibr camchain must be a mapping of cam0..camN")
    keys = []
    for k in data:
        m = re.fullmatch(r"cam(\d+)", str(k))
        if not m:
            raise CalibrationError(f"{source}: unknown top-level key {k!r} (expected cam0..camN)")
        keys.append((int(m.group(1)), str(k)))
    keys.sort()
    if [i for i, _ in keys] != list(range(len(keys))):
        raise CalibrationError(f"{source}: camera keys must be cam0..cam{len(keys) - 1} without "
                               f"gaps, got {', '.join(k for _, k in keys)}")
    cameras = []
    T_cam0_camn = np.eye(4)
    T_imu_cams = []
    for n, key in keys:
        where = f"{source}: camera '{key}'"
        f = _Fields(data[key], where, _KALIBR_CAM_KEYS)
        model = f.string("camera_model", default="pinhole")
        if model != "pinhole":
            raise CalibrationError(f"{where} field 'camera_model': only pinhole is supported, "
                                   f"got {model!r}")
        fu, fv, pu, pv = f.numbers("intrinsics", (4,))
        kdist = f.string("distortion_model")
        if kdist not in _KALIBR_DISTORTION:
            raise CalibrationError(f"{where} field 'distortion_model': must be one of "
                                   f"{sorted(_KALIBR_DISTORTION)}, got {kdist!r}")
        dmodel = _KALIBR_DISTORTION[kdist]
        D = f.numbers("distortion_coeffs") if f.has("distortion_coeffs") else np.zeros(0)
        want = {"plumb_bob": 4, "equidistant": 4, "none": 0}[dmodel]
        if D.ndim != 1 or D.size != want:
            raise CalibrationError(f"{where} field 'distortion_coeffs': {kdist} takes {want} "
                                   f"coefficients, got {D.size}")
        if dmodel == "plumb_bob":
            D = np.append(D, 0.0)   # Kalibr radtan is k1 k2 p1 p2; OpenCV adds k3
        res = f.numbers("resolution", (2,))
        if not all(float(r).is_integer() and r > 0 for r in res):
            raise CalibrationError(f"{where} field 'resolution': must be two positive integers "
                                   f"[width, height], got {res.tolist()}")
        if n > 0:
            if not f.has("T_cn_cnm1"):
                raise CalibrationError(f"{where} field 'T_cn_cnm1': missing (needed for every "
                                       f"camera after cam0)")
            T = f.numbers("T_cn_cnm1", (4, 4))
            _check_pose(T, key, "T_cn_cnm1", _FILE_ROT_TOL)
            T[:3, :3] = _orthonormalize(T[:3, :3])
            T_cam0_camn = T_cam0_camn @ _inv_se3(T)
        if imu_base:
            if not f.has("T_cam_imu"):
                raise CalibrationError(f"{where} field 'T_cam_imu': missing (imu_base=True)")
            Tci = f.numbers("T_cam_imu", (4, 4))
            _check_pose(Tci, key, "T_cam_imu", _FILE_ROT_TOL)
            Tci[:3, :3] = _orthonormalize(Tci[:3, :3])
            T_imu_cams.append(_inv_se3(Tci))
        K = np.array([[fu, 0, pu], [0, fv, pv], [0, 0, 1]])
        topic = f.string("rostopic", default=f"/{key}/image_raw")
        try:
            cameras.append(Camera(
                name=key, topic=topic, frame_id=f"{key}_optical_frame", width=int(res[0]),
                height=int(res[1]), K=K, distortion_model=dmodel, distortion_coefficients=D,
                T_base_camera=T_cam0_camn.copy()))
        except CalibrationError as err:
            raise CalibrationError(f"{source}: {err}") from err
    if imu_base:
        # T_base_camn = T_imu_cam0 @ T_cam0_camn: cam0's IMU pose and the camera-camera chain
        # (the later cameras' T_cam_imu are checked but not used, so the chain stays exact).
        T_imu_cam0 = T_imu_cams[0]
        cameras = [replace(c, T_base_camera=T_imu_cam0 @ c.T_base_camera) for c in cameras]
        base_frame = base_frame or "imu"
    else:
        base_frame = base_frame or "rig_base"
    try:
        return Rig(name=name, base_frame=base_frame, cameras=cameras)
    except CalibrationError as err:
        raise CalibrationError(f"{source}: {err}") from err


def load_kalibr_camchain(path: str | Path, **kwargs: Any) -> Rig:
    """Read a Kalibr camchain YAML file; keyword arguments as `rig_from_kalibr_dict`."""
    return rig_from_kalibr_dict(_read_yaml(path, "Kalibr camchain"), str(path), **kwargs)
