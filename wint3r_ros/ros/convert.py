"""numpy <-> rclpy messages, without cv_bridge: stamps, images (raw and JPEG), camera_info,
transforms, odometry, path and point clouds.

cv_bridge breaks with NumPy 2 and is not installable without ROS; these conversions need only
numpy (and OpenCV for JPEG). Readers that only read attributes are shared with the offline
code in `wint3r_ros.data.messages` (they accept rclpy and rosbags messages alike); the builders
here return rclpy messages. Malformed input raises `InputError` naming the topic.

Stamps are exact: `ns_from_stamp` / `stamp_from_ns` round-trip every `builtin_interfaces/Time`
through integer nanoseconds; float seconds (`seconds_from_stamp`) are for arithmetic only, never
converted back into a stamp.
"""
from __future__ import annotations

import array
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import translation_quat_from_pose
from wint3r_ros.core.rig import Camera
from wint3r_ros.data import messages as _m
from wint3r_ros.errors import InputError

__all__ = [
    "INPUT_ENCODINGS", "IMAGE_ENCODINGS", "check_camera_info",
    "ns_from_stamp", "stamp_from_ns", "seconds_from_stamp", "as_stamp",
    "image_from_array", "array_from_image", "rgb_from_image", "check_image",
    "compressed_from_image", "rgb_from_compressed",
    "camera_info_from_camera", "camera_from_camera_info", "camera_info_resized",
    "transform_stamped", "transforms_from_tf_message", "pose_msg", "pose_stamped",
    "odometry", "pose_from_odometry", "path_msg", "poses_from_path",
    "pointcloud2_from_points", "points_from_pointcloud2",
]

# Encodings the nodes take from cameras (colour or grey; the model sees RGB).
INPUT_ENCODINGS = _m.INPUT_ENCODINGS
# encoding -> (dtype, channels) for everything image_from_array / array_from_image handle.
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    e: _m.IMAGE_ENCODINGS[e] for e in (*INPUT_ENCODINGS, "32FC1")}

_NS = 1_000_000_000


def _where(topic: str) -> str:
    return f"topic {topic}" if topic else "message"


def _bytes(a: np.ndarray) -> array.array:
    """A contiguous array's bytes as array('B') (one copy; what rclpy stores without checks)."""
    out = array.array("B")
    if a.size:
        out.frombytes(memoryview(np.ascontiguousarray(a).reshape(-1)).cast("B"))
    return out


# --------------------------------------------------------------------------------------------
# Stamps


def ns_from_stamp(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time (exact)."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def stamp_from_ns(ns: int) -> Any:
    """builtin_interfaces/Time of integer nanoseconds (exact; nanosec in [0, 1e9))."""
    from builtin_interfaces.msg import Time

    ns = int(ns)
    return Time(sec=ns // _NS, nanosec=ns % _NS)


def seconds_from_stamp(stamp: Any) -> float:
    """Float seconds of a stamp, for arithmetic (sync slop, latency); not for round trips."""
    return ns_from_stamp(stamp) / 1e9


def as_stamp(stamp: Any) -> Any:
    """A builtin_interfaces/Time from a Time (returned as is) or integer nanoseconds."""
    if isinstance(stamp, (int, np.integer)) and not isinstance(stamp, bool):
        return stamp_from_ns(int(stamp))
    return stamp


def _header(stamp: Any, frame_id: str) -> Any:
    from std_msgs.msg import Header

    return Header(stamp=as_stamp(stamp), frame_id=frame_id)


# --------------------------------------------------------------------------------------------
# Raw images


def image_from_array(array_: np.ndarray, encoding: str, stamp: Any, frame_id: str,
                     topic: str = "") -> Any:
    """sensor_msgs/Image of [H, W] (one channel) or [H, W, C] pixels in the encoding's dtype
    (uint8; uint16 for mono16; float32 for 32FC1), little-endian, rows unpadded."""
    from sensor_msgs.msg import Image

    if encoding not in IMAGE_ENCODINGS:
        raise InputError(f"{_where(topic)}: cannot build an image of encoding {encoding!r} "
                         f"(supported: {', '.join(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    a = np.asarray(array_)
    if a.ndim == 3 and channels == 1 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != (2 if channels == 1 else 3) or (channels > 1 and a.shape[2] != channels):
        want = "[H, W]" if channels == 1 else f"[H, W, {channels}]"
        raise InputError(f"{_where(topic)}: encoding {encoding} needs an array {want}, "
                         f"got shape {a.shape}")
    if a.dtype != dtype:
        raise InputError(f"{_where(topic)}: encoding {encoding} needs dtype {dtype}, got {a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{_where(topic)}: empty image of shape {a.shape}")
    a = a.astype(dtype.newbyteorder("<"), copy=False)
    height, width = a.shape[:2]
    msg = Image(header=_header(stamp, frame_id), height=height, width=width, encoding=encoding,
                is_bigendian=0, step=width * channels * dtype.itemsize)
    msg.data = _bytes(a)
    return msg


def check_image(msg: Any, topic: str = "", encodings: Sequence[str] = INPUT_ENCODINGS) -> None:
    """Raise InputError unless ``msg`` is a well-formed image of one of ``encodings``
    (known encoding, positive size, step >= one row, data == step x height bytes)."""
    _check_encoding(msg, topic, encodings)
    _m.check_image_layout(msg, topic)


def _check_encoding(msg: Any, topic: str, encodings: Sequence[str]) -> None:
    enc = str(msg.encoding)
    if enc not in encodings:
        raise InputError(f"{_where(topic)}: image encoding {enc!r} is not supported "
                         f"(use one of {', '.join(encodings)})")


def array_from_image(msg: Any, topic: str = "") -> np.ndarray:
    """Pixels of an Image as [H, W] or [H, W, C] in the encoding's dtype (row padding removed,
    native byte order; may share memory with the message). Checks encoding, step and size."""
    _check_encoding(msg, topic, tuple(IMAGE_ENCODINGS))
    return _m.array_from_image(msg, topic)  # checks the layout


def rgb_from_image(msg: Any, topic: str = "") -> np.ndarray:
    """[H, W, 3] uint8 RGB of an input image (what the model consumes): grey is repeated,
    mono16 keeps its high byte, alpha is dropped, BGR is reordered."""
    _check_encoding(msg, topic, INPUT_ENCODINGS)
    return _m.rgb_from_image(msg, topic)  # checks the layout


# --------------------------------------------------------------------------------------------
# JPEG (sensor_msgs/CompressedImage, image_transport's "compressed" format string)


def compressed_from_image(msg: Any, quality: int = 90, topic: str = "") -> Any:
    """JPEG CompressedImage of an input Image, same header. Colour goes in as BGR, grey as
    mono8 (mono16 keeps its high byte); format reads e.g. "rgb8; jpeg compressed bgr8"."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    if not 1 <= int(quality) <= 100:
        raise InputError(f"JPEG quality {quality} must lie in [1, 100]")
    enc = str(msg.encoding)
    _check_encoding(msg, topic, INPUT_ENCODINGS)
    a = _m.array_from_image(msg, topic)  # checks the layout
    if enc == "mono16":
        a, packed = (a >> 8).astype(np.uint8), "mono8"
    elif enc == "mono8":
        packed = "mono8"
    else:
        packed = "bgr8"
        a = {"rgb8": a[..., ::-1], "bgr8": a, "rgba8": a[..., 2::-1],
             "bgra8": a[..., :3]}[enc]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(a), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"{_where(topic)}: JPEG encoding of a {msg.width}x{msg.height} {enc} "
                         "image failed")
    out = CompressedImage(header=msg.header, format=f"{enc}; jpeg compressed {packed}")
    out.data = _bytes(buf.reshape(-1))
    return out


def rgb_from_compressed(msg: Any, topic: str = "") -> np.ndarray:
    """[H, W, 3] uint8 RGB of a JPEG or PNG CompressedImage (grey is repeated)."""
    import cv2

    buf = np.frombuffer(memoryview(msg.data), np.uint8) if len(msg.data) else np.zeros(0, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise InputError(f"{_where(topic)}: compressed image ({len(msg.data)} bytes, format "
                         f"{msg.format!r}) could not be decoded")
    if img.dtype != np.uint8:
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[..., 2::-1])
    return np.ascontiguousarray(img[..., ::-1])


# --------------------------------------------------------------------------------------------
# CameraInfo


def camera_info_from_camera(camera: Camera, stamp: Any, frame_id: str | None = None) -> Any:
    """sensor_msgs/CameraInfo of a calibrated camera (R = I, P = [K | 0], no binning/ROI)."""
    from sensor_msgs.msg import CameraInfo

    info = camera.camera_info_dict()
    msg = CameraInfo(header=_header(stamp, frame_id or camera.frame_id), height=camera.height,
                     width=camera.width, distortion_model=info["distortion_model"])
    msg.d = array.array("d", info["d"])
    msg.k = np.asarray(info["k"], np.float64)
    msg.r = np.asarray(info["r"], np.float64)
    msg.p = np.asarray(info["p"], np.float64)
    return msg


def check_camera_info(msg: Any, topic: str = "") -> None:
    """Raise InputError if a CameraInfo's K, D, R or P holds NaN or infinity (a width of 0, or
    K all zero, is an uncalibrated camera, not an error)."""
    for fld in ("k", "d", "r", "p"):
        values = np.asarray(getattr(msg, fld), dtype=np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{_where(topic)}: camera_info field {fld.upper()} contains NaN or "
                             f"infinity: {values.tolist()}")


def camera_from_camera_info(msg: Any, *, name: str, topic: str, info_topic: str = "",
                            T_base_camera: np.ndarray | None = None,
                            frame_id: str | None = None) -> Camera:
    """A `Camera` of a CameraInfo message; InputError for an uncalibrated or unsupported one."""
    return _m.camera_from_camera_info(msg, name=name, topic=topic, info_topic=info_topic,
                                      T_base_camera=T_base_camera, frame_id=frame_id)


def camera_info_resized(msg: Any, width: int, height: int, stamp: Any = None,
                        frame_id: str | None = None) -> Any:
    """A copy of a CameraInfo for the image resized to ``width`` x ``height`` (K and P scaled
    with pixel centres at integers, as `Camera.scaled`); header stamp/frame optionally replaced."""
    from sensor_msgs.msg import CameraInfo

    if int(msg.width) <= 0 or int(msg.height) <= 0:
        raise InputError(f"camera_info of frame {msg.header.frame_id!r} has no size "
                         f"({msg.width}x{msg.height}); cannot resize it")
    sx, sy = width / int(msg.width), height / int(msg.height)
    K = np.asarray(msg.k, np.float64).reshape(3, 3).copy()
    P = np.asarray(msg.p, np.float64).reshape(3, 4).copy()
    for M in (K, P):
        M[0, 0] *= sx
        M[0, 1] *= sx
        M[1, 1] *= sy
        M[0, 2] = (M[0, 2] + 0.5) * sx - 0.5
        M[1, 2] = (M[1, 2] + 0.5) * sy - 0.5
        if M is P:
            M[0, 3] *= sx
            M[1, 3] *= sy
    out = CameraInfo(header=_header(msg.header.stamp if stamp is None else stamp,
                                    frame_id if frame_id is not None else msg.header.frame_id),
                     height=int(height), width=int(width), distortion_model=msg.distortion_model,
                     binning_x=msg.binning_x, binning_y=msg.binning_y)
    out.d = array.array("d", list(msg.d))
    out.k = K.reshape(-1)
    out.r = np.asarray(msg.r, np.float64).copy()
    out.p = P.reshape(-1)
    return out


# --------------------------------------------------------------------------------------------
# Transforms, poses, odometry, path


def transform_stamped(T_parent_child: np.ndarray, parent: str, child: str, stamp: Any) -> Any:
    """geometry_msgs/TransformStamped: ``T_parent_child`` [4, 4] maps child points to parent."""
    from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3

    t, q = translation_quat_from_pose(np.asarray(T_parent_child, np.float64))
    return TransformStamped(
        header=_header(stamp, parent), child_frame_id=child,
        transform=Transform(translation=Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                            rotation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                                w=float(q[3]))))


def transforms_from_tf_message(msg: Any) -> list[tuple[str, str, int, np.ndarray]]:
    """(parent, child, stamp_ns, T_parent_child [4, 4]) of every transform of a TFMessage."""
    return _m.transforms_from_tf_message(msg)


def pose_msg(T: np.ndarray) -> Any:
    """geometry_msgs/Pose of a pose [4, 4]."""
    from geometry_msgs.msg import Point, Pose, Quaternion

    t, q = translation_quat_from_pose(np.asarray(T, np.float64))
    return Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                orientation=Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def pose_stamped(T_frame_body: np.ndarray, stamp: Any, frame_id: str) -> Any:
    """geometry_msgs/PoseStamped of a pose [4, 4] in ``frame_id``."""
    from geometry_msgs.msg import PoseStamped

    return PoseStamped(header=_header(stamp, frame_id), pose=pose_msg(T_frame_body))


def _covariance(value: Any, what: str) -> np.ndarray:
    if value is None:
        return np.zeros(36)
    c = np.asarray(value, np.float64)
    if c.shape == (6,):
        c = np.diag(c)
    if c.size != 36 or not np.all(np.isfinite(c)):
        raise InputError(f"odometry {what}: need 6 variances or a 6x6 matrix, got shape {c.shape}")
    return c.reshape(36)


def odometry(T_odom_body: np.ndarray, stamp: Any, frame_id: str, child_frame_id: str,
             linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0),
             pose_covariance: Any = None, twist_covariance: Any = None) -> Any:
    """nav_msgs/Odometry: pose [4, 4] in ``frame_id``; twist (m/s, rad/s) in the child frame;
    covariances as 6 variances (x, y, z, roll, pitch, yaw) or a 6x6 matrix (default zero)."""
    from geometry_msgs.msg import PoseWithCovariance, Twist, TwistWithCovariance, Vector3
    from nav_msgs.msg import Odometry

    lin = [float(v) for v in linear]
    ang = [float(v) for v in angular]
    return Odometry(
        header=_header(stamp, frame_id), child_frame_id=child_frame_id,
        pose=PoseWithCovariance(pose=pose_msg(T_odom_body),
                                covariance=_covariance(pose_covariance, "pose_covariance")),
        twist=TwistWithCovariance(
            twist=Twist(linear=Vector3(x=lin[0], y=lin[1], z=lin[2]),
                        angular=Vector3(x=ang[0], y=ang[1], z=ang[2])),
            covariance=_covariance(twist_covariance, "twist_covariance")))


def pose_from_odometry(msg: Any) -> np.ndarray:
    """Pose [4, 4] of an Odometry message (child frame in the header frame)."""
    return _m.pose_from_odometry(msg)


def path_msg(poses: Iterable[tuple[np.ndarray, Any]], frame_id: str, stamp: Any = None) -> Any:
    """nav_msgs/Path of (pose [4, 4], stamp) pairs; header stamp = the last pose's (or ``stamp``)."""
    from nav_msgs.msg import Path

    items = [pose_stamped(T, s, frame_id) for T, s in poses]
    if stamp is None:
        stamp = items[-1].header.stamp if items else stamp_from_ns(0)
    return Path(header=_header(stamp, frame_id), poses=items)


def poses_from_path(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(poses [P, 4, 4], stamps_ns [P] int64) of a nav_msgs/Path."""
    return _m.poses_from_path(msg)


# --------------------------------------------------------------------------------------------
# PointCloud2 (x, y, z float32 + rgb packed into a float32, the PCL/RViz convention)


def pointcloud2_from_points(points: np.ndarray, stamp: Any, frame_id: str,
                            colors: np.ndarray | None = None) -> Any:
    """Unorganised PointCloud2 of points [N, 3] and optional colours [N, 3] uint8 RGB, packed
    as 0x00RRGGBB in an ``rgb`` float32 field (16-byte points)."""
    from sensor_msgs.msg import PointCloud2, PointField

    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"point cloud: points must be [N, 3], got shape {pts.shape}")
    n = len(pts)
    names = ["x", "y", "z"] + ([] if colors is None else ["rgb"])
    rec = np.zeros((n, len(names)), dtype="<f4")
    rec[:, :3] = pts
    if colors is not None:
        c = np.asarray(colors)
        if c.shape != (n, 3) or c.dtype != np.uint8:
            raise InputError(f"point cloud: colors must be uint8 [{n}, 3], got {c.dtype} {c.shape}")
        packed = (c[:, 0].astype(np.uint32) << 16) | (c[:, 1].astype(np.uint32) << 8) | c[:, 2]
        rec[:, 3] = packed.view(np.float32)
    step = 4 * len(names)
    msg = PointCloud2(
        header=_header(stamp, frame_id), height=1, width=n,
        fields=[PointField(name=nm, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                for i, nm in enumerate(names)],
        is_bigendian=False, point_step=step, row_step=step * n,
        is_dense=bool(np.all(np.isfinite(pts))))
    msg.data = _bytes(rec)
    return msg


def points_from_pointcloud2(msg: Any, topic: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """(points [N, 3] float32, colours [N, 3] uint8 or None) of an x, y, z (+ rgb) cloud."""
    return _m.points_from_pointcloud2(msg, topic)
