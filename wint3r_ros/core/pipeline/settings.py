"""The checked parameter values (params.py) turned into what each stage takes, in one place.

Resolution order, the same for the nodes and process-bag: the checkpoint's card gives the model
defaults (input size, confidence threshold), a parameter file overrides the tables' defaults, the
command line (``-p``, process-bag's flags) overrides the file; a value of 0 for
``input_long_side`` or ``confidence_threshold`` means "the card's". `engine_config` is the one
function that builds the engine's configuration, `sync_settings` the front end's and
`output_settings` the output stage's.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wint3r_ros.core.synchronizer import SyncConfig
from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import ConfigError

if TYPE_CHECKING:   # the engine imports torch; sync_node and calibrate never need it
    from wint3r_ros.core.engine import EngineConfig

__all__ = ["SyncSettings", "OutputSettings", "ModelSettings", "sync_settings",
           "output_settings", "model_settings", "engine_config", "resolve_base_frame"]


@dataclass(frozen=True)
class SyncSettings:
    """The front end's settings: sync, the synchroniser's (`core.synchronizer.SyncConfig`:
    policy, slop, queue_size in messages per camera, min_cameras, time offsets, ...); window: L
    and O (images always in time order in a WindowBatch); buffer_bytes: the most bytes of images
    the sync queues and the window being built hold together, with what the caller holds of
    the windows (0: bounded by counts only)."""

    sync: SyncConfig = SyncConfig()
    window: WindowConfig = WindowConfig(4, 2, "time")
    buffer_bytes: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.buffer_bytes, bool) or not isinstance(self.buffer_bytes, int) or \
                self.buffer_bytes < 0:
            raise ConfigError(f"buffer_bytes={self.buffer_bytes!r} must be an integer >= 0 "
                              "(0: no byte budget)")


_SYNC_NAMES = ("sync_policy", "slop", "queue_size", "stream_timeout", "min_cameras",
               "jump_back_threshold", "auto_offset")


def sync_settings(values: Mapping[str, Any],
                  rig_offsets: Sequence[float] | None = None) -> SyncSettings:
    """SyncSettings of checked SYNC_PARAMETERS values (a new sync setting: its parameter in
    SYNC_PARAMETERS and its SyncConfig field here). time_offsets: the parameter when given
    (one per camera), else ``rig_offsets`` (each camera's time_offset in the rig file), else
    none."""
    offsets = tuple(float(v) for v in values["time_offsets"])
    if not offsets and rig_offsets and any(rig_offsets):
        offsets = tuple(float(v) for v in rig_offsets)
    return SyncSettings(
        sync=SyncConfig(**{k: values[k] for k in _SYNC_NAMES}, time_offsets=offsets),
        window=WindowConfig(values["window_length"], values["window_overlap"], "time"),
        buffer_bytes=int(values["buffer_budget_mb"]) << 20)


@dataclass(frozen=True)
class OutputSettings:
    """What the output stage publishes and how: frames (REP-105), which outputs, the cloud
    reduction, the path length and the odometry covariances (6 variances each)."""

    world_frame: str = "odom"
    base_frame: str = "base_link"
    publish_tf: bool = True
    publish_camera_tf: bool = True
    publish_depth: bool = True
    publish_confidence: bool = True
    publish_cloud: bool = True
    publish_odometry: bool = True
    publish_path: bool = True
    cloud_voxel_size: float = 0.05
    cloud_max_points: int = 50000
    path_max_poses: int = 2000
    pose_covariance: tuple[float, ...] = (0.01,) * 6
    twist_covariance: tuple[float, ...] = (0.1,) * 6

    def __post_init__(self) -> None:
        if self.world_frame == self.base_frame:
            raise ConfigError(f"world_frame and base_frame are both {self.world_frame!r}")


_OUTPUT_NAMES = ("world_frame", "publish_tf", "publish_camera_tf", "publish_depth",
                 "publish_confidence", "publish_cloud", "publish_odometry", "publish_path",
                 "cloud_voxel_size", "cloud_max_points", "path_max_poses")


def output_settings(values: Mapping[str, Any], base_frame: str) -> OutputSettings:
    """OutputSettings of checked FUSION_PARAMETERS values and the resolved base frame."""
    return OutputSettings(base_frame=base_frame,
                          pose_covariance=tuple(values["pose_covariance"]),
                          twist_covariance=tuple(values["twist_covariance"]),
                          **{k: values[k] for k in _OUTPUT_NAMES})


def resolve_base_frame(param: str, rig: Any, warn: Callable[[str], Any] | None = None) -> str:
    """The base frame: the parameter, else the rig file's, else base_link; a parameter that
    differs from the rig file's is used, with a warning (the calibration's poses are then read
    as poses in it)."""
    base = param or (rig.base_frame if rig is not None else "base_link")
    if rig is not None and rig.base_frame != base and warn is not None:
        warn(f"base_frame parameter {base!r} differs from rig_file's base_frame "
             f"{rig.base_frame!r}; using {base!r}")
    return base


@dataclass(frozen=True)
class ModelSettings:
    """The model-dependent values after the card: input long side (px), the confidence
    threshold in use and the card's (what 0 means), and a description of the weights."""

    input_long_side: int
    confidence_threshold: float
    card_threshold: float
    description: str


def model_settings(values: Mapping[str, Any], loaded: Any) -> ModelSettings:
    """Resolve ``input_long_side`` and ``confidence_threshold`` (0: the checkpoint card's, see
    `model.loader.confidence_threshold_for`) against the loaded model's card; ``loaded`` None
    (a model given in code) takes the tiny model's input side, 128."""
    from wint3r_ros.model.loader import confidence_threshold_for

    side = values["input_long_side"] or (loaded.input_long_side if loaded is not None else 128)
    what = loaded.description if loaded is not None else "given model"
    card = confidence_threshold_for(0.0, loaded)
    return ModelSettings(side, confidence_threshold_for(values["confidence_threshold"], loaded),
                         card, what)


def engine_config(values: Mapping[str, Any], model: ModelSettings, *, cameras: int,
                  window: WindowConfig, warn: Callable[[str], Any] | None = None) -> EngineConfig:
    """The engine's configuration from checked FUSION_PARAMETERS values, the resolved model
    settings and the windows' shape (N cameras, L, O). A token pool smaller than two windows is
    raised to two windows (with a warning)."""
    from wint3r_ros.core.engine import EngineConfig

    L = window.size
    pool = values["max_pool_tokens"] or None
    if pool is not None and pool < 2 * L * cameras:
        if warn is not None:
            warn(f"max_pool_tokens={pool} cannot hold two windows of {L * cameras} frames; "
                 f"using {2 * L * cameras}")
        pool = 2 * L * cameras
    return EngineConfig(
        window=WindowConfig(window.size, window.overlap, values["image_order"]),
        target_long_side=model.input_long_side, conf_threshold=model.confidence_threshold,
        merge=values["merge"], max_pool_entries=pool, keyframe_every=values["pool_keyframe_every"],
        points=values["publish_cloud"] or values["map_max_points"] > 0,
        points_stride=values["cloud_pixel_stride"],
        max_scale_fit_residual=values["scale_fit_max_residual"])
