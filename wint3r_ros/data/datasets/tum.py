"""TUM RGB-D and Bonn RGB-D Dynamic: the TUM folder layout.

A sequence folder holds ``rgb.txt`` and ``depth.txt`` (lines ``stamp path``), ``groundtruth.txt``
(lines ``stamp tx ty tz qx qy qz qw``: the colour camera's optical centre in the motion-capture
world, so it is ``world_from_cam`` directly) and the PNG files they name; ``#`` lines are
comments. Depth PNGs are 16-bit, 5000 units per metre, 0 = no value, already registered to the
colour camera. RGB and depth are not captured together: they are paired the way TUM's
``associate.py`` does it (all pairs closer than ``max_difference``, 20 ms, taken greedily from the
closest; each stamp used once), and so is the ground truth (100 Hz) to each frame's RGB stamp.
Stamps are parsed as decimal text straight to integer nanoseconds.

Intrinsics are not in the files: the published calibration of the Freiburg sensor named in the
folder (``freiburg1/2/3``; ROS's default 525 px otherwise), or Bonn's published values.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from wint3r_ros.core.rig import Rig, rotation_from_quaternion_xyzw
from wint3r_ros.data.datasets.base import (
    DatasetSequence,
    FrameSet,
    frames_or_error,
    pinhole_camera,
    read_depth_png,
    read_rgb,
    sequence_folders,
    stamp_ns_from_text,
)
from wint3r_ros.errors import InputError

__all__ = ["TUM_INTRINSICS", "BONN_INTRINSICS", "MAX_DIFFERENCE_NS", "DEPTH_UNITS_PER_METRE",
           "read_stamped_list", "associate", "open_tum", "open_bonn"]

MAX_DIFFERENCE_NS = 20_000_000          # associate.py's --max_difference 0.02 s
DEPTH_UNITS_PER_METRE = 5000.0

# fx, fy, cx, cy, plumb_bob (k1, k2, p1, p2, k3) of the colour cameras, TUM's published values
TUM_INTRINSICS: dict[str, tuple[tuple[float, float, float, float], tuple[float, ...] | None]] = {
    "freiburg1": ((517.3, 516.5, 318.6, 255.3), (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)),
    "freiburg2": ((520.9, 521.0, 325.1, 249.7), (0.2312, -0.7849, -0.0033, -0.0001, 0.9172)),
    "freiburg3": ((535.4, 539.2, 320.1, 247.6), None),
    "default": ((525.0, 525.0, 319.5, 239.5), None),
}
BONN_INTRINSICS = ((542.822841, 542.576870, 315.593520, 237.756098), None)


def read_stamped_list(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """Lines ``stamp value...`` of a TUM list file as (stamp ns, values), in file order.

    As associate.py reads them: ``#`` lines skipped, commas and tabs are spaces, a line needs a
    stamp and at least one value."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what}: file {path} does not exist")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").replace("\t", " ").split()
        if len(fields) < 2:
            continue
        rows.append((stamp_ns_from_text(fields[0], f"{path} line {lineno}"), fields[1:]))
    return rows


def associate(first: list[int], second: list[int], max_difference_ns: int = MAX_DIFFERENCE_NS,
              offset_ns: int = 0) -> list[tuple[int, int]]:
    """TUM's associate.py in integer ns: every pair (a, b) with |a - (b + offset)| <
    max_difference is a candidate; candidates are taken from the closest on, each stamp used at
    most once; the matches come back sorted by a. Candidates are found by binary search, so long
    sequences stay fast (associate.py tries every pair)."""
    a_keys = np.unique(np.asarray(first, dtype=np.int64))
    b_keys = np.unique(np.asarray(second, dtype=np.int64)) + offset_ns
    candidates = []
    for a in a_keys.tolist():
        lo = int(np.searchsorted(b_keys, a - max_difference_ns, side="right"))
        hi = int(np.searchsorted(b_keys, a + max_difference_ns, side="left"))
        for b in b_keys[lo:hi].tolist():
            candidates.append((abs(a - b), a, b - offset_ns))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    matches = []
    for _diff, a, b in candidates:
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            matches.append((a, b))
    return sorted(matches)


def _ground_truth(path: Path) -> dict[int, np.ndarray]:
    poses = {}
    for stamp, values in read_stamped_list(path, "groundtruth"):
        if len(values) != 7:
            raise InputError(f"groundtruth {path}: stamp {stamp} ns has {len(values)} values, "
                             "expected tx ty tz qx qy qz qw")
        try:
            v = np.array([float(x) for x in values])
        except ValueError as err:
            raise InputError(f"groundtruth {path}: stamp {stamp} ns: not numbers {values}") from err
        T = np.eye(4)
        T[:3, :3] = rotation_from_quaternion_xyzw(v[3:])
        T[:3, 3] = v[:3]
        poses[stamp] = T
    return poses


def _files(root: Path, rows: list[tuple[int, list[str]]]) -> dict[int, Path]:
    return {stamp: root / values[0] for stamp, values in rows}


def _open(root: Path, kind: str, intrinsics: tuple[tuple[float, float, float, float],
                                                   tuple[float, ...] | None]) -> DatasetSequence:
    rgb = _files(root, read_stamped_list(root / "rgb.txt", f"{kind} rgb list"))
    if not rgb:
        raise InputError(f"{kind}:{root}: rgb.txt lists no images")
    depth_list = root / "depth.txt"
    depth = _files(root, read_stamped_list(depth_list, f"{kind} depth list")) if depth_list.is_file() else {}
    gt_file = root / "groundtruth.txt"
    gt = _ground_truth(gt_file) if gt_file.is_file() else {}
    if depth:
        pairs = associate(list(rgb), list(depth))
    else:
        pairs = [(s, None) for s in sorted(rgb)]
    gt_of = dict(associate([a for a, _ in pairs], list(gt))) if gt else {}
    frames = [FrameSet(index=i, stamp_ns=a, images=(rgb[a],),
                       depths=(depth[b],) if b is not None else (None,),
                       world_from_base=gt[gt_of[a]] if a in gt_of else None)
              for i, (a, b) in enumerate(pairs)]
    frames_or_error(frames, kind, root)
    height, width = read_rgb(frames[0].images[0]).shape[:2]
    (fx, fy, cx, cy), dist = intrinsics
    camera = pinhole_camera("rgb", width, height, fx, fy, cx, cy, dist)
    rig = Rig(name=f"{kind}_{root.name}", base_frame="rgb_link", cameras=[camera])
    reader = partial(read_depth_png, units_per_metre=DEPTH_UNITS_PER_METRE) if depth else None
    return DatasetSequence(kind, root.name, root, rig, frames, reader,
                           notes={"rgb": str(len(rgb)), "depth": str(len(depth)),
                                  "groundtruth": str(len(gt)), "associated": str(len(pairs)),
                                  "with_pose": str(len(gt_of))})


def _tum_intrinsics(root: Path) -> tuple[tuple[float, float, float, float], tuple[float, ...] | None]:
    name = root.name.lower()
    for n in (1, 2, 3):
        if f"freiburg{n}" in name or f"_fr{n}_" in f"_{name}_":
            return TUM_INTRINSICS[f"freiburg{n}"]
    return TUM_INTRINSICS["default"]


def _is_sequence(path: Path) -> bool:
    return (path / "rgb.txt").is_file()


def open_tum(path: Path) -> list[DatasetSequence]:
    """Every TUM RGB-D sequence at `path` (a sequence folder or a folder of them)."""
    return [_open(root, "tum", _tum_intrinsics(root)) for root in sequence_folders(path, "tum", _is_sequence)]


def open_bonn(path: Path) -> list[DatasetSequence]:
    """Every Bonn RGB-D Dynamic sequence at `path` (TUM layout, Bonn's intrinsics)."""
    return [_open(root, "bonn", BONN_INTRINSICS) for root in sequence_folders(path, "bonn", _is_sequence)]
