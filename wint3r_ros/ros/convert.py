"""numpy <-> rclpy messages, without cv_bridge: stamps, images (raw and JPEG), camera_info,
transforms, odometry, path and point clouds.

cv_bridge breaks with NumPy 2 and is not installable without ROS; these conversions need only
numpy (and OpenCV for JPEG). The builders are the project's one message builder
(`wint3r_ros.data.builders`) with the `RCLPY` kit: the same field values as the messages
process-bag writes into bags, as rclpy messages; here they also take a
``builtin_interfaces/Time`` where the builders take integer nanoseconds. The readers are shared
with the offline code (`wint3r_ros.data.messages`; they accept rclpy and rosbags messages alike).
Malformed input raises `InputError` naming the topic.

Stamps are exact: `ns_from_stamp` / `stamp_from_ns` round-trip every `builtin_interfaces/Time`
through integer nanoseconds; float seconds (`seconds_from_stamp`) are for arithmetic only, never
converted back into a stamp.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from wint3r_ros.core.pipeline.records import CameraInfoRecord
from wint3r_ros.data import builders as _b
from wint3r_ros.data import messages as _m
from wint3r_ros.errors import InputError

__all__ = [
    "RCLPY", "INPUT_ENCODINGS", "IMAGE_ENCODINGS", "check_camera_info", "camera_info_record",
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


def _rclpy_class(msgtype: str) -> Any:
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


RCLPY = _b.MessageKit(_rclpy_class, _b.rclpy_sequence)


def _where(topic: str) -> str:
    return f"topic {topic}" if topic else "message"


def _ns(stamp: Any) -> int:
    """Integer nanoseconds of a Time or of integer nanoseconds."""
    if isinstance(stamp, (int, np.integer)) and not isinstance(stamp, bool):
        return int(stamp)
    return ns_from_stamp(stamp)


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
    if encoding not in IMAGE_ENCODINGS:
        raise InputError(f"{_where(topic)}: cannot build an image of encoding {encoding!r} "
                         f"(supported: {', '.join(IMAGE_ENCODINGS)})")
    return _b.image_from_array(array_, encoding, _ns(stamp), frame_id, topic, kit=RCLPY)


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
    elif enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        packed = "bgr8"
        a = {"rgb8": a[..., ::-1], "bgr8": a, "rgba8": a[..., 2::-1],
             "bgra8": a[..., :3]}[enc]
    else:   # Bayer, YUV: converted once, here
        packed, a = "bgr8", _m.rgb_from_image(msg, topic)[..., ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(a), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"{_where(topic)}: JPEG encoding of a {msg.width}x{msg.height} {enc} "
                         "image failed")
    out = CompressedImage(header=msg.header, format=f"{enc}; jpeg compressed {packed}")
    out.data = _b.rclpy_sequence(buf.reshape(-1), "B")
    return out


def rgb_from_compressed(msg: Any, topic: str = "") -> np.ndarray:
    """[H, W, 3] uint8 RGB of a JPEG or PNG CompressedImage (grey is repeated)."""
    return _m.rgb_from_compressed(msg, topic)


# --------------------------------------------------------------------------------------------
# CameraInfo


def camera_info_from_camera(camera: Any, stamp: Any, frame_id: str | None = None) -> Any:
    """sensor_msgs/CameraInfo of a calibrated camera (R = I, P = [K | 0], no binning/ROI)."""
    return _b.camera_info_from_camera(camera, _ns(stamp), frame_id, kit=RCLPY)


def check_camera_info(msg: Any, topic: str = "") -> None:
    """Raise InputError if a CameraInfo's K, D, R or P holds NaN or infinity (a width of 0, or
    K all zero, is an uncalibrated camera, not an error)."""
    _m.camera_info_record(msg, topic)


def camera_info_record(msg: Any, topic: str = "") -> CameraInfoRecord:
    """The fields of a CameraInfo message as a `CameraInfoRecord` (checked: finite)."""
    return _m.camera_info_record(msg, topic)


def camera_from_camera_info(msg: Any, *, name: str, topic: str, info_topic: str = "",
                            T_base_camera: np.ndarray | None = None,
                            frame_id: str | None = None) -> Any:
    """A `Camera` of a CameraInfo message; InputError for an uncalibrated or unsupported one."""
    return _m.camera_from_camera_info(msg, name=name, topic=topic, info_topic=info_topic,
                                      T_base_camera=T_base_camera, frame_id=frame_id)


def camera_info_resized(msg: Any, width: int, height: int, stamp: Any = None,
                        frame_id: str | None = None) -> Any:
    """A copy of a CameraInfo for the image resized to ``width`` x ``height`` (K and P scaled
    with pixel centres at integers, as `Camera.scaled`); header stamp/frame optionally replaced."""
    if int(msg.width) <= 0 or int(msg.height) <= 0:
        raise InputError(f"camera_info of frame {msg.header.frame_id!r} has no size "
                         f"({msg.width}x{msg.height}); cannot resize it")
    record = camera_info_record(msg).resized(int(width), int(height))
    return _b.camera_info_msg(record, _ns(msg.header.stamp if stamp is None else stamp),
                              frame_id if frame_id is not None else msg.header.frame_id, RCLPY)


# --------------------------------------------------------------------------------------------
# Transforms, poses, odometry, path, point clouds


def transform_stamped(T_parent_child: np.ndarray, parent: str, child: str, stamp: Any) -> Any:
    """geometry_msgs/TransformStamped: ``T_parent_child`` [4, 4] maps child points to parent."""
    return _b.transform_stamped(T_parent_child, parent, child, _ns(stamp), RCLPY)


def transforms_from_tf_message(msg: Any) -> list[tuple[str, str, int, np.ndarray]]:
    """(parent, child, stamp_ns, T_parent_child [4, 4]) of every transform of a TFMessage."""
    return _m.transforms_from_tf_message(msg)


def pose_msg(T: np.ndarray) -> Any:
    """geometry_msgs/Pose of a pose [4, 4]."""
    return _b.pose_msg(T, RCLPY)


def pose_stamped(T_frame_body: np.ndarray, stamp: Any, frame_id: str) -> Any:
    """geometry_msgs/PoseStamped of a pose [4, 4] in ``frame_id``."""
    return _b.pose_stamped(T_frame_body, _ns(stamp), frame_id, RCLPY)


def odometry(T_odom_body: np.ndarray, stamp: Any, frame_id: str, child_frame_id: str,
             linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0),
             pose_covariance: Any = None, twist_covariance: Any = None) -> Any:
    """nav_msgs/Odometry: pose [4, 4] in ``frame_id``; twist (m/s, rad/s) in the child frame;
    covariances as 6 variances (x, y, z, roll, pitch, yaw) or a 6x6 matrix (default zero)."""
    return _b.odometry(T_odom_body, _ns(stamp), frame_id, child_frame_id, linear, angular,
                       pose_covariance, twist_covariance, RCLPY)


def pose_from_odometry(msg: Any) -> np.ndarray:
    """Pose [4, 4] of an Odometry message (child frame in the header frame)."""
    return _m.pose_from_odometry(msg)


def path_msg(poses: Sequence[np.ndarray] | np.ndarray, stamps: Sequence[Any], frame_id: str,
             stamp: Any = None) -> Any:
    """nav_msgs/Path of poses [P, 4, 4] with their stamps; header stamp = the last pose's (or
    ``stamp``)."""
    return _b.path_msg(poses, [_ns(s) for s in stamps], frame_id,
                       None if stamp is None else _ns(stamp), RCLPY)


def poses_from_path(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(poses [P, 4, 4], stamps_ns [P] int64) of a nav_msgs/Path."""
    return _m.poses_from_path(msg)


def pointcloud2_from_points(points: np.ndarray, stamp: Any, frame_id: str,
                            colors: np.ndarray | None = None) -> Any:
    """Unorganised PointCloud2 of points [N, 3] and optional colours [N, 3] uint8 RGB, packed
    as 0x00RRGGBB in an ``rgb`` float32 field (16-byte points)."""
    return _b.pointcloud2_from_points(points, _ns(stamp), frame_id, colors, RCLPY)


def points_from_pointcloud2(msg: Any, topic: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """(points [N, 3] float32, colours [N, 3] uint8 or None) of an x, y, z (+ rgb) cloud."""
    return _m.points_from_pointcloud2(msg, topic)
