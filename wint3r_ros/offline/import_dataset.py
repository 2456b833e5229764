"""``wint3r-ros import-dataset KIND:PATH OUT``: a published dataset sequence as a rosbag2.

The bag has make-bag's layout, so process-bag, replay, report and ``eval --bag`` take it as
they take a make-bag recording: per camera ``sensor_msgs/Image`` (rgb8) and ``CameraInfo`` on the
rig's topics, ``/tf_static`` with each camera under the rig's base frame, and the dataset's
ground truth on topics of its own: ``/ground_truth/tf`` (``world`` -> base frame, for the sets
that have a pose) and ``/ground_truth/<camera>/depth`` (32FC1 metres, NaN = no value). The rig
is written beside the bag as ``OUT.rig.yaml`` and into its metadata, as make-bag does.

Stamps are the dataset's. Datasets that store no absolute time (7-Scenes, ScanNet, KITTI) start
at 0, which ROS reads as "not stamped"; their stamps are shifted by ``--time-origin`` (1 s).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from wint3r_ros.data.bag import STORAGE_FORMATS, BagWriter, sigterm_as_interrupt
from wint3r_ros.data.datasets import DatasetSequence, open_dataset
from wint3r_ros.data.messages import camera_info_from_camera, image_from_array, tf_message, transform_stamped
from wint3r_ros.data.rig_files import rig_to_dict, save_rig
from wint3r_ros.errors import BagError, ConfigError
from wint3r_ros.offline.make_bag import (
    GROUND_TRUTH_TF_TOPIC,
    RIG_CUSTOM_DATA_KEY,
    WORLD_FRAME,
    ground_truth_depth_topic,
    rig_path_for,
)
from wint3r_ros.yaml_io import dump_yaml

__all__ = ["DATASET_CUSTOM_DATA_KEY", "ImportConfig", "ImportResult", "import_sequence",
           "choose_sequence", "configure", "run"]

DATASET_CUSTOM_DATA_KEY = "wint3r_ros.dataset"
_LOG_DELAY_NS = 1_000_000          # messages are logged 1 ms per camera after their stamp


@dataclass(frozen=True)
class ImportConfig:
    """Which sets (start, count, stride), the storage, ground truth or not, the time origin."""

    start: int = 0
    frames: int | None = None
    stride: int = 1
    storage: str = "mcap"
    ground_truth: bool = True
    time_origin_ns: int = 1_000_000_000

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_FORMATS:
            raise ConfigError(f"--format must be one of {STORAGE_FORMATS}, got {self.storage!r}")
        if self.start < 0 or self.stride < 1 or (self.frames is not None and self.frames < 1):
            raise ConfigError(f"--start {self.start} --frames {self.frames} --stride "
                              f"{self.stride}: start >= 0, frames >= 1, stride >= 1")


@dataclass
class ImportResult:
    bag: Path
    rig_path: Path
    sequence: str
    sets: int
    counts: dict[str, int] = field(default_factory=dict)


def choose_sequence(sequences: list[DatasetSequence], name: str | None, spec: str) -> DatasetSequence:
    """The one sequence of `spec`, or the one called `name` among several."""
    names = [s.name for s in sequences]
    if name is not None:
        if name not in names:
            raise ConfigError(f"{spec}: no sequence {name!r}; it has {names}")
        return sequences[names.index(name)]
    if len(sequences) > 1:
        raise ConfigError(f"{spec} holds {len(sequences)} sequences {names[:8]}: pick one with "
                          "--sequence NAME or point PATH at it")
    return sequences[0]


def import_sequence(seq: DatasetSequence, out: str | Path, config: ImportConfig = ImportConfig()
                    ) -> ImportResult:
    """Write the selected sets of `seq` into a new bag at `out` (must not exist)."""
    out = Path(out)
    if out.exists():
        raise BagError(f"output bag {out} already exists; choose a new path or remove it")
    seq = seq.select(config.start, config.frames, config.stride)
    rig = seq.rig
    shift = config.time_origin_ns if seq.frames[0].stamp_ns < config.time_origin_ns else 0
    described = json.dumps({"kind": seq.kind, "name": seq.name, "root": str(seq.root),
                            "start": config.start, "frames": len(seq), "stride": config.stride,
                            "stamp_shift_ns": shift, "notes": seq.notes})
    rig_path = rig_path_for(out)
    writer = BagWriter(out, config.storage,
                       custom_data={RIG_CUSTOM_DATA_KEY: dump_yaml(rig_to_dict(rig), sort_keys=False),
                                    DATASET_CUSTOM_DATA_KEY: described})
    save_rig(rig, rig_path, comment=f"{seq.kind} sequence {seq.name} (wint3r-ros import-dataset)")
    with sigterm_as_interrupt(), writer:
        for cam in rig.cameras:
            writer.add_topic(cam.topic, "sensor_msgs/msg/Image")
            writer.add_topic(cam.camera_info_topic, "sensor_msgs/msg/CameraInfo")
        first = seq.frames[0].stamp_ns + shift
        writer.write("/tf_static", tf_message(
            transform_stamped(cam.T_base_camera, rig.base_frame, cam.frame_id, first)
            for cam in rig.cameras), first)
        for t, frame in enumerate(seq.frames):
            _write_set(writer, seq, t, frame.stamp_ns + shift, config.ground_truth)
    return ImportResult(out, rig_path, seq.name, len(seq), dict(writer.counts))


def _write_set(writer: BagWriter, seq: DatasetSequence, t: int, stamp: int, ground_truth: bool) -> None:
    rig = seq.rig
    pose = seq.frames[t].world_from_base
    if ground_truth and pose is not None:
        writer.write(GROUND_TRUTH_TF_TOPIC, tf_message([transform_stamped(
            pose, WORLD_FRAME, rig.base_frame, stamp)]), stamp)
    for c, cam in enumerate(rig.cameras):
        log_time = stamp + _LOG_DELAY_NS * (1 + c)
        writer.write(cam.topic, image_from_array(seq.image(t, c), "rgb8", stamp, cam.frame_id,
                                                 cam.topic), log_time)
        writer.write(cam.camera_info_topic, camera_info_from_camera(cam, stamp), log_time)
        depth = seq.depth(t, c) if ground_truth else None
        if depth is not None:
            topic = ground_truth_depth_topic(cam.name)
            writer.write(topic, image_from_array(depth, "32FC1", stamp, cam.frame_id, topic), log_time)


def configure(parser: argparse.ArgumentParser) -> None:
    from wint3r_ros.data.datasets import DATASETS

    kinds = "; ".join(f"{k}: {v[2]}" for k, v in DATASETS.items())
    parser.add_argument("dataset", help=f"KIND:PATH ({kinds})")
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--sequence", default=None, help="the sequence to take when PATH holds several")
    parser.add_argument("--start", type=int, default=0, help="first set (default 0)")
    parser.add_argument("--frames", type=int, default=None, help="number of sets (default: all)")
    parser.add_argument("--stride", type=int, default=1, help="take every N-th set (default 1)")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap",
                        help="rosbag2 storage (default mcap)")
    parser.add_argument("--no-ground-truth", action="store_true",
                        help="leave out the ground-truth pose and depth topics")
    parser.add_argument("--time-origin", type=float, default=1.0,
                        help="seconds added to the stamps of datasets whose time starts below it "
                             "(default 1: a zero stamp means 'unstamped' in ROS)")


def run(args: argparse.Namespace) -> int:
    config = ImportConfig(start=args.start, frames=args.frames, stride=args.stride,
                          storage=args.format, ground_truth=not args.no_ground_truth,
                          time_origin_ns=round(args.time_origin * 1e9))
    seq = choose_sequence(open_dataset(args.dataset), args.sequence, args.dataset)
    result = import_sequence(seq, args.out, config)
    print(f"wrote {result.bag} ({config.storage}): {seq.kind} {result.sequence}, {result.sets} sets x "
          f"{len(seq.rig.cameras)} cameras")
    print(f"rig calibration: {result.rig_path}")
    for topic, count in result.counts.items():
        print(f"  {topic}: {count}")
    return 0
