"""The file formats of a saved map (fusion_node's ``~/save_map``, process-bag ``--save-map``).

- ``map.ply``: the accumulated cloud, PLY 1.0 (``binary_little_endian`` or ``ascii``) with
  ``float x y z`` and ``uchar red green blue`` per vertex (MeshLab, CloudCompare, Open3D);
- ``map.pcd``: the same cloud, PCD v0.7 with ``FIELDS x y z rgb`` (``rgb`` an unsigned 32-bit
  ``0x00RRGGBB`` as PCL packs it), ``DATA binary`` or ``ascii`` (PCL, Open3D);
- ``trajectory.tum``: the base's poses in the odometry frame, one ``stamp tx ty tz qx qy qz qw``
  row per set (TUM RGB-D's format, as evo reads it; stamps as exact decimal seconds);
- ``rig.yaml``: the rig in use (the project's rig YAML), when there is one;
- ``settings.yaml``: the settings the map was made with (voxel size, bounds, frames, ...).

`save_map` writes the folder and returns the files it wrote; a folder that cannot be written is
an `InputError` naming it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.rig import Rig, quaternion_xyzw_from_rotation
from wint3r_ros.errors import CalibrationError, InputError

__all__ = ["write_ply", "write_pcd", "write_tum_trajectory", "tum_stamp", "save_map",
           "MAP_FILES"]

MAP_FILES = ("map.ply", "map.pcd", "trajectory.tum", "rig.yaml", "settings.yaml")


def _cloud(points: np.ndarray, colors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pts = np.ascontiguousarray(np.asarray(points, np.float32).reshape(-1, 3))
    cols = (np.full((len(pts), 3), 255, np.uint8) if colors is None
            else np.ascontiguousarray(np.asarray(colors, np.uint8).reshape(-1, 3)))
    if len(cols) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(cols)} colours")
    return pts, cols


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None, *,
              binary: bool = True) -> None:
    """points [N, 3] (float32) and colours [N, 3] uint8 (white without) as a PLY file."""
    pts, cols = _cloud(points, colors)
    fmt = "binary_little_endian" if binary else "ascii"
    header = (f"ply\nformat {fmt} 1.0\ncomment wint3r_ros map\nelement vertex {len(pts)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        if binary:
            rec = np.zeros(len(pts), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
            rec["xyz"], rec["rgb"] = pts, cols
            f.write(rec.tobytes())
        else:
            f.write("".join(f"{x:.9g} {y:.9g} {z:.9g} {r} {g} {b}\n" for (x, y, z), (r, g, b)
                            in zip(pts.tolist(), cols.tolist())).encode("ascii"))


def write_pcd(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None, *,
              binary: bool = True) -> None:
    """points [N, 3] and colours [N, 3] uint8 as a PCD v0.7 file with ``x y z rgb``."""
    pts, cols = _cloud(points, colors)
    rgb = ((cols[:, 0].astype(np.uint32) << 16) | (cols[:, 1].astype(np.uint32) << 8)
           | cols[:, 2].astype(np.uint32))
    header = ("# .PCD v0.7 - wint3r_ros map\nVERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\n"
              f"TYPE F F F U\nCOUNT 1 1 1 1\nWIDTH {len(pts)}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(pts)}\n"
              f"DATA {'binary' if binary else 'ascii'}\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        if binary:
            rec = np.zeros(len(pts), dtype=[("xyz", "<f4", 3), ("rgb", "<u4")])
            rec["xyz"], rec["rgb"] = pts, rgb
            f.write(rec.tobytes())
        else:
            f.write("".join(f"{x:.9g} {y:.9g} {z:.9g} {c}\n" for (x, y, z), c
                            in zip(pts.tolist(), rgb.tolist())).encode("ascii"))


def tum_stamp(ns: int) -> str:
    """Integer ns as TUM's decimal seconds, exactly ('1305031102.175304000')."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def write_tum_trajectory(path: str | Path, stamps_ns: Sequence[int] | np.ndarray,
                         poses: np.ndarray, comment: str = "camera-to-world; wint3r-ros eval"
                         ) -> int:
    """``stamp tx ty tz qx qy qz qw`` lines (17 significant digits) for the finite poses
    [N, 4, 4]; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# timestamp tx ty tz qx qy qz qw ({comment})"]
    for ns, T in zip(np.asarray(stamps_ns).tolist(),
                     np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)):
        if not np.isfinite(T).all():
            continue
        q = quaternion_xyzw_from_rotation(T[:3, :3])
        lines.append(" ".join([tum_stamp(int(ns)), *(f"{v:.17g}" for v in (*T[:3, 3], *q))]))
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _plain(value: Any) -> Any:
    """Settings values as YAML-safe plain types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def save_map(directory: str | Path, points: np.ndarray, colors: np.ndarray | None,
             stamps_ns: Sequence[int], poses: np.ndarray, rig: Rig | None,
             settings: Mapping[str, Any], *, binary: bool = True) -> list[str]:
    """Write the map folder (module docstring) into ``directory`` (created); returns the paths
    written. The cloud and trajectory are in the odometry frame named in ``settings``."""
    from wint3r_ros.data.rig_files import save_rig
    from wint3r_ros.yaml_io import dump_yaml

    folder = Path(directory).expanduser()
    if not str(directory).strip():
        raise InputError("save_map: the directory is empty")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        files = [folder / "map.ply", folder / "map.pcd", folder / "trajectory.tum"]
        write_ply(files[0], points, colors, binary=binary)
        write_pcd(files[1], points, colors, binary=binary)
        frame = settings.get("world_frame", "odom")
        write_tum_trajectory(files[2], stamps_ns, poses,
                             comment=f"base in {frame}; wint3r_ros save_map")
        if rig is not None:
            files.append(folder / "rig.yaml")
            save_rig(rig, files[-1], comment="the rig the map was made with (wint3r_ros save_map)")
        files.append(folder / "settings.yaml")
        files[-1].write_text("# settings the map was made with (wint3r_ros save_map)\n"
                             + dump_yaml(_plain(dict(settings)), sort_keys=True))
    except OSError as err:
        raise InputError(f"save_map: cannot write into {str(folder)!r}: "
                         f"{err.strerror or err}") from err
    except CalibrationError as err:   # save_rig's own write error
        raise InputError(f"save_map: {err}") from err
    return [str(f) for f in files]
