"""Microsoft 7-Scenes: ``<scene>/seq-NN/frame-NNNNNN.{color.png, depth.png, pose.txt}``.

Colour is 640x480 RGB; depth is 16-bit millimetres with 0 and 65535 for no value; the pose file
is a 4x4 camera-to-world matrix. The files hold no intrinsics: the published focal length of
585 px and principal point (320, 240). 7-Scenes' depth is not registered to its colour (two
sensors, no published extrinsic); like every benchmark on it, we use it as if it were. No time
is stored: frame k has the stamp k / 30 s.
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from wint3r_ros.core.rig import Rig
from wint3r_ros.data.datasets.base import (
    DatasetSequence,
    FrameSet,
    frames_or_error,
    pinhole_camera,
    read_depth_png,
    read_pose_file,
    read_rgb,
    sequence_folders,
    stamp_ns_of_frame,
)

__all__ = ["SEVEN_SCENES_INTRINSICS", "open_seven_scenes"]

SEVEN_SCENES_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
_COLOR = re.compile(r"^frame-(\d+)\.color\.png$")


def _is_sequence(path: Path) -> bool:
    return path.is_dir() and any(_COLOR.match(p.name) for p in path.glob("frame-*.color.png"))


def _open(root: Path) -> DatasetSequence:
    numbered = sorted((int(m.group(1)), p) for p in root.glob("frame-*.color.png")
                      if (m := _COLOR.match(p.name)))
    frames = []
    for k, color in numbered:
        stem = color.name[: -len(".color.png")]
        depth, pose = root / f"{stem}.depth.png", root / f"{stem}.pose.txt"
        frames.append(FrameSet(index=k, stamp_ns=stamp_ns_of_frame(k), images=(color,),
                               depths=(depth if depth.is_file() else None,),
                               world_from_base=read_pose_file(pose) if pose.is_file() else None))
    frames_or_error(frames, "7scenes", root)
    height, width = read_rgb(frames[0].images[0]).shape[:2]
    camera = pinhole_camera("rgb", width, height, *SEVEN_SCENES_INTRINSICS)
    name = f"{root.parent.name}_{root.name}"
    rig = Rig(name=f"7scenes_{name}", base_frame="rgb_link", cameras=[camera])
    reader = partial(read_depth_png, units_per_metre=1000.0, invalid=(0, 65535))
    return DatasetSequence("7scenes", name, root, rig, frames, reader)


def open_seven_scenes(path: Path) -> list[DatasetSequence]:
    """Every 7-Scenes sequence at `path` (a seq-NN folder, a scene, or the dataset root)."""
    return [_open(p) for p in sequence_folders(path, "7scenes", _is_sequence)]
