"""ScanNet scenes as its ``SensReader`` exports them: ``<scene>/{color,depth,pose,intrinsic}``.

``color/N.jpg`` (1296x968), ``depth/N.png`` (640x480, 16-bit millimetres, 0 = no value),
``pose/N.txt`` (4x4 camera-to-world; ``-inf`` where ScanNet's tracking failed: no pose for that
frame) and ``intrinsic/intrinsic_color.txt`` (4x4, colour resolution). Colour frames are resized
to the depth resolution and the colour intrinsics scaled with them (`Camera.scaled`). No time is
stored: frame N has the stamp N / 30 s.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from wint3r_ros.core.rig import Rig
from wint3r_ros.data.datasets.base import (
    DatasetSequence,
    FrameSet,
    frames_or_error,
    matrix_4x4,
    pinhole_camera,
    read_depth_png,
    read_numbers,
    read_pose_file,
    read_rgb,
    sequence_folders,
    stamp_ns_of_frame,
)

__all__ = ["open_scannet"]


def _is_sequence(path: Path) -> bool:
    return (path / "color").is_dir() and (path / "intrinsic" / "intrinsic_color.txt").is_file()


def _numbered(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    return {int(p.stem): p for p in folder.iterdir()
            if p.suffix.lower() in suffixes and p.stem.isdigit()}


def _open(root: Path) -> DatasetSequence:
    colors = _numbered(root / "color", (".jpg", ".png"))
    depths = _numbered(root / "depth", (".png",))
    poses = _numbered(root / "pose", (".txt",))
    frames = [FrameSet(index=k, stamp_ns=stamp_ns_of_frame(k), images=(colors[k],),
                       depths=(depths.get(k),),
                       world_from_base=read_pose_file(poses[k]) if k in poses else None)
              for k in sorted(colors)]
    frames_or_error(frames, "scannet", root)
    k_file = root / "intrinsic" / "intrinsic_color.txt"
    K = matrix_4x4([v for row in read_numbers(k_file, "scannet intrinsics") for v in row], str(k_file))
    color_h, color_w = read_rgb(frames[0].images[0]).shape[:2]
    camera = pinhole_camera("rgb", color_w, color_h, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    first_depth = next((f.depths[0] for f in frames if f.depths[0] is not None), None)
    reader = None
    if first_depth is not None:
        reader = partial(read_depth_png, units_per_metre=1000.0)
        h, w = reader(first_depth).shape
        camera = camera.scaled(w, h)
    rig = Rig(name=f"scannet_{root.name}", base_frame="rgb_link", cameras=[camera])
    return DatasetSequence("scannet", root.name, root, rig, frames, reader)


def open_scannet(path: Path) -> list[DatasetSequence]:
    """Every exported ScanNet scene at `path` (a scene folder or a folder of them)."""
    return [_open(p) for p in sequence_folders(path, "scannet", _is_sequence)]
