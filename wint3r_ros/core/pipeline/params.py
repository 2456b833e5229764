"""Every setting of the two pipeline halves, declared once: name, default, kind, meaning, range.

`SYNC_PARAMETERS` are sync_node's (the front end: sync policy and windows), `FUSION_PARAMETERS`
fusion_node's (model, engine and outputs). The nodes declare them as ROS parameters
(`wint3r_ros.ros.params.declare_parameters`), process-bag reads the same names from the same
YAML files (`--sync-config`, `--model-config`) and its command line, and both check every value
with `validate`: one rule per setting, whichever shell runs the pipeline. The two tables stay
apart: ``queue_size`` is messages per camera in one and windows in the other.

`check_params(values, specs, where)` is the whole check of a set of values outside ROS: unknown
names are refused (a misspelt key would otherwise be ignored), every bad value is named with its
reason in one line, and the cross-field rules (`cross_check`) apply. No rclpy here.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wint3r_ros.core.synchronizer import SYNC_POLICIES
from wint3r_ros.errors import ConfigError

__all__ = ["ParamSpec", "KINDS", "validate", "check_params", "cross_check", "format_table",
           "format_value", "SYNC_PARAMETERS", "FUSION_PARAMETERS", "INPUT_QOS_NAMES",
           "TRANSPORTS", "defaults"]

KINDS = ("bool", "int", "float", "str", "str_list", "float_list")
INPUT_QOS_NAMES = ("sensor_data", "reliable", "best_available")
TRANSPORTS = ("raw", "jpeg")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter. kind in KINDS; low/high: inclusive numeric range (for lists: of every
    element); choices: allowed strings; read_only: read at start-up only; rule: extra check
    returning a reason (or None) for a value that passed the others."""

    name: str
    default: Any
    kind: str
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = True
    rule: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"ParamSpec {self.name}: kind {self.kind!r} not in {KINDS}")

    @property
    def constraints(self) -> str:
        """Human-readable range / choices ('' when none)."""
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            parts.append(f"in [{lo}, {hi}]")
        if not self.read_only:
            parts.append("changeable at run time")
        return "; ".join(parts)


def _number(value: Any, integer: bool) -> Any:
    if isinstance(value, bool):
        return None
    if integer:
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _short(value: Any) -> str:
    """repr of a value, cut to 80 characters (a message never prints unbounded input)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _list_value(spec: ParamSpec, value: Any) -> tuple[Any, list, str | None]:
    if value is None:
        value = []
    if not isinstance(value, (list, tuple)):
        return value, [], f"must be a list, got {_short(value)}"
    if spec.kind == "str_list":
        if not all(isinstance(v, str) for v in value):
            return value, [], f"must be a list of strings, got {_short(value)}"
        return list(value), [], None
    nums = [_number(v, False) for v in value]
    if any(v is None for v in nums):
        return value, [], f"must be a list of numbers, got {_short(value)}"
    return nums, nums, None


def _scalar_value(spec: ParamSpec, value: Any) -> tuple[Any, list, str | None]:
    kind = spec.kind
    if kind == "bool":
        ok = isinstance(value, bool)
        return value, [], None if ok else f"must be true or false, got {_short(value)}"
    if kind in ("int", "float"):
        num = _number(value, kind == "int")
        if num is None:
            what = "an integer" if kind == "int" else "a number"
            return value, [], f"must be {what}, got {_short(value)}"
        if kind == "float" and not math.isfinite(num):
            return value, [], f"must be finite, got {_short(value)}"
        return num, [num], None
    ok = isinstance(value, str)
    return value, [], None if ok else f"must be a string, got {_short(value)}"


def validate(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """(coerced value, None) or (value, reason it is rejected) for ``spec``.

    Integers are accepted for floating point parameters (``-p slop:=1``) and None (ROS's "not
    set", what ``-p topics:=[]`` gives) for lists."""
    if spec.kind.endswith("_list"):
        value, numbers, reason = _list_value(spec, value)
    else:
        value, numbers, reason = _scalar_value(spec, value)
    if reason:
        return value, reason
    for v in numbers:
        if (spec.low is not None and v < spec.low) or (spec.high is not None and v > spec.high):
            return value, f"{v!r} is out of range ({spec.constraints})"
    if spec.choices:
        for v in (value if spec.kind == "str_list" else [value]):
            if v not in spec.choices:
                return value, f"{_short(v)} is not one of {', '.join(spec.choices)}"
    if spec.rule is not None:
        reason = spec.rule(value)
        if reason:
            return value, reason
    return value, None


def defaults(specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """{name: default} of a table (lists copied)."""
    return {s.name: list(s.default) if isinstance(s.default, list) else s.default for s in specs}


def cross_check(values: Mapping[str, Any]) -> str | None:
    """Rules across settings of one table (None: fine): window overlap below its length, and
    distinct world and base frames."""
    if "window_overlap" in values and "window_length" in values and \
            values["window_overlap"] >= values["window_length"]:
        return (f"window_overlap={values['window_overlap']} must be smaller than "
                f"window_length={values['window_length']}")
    if "world_frame" in values and values.get("base_frame") == values["world_frame"]:
        return f"world_frame and base_frame are both {values['world_frame']!r}"
    if values.get("auto_offset") and values.get("sync_policy") == "exact":
        return "auto_offset needs sync_policy approximate (exact stamps cannot absorb an estimate)"
    return None


def _unknown(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), 1)
    return f"{name} (did you mean {close[0]}?)" if close else name


def check_params(values: Mapping[str, Any], specs: Sequence[ParamSpec], where: str,
                 base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default: the table's defaults) updated with ``values``, every value checked
    with its spec; ConfigError naming every unknown name and bad value of ``where`` at once."""
    by_name = {s.name: s for s in specs}
    out = dict(base) if base is not None else defaults(specs)
    problems = []
    unknown = sorted(str(k)[:60] for k in values if k not in by_name)
    if unknown:
        problems.append("unknown parameter(s) " + ", ".join(_unknown(u, by_name) for u in unknown[:10]))
    for name, raw in values.items():
        if name in by_name:
            value, reason = validate(by_name[name], raw)
            if reason:
                problems.append(f"{name}: {reason}")
            out[name] = value
    if not problems:
        reason = cross_check(out)
        if reason:
            problems.append(reason)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return out


def format_table(specs: Sequence[ParamSpec]) -> str:
    """A Markdown table of the parameters (name, default, meaning and range)."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for s in specs:
        extra = f" ({s.constraints})" if s.constraints else ""
        rows.append(f"| `{s.name}` | `{format_value(s.default)}` | {s.description}{extra} |")
    return "\n".join(rows)


def format_value(value: Any) -> str:
    """A parameter value as it is written in a params YAML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return repr(float(value)) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# Rules


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def names_rule(names: list[str]) -> str | None:
    """Camera names become topic names: a letter, then letters, digits and '_'; unique."""
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        return (f"camera names {bad} must start with a letter and hold only letters, digits and "
                "'_' (they become topic names)")
    if len(set(names)) != len(names):
        return f"camera names {names} must be unique"
    return None


def _topics_rule(topics: list[str]) -> str | None:
    bad = [t for t in topics if not t or " " in t]
    return f"topics {bad} are not valid topic names" if bad else None


IMAGE_TRANSPORTS = ("raw", "compressed")


def _transports_rule(transports: list[str]) -> str | None:
    bad = [t for t in transports if t not in IMAGE_TRANSPORTS]
    return f"image_transports {bad}: each must be raw or compressed" if bad else None


def compressed_topic(image_topic: str) -> str:
    """image_transport's compressed topic of a base image topic (unchanged when it already is)."""
    return image_topic if image_topic.endswith("/compressed") else image_topic.rstrip("/") + \
        "/compressed"


def frame_rule(name: str) -> str | None:
    """A usable tf2 frame id (empty allowed: "the rig file's")."""
    if name and (name.startswith("/") or any(c.isspace() for c in name)):
        return (f"TF frame id {name!r} must not start with '/' or hold whitespace "
                "(tf2 rejects it)")
    return None


def _world_frame_rule(name: str) -> str | None:
    return "must not be empty" if not name else frame_rule(name)


def _multiple_of_16(v: int) -> str | None:
    return None if v % 16 == 0 else f"{v} is not a multiple of 16"


def _six(v: list) -> str | None:
    return None if len(v) == 6 else f"needs 6 values, got {len(v)}"


# --------------------------------------------------------------------------------------------
# The tables


SYNC_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("camera_names", [], "str_list",
              "Camera names in rig order (empty: the cameras of rig_file)", rule=names_rule),
    ParamSpec("image_topics", [], "str_list",
              "sensor_msgs/Image topic per camera, same order (empty: the rig_file topics, "
              "else /<name>/image_raw)", rule=_topics_rule),
    ParamSpec("image_transports", [], "str_list",
              "Per camera, same order: raw (sensor_msgs/Image on its image topic) or compressed "
              "(sensor_msgs/CompressedImage, JPEG or PNG, on <image topic>/compressed); empty: "
              "all raw", rule=_transports_rule),
    ParamSpec("camera_info_topics", [], "str_list",
              "sensor_msgs/CameraInfo topic per camera, same order (empty: the rig_file's, else "
              "intrinsics from rig_file only)", rule=_topics_rule),
    ParamSpec("rig_file", "", "str",
              "Rig calibration YAML (`wint3r-ros calibrate` writes one); empty: none"),
    ParamSpec("base_frame", "base_link", "str",
              "Rig base frame written into WindowBatch headers (empty: the rig_file's)",
              rule=frame_rule),
    ParamSpec("sync_policy", "approximate", "str",
              "approximate: sets within slop; exact: identical stamps (hardware-triggered rig)",
              choices=SYNC_POLICIES),
    ParamSpec("slop", 0.02, "float", "Largest spread of the stamps of one synchronised set, s",
              low=0.0, high=1.0, read_only=False),
    ParamSpec("queue_size", 10, "int", "Messages kept per camera while waiting for a match",
              low=1, high=1000, read_only=False),
    ParamSpec("buffer_budget_mb", 1024, "int",
              "Most MiB of images the sync queues, the window being built and the outbox hold "
              "together; over it the oldest image waiting for a match is dropped (byte_budget) "
              "and the oldest waiting window (outbox_full); 0: bounded by counts only",
              low=0, high=1_000_000),
    ParamSpec("stream_timeout", 1.0, "float",
              "A camera without messages for this long (stream time, s) is silent",
              low=0.01, high=3600.0, read_only=False),
    ParamSpec("min_cameras", 0, "int",
              "0: every set needs all cameras; k > 0: keep going with >= k cameras while others "
              "are silent", low=0, high=64),
    ParamSpec("jump_back_threshold", 1.0, "float",
              "A stamp this far (s) behind its camera's newest is a time jump: new epoch",
              low=0.001, high=1e6),
    ParamSpec("time_offsets", [], "float_list",
              "Seconds added to each camera's stamps before matching, one per camera (empty: "
              "the rig_file's time_offset, e.g. Kalibr's timeshift_cam_imu, else 0)",
              low=-10.0, high=10.0),
    ParamSpec("auto_offset", False, "bool",
              "Subtract each camera's measured clock offset (following its drift) before "
              "matching; approximate policy only"),
    ParamSpec("window_length", 4, "int", "Window length L (synchronised sets per window)",
              low=1, high=64),
    ParamSpec("window_overlap", 2, "int", "Window overlap O (sets shared by consecutive windows, < L)",
              low=0, high=63),
    ParamSpec("hold_timeout", 1.0, "float",
              "Send the sets that wait for a window (and every set still possible) when no image "
              "has come for this long (wall time, s: the end of a bag, stopped cameras; below "
              "fusion_node's hold_timeout); 0: never", low=0.0, high=3600.0, read_only=False),
    ParamSpec("input_qos", "sensor_data", "str",
              "QoS of the image and camera_info subscriptions", choices=INPUT_QOS_NAMES),
    ParamSpec("bag_mode", False, "bool",
              "Lossless bag playback: reliable inputs with a deep history (input_qos ignored) "
              "and windows never dropped (a full outbox makes the image callback wait)"),
    ParamSpec("transport", "raw", "str", "Images in outgoing WindowBatch messages",
              choices=TRANSPORTS, read_only=False),
    ParamSpec("jpeg_quality", 90, "int", "JPEG quality with transport jpeg", low=1, high=100,
              read_only=False),
    ParamSpec("status_period", 1.0, "float", "Seconds (wall time) between status messages",
              low=0.05, high=3600.0),
    ParamSpec("silence_timeout", 5.0, "float",
              "Warn when an input topic delivers nothing for this long (wall time, s)",
              low=0.1, high=3600.0),
)

FUSION_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", "", "str",
              "Model weights (.safetensors/.pth/.bin); empty: the package's tiny checkpoint"),
    ParamSpec("model_preset", "tiny", "str", "Network configuration of the weights",
              choices=("tiny", "official")),
    ParamSpec("device", "auto", "str", "auto (CUDA when present), cpu, cuda or cuda:N"),
    ParamSpec("precision", "fp32", "str",
              "Transformer matmul precision; auto: bf16 where the device has it (docs/MODEL.md)",
              choices=("auto", "fp32", "bf16", "fp16", "int8")),
    ParamSpec("input_long_side", 0, "int",
              "Long side of the model input, px (multiple of 16); 0: the checkpoint's own",
              low=0, high=4096, rule=_multiple_of_16),
    ParamSpec("torch_threads", 0, "int",
              "CPU threads for torch; 0: auto, half the cores (1 to 4), which keeps its speed "
              "when other processes use the CPU (torch's own default, every core, does not)",
              low=0, high=1024),
    ParamSpec("confidence_threshold", 0.0, "float",
              "Depth and cloud points below this model confidence (>= 1) are NaN / left out; "
              "0: the checkpoint card's value (else 1.5); 1: keep every pixel",
              low=0.0, high=1e6, read_only=False),
    ParamSpec("scale_fit_max_residual", 0.25, "float",
              "A time step's rig fit (metric scale) is refused when its residual exceeds this share "
              "of the rig's size: the model did not resolve the camera positions",
              low=1e-6, high=1e6),
    ParamSpec("max_pool_tokens", 512, "int",
              "Bound on the camera token pool (frames); 0: unbounded (the authors' behaviour)",
              low=0, high=10_000_000),
    ParamSpec("pool_keyframe_every", 4, "int",
              "Keep every k-th window's tokens when the pool is full", low=1, high=10_000),
    ParamSpec("merge", "overlap", "str",
              "overlap: frames seen by two windows take the later pose (one window more "
              "latency); first: publish from the first window", choices=("overlap", "first")),
    ParamSpec("image_order", "time", "str", "Order of a window's images for the model",
              choices=("time", "camera")),
    ParamSpec("bag_mode", False, "bool",
              "Lossless bag playback: a deep reliable windows subscription, a full queue makes "
              "the callback wait instead of dropping, no latency budget"),
    ParamSpec("queue_size", 2, "int", "Windows waiting for the model (full: the oldest is dropped)",
              low=1, high=1000),
    ParamSpec("buffer_budget_mb", 1024, "int",
              "Most MiB of images in the windows waiting for the model (over it the oldest "
              "waiting window is dropped, byte_budget; the newest is always taken); 0: bounded "
              "by queue_size only", low=0, high=1_000_000),
    ParamSpec("hold_timeout", 2.0, "float",
              "Publish the frames held for the next window's merge when no window has come for "
              "this long (wall time, s: the end of a bag, stopped cameras); 0: never",
              low=0.0, high=3600.0, read_only=False),
    ParamSpec("latency_budget", 1.0, "float",
              "Drop a window older than this (stream time, s) than the newest one received; 0: never",
              low=0.0, high=1e6, read_only=False),
    ParamSpec("rig_file", "", "str",
              "Rig calibration YAML: camera optical frames for /tf_static and the metric scale"),
    ParamSpec("extrinsics_source", "rig_file", "str",
              "Camera mountings: rig_file's T_base_camera, or tf: /tf_static's base_frame -> each "
              "camera's frame_id (robot_state_publisher from a URDF; intrinsics from rig_file, "
              "else the windows' camera_info)", choices=("rig_file", "tf")),
    ParamSpec("tf_timeout", 5.0, "float",
              "With extrinsics_source tf: longest wait for the camera frames on /tf_static after "
              "start-up (s); then an error naming the missing frame, counted (tf_missing)",
              low=0.0, high=3600.0),
    ParamSpec("world_frame", "odom", "str", "Frame of TF, odometry, path and cloud (REP-105 odom)",
              rule=_world_frame_rule),
    ParamSpec("base_frame", "base_link", "str", "Rig base frame (empty: the rig_file's)",
              rule=frame_rule),
    ParamSpec("publish_tf", True, "bool", "Publish world_frame -> base_frame on /tf"),
    ParamSpec("publish_camera_tf", True, "bool",
              "Publish base_frame -> camera optical frames: on /tf_static from rig_file (without "
              "one: camera 0's assumed mount, the others on /tf from the reconstruction); off "
              "when robot_state_publisher already does"),
    ParamSpec("publish_depth", True, "bool", "Publish ~/<camera>/depth and ~/<camera>/camera_info"),
    ParamSpec("publish_confidence", True, "bool", "Publish ~/<camera>/confidence"),
    ParamSpec("publish_cloud", True, "bool", "Publish ~/cloud"),
    ParamSpec("publish_odometry", True, "bool", "Publish ~/odometry"),
    ParamSpec("publish_path", True, "bool", "Publish ~/path"),
    ParamSpec("cloud_voxel_size", 0.05, "float",
              "Voxel edge of the cloud, m (model units without metric scale); 0: no voxel filter",
              low=0.0, high=100.0, read_only=False),
    ParamSpec("cloud_max_points", 50000, "int", "Most points per cloud message", low=1,
              high=100_000_000, read_only=False),
    ParamSpec("cloud_pixel_stride", 4, "int", "Cloud points from every k-th model pixel",
              low=1, high=64),
    ParamSpec("map_voxel_size", 0.1, "float",
              "Voxel edge of the accumulated map (~/map_cloud, ~/save_map), m (model units "
              "without metric scale): one point per voxel, the mean of its points",
              low=0.001, high=100.0),
    ParamSpec("map_max_points", 500000, "int",
              "Most voxels in the map (43 bytes each); over it the least recently seen voxels "
              "are evicted; 0: no map", low=0, high=100_000_000),
    ParamSpec("map_max_poses", 1000000, "int",
              "Base poses kept for ~/save_map's trajectory (oldest dropped)", low=1,
              high=100_000_000),
    ParamSpec("publish_map", True, "bool", "Publish ~/map_cloud (transient local)"),
    ParamSpec("map_period", 2.0, "float",
              "Seconds (wall time) between ~/map_cloud messages (only when the map changed)",
              low=0.1, high=3600.0),
    ParamSpec("path_max_poses", 2000, "int", "Poses kept in ~/path (oldest dropped)", low=1,
              high=10_000_000),
    ParamSpec("pose_covariance", [0.01, 0.01, 0.01, 0.01, 0.01, 0.01], "float_list",
              "Odometry pose variances (x, y, z, roll, pitch, yaw); the model gives none, "
              "so this is a setting", low=0.0, high=1e9, rule=_six),
    ParamSpec("twist_covariance", [0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "float_list",
              "Odometry twist variances (vx, vy, vz, wx, wy, wz)", low=0.0, high=1e9, rule=_six),
    ParamSpec("status_period", 1.0, "float", "Seconds (wall time) between /diagnostics messages",
              low=0.05, high=3600.0),
    ParamSpec("silence_timeout", 10.0, "float",
              "Warn when ~/windows delivers nothing for this long (wall time, s)",
              low=0.1, high=3600.0),
)
