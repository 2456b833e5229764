"""KITTI odometry and KITTI depth (the depth-selection validation set).

Odometry (``dataset/sequences/NN/``): ``image_2/`` and ``image_3/`` (the rectified colour stereo
pair, ``NNNNNN.png``), ``calib.txt`` (lines ``P0: ...`` to ``P3: ...``, 12 numbers each, the
rectified 3x4 projection matrices, plus ``Tr:``), ``times.txt`` (seconds since the start, one per
frame) and, for sequences 00-10, ``dataset/poses/NN.txt`` (12 numbers a line: the 3x4
camera-to-world pose of the rectified camera 0 in camera 0's first frame). The rig's base frame
is the rectified camera 0: camera i = P_i's K, at ``x0 = -K^-1 P_i[:, 3]`` in it (rectified
cameras share their orientation), so the colour pair sits 0.06 m left of camera 0 and 0.48 m
right of it, 0.54 m apart.

Depth (``depth_selection/val_selection_cropped/``): ``image/<drive>_image_<frame>_image_0N.png``,
``groundtruth_depth/<drive>_groundtruth_depth_<frame>_image_0N.png`` (16-bit, value / 256
metres, 0 = no value: sparse projected lidar) and ``intrinsics/<drive>_image_<frame>_image_0N.txt``
(K, 9 numbers). A sequence is one drive seen by one camera, frames in number order; KITTI runs
at 10 Hz, so frame k has the stamp k / 10 s. No poses.
"""
from __future__ import annotations

import re
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.data.datasets.base import (
    DatasetSequence,
    FrameSet,
    frames_or_error,
    matrix_4x4,
    pinhole_camera,
    read_depth_png,
    read_numbers,
    read_rgb,
    sequence_folders,
    stamp_ns_of_frame,
)
from wint3r_ros.errors import InputError

__all__ = ["read_calib", "camera_from_projection", "open_kitti_odometry", "open_kitti_depth",
           "KITTI_DEPTH_UNITS_PER_METRE", "KITTI_RATE_HZ"]

KITTI_DEPTH_UNITS_PER_METRE = 256.0
KITTI_RATE_HZ = 10
_CAMERAS = (("image_2", "P2", "cam2"), ("image_3", "P3", "cam3"))


def read_calib(path: Path) -> dict[str, np.ndarray]:
    """``KEY: n n n ...`` lines of a KITTI calib.txt as {key: numbers}; a line that is not
    ``KEY:`` plus numbers is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"kitti calibration: file {path} does not exist")
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        try:
            if not sep:
                raise ValueError(line)
            out[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError as err:
            raise InputError(f"kitti calibration {path} line {lineno}: expected 'KEY: numbers', "
                             f"got {line[:80]!r}") from err
    return out


def camera_from_projection(name: str, P: np.ndarray, width: int, height: int, where: str) -> Camera:
    """A rectified camera from its 3x4 projection P = K [I | t]: K and T_base_camera = [I | -t]
    (the base frame is the rectified camera 0, whose P has t = 0)."""
    P = np.asarray(P, dtype=np.float64)
    if P.size != 12:
        raise InputError(f"{where}: a projection matrix has 12 numbers, got {P.size}")
    P = P.reshape(3, 4)
    K = P[:, :3]
    t = np.linalg.solve(K, P[:, 3])
    T = np.eye(4)
    T[:3, 3] = -t
    return pinhole_camera(name, width, height, K[0, 0], K[1, 1], K[0, 2], K[1, 2], T_base_camera=T)


def _is_odometry(path: Path) -> bool:
    return (path / "image_2").is_dir() and (path / "calib.txt").is_file()


def _odometry_poses(root: Path) -> list[np.ndarray] | None:
    for candidate in (root.parent.parent / "poses" / f"{root.name}.txt", root / "poses.txt"):
        if candidate.is_file():
            return [matrix_4x4(r, f"{candidate} line {i + 1}")
                    for i, r in enumerate(read_numbers(candidate, "kitti poses", columns=12))]
    return None


def _open_odometry(root: Path) -> DatasetSequence:
    calib = read_calib(root / "calib.txt")
    used = [(folder, key, name) for folder, key, name in _CAMERAS if (root / folder).is_dir()]
    numbered = {folder: sorted((root / folder).glob("*.png")) for folder, _, _ in used}
    count = min(len(v) for v in numbered.values())
    times_file = root / "times.txt"
    times = [r[0] for r in read_numbers(times_file, "kitti times", columns=1)] if times_file.is_file() else None
    poses = _odometry_poses(root)
    for what, values in (("times.txt", times), ("poses", poses)):
        if values is not None and len(values) < count:
            raise InputError(f"kitti:{root}: {what} has {len(values)} entries for {count} frames")
    frames = [FrameSet(index=k,
                       stamp_ns=round(times[k] * 1e9) if times else stamp_ns_of_frame(k, KITTI_RATE_HZ),
                       images=tuple(numbered[f][k] for f, _, _ in used),
                       depths=tuple(None for _ in used),
                       world_from_base=poses[k] if poses else None)
              for k in range(count)]
    frames_or_error(frames, "kitti", root)
    cameras = []
    for i, (folder, key, name) in enumerate(used):
        if key not in calib:
            raise InputError(f"kitti:{root}: calib.txt has no {key} (for {folder}); keys: {sorted(calib)}")
        h, w = read_rgb(frames[0].images[i]).shape[:2]
        cameras.append(camera_from_projection(name, calib[key], w, h, f"{root / 'calib.txt'} {key}"))
    rig = Rig(name=f"kitti_{root.name}", base_frame="cam0", cameras=cameras)
    return DatasetSequence("kitti", root.name, root, rig, frames, None)


def open_kitti_odometry(path: Path) -> list[DatasetSequence]:
    """Every KITTI odometry sequence at `path` (``sequences/NN``, ``sequences`` or ``dataset``)."""
    path = Path(path)
    if (path / "sequences").is_dir():
        path = path / "sequences"
    return [_open_odometry(p) for p in sequence_folders(path, "kitti", _is_odometry)]


_DEPTH_IMAGE = re.compile(r"^(?P<drive>.+_sync)_image_(?P<frame>\d+)_image_(?P<cam>0[0-3])\.png$")


def open_kitti_depth(path: Path) -> list[DatasetSequence]:
    """Every (drive, camera) sequence of a KITTI ``val_selection_cropped`` folder at `path`."""
    path = Path(path)
    if not (path / "image").is_dir() and (path / "val_selection_cropped").is_dir():
        path = path / "val_selection_cropped"
    if not (path / "image").is_dir():
        raise InputError(f"kitti-depth:{path}: no image/ folder (expected depth_selection/"
                         "val_selection_cropped with image/, groundtruth_depth/, intrinsics/)")
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = defaultdict(list)
    for p in path.glob("image/*.png"):
        m = _DEPTH_IMAGE.match(p.name)
        if m:
            groups[(m["drive"], m["cam"])].append((int(m["frame"]), p))
    if not groups:
        raise InputError(f"kitti-depth:{path}: no <drive>_image_<frame>_image_0N.png in image/")
    return [_open_depth(path, drive, cam, sorted(items)) for (drive, cam), items in sorted(groups.items())]


def _open_depth(root: Path, drive: str, cam: str, items: list[tuple[int, Path]]) -> DatasetSequence:
    frames = []
    for k, image in items:
        gt = root / "groundtruth_depth" / f"{drive}_groundtruth_depth_{k:010d}_image_{cam}.png"
        frames.append(FrameSet(index=k, stamp_ns=stamp_ns_of_frame(k, KITTI_RATE_HZ), images=(image,),
                               depths=(gt if gt.is_file() else None,)))
    k_file = root / "intrinsics" / f"{items[0][1].stem}.txt"
    values = [v for row in read_numbers(k_file, "kitti-depth intrinsics") for v in row]
    if len(values) != 9:
        raise InputError(f"kitti-depth intrinsics {k_file}: expected 9 numbers (K), got {len(values)}")
    K = np.asarray(values).reshape(3, 3)
    h, w = read_rgb(items[0][1]).shape[:2]
    name = f"{drive}_image_{cam}"
    camera = pinhole_camera(f"cam{int(cam)}", w, h, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    rig = Rig(name=f"kitti_depth_{name}", base_frame="base_link", cameras=[camera])
    reader = partial(read_depth_png, units_per_metre=KITTI_DEPTH_UNITS_PER_METRE)
    return DatasetSequence("kitti-depth", name, root, rig,
                           frames_or_error(frames, "kitti-depth", root), reader)
