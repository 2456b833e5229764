"""``wint3r-ros make-bag OUT``: a synthetic rig recording with exact ground truth, as rosbag2.

Per camera (topics from the rig): ``sensor_msgs/Image`` (rgb8) and ``CameraInfo``; once,
``/tf_static`` with every camera's optical frame under the rig's base frame (transient local,
like a robot_state_publisher); ground truth on separate topics so it never mixes with an
estimate: ``/ground_truth/tf`` (``world`` -> base frame per frame, tf2_msgs/TFMessage) and
``/ground_truth/<camera>/depth`` (32FC1 metres, the camera's optical frame). The rig
calibration is written next to the bag as ``OUT.rig.yaml`` and kept in the bag's metadata
custom_data (key ``wint3r_ros.rig``).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from wint3r_ros.core.rig import Rig
from wint3r_ros.data.bag import STORAGE_FORMATS, BagWriter, incomplete_reason, sigterm_as_interrupt
from wint3r_ros.data.messages import camera_info_from_camera, image_from_array, tf_message, transform_stamped
from wint3r_ros.data.rig_files import rig_to_dict, save_rig
from wint3r_ros.data.synthetic import RigConfig, SceneConfig, SyntheticRig
from wint3r_ros.errors import BagError, ConfigError
from wint3r_ros.yaml_io import dump_yaml

__all__ = [
    "WORLD_FRAME",
    "GROUND_TRUTH_TF_TOPIC",
    "RIG_CUSTOM_DATA_KEY",
    "MakeBagConfig",
    "MakeBagResult",
    "ground_truth_depth_topic",
    "rig_path_for",
    "make_bag",
    "configure",
    "run",
]

WORLD_FRAME = "world"
GROUND_TRUTH_TF_TOPIC = "/ground_truth/tf"
RIG_CUSTOM_DATA_KEY = "wint3r_ros.rig"
SYNTHETIC_CUSTOM_DATA_KEY = "wint3r_ros.synthetic"
_LOG_DELAY_NS = 2_000_000     # a recorder logs each message a little after its capture stamp


def ground_truth_depth_topic(camera_name: str) -> str:
    """``/ground_truth/<camera>/depth``."""
    return f"/ground_truth/{camera_name}/depth"


def rig_path_for(bag: str | Path) -> Path:
    """Where the rig YAML of a bag lives: ``OUT.rig.yaml`` beside the bag directory."""
    bag = Path(bag)
    return bag.with_name(bag.name + ".rig.yaml")


@dataclass(frozen=True)
class MakeBagConfig:
    """What to record: ``frames`` frames of ``scene`` (a seed) from a rig of ``cameras``."""

    cameras: int = 3
    frames: int = 100
    scene: int = 0
    storage: str = "mcap"
    width: int = 128
    height: int = 96
    rate_hz: float = 10.0
    fov_deg: float = 80.0
    ground_truth_depth: bool = True

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_FORMATS:
            raise ConfigError(f"--format must be one of {STORAGE_FORMATS}, got {self.storage!r}")
        if isinstance(self.frames, bool) or not isinstance(self.frames, int) or self.frames < 1:
            raise ConfigError(f"--frames must be a positive integer, got {self.frames!r}")

    def rig_config(self) -> RigConfig:
        return RigConfig(num_cameras=self.cameras, width=self.width, height=self.height,
                         fov_deg=self.fov_deg, rate_hz=self.rate_hz)


@dataclass
class MakeBagResult:
    """The recording: bag directory, rig YAML path, the rig, messages per topic."""

    bag: Path
    rig_path: Path
    rig: Rig
    counts: dict[str, int] = field(default_factory=dict)


def make_bag(out: str | Path, config: MakeBagConfig = MakeBagConfig()) -> MakeBagResult:
    """Render the synthetic rig and record it into a new bag at ``out`` (must not exist).

    If rendering or writing is interrupted, the bag is closed with the frames written so far.
    """
    out = Path(out)
    if out.exists() and incomplete_reason(out) is None:
        raise BagError(f"output bag {out} already exists; choose a new path or remove it")
    synth = SyntheticRig(SceneConfig(seed=config.scene), config.rig_config())
    rig = synth.rig
    rig_text = dump_yaml(rig_to_dict(rig), sort_keys=False)
    described = json.dumps({"make_bag": asdict(config),
                            "scene": asdict(synth.scene_config),
                            "rig": asdict(synth.rig_config)})
    rig_path = rig_path_for(out)
    writer = BagWriter(out, config.storage, replace_incomplete=True,   # a rerun replaces it
                       custom_data={RIG_CUSTOM_DATA_KEY: rig_text,
                                    SYNTHETIC_CUSTOM_DATA_KEY: described})
    save_rig(rig, rig_path, comment=f"synthetic rig of {out.name} (wint3r-ros make-bag, scene "
                                    f"{config.scene})")
    with sigterm_as_interrupt(), writer:
        for cam in rig.cameras:
            writer.add_topic(cam.topic, "sensor_msgs/msg/Image")
            writer.add_topic(cam.camera_info_topic, "sensor_msgs/msg/CameraInfo")
        first = synth.stamp_ns(0)
        writer.write("/tf_static", tf_message(
            transform_stamped(cam.T_base_camera, rig.base_frame, cam.frame_id, first)
            for cam in rig.cameras), first)
        for k in range(config.frames):
            frames = synth.render(k)
            stamp = frames[0].stamp_ns
            writer.write(GROUND_TRUTH_TF_TOPIC, tf_message([transform_stamped(
                frames[0].T_world_base, WORLD_FRAME, rig.base_frame, stamp)]), stamp)
            for i, (cam, fr) in enumerate(zip(rig.cameras, frames)):
                log_time = stamp + _LOG_DELAY_NS * (1 + i)
                writer.write(cam.topic, image_from_array(fr.image, "rgb8", stamp, cam.frame_id,
                                                         cam.topic), log_time)
                writer.write(cam.camera_info_topic, camera_info_from_camera(cam, stamp),
                             log_time)
                if config.ground_truth_depth:
                    topic = ground_truth_depth_topic(cam.name)
                    writer.write(topic, image_from_array(fr.depth, "32FC1", stamp, cam.frame_id,
                                                         topic), log_time)
    return MakeBagResult(bag=out, rig_path=rig_path, rig=rig, counts=dict(writer.counts))


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--cameras", type=int, default=3, help="number of cameras (default 3)")
    parser.add_argument("--frames", type=int, default=100, help="frames per camera (default 100)")
    parser.add_argument("--scene", type=int, default=0, help="scene seed (default 0)")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap",
                        help="rosbag2 storage (default mcap)")
    parser.add_argument("--width", type=int, default=128, help="image width (default 128)")
    parser.add_argument("--height", type=int, default=96, help="image height (default 96)")
    parser.add_argument("--rate", type=float, default=10.0, help="frame rate in Hz (default 10)")
    parser.add_argument("--fov", type=float, default=80.0,
                        help="horizontal field of view in degrees (default 80)")
    parser.add_argument("--no-depth", action="store_true",
                        help="leave out the ground-truth depth topics")


def run(args: argparse.Namespace) -> int:
    config = MakeBagConfig(cameras=args.cameras, frames=args.frames, scene=args.scene,
                           storage=args.format, width=args.width, height=args.height,
                           rate_hz=args.rate, fov_deg=args.fov,
                           ground_truth_depth=not args.no_depth)
    result = make_bag(args.out, config)
    total = sum(result.counts.values())
    print(f"wrote {result.bag} ({config.storage}, {total} messages, {config.frames} frames x "
          f"{config.cameras} cameras)")
    print(f"rig calibration: {result.rig_path}")
    for topic, count in result.counts.items():
        print(f"  {topic}: {count}")
    sys.stdout.flush()
    return 0
