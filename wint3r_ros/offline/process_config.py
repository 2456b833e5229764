"""process-bag's settings: the nodes' parameter files, each for its own half of the pipeline.

``--sync-config`` is read as sync_node's parameters (the front end: slop, queue_size in messages
per camera, min_cameras, windows, buffer_budget_mb for its images and a quarter of it for the
stamp-order buffer), ``--model-config`` as fusion_node's (model, engine, outputs; queue_size and
buffer_budget_mb of the windows waiting for the model, which process-bag does not have); a file
may hold both nodes' sections, as a launch file's parameter file does. Every value is checked with the nodes' own rules
(`core.pipeline.params`): an unknown name or a bad value is refused in one line naming the file.
The flags (``--checkpoint``, ``--device``, ``--input-long-side``, ``--threads``,
``--confidence-threshold``) are fusion_node parameters that override the model file.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wint3r_ros.core.pipeline.params import FUSION_PARAMETERS, SYNC_PARAMETERS, check_params
from wint3r_ros.errors import ConfigError

__all__ = ["FLAG_PARAMETERS", "ProcessConfig", "load_params_file", "settings_from_files"]

# process-bag's flags that set a fusion_node parameter
FLAG_PARAMETERS = {"checkpoint": "checkpoint", "device": "device",
                   "input_long_side": "input_long_side", "threads": "torch_threads",
                   "confidence_threshold": "confidence_threshold"}


@dataclass(frozen=True)
class ProcessConfig:
    """sync / fusion: sync_node's and fusion_node's parameter values (missing ones take the
    nodes' defaults; every value is checked with the nodes' rules). topics: image topics in
    camera order (empty: the rig's); storage: mcap or sqlite3; namespace: of the output topics;
    max_sets: stop after this many synchronised sets (0: all); progress: a bar (None: when
    stderr is a terminal). Without a rig (relative scale, as the nodes without rig_file):
    camera_info_files: a ROS camera_info YAML per topic; camera_info_topics: the bag's CameraInfo
    topic per image topic (empty: each image topic's sibling ``camera_info``, where the bag has
    it)."""

    sync: Mapping[str, Any] = field(default_factory=dict)
    fusion: Mapping[str, Any] = field(default_factory=dict)
    topics: tuple[str, ...] = ()
    storage: str = "mcap"
    namespace: str = "/fusion_node"
    max_sets: int = 0
    progress: bool | None = None
    camera_info_files: tuple[str, ...] = ()
    camera_info_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from wint3r_ros.data.bag import STORAGE_FORMATS

        if self.storage not in STORAGE_FORMATS:
            raise ConfigError(f"--format must be one of {STORAGE_FORMATS}, got {self.storage!r}")
        if self.max_sets < 0:
            raise ConfigError(f"--max-sets {self.max_sets} must be >= 0")
        object.__setattr__(self, "sync", check_params(self.sync, SYNC_PARAMETERS, "sync settings"))
        object.__setattr__(self, "fusion", check_params(self.fusion, FUSION_PARAMETERS,
                                                        "model settings"))


def load_params_file(path: str | Path, node: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node`` in a node parameter YAML: the ``/**`` section and the
    node's own (``<node>:`` or ``/<node>:``), as ROS applies them."""
    from wint3r_ros.yaml_io import load_yaml

    path = Path(path)
    doc = load_yaml(path, "parameter file")
    if not isinstance(doc, dict):
        raise ConfigError(f"parameter file {path}: not a mapping of nodes to ros__parameters")
    out: dict[str, Any] = {}
    for name in ("/**", node, f"/{node}"):
        body = doc.get(name)
        if isinstance(body, dict) and isinstance(body.get("ros__parameters"), dict):
            out.update(body["ros__parameters"])
    if not out:
        raise ConfigError(f"parameter file {path}: no '/**:' or '{node}:' section with "
                          "ros__parameters")
    return out


def settings_from_files(sync_file: Path | None, model_file: Path | None,
                        flags: Mapping[str, Any], **offline: Any) -> ProcessConfig:
    """The ProcessConfig of the parameter files (each checked against its own node's table)
    and the flags (fusion_node parameters, after the model file)."""
    sync = {} if sync_file is None else check_params(
        load_params_file(sync_file, "sync_node"), SYNC_PARAMETERS, f"--sync-config {sync_file}")
    fusion = {} if model_file is None else check_params(
        load_params_file(model_file, "fusion_node"), FUSION_PARAMETERS,
        f"--model-config {model_file}")
    fusion = fusion or check_params({}, FUSION_PARAMETERS, "")
    for flag, value in flags.items():
        if value is not None:
            fusion = check_params({FLAG_PARAMETERS[flag]: value}, FUSION_PARAMETERS,
                                  "--" + flag.replace("_", "-"), base=fusion)
    return ProcessConfig(sync=sync, fusion=fusion, **offline)
