"""Rig calibration files: the project's rig YAML, ROS camera_info YAML and Kalibr camchains.

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
        time_offset: 0.0                # optional, s added to the camera's stamps before sync
                                        # (its clock against the rig's; Kalibr timeshift_cam_imu)

Keys are strict: an unknown or missing key, a wrong type (a string where a number belongs, a
float where an integer belongs, a boolean anywhere numeric), NaN or infinity, a non-unit
quaternion or a non-orthonormal rotation all raise `CalibrationError`.

Other formats:

* ROS camera_info YAML (the ``camera_calibration_parsers`` format written by
  ``camera_calibration``): `load_camera_info_yaml` reads one camera (K, D, size; R and P describe
  stereo rectification, which the rig does not use, and are ignored) and
  `save_camera_info_yaml` writes one per camera (R = I, P = [K | 0]).
* Kalibr camchain YAML (``cam0`` .. ``camN``): `load_kalibr_camchain` chains ``T_cn_cnm1`` so
  cam0 is the base (or the IMU, when every camera has ``T_cam_imu`` and ``imu_base=True``);
  ``timeshift_cam_imu`` (t_imu = t_cam + shift) becomes the camera's ``time_offset``.

Pixel convention: integer pixel coordinates are pixel centres (OpenCV/ROS). `Camera.scaled`
therefore maps ``c' = (c + 0.5) * s - 0.5`` and ``f' = f * s``, which matches ``cv2.resize``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import orthonormalize, se3_inverse
from wint3r_ros.core.rig import (
    DISTORTION_MODELS,
    SCHEMA_VERSION,
    Camera,
    Rig,
    check_pose,
    quaternion_xyzw_from_rotation,
    rotation_from_quaternion_xyzw,
)
from wint3r_ros.errors import CalibrationError, brief

__all__ = [
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
]

_QUAT_NORM_TOL = 1e-3  # |q| must be within this of 1 in files (people round quaternions)
_FILE_ROT_TOL = 1e-4   # orthonormality of 4x4 matrices read from files (Kalibr)

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
                                   f"got {brief(value)}")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise CalibrationError(f"{self._field(key)}: must be an integer, got {brief(value)}")
        if value <= 0:
            raise CalibrationError(f"{self._field(key)}: must be positive, got {value}")
        return value

    def number(self, key: str, default: float) -> float:
        """One finite number (``default`` when absent)."""
        if not self.has(key):
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CalibrationError(f"{self._field(key)}: must be a finite number, got {value!r}")
        return float(value)

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
            raise CalibrationError(f"{where}: must contain only numbers, got {brief(v)}")
        if not math.isfinite(v):
            raise CalibrationError(f"{where}: contains {brief(v)}; NaN and infinity are not allowed")
        return float(v)

    if not isinstance(value, (list, tuple)):
        raise CalibrationError(f"{where}: must be a list of numbers, got {brief(value)}")
    nested = walk(value)
    try:
        arr = np.array(nested, dtype=np.float64)
    except ValueError as err:
        raise CalibrationError(f"{where}: ragged nested list {brief(value)}") from err
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
                "distortion_model", "distortion_coefficients", "T_base_camera", "time_offset")
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
                               f"{sorted(DISTORTION_MODELS)}, got {brief(model)}")
    D = f.numbers("distortion_coefficients")
    if D.ndim != 1 or D.size != DISTORTION_MODELS[model]:
        raise CalibrationError(f"{where} field 'distortion_coefficients': model {brief(model)} takes "
                               f"{DISTORTION_MODELS[model]} coefficients, got {D.size}")
    T = _pose_from_dict(f.raw("T_base_camera"), f"{where} field 'T_base_camera'", name)
    values = dict(
        name=name, topic=f.string("topic"), frame_id=f.string("frame_id"),
        width=f.integer("width"), height=f.integer("height"), K=f.numbers("K", (3, 3)),
        distortion_model=model, distortion_coefficients=D, T_base_camera=T,
        camera_info_topic=f.string("camera_info_topic", required=False),
        time_offset=f.number("time_offset", default=0.0),
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
                               f"{brief(version)} (this package reads version {SCHEMA_VERSION})")
    cams = f.raw("cameras")
    if not isinstance(cams, list) or not cams:
        raise CalibrationError(f"{source} field 'cameras': must be a non-empty list of cameras, "
                               f"got {brief(cams)}")
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
        if cam.time_offset:
            d["time_offset"] = cam.time_offset
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
                                   f"got {brief(v)}")
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
        raise CalibrationError(f"{where} field 'distortion_model': {brief(model)} is not supported "
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


def _kalibr_keys(data: Any, source: str) -> list[tuple[int, str]]:
    """The camera keys cam0..camN in order; anything else (or a gap) is an error."""
    if not isinstance(data, Mapping) or not data:
        raise CalibrationError(f"{source}: a Kalibr camchain must be a mapping of cam0..camN")
    keys = []
    for k in data:
        m = re.fullmatch(r"cam(\d+)", str(k))
        if not m:
            raise CalibrationError(f"{source}: unknown top-level key {brief(k)} (expected cam0..camN)")
        keys.append((int(m.group(1)), str(k)))
    keys.sort()
    if [i for i, _ in keys] != list(range(len(keys))):
        raise CalibrationError(f"{source}: camera keys must be cam0..cam{len(keys) - 1} without "
                               f"gaps, got {', '.join(k for _, k in keys)}")
    return keys


def _kalibr_distortion(f: _Fields, where: str) -> tuple[str, np.ndarray]:
    """(our distortion model, its coefficients) from a Kalibr camera's distortion fields."""
    kdist = f.string("distortion_model")
    if kdist not in _KALIBR_DISTORTION:
        raise CalibrationError(f"{where} field 'distortion_model': must be one of "
                               f"{sorted(_KALIBR_DISTORTION)}, got {brief(kdist)}")
    dmodel = _KALIBR_DISTORTION[kdist]
    D = f.numbers("distortion_coeffs") if f.has("distortion_coeffs") else np.zeros(0)
    want = {"plumb_bob": 4, "equidistant": 4, "none": 0}[dmodel]
    if D.ndim != 1 or D.size != want:
        raise CalibrationError(f"{where} field 'distortion_coeffs': {kdist} takes {want} "
                               f"coefficients, got {D.size}")
    if dmodel == "plumb_bob":
        D = np.append(D, 0.0)   # Kalibr radtan is k1 k2 p1 p2; OpenCV adds k3
    return dmodel, D


def _kalibr_pose(f: _Fields, key: str, fld: str, why: str) -> np.ndarray:
    """A 4x4 pose field of a Kalibr camera, checked and re-orthonormalised."""
    if not f.has(fld):
        raise CalibrationError(f"{f.where} field '{fld}': missing ({why})")
    T = f.numbers(fld, (4, 4))
    check_pose(T, key, fld, _FILE_ROT_TOL)
    T[:3, :3] = orthonormalize(T[:3, :3])
    return T


def _kalibr_camera(f: _Fields, key: str, T_cam0_camn: np.ndarray, source: str) -> Camera:
    """One camera of a camchain (intrinsics, distortion, size, topic, time shift)."""
    where = f.where
    model = f.string("camera_model", default="pinhole")
    if model != "pinhole":
        raise CalibrationError(f"{where} field 'camera_model': only pinhole is supported, "
                               f"got {brief(model)}")
    fu, fv, pu, pv = f.numbers("intrinsics", (4,))
    dmodel, D = _kalibr_distortion(f, where)
    res = f.numbers("resolution", (2,))
    if not all(float(r).is_integer() and r > 0 for r in res):
        raise CalibrationError(f"{where} field 'resolution': must be two positive integers "
                               f"[width, height], got {res.tolist()}")
    K = np.array([[fu, 0, pu], [0, fv, pv], [0, 0, 1]])
    try:
        return Camera(
            name=key, topic=f.string("rostopic", default=f"/{key}/image_raw"),
            frame_id=f"{key}_optical_frame", width=int(res[0]), height=int(res[1]), K=K,
            distortion_model=dmodel, distortion_coefficients=D, T_base_camera=T_cam0_camn.copy(),
            # t_imu = t_cam + timeshift_cam_imu: the sync adds it to put the stamps on the IMU's
            # clock, which every camera of the camchain shares
            time_offset=f.number("timeshift_cam_imu", default=0.0))
    except CalibrationError as err:
        raise CalibrationError(f"{source}: {err}") from err


def rig_from_kalibr_dict(data: Any, source: str = "camchain", *, name: str = "kalibr_rig",
                         base_frame: str | None = None, imu_base: bool = False) -> Rig:
    """A `Rig` from a parsed Kalibr camchain mapping (``cam0`` .. ``camN``).

    Kalibr's ``T_cn_cnm1`` maps points from camera n-1 into camera n; they are chained so the
    base is cam0 (``base_frame`` defaults to ``rig_base``, at cam0's optical frame), or the IMU
    when ``imu_base`` is set (every camera then needs ``T_cam_imu``; ``base_frame`` defaults to
    ``imu``). Cameras are named after their keys; frames are ``<key>_optical_frame``.
    """
    cameras = []
    T_cam0_camn = np.eye(4)
    T_imu_cams = []
    for n, key in _kalibr_keys(data, source):
        f = _Fields(data[key], f"{source}: camera '{key}'", _KALIBR_CAM_KEYS)
        if n > 0:
            T = _kalibr_pose(f, key, "T_cn_cnm1", "needed for every camera after cam0")
            T_cam0_camn = T_cam0_camn @ se3_inverse(T)
        if imu_base:
            T_imu_cams.append(se3_inverse(_kalibr_pose(f, key, "T_cam_imu", "imu_base=True")))
        cameras.append(_kalibr_camera(f, key, T_cam0_camn, source))
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
