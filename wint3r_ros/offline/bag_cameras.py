"""The cameras of a bag without a rig file: which topics are camera images, and where the
output camera_info's intrinsics come from (camera_info YAML files, or the bag's CameraInfo
topics, by default each image topic's sibling ``camera_info``), as the nodes without rig_file."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from wint3r_ros.errors import BagError, ConfigError

__all__ = ["CAMERA_TYPES", "sibling_camera_info_topic", "camera_info_topics"]

# message types process-bag reads as camera images
CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def sibling_camera_info_topic(image_topic: str) -> str:
    """The camera_info topic beside an image topic, as image_transport and camera drivers name
    it: ``/ns/cam/image_raw`` -> ``/ns/cam/camera_info`` (``.../compressed`` is skipped)."""
    parts = image_topic.rstrip("/").split("/")
    if parts[-1] in ("compressed", "compressedDepth", "theora") and len(parts) > 2:
        parts = parts[:-1]
    return "/".join(parts[:-1] + ["camera_info"]) if len(parts) > 1 else "camera_info"


def _camera_info_file(path: str) -> Any:
    from wint3r_ros.core.pipeline.records import CameraInfoRecord
    from wint3r_ros.data.rig_files import load_camera_info_yaml
    from wint3r_ros.errors import CalibrationError

    try:
        return CameraInfoRecord.from_camera(load_camera_info_yaml(path))
    except CalibrationError as err:
        raise ConfigError(f"--camera-info {path}: {err}") from err


def camera_info_topics(cfg: Any, names: list[str], image_topics: list[str],
                       available: Mapping[str, str], has_rig: bool, input_bag: Any,
                       log: Callable[[str], Any]) -> tuple[list[str | None], list[Any] | None]:
    """Without a rig, the intrinsics of the output camera_info, as the nodes take them
    without rig_file: from camera_info YAML files (fixed), else from the bag's CameraInfo
    topics (the latest message of each). (the CameraInfo topic per camera (None: none), the
    fixed camera_info records from files or None)."""
    n = len(names)
    if has_rig:
        if cfg.camera_info_files or cfg.camera_info_topics:
            raise ConfigError("--camera-info and --camera-info-topics are for a bag without "
                              "a rig file; the rig file's intrinsics are used")
        return [None] * n, None
    if cfg.camera_info_files:
        if len(cfg.camera_info_files) != n:
            raise ConfigError(f"--camera-info gives {len(cfg.camera_info_files)} files for "
                              f"{n} --topics")
        return [None] * n, [_camera_info_file(f) for f in cfg.camera_info_files]
    if cfg.camera_info_topics:
        if len(cfg.camera_info_topics) != n:
            raise ConfigError(f"--camera-info-topics gives {len(cfg.camera_info_topics)} "
                              f"topics for {n} --topics")
        topics: list[str | None] = list(cfg.camera_info_topics)
        bad = {t: available.get(t, "absent") for t in topics
               if available.get(t) != "sensor_msgs/msg/CameraInfo"}
        if bad:
            raise BagError(f"bag {input_bag}: --camera-info-topics {bad} are not "
                           f"sensor_msgs/msg/CameraInfo topics of the bag")
        return topics, None
    topics = [sibling_camera_info_topic(t) for t in image_topics]
    topics = [t if available.get(t) == "sensor_msgs/msg/CameraInfo" else None for t in topics]
    for name, image, info in zip(names, image_topics, topics):
        if info is None:
            log(f"process-bag: camera '{name}' ({image}): no rig file, no --camera-info "
                f"and no {sibling_camera_info_topic(image)} in the bag: its depth is "
                "written without camera_info")
    return topics, None
