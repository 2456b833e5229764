"""The one message builder: numpy arrays and pipeline records -> ROS 2 messages.

Every builder takes a `MessageKit` that says where the message classes come from and how array
fields are stored: `ROSBAGS` (the default; rosbags classes from `messages.project_typestore`,
for bags) or `wint3r_ros.ros.convert.RCLPY` (rclpy classes, for publishers). The field values are
computed once, here, for both. Stamps are integer nanoseconds.

`output_messages(batch, frames, kit)` is what fusion_node publishes and process-bag writes for
one `OutputBatch`: (topic, message, stamp_ns) triples with topics relative to the node
(``depth`` of camera ``cam0`` is ``cam0/depth``) except ``/tf`` and ``/tf_static``.
"""
from __future__ import annotations

import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from wint3r_ros.core.geometry import translation_quat_from_pose
from wint3r_ros.core.pipeline.records import CameraInfoRecord, OutputBatch, StatusRecord, full_size
from wint3r_ros.errors import InputError

__all__ = ["MessageKit", "ROSBAGS", "IMAGE_ENCODINGS", "OutMessage", "time_msg", "header",
           "image_from_array", "camera_info_msg", "camera_info_from_camera",
           "transform_stamped", "tf_message", "pose_msg", "pose_stamped", "odometry",
           "path_msg", "pointcloud2_from_points", "status_msg", "output_messages"]

_NS = 1_000_000_000
_POINTFIELD_FLOAT32 = 7

# encoding -> (dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1),
    "rgb8": (np.dtype(np.uint8), 3), "bgr8": (np.dtype(np.uint8), 3),
    "8UC3": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4), "bgra8": (np.dtype(np.uint8), 4),
    "8UC4": (np.dtype(np.uint8), 4),
    "mono16": (np.dtype(np.uint16), 1), "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    # camera raw formats, read only as camera input (data.messages.rgb_from_image converts)
    **{f"bayer_{p}8": (np.dtype(np.uint8), 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": (np.dtype(np.uint16), 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    "yuv422": (np.dtype(np.uint8), 2), "yuv422_yuy2": (np.dtype(np.uint8), 2),
}

_DTYPES = {"B": np.uint8, "d": np.float64, "Q": np.uint64}


@dataclass(frozen=True)
class MessageKit:
    """cls(msgtype) -> the message class (``sensor_msgs/msg/Image``); sequence(values,
    typecode) -> a variable-length field of ``typecode`` ('B' uint8, 'd' float64, 'Q' uint64)
    in the form the classes store."""

    cls: Callable[[str], Any]
    sequence: Callable[[Any, str], Any]


def _rosbags_class(msgtype: str) -> Any:
    from wint3r_ros.data.messages import msg_class

    return msg_class(msgtype)


def _numpy_sequence(values: Any, typecode: str) -> np.ndarray:
    a = np.asarray(values)
    if typecode == "B" and a.dtype != np.uint8:
        return np.ascontiguousarray(a).view(np.uint8).reshape(-1)
    return np.asarray(a, _DTYPES[typecode]).reshape(-1)


ROSBAGS = MessageKit(_rosbags_class, _numpy_sequence)


def _where(topic: str) -> str:
    return f"topic {topic}" if topic else "message"


# --------------------------------------------------------------------------------------------
# Time, headers, images, camera_info


def time_msg(ns: int, kit: MessageKit = ROSBAGS) -> Any:
    """builtin_interfaces/Time of integer nanoseconds (exact; nanosec in [0, 1e9))."""
    ns = int(ns)
    return kit.cls("builtin_interfaces/msg/Time")(sec=ns // _NS, nanosec=ns % _NS)


def header(stamp_ns: int, frame_id: str, kit: MessageKit = ROSBAGS) -> Any:
    """std_msgs/Header."""
    return kit.cls("std_msgs/msg/Header")(stamp=time_msg(stamp_ns, kit), frame_id=frame_id)


def image_from_array(array_: np.ndarray, encoding: str, stamp_ns: int, frame_id: str,
                     topic: str = "", kit: MessageKit = ROSBAGS) -> Any:
    """sensor_msgs/Image of [H, W] (one channel) or [H, W, C] pixels in the encoding's dtype
    (uint8; uint16 for mono16/16UC1; float32 for 32FC1), little-endian, rows unpadded."""
    if encoding not in IMAGE_ENCODINGS:
        raise InputError(f"{_where(topic)}: unsupported image encoding {encoding!r} "
                         f"(supported: {', '.join(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    a = np.asarray(array_)
    if a.ndim == 3 and channels == 1 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != (2 if channels == 1 else 3) or (channels > 1 and a.shape[2] != channels):
        want = "[H, W]" if channels == 1 else f"[H, W, {channels}]"
        raise InputError(f"{_where(topic)}: encoding {encoding} needs an array {want}, got shape "
                         f"{a.shape}")
    if a.dtype != dtype:
        raise InputError(f"{_where(topic)}: encoding {encoding} needs dtype {dtype}, got "
                         f"{a.dtype}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise InputError(f"{_where(topic)}: empty image of shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=dtype.newbyteorder("<"))
    height, width = a.shape[:2]
    return kit.cls("sensor_msgs/msg/Image")(
        header=header(stamp_ns, frame_id, kit), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=width * channels * dtype.itemsize, data=kit.sequence(a, "B"))


def camera_info_msg(info: CameraInfoRecord, stamp_ns: int, frame_id: str,
                    kit: MessageKit = ROSBAGS) -> Any:
    """sensor_msgs/CameraInfo of a `CameraInfoRecord` (no ROI)."""
    roi = kit.cls("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0, width=0,
                                                      do_rectify=False)
    return kit.cls("sensor_msgs/msg/CameraInfo")(
        header=header(stamp_ns, frame_id, kit), height=int(info.height), width=int(info.width),
        distortion_model=info.distortion_model, d=kit.sequence(info.d, "d"),
        k=np.asarray(info.k, np.float64), r=np.asarray(info.r, np.float64),
        p=np.asarray(info.p, np.float64), binning_x=int(info.binning_x),
        binning_y=int(info.binning_y), roi=roi)


def camera_info_from_camera(camera: Any, stamp_ns: int, frame_id: str | None = None,
                            kit: MessageKit = ROSBAGS) -> Any:
    """sensor_msgs/CameraInfo of a calibrated `Camera` (R = I, P = [K | 0], no binning/ROI)."""
    return camera_info_msg(CameraInfoRecord.from_camera(camera), stamp_ns,
                           frame_id or camera.frame_id, kit)


# --------------------------------------------------------------------------------------------
# Transforms, poses, odometry, path


def _vector(kit: MessageKit, name: str, v: Sequence[float]) -> Any:
    return kit.cls(name)(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def _quaternion(kit: MessageKit, q: Sequence[float]) -> Any:
    return kit.cls("geometry_msgs/msg/Quaternion")(x=float(q[0]), y=float(q[1]), z=float(q[2]),
                                                   w=float(q[3]))


def transform_stamped(T_parent_child: np.ndarray, parent: str, child: str, stamp_ns: int,
                      kit: MessageKit = ROSBAGS) -> Any:
    """geometry_msgs/TransformStamped: ``T_parent_child`` [4, 4] maps child points to parent."""
    t, q = translation_quat_from_pose(np.asarray(T_parent_child, np.float64))
    transform = kit.cls("geometry_msgs/msg/Transform")(
        translation=_vector(kit, "geometry_msgs/msg/Vector3", t), rotation=_quaternion(kit, q))
    return kit.cls("geometry_msgs/msg/TransformStamped")(
        header=header(stamp_ns, parent, kit), child_frame_id=child, transform=transform)


def tf_message(transforms: Iterable[Any], kit: MessageKit = ROSBAGS) -> Any:
    """tf2_msgs/TFMessage of TransformStamped messages."""
    return kit.cls("tf2_msgs/msg/TFMessage")(transforms=list(transforms))


def pose_msg(T: np.ndarray, kit: MessageKit = ROSBAGS) -> Any:
    """geometry_msgs/Pose of a pose [4, 4]."""
    t, q = translation_quat_from_pose(np.asarray(T, np.float64))
    return kit.cls("geometry_msgs/msg/Pose")(
        position=_vector(kit, "geometry_msgs/msg/Point", t), orientation=_quaternion(kit, q))


def pose_stamped(T_frame_body: np.ndarray, stamp_ns: int, frame_id: str,
                 kit: MessageKit = ROSBAGS) -> Any:
    """geometry_msgs/PoseStamped of a pose [4, 4] in ``frame_id``."""
    return kit.cls("geometry_msgs/msg/PoseStamped")(header=header(stamp_ns, frame_id, kit),
                                                    pose=pose_msg(T_frame_body, kit))


def _covariance(value: Any, what: str) -> np.ndarray:
    if value is None:
        return np.zeros(36)
    c = np.asarray(value, np.float64)
    if c.shape == (6,):
        c = np.diag(c)
    if c.size != 36 or not np.all(np.isfinite(c)):
        raise InputError(f"odometry {what}: need 6 variances or a 6x6 matrix, got shape {c.shape}")
    return c.reshape(36)


def odometry(T_odom_body: np.ndarray, stamp_ns: int, frame_id: str, child_frame_id: str,
             linear: Sequence[float] = (0.0, 0.0, 0.0), angular: Sequence[float] = (0.0, 0.0, 0.0),
             pose_covariance: Any = None, twist_covariance: Any = None,
             kit: MessageKit = ROSBAGS) -> Any:
    """nav_msgs/Odometry: pose [4, 4] in ``frame_id``; twist (m/s, rad/s) in the child frame;
    covariances as 6 variances (x, y, z, roll, pitch, yaw) or a 6x6 matrix (default zero)."""
    twist = kit.cls("geometry_msgs/msg/Twist")(
        linear=_vector(kit, "geometry_msgs/msg/Vector3", linear),
        angular=_vector(kit, "geometry_msgs/msg/Vector3", angular))
    return kit.cls("nav_msgs/msg/Odometry")(
        header=header(stamp_ns, frame_id, kit), child_frame_id=child_frame_id,
        pose=kit.cls("geometry_msgs/msg/PoseWithCovariance")(
            pose=pose_msg(T_odom_body, kit),
            covariance=_covariance(pose_covariance, "pose_covariance")),
        twist=kit.cls("geometry_msgs/msg/TwistWithCovariance")(
            twist=twist, covariance=_covariance(twist_covariance, "twist_covariance")))


def path_msg(poses: Sequence[np.ndarray] | np.ndarray, stamps_ns: Sequence[int], frame_id: str,
             stamp_ns: int | None = None, kit: MessageKit = ROSBAGS) -> Any:
    """nav_msgs/Path of poses [P, 4, 4] with their stamps; header stamp = the last pose's (or
    ``stamp_ns``)."""
    if len(poses) != len(stamps_ns):
        raise InputError(f"path: {len(poses)} poses but {len(stamps_ns)} stamps")
    if stamp_ns is None:
        stamp_ns = int(stamps_ns[-1]) if len(stamps_ns) else 0
    return kit.cls("nav_msgs/msg/Path")(
        header=header(stamp_ns, frame_id, kit),
        poses=[pose_stamped(T, s, frame_id, kit) for T, s in zip(poses, stamps_ns)])


# --------------------------------------------------------------------------------------------
# PointCloud2 (x, y, z float32 + rgb packed into a float32, the PCL/RViz convention)


def pointcloud2_from_points(points: np.ndarray, stamp_ns: int, frame_id: str,
                            colors: np.ndarray | None = None, kit: MessageKit = ROSBAGS) -> Any:
    """Unorganised PointCloud2 of points [N, 3] and optional colours [N, 3] uint8 RGB, packed as
    0x00RRGGBB in an ``rgb`` float32 field (16-byte points)."""
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
    field = kit.cls("sensor_msgs/msg/PointField")
    step = 4 * len(names)
    return kit.cls("sensor_msgs/msg/PointCloud2")(
        header=header(stamp_ns, frame_id, kit), height=1, width=n,
        fields=[field(name=nm, offset=4 * i, datatype=_POINTFIELD_FLOAT32, count=1)
                for i, nm in enumerate(names)],
        is_bigendian=False, point_step=step, row_step=step * n, data=kit.sequence(rec, "B"),
        is_dense=bool(np.all(np.isfinite(pts))))


# --------------------------------------------------------------------------------------------
# Status and the outputs of one pipeline step


def status_msg(record: StatusRecord, frame_id: str, kit: MessageKit = ROSBAGS) -> Any:
    """wint3r_ros/msg/ReconstructionStatus of a `StatusRecord`."""
    drops = dict(record.drops)
    return kit.cls("wint3r_ros/msg/ReconstructionStatus")(
        header=header(record.stamp_ns, frame_id, kit), window_index=int(record.window_index),
        latency_sec=float(record.latency_sec), model_sec=float(record.model_sec),
        fps=float(record.fps), frames_in=int(record.frames_in),
        frames_out=int(record.frames_out), drop_reasons=list(drops),
        drop_counts=kit.sequence([int(v) for v in drops.values()], "Q"),
        pool_size=int(record.pool_size), scale=float(record.scale),
        scale_is_metric=bool(record.scale_is_metric), resets=int(record.resets),
        state=str(record.state))


class OutMessage(NamedTuple):
    """One message to publish or write: topic (relative to the node, or /tf, /tf_static),
    the message and its stamp (the bag's log time)."""

    topic: str
    msg: Any
    stamp_ns: int


def output_messages(batch: OutputBatch, settings: Any, kit: MessageKit = ROSBAGS
                    ) -> Iterator[OutMessage]:
    """The messages of one `OutputBatch`, in publishing order, one at a time (so a large depth
    image is written or published before the next is made); ``settings``: the
    `OutputSettings` (frames, which outputs, covariances)."""
    s = settings
    world, base = s.world_frame, s.base_frame
    if batch.static:
        yield OutMessage("/tf_static", tf_message(
            [transform_stamped(t.transform, t.parent, t.child, t.stamp_ns, kit)
             for t in batch.static], kit), batch.static[0].stamp_ns)
    for p in batch.poses:
        if s.publish_tf:
            yield OutMessage("/tf", tf_message(
                [transform_stamped(p.odom_from_base, world, base, p.stamp_ns, kit)], kit),
                p.stamp_ns)
        if s.publish_odometry:
            yield OutMessage("odometry", odometry(
                p.odom_from_base, p.stamp_ns, world, base, p.linear, p.angular,
                s.pose_covariance, s.twist_covariance, kit), p.stamp_ns)
    if batch.camera_transforms:
        stamp = max(t.stamp_ns for t in batch.camera_transforms)
        yield OutMessage("/tf", tf_message(
            [transform_stamped(t.transform, t.parent, t.child, t.stamp_ns, kit)
             for t in batch.camera_transforms], kit), stamp)
    for f in batch.frames:   # each map made full size here, one message at a time
        if s.publish_depth:
            yield OutMessage(f"{f.camera}/depth", image_from_array(
                full_size(f.depth), "32FC1", f.stamp_ns, f.frame_id, kit=kit), f.stamp_ns)
            if f.info is not None:
                yield OutMessage(f"{f.camera}/camera_info", camera_info_msg(
                    f.info, f.stamp_ns, f.frame_id, kit), f.stamp_ns)
        if s.publish_confidence:
            yield OutMessage(f"{f.camera}/confidence", image_from_array(
                full_size(f.confidence), "32FC1", f.stamp_ns, f.frame_id, kit=kit), f.stamp_ns)
    if batch.path is not None and len(batch.path.stamps_ns) and s.publish_path:
        p = batch.path
        yield OutMessage("path", path_msg(p.poses, p.stamps_ns, world, kit=kit),
                         int(p.stamps_ns[-1]))
    if batch.cloud is not None and s.publish_cloud:
        c = batch.cloud
        yield OutMessage("cloud", pointcloud2_from_points(c.points, c.stamp_ns, world,
                                                          c.colors, kit), c.stamp_ns)


def rclpy_sequence(values: Any, typecode: str) -> array.array:
    """A variable-length field as rclpy stores it: array.array of ``typecode`` (one copy)."""
    out = array.array(typecode)
    a = np.asarray(values)
    if typecode == "B":
        if a.size:
            out.frombytes(memoryview(np.ascontiguousarray(a).reshape(-1)).cast("B"))
        return out
    out.frombytes(np.ascontiguousarray(a, _DTYPES[typecode]).reshape(-1).tobytes())
    return out
