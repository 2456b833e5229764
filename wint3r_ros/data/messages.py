"""ROS 2 message types without ROS: the project's typestore and numpy <-> message conversions.

`project_typestore()` is rosbags' Jazzy typestore plus the package's own messages
(``wint3r_ros/msg/WindowBatch``, ``wint3r_ros/msg/ReconstructionStatus``), so bags carry their
definitions the way ``ros2 bag record`` writes them. The builders are the project's one message
builder (`wint3r_ros.data.builders`, re-exported here), returning rosbags message objects by
default; the readers (`array_from_image`, `camera_from_camera_info`, `points_from_pointcloud2`,
`transforms_from_tf_message`, ...) only read attributes, so they accept rclpy messages as well.

Image encodings (``sensor_msgs/image_encodings``) read and written: mono8, 8UC1, rgb8, bgr8,
8UC3, rgba8, bgra8, 8UC4, mono16, 16UC1, 32FC1; camera input (`rgb_from_image`) only
INPUT_ENCODINGS. A malformed message raises `InputError` naming its topic.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import pose_from_translation_quat
from wint3r_ros.core.pipeline.records import CameraInfoRecord
from wint3r_ros.core.rig import DISTORTION_MODELS, Camera
from wint3r_ros.data.builders import (
    IMAGE_ENCODINGS,
    camera_info_from_camera,
    header,
    image_from_array,
    odometry,
    path_msg,
    pointcloud2_from_points,
    pose_stamped,
    tf_message,
    time_msg,
    transform_stamped,
)
from wint3r_ros.errors import CalibrationError, InputError, brief

__all__ = [
    "PROJECT_MSG_DEFINITIONS",
    "IMAGE_ENCODINGS",
    "INPUT_ENCODINGS",
    "check_input_encoding",
    "image_stamp_problem",
    "large_image_warning",
    "LARGE_IMAGE_BYTES",
    "MAX_IMAGE_BYTES",
    "check_image_layout",
    "project_typestore",
    "msg_class",
    "time_from_ns",
    "ns_from_time",
    "header",
    "stamp_ns_of",
    "image_from_array",
    "array_from_image",
    "rgb_from_image",
    "rgb_from_compressed",
    "rgb_from_camera_message",
    "compressed_format",
    "COMPRESSED_FORMATS",
    "camera_info_record",
    "camera_info_from_camera",
    "camera_from_camera_info",
    "transform_stamped",
    "tf_message",
    "transforms_from_tf_message",
    "pose_stamped",
    "odometry",
    "pose_from_odometry",
    "path_msg",
    "poses_from_path",
    "pointcloud2_from_points",
    "points_from_pointcloud2",
]

# The package's messages, as in msg/*.msg (test/data checks they match the files field by
# field). Embedded so the pip install, which does not ship msg/, can read and write its bags.
PROJECT_MSG_DEFINITIONS: dict[str, str] = {
    "wint3r_ros/msg/WindowBatch": """\
std_msgs/Header header
uint64 window_index
uint32 num_cameras
uint32 num_steps
uint32 overlap
string[] camera_names
string[] frame_ids
builtin_interfaces/Time[] image_stamps
sensor_msgs/Image[] images
sensor_msgs/CompressedImage[] compressed_images
sensor_msgs/CameraInfo[] camera_infos
uint32 epoch
""",
    "wint3r_ros/msg/ReconstructionStatus": """\
std_msgs/Header header
uint64 window_index
float32 latency_sec
float32 model_sec
float32 fps
uint64 frames_in
uint64 frames_out
string[] drop_reasons
uint64[] drop_counts
uint32 pool_size
float32 scale
bool scale_is_metric
uint32 resets
string state
""",
}


# What a camera may send (the model's input): colour, grey, Bayer mosaics and YUV 4:2:2 (both
# converted with OpenCV). 16UC1 and 32FC1 are depth, the 8UCn types name no channel order; they
# are refused as camera input (README, ROBUSTNESS.md).
BAYER_ENCODINGS = tuple(f"bayer_{p}{bits}" for bits in (8, 16)
                        for p in ("rggb", "bggr", "gbrg", "grbg"))
YUV_ENCODINGS = ("yuv422", "yuv422_yuy2")
INPUT_ENCODINGS = ("mono8", "rgb8", "bgr8", "rgba8", "bgra8", "mono16", *BAYER_ENCODINGS,
                   *YUV_ENCODINGS)
# sensor_msgs/CompressedImage formats taken as camera input (image_transport's "compressed")
COMPRESSED_FORMATS = ("jpeg", "png")

# Images: above LARGE_IMAGE_BYTES the shells warn (large_image_warning); above MAX_IMAGE_BYTES
# an image is refused (InputError), so every count-bounded buffer is bounded in bytes too.
LARGE_IMAGE_BYTES = 32 << 20
MAX_IMAGE_BYTES = 256 << 20

_POINTFIELD_FLOAT32 = 7
_NS = 1_000_000_000


@functools.lru_cache(maxsize=1)
def project_typestore() -> Any:
    """rosbags Typestore: ROS 2 Jazzy types (incl. tf2_msgs) + the package's own messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for name, text in PROJECT_MSG_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    if "tf2_msgs/msg/TFMessage" not in store.fielddefs:   # older stores lack it
        types.update(get_types_from_msg("geometry_msgs/TransformStamped[] transforms",
                                        "tf2_msgs/msg/TFMessage"))
    store.register(types)
    return store


def msg_class(msgtype: str) -> Any:
    """The rosbags message class for ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
    try:
        return project_typestore().types[msgtype]
    except KeyError as err:
        raise InputError(f"unknown message type {msgtype!r}") from err


# --------------------------------------------------------------------------------------------
# Time and headers


def time_from_ns(ns: int) -> Any:
    """builtin_interfaces/Time for a stamp in nanoseconds (floor division, nanosec >= 0)."""
    return time_msg(ns)


def ns_from_time(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time (rosbags or rclpy)."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def stamp_ns_of(msg: Any) -> int:
    """Header stamp of a message in nanoseconds."""
    return ns_from_time(msg.header.stamp)


def _where(topic: str) -> str:
    return f"topic {topic}" if topic else "message"


# --------------------------------------------------------------------------------------------
# Image


def check_image_layout(msg: Any, topic: str = "") -> tuple[np.ndarray, int, int, int, int]:
    """Check an Image of a known encoding: positive size, step >= one row, data == step x
    height bytes. Returns (data as flat uint8, height, width, step, row bytes); InputError
    naming the topic otherwise."""
    enc = str(msg.encoding)
    dtype, channels = IMAGE_ENCODINGS[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * channels * dtype.itemsize
    data = msg.data
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(memoryview(data), np.uint8)
    buf = buf.reshape(-1).view(np.uint8)
    if height <= 0 or width <= 0:
        raise InputError(f"{_where(topic)}: image size {width}x{height} is empty")
    if step < row:
        raise InputError(f"{_where(topic)}: step {step} is smaller than a row of {width} px "
                         f"{enc} ({row} bytes)")
    if step * height > MAX_IMAGE_BYTES:
        raise InputError(f"{_where(topic)}: a {width}x{height} {enc} image of "
                         f"{step * height / 2**20:.0f} MiB is larger than this package takes in "
                         f"({MAX_IMAGE_BYTES >> 20} MiB); every buffer holds several per camera")
    if buf.size != step * height:
        raise InputError(f"{_where(topic)}: data has {buf.size} bytes, expected step x height = "
                         f"{step} x {height} = {step * height} ({width}x{height} {enc})")
    return buf, height, width, step, row


def large_image_warning(msg: Any, topic: str, held_per_camera: int, cameras: int,
                        budget_bytes: int = 0, window_images: int = 0) -> str | None:
    """A warning when an image is above LARGE_IMAGE_BYTES or a window of such images does not
    fit ``budget_bytes``, with what the buffers may hold.

    Buffers (sync queues, reorder buffers, windows, outboxes) are bounded in images
    (``held_per_camera`` of each of ``cameras``) and, with ``budget_bytes`` (the node's
    buffer_budget_mb), in bytes: a window of ``window_images`` images is never cut, so that
    much is held whatever the budget. None for a normal image."""
    size = int(msg.step) * int(msg.height)
    floor = size * (window_images + cameras)
    if size < LARGE_IMAGE_BYTES and not (budget_bytes and floor > budget_bytes):
        return None
    total = size * held_per_camera * cameras
    text = (f"{_where(topic)}: {int(msg.width)}x{int(msg.height)} {msg.encoding} images of "
            f"{size / 2**20:.0f} MiB")
    if budget_bytes and budget_bytes < total:
        total = max(budget_bytes, floor)
        text += (f": buffer_budget_mb ({budget_bytes >> 20} MiB) holds about "
                 f"{budget_bytes // size} of them, so images waiting for a match are dropped "
                 f"first (byte_budget)")
        if floor > budget_bytes:
            text += (f"; one window of {window_images} images and each camera's newest need "
                     f"{floor / 2**30:.1f} GiB, more than the budget")
        text += f"; the buffers may hold about {total / 2**30:.1f} GiB"
    else:
        text += (f": the buffers may hold {held_per_camera} per camera, about "
                 f"{total / 2**30:.1f} GiB for {cameras} camera(s)")
    return text + ("; the model reads them scaled down, so a smaller driver resolution costs "
                   "nothing in accuracy")


def array_from_image(msg: Any, topic: str = "") -> np.ndarray:
    """The pixels of a sensor_msgs/Image as [H, W] or [H, W, C] in the encoding's dtype
    (native byte order; row padding removed; may share memory with the message, so copy before
    writing into it). Checks encoding, step and data size."""
    enc = str(msg.encoding)
    if enc not in IMAGE_ENCODINGS:
        raise InputError(f"{_where(topic)}: unsupported image encoding {enc!r} "
                         f"(supported: {', '.join(IMAGE_ENCODINGS)})")
    dtype, channels = IMAGE_ENCODINGS[enc]
    buf, height, width, step, row = check_image_layout(msg, topic)
    rows = buf.reshape(height, step)[:, :row]
    order = ">" if int(msg.is_bigendian) else "<"
    pixels = np.ascontiguousarray(rows).view(dtype.newbyteorder(order))
    pixels = pixels.astype(dtype, copy=False)        # to native byte order
    return pixels.reshape(height, width) if channels == 1 else \
        pixels.reshape(height, width, channels)


def check_input_encoding(msg: Any, topic: str = "") -> None:
    """InputError unless the image's encoding is a camera input encoding (INPUT_ENCODINGS)."""
    enc = str(msg.encoding)
    if enc not in INPUT_ENCODINGS:
        raise InputError(f"{_where(topic)}: image encoding {brief(enc)} is not supported "
                         f"(use one of {', '.join(INPUT_ENCODINGS)})")


def image_stamp_problem(stamp_ns: int) -> tuple[str, str] | None:
    """(reason, explanation) when an image's header stamp cannot be used, else None: 0 (the
    driver does not stamp: ``zero_stamp``) or negative (before 1970, which rosbag2 cannot
    store as a log time and TF tools misread: ``negative_stamp``)."""
    if stamp_ns == 0:
        return "zero_stamp", ("image stamp is 0 (the driver does not stamp its images; sync "
                              "needs capture stamps)")
    if stamp_ns < 0:
        return "negative_stamp", (f"image stamp {stamp_ns} ns is before 1970 (a clock that "
                                  f"was never set?); bags store times since 1970")
    return None


def rgb_from_image(msg: Any, topic: str = "") -> np.ndarray:
    """[H, W, 3] uint8 RGB of a camera image (what the model consumes): grey is repeated,
    mono16 keeps its high byte, alpha is dropped, BGR is reordered, Bayer mosaics are
    demosaiced and YUV 4:2:2 converted (OpenCV; 16-bit Bayer keeps its high byte). Other
    encodings (depth, 8UCn without a channel order) raise InputError listing INPUT_ENCODINGS."""
    check_input_encoding(msg, topic)
    a = array_from_image(msg, topic)
    enc = str(msg.encoding)
    if enc == "rgb8":
        return a
    if enc == "bgr8":
        return a[..., ::-1].copy()
    if enc == "rgba8":
        return a[..., :3].copy()
    if enc == "bgra8":
        return a[..., 2::-1].copy()
    if enc == "mono8":
        return np.repeat(a[..., None], 3, axis=2)
    if enc == "mono16":
        return np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2)
    return _rgb_with_opencv(a, enc, topic)


# OpenCV names a Bayer pattern by the second row's first two pixels: ROS "rggb" (R G / G B)
# is OpenCV's "BG" (cv_bridge's table). YUV: ROS yuv422 is UYVY, yuv422_yuy2 is YUYV.
_CV_BAYER = {"rggb": "BG", "bggr": "RG", "gbrg": "GR", "grbg": "GB"}


def _rgb_with_opencv(a: np.ndarray, enc: str, topic: str) -> np.ndarray:
    import cv2

    if enc in YUV_ENCODINGS:
        if a.shape[1] % 2:
            raise InputError(f"{_where(topic)}: {enc} needs an even width, got {a.shape[1]}")
        code = cv2.COLOR_YUV2RGB_UYVY if enc == "yuv422" else cv2.COLOR_YUV2RGB_YUY2
        return cv2.cvtColor(np.ascontiguousarray(a), code)
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(f"{_where(topic)}: a {a.shape[1]}x{a.shape[0]} {enc} image is too "
                         "small to demosaic")
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    code = getattr(cv2, f"COLOR_Bayer{_CV_BAYER[enc[6:10]]}2RGB")
    return cv2.cvtColor(np.ascontiguousarray(a), code)


def compressed_format(msg: Any) -> str:
    """'jpeg' or 'png' of a CompressedImage, from its format string ("jpeg", "png",
    image_transport's "rgb8; jpeg compressed bgr8") or, when that names neither, its magic
    bytes; '' for anything else."""
    text = str(msg.format).lower()
    for name in COMPRESSED_FORMATS:
        if name in text or (name == "jpeg" and "jpg" in text):
            return name
    head = bytes(memoryview(msg.data)[:8]) if len(msg.data) else b""
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"\x89PNG"):
        return "png"
    return ""


def rgb_from_compressed(msg: Any, topic: str = "") -> np.ndarray:
    """[H, W, 3] uint8 RGB of a JPEG or PNG sensor_msgs/CompressedImage (grey is repeated,
    16-bit keeps its high byte, alpha is dropped); InputError naming the topic for another
    format, undecodable data or an image above MAX_IMAGE_BYTES."""
    import cv2

    fmt = compressed_format(msg)
    if not fmt:
        raise InputError(f"{_where(topic)}: compressed image format {brief(str(msg.format))} is "
                         f"not supported (use {' or '.join(COMPRESSED_FORMATS)})")
    data = msg.data
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(memoryview(data), np.uint8)
    buf = buf.reshape(-1).view(np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise InputError(f"{_where(topic)}: compressed image ({buf.size} bytes, format "
                         f"{brief(str(msg.format))}) could not be decoded as {fmt}")
    if img.nbytes > MAX_IMAGE_BYTES:
        raise InputError(f"{_where(topic)}: a {img.shape[1]}x{img.shape[0]} compressed image "
                         f"decodes to {img.nbytes >> 20} MiB, more than this package takes in "
                         f"({MAX_IMAGE_BYTES >> 20} MiB)")
    if img.dtype != np.uint8:
        img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[..., 2::-1])
    return np.ascontiguousarray(img[..., ::-1])


def rgb_from_camera_message(msg: Any, topic: str = "") -> np.ndarray:
    """RGB of a camera message: a sensor_msgs/Image (`rgb_from_image`) or CompressedImage
    (`rgb_from_compressed`, told apart by its ``format`` field)."""
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return rgb_from_compressed(msg, topic)
    return rgb_from_image(msg, topic)


# --------------------------------------------------------------------------------------------
# CameraInfo


def camera_info_record(msg: Any, topic: str = "") -> CameraInfoRecord:
    """The fields of a sensor_msgs/CameraInfo (rclpy or rosbags) as a `CameraInfoRecord`;
    InputError naming the topic if K, D, R or P hold NaN or infinity (a width of 0 or K all
    zero is an uncalibrated camera, not an error)."""
    for fld in ("k", "d", "r", "p"):
        values = np.asarray(getattr(msg, fld), dtype=np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{_where(topic)}: camera_info field {fld.upper()} contains NaN or "
                             f"infinity: {values.tolist()[:12]}")
    return CameraInfoRecord(int(msg.width), int(msg.height), str(msg.distortion_model),
                            tuple(map(float, msg.d)), tuple(map(float, msg.k)),
                            tuple(map(float, msg.r)), tuple(map(float, msg.p)),
                            int(msg.binning_x), int(msg.binning_y))


def camera_from_camera_info(msg: Any, *, name: str, topic: str, info_topic: str = "",
                            T_base_camera: np.ndarray | None = None,
                            frame_id: str | None = None) -> Camera:
    """A `Camera` from a sensor_msgs/CameraInfo (frame defaults to the header's frame_id).

    Raises `InputError` for an uncalibrated message (K all zero), a size of zero, or a
    distortion model other than plumb_bob / equidistant (a 4-coefficient plumb_bob gets k3 = 0).
    A plumb_bob with all-zero coefficients (how drivers publish rectified images) becomes
    ``none``, the inverse of `camera_info_from_camera`.
    """
    where = _where(info_topic or topic)
    K = np.asarray(msg.k, dtype=np.float64).reshape(-1)
    if K.size != 9:
        raise InputError(f"{where}: camera_info K has {K.size} numbers, expected 9 (3x3)")
    K = K.reshape(3, 3)
    if not np.any(K):
        raise InputError(f"{where}: camera_info is uncalibrated (K is all zero)")
    model = str(msg.distortion_model) or "plumb_bob"
    D = np.asarray(msg.d, dtype=np.float64).reshape(-1)
    if model == "plumb_bob":
        if D.size == 0 or not np.any(D):
            model, D = "none", np.zeros(0)
        elif D.size == 4:
            D = np.append(D, 0.0)
    elif model == "fisheye":
        model = "equidistant"
    if model not in DISTORTION_MODELS:
        raise InputError(f"{where}: camera_info distortion_model {model!r} is not supported "
                         f"(plumb_bob or equidistant)")
    try:
        return Camera(
            name=name, topic=topic, frame_id=frame_id or str(msg.header.frame_id),
            width=int(msg.width), height=int(msg.height), K=K, distortion_model=model,
            distortion_coefficients=D,
            T_base_camera=np.eye(4) if T_base_camera is None else T_base_camera,
            camera_info_topic=info_topic or None)
    except CalibrationError as err:
        raise InputError(f"{where}: camera_info is not a usable calibration: {err}") from err


# --------------------------------------------------------------------------------------------
# Transforms, poses, odometry, path


def _matrix(position: Any, orientation: Any) -> np.ndarray:
    return pose_from_translation_quat(
        [position.x, position.y, position.z],
        [orientation.x, orientation.y, orientation.z, orientation.w])


def transforms_from_tf_message(msg: Any) -> list[tuple[str, str, int, np.ndarray]]:
    """(parent, child, stamp_ns, T_parent_child [4, 4]) for every transform of a TFMessage."""
    out = []
    for tr in msg.transforms:
        T = _matrix(tr.transform.translation, tr.transform.rotation)
        out.append((str(tr.header.frame_id), str(tr.child_frame_id), stamp_ns_of(tr), T))
    return out


def pose_from_odometry(msg: Any) -> np.ndarray:
    """Pose [4, 4] of an Odometry message (child frame in the header frame)."""
    return _matrix(msg.pose.pose.position, msg.pose.pose.orientation)


def poses_from_path(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(poses [P, 4, 4], stamps_ns [P] int64) of a nav_msgs/Path."""
    poses = [_matrix(p.pose.position, p.pose.orientation) for p in msg.poses]
    stamps = np.array([stamp_ns_of(p) for p in msg.poses], dtype=np.int64)
    return (np.stack(poses) if poses else np.zeros((0, 4, 4))), stamps


# --------------------------------------------------------------------------------------------
# PointCloud2 (x, y, z float32 [+ rgb packed as float32, the PCL convention])


def points_from_pointcloud2(msg: Any, topic: str = "") -> tuple[np.ndarray, np.ndarray | None]:
    """(points [N, 3] float32, colours [N, 3] uint8 or None) of a PointCloud2 whose x, y, z
    (and optional rgb) fields are float32; other fields are ignored."""
    fields = {str(f.name): f for f in msg.fields}
    for nm in ("x", "y", "z"):
        if nm not in fields or int(fields[nm].datatype) != _POINTFIELD_FLOAT32:
            raise InputError(f"{_where(topic)}: PointCloud2 needs float32 field {nm!r}, has "
                             f"{sorted(fields)}")
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    data = msg.data
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(memoryview(data), np.uint8)
    buf = buf.reshape(-1).view(np.uint8)
    if buf.size != int(msg.row_step) * int(msg.height) or int(msg.row_step) < step * \
            int(msg.width):
        raise InputError(f"{_where(topic)}: PointCloud2 data has {buf.size} bytes, expected "
                         f"row_step x height = {msg.row_step} x {msg.height}")
    rows = buf.reshape(int(msg.height), int(msg.row_step))[:, :step * int(msg.width)]
    recs = np.ascontiguousarray(rows).reshape(n, step)
    order = ">" if msg.is_bigendian else "<"

    def column(nm: str) -> np.ndarray:
        off = int(fields[nm].offset)
        return recs[:, off:off + 4].copy().view(f"{order}f4").reshape(n)

    pts = np.stack([column(nm) for nm in ("x", "y", "z")], -1).astype(np.float32)
    colors = None
    if "rgb" in fields or "rgba" in fields:
        packed = column("rgb" if "rgb" in fields else "rgba").view(
            f"{order}u4").astype(np.uint32)
        colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255],
                          -1).astype(np.uint8)
    return pts, colors
