"""data.map_files: PLY (binary and ascii), PCD, TUM trajectory and the save_map folder, each
parsed back with a reader written here from the formats' published descriptions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wint3r_ros.core.geometry import matrix_from_quat_xyzw
from wint3r_ros.data.map_files import save_map, write_pcd, write_ply, write_tum_trajectory
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.data.synthetic import RigConfig, build_rig
from wint3r_ros.errors import InputError
from wint3r_ros.yaml_io import load_yaml

RNG = np.random.default_rng(3)
PTS = RNG.normal(size=(50, 3)).astype(np.float32) * 10
COLS = RNG.integers(0, 256, size=(50, 3), dtype=np.uint8)


def _header(data: bytes, end: bytes) -> tuple[list[str], bytes]:
    i = data.index(end) + len(end)
    return data[:i].decode("ascii").splitlines(), data[i:]


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    lines, body = _header(path.read_bytes(), b"end_header\n")
    assert lines[0] == "ply"
    fmt = lines[1].split()[1]
    n = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[2])
    props = [ln.split()[1:] for ln in lines if ln.startswith("property")]
    assert props == [["float", "x"], ["float", "y"], ["float", "z"], ["uchar", "red"],
                     ["uchar", "green"], ["uchar", "blue"]]
    if fmt == "binary_little_endian":
        rec = np.frombuffer(body, dtype=np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                                  ("r", "u1"), ("g", "u1"), ("b", "u1")]))
        assert len(rec) == n
        return (np.stack([rec["x"], rec["y"], rec["z"]], 1),
                np.stack([rec["r"], rec["g"], rec["b"]], 1))
    assert fmt == "ascii"
    rows = np.array([ln.split() for ln in body.decode().splitlines()], dtype=np.float64)
    assert rows.shape == (n, 6)
    return rows[:, :3].astype(np.float32), rows[:, 3:].astype(np.uint8)


def read_pcd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = path.read_bytes()
    i = data.index(b"\nDATA ")
    j = data.index(b"\n", i + 1) + 1
    head = {ln.split()[0]: ln.split()[1:] for ln in data[:j].decode().splitlines()
            if not ln.startswith("#")}
    assert head["VERSION"] == ["0.7"] and head["FIELDS"] == ["x", "y", "z", "rgb"]
    assert head["SIZE"] == ["4"] * 4 and head["TYPE"] == ["F", "F", "F", "U"]
    n = int(head["POINTS"][0])
    assert int(head["WIDTH"][0]) * int(head["HEIGHT"][0]) == n
    if head["DATA"] == ["binary"]:
        rec = np.frombuffer(data[j:], dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                             ("rgb", "<u4")])
        xyz, rgb = np.stack([rec["x"], rec["y"], rec["z"]], 1), rec["rgb"]
    else:
        rows = [ln.split() for ln in data[j:].decode().splitlines()]
        xyz = np.array([r[:3] for r in rows], np.float32)
        rgb = np.array([int(r[3]) for r in rows], np.uint32)
    assert len(xyz) == n
    cols = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], 1).astype(np.uint8)
    return xyz, cols


def read_tum(path: Path) -> tuple[list[str], np.ndarray]:
    rows = [ln.split() for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert all(len(r) == 8 for r in rows)
    poses = []
    for r in rows:
        T = np.eye(4)
        T[:3, 3] = [float(v) for v in r[1:4]]
        T[:3, :3] = matrix_from_quat_xyzw([float(v) for v in r[4:]])
        poses.append(T)
    return [r[0] for r in rows], np.array(poses)


@pytest.mark.parametrize("binary", [True, False])
def test_ply_parses_back_to_the_same_points_and_colours(tmp_path, binary):
    write_ply(tmp_path / "m.ply", PTS, COLS, binary=binary)
    pts, cols = read_ply(tmp_path / "m.ply")
    np.testing.assert_allclose(pts, PTS, rtol=1e-7)
    assert (cols == COLS).all()


@pytest.mark.parametrize("binary", [True, False])
def test_pcd_parses_back_with_rgb_packed_as_pcl_does(tmp_path, binary):
    write_pcd(tmp_path / "m.pcd", PTS, COLS, binary=binary)
    pts, cols = read_pcd(tmp_path / "m.pcd")
    np.testing.assert_allclose(pts, PTS, rtol=1e-7)
    assert (cols == COLS).all()


def test_an_empty_cloud_is_a_valid_file(tmp_path):
    write_ply(tmp_path / "e.ply", np.zeros((0, 3)), None)
    write_pcd(tmp_path / "e.pcd", np.zeros((0, 3)), None)
    assert len(read_ply(tmp_path / "e.ply")[0]) == 0
    assert len(read_pcd(tmp_path / "e.pcd")[0]) == 0


def test_tum_rows_hold_exact_stamps_and_the_poses(tmp_path):
    poses = np.stack([np.eye(4)] * 3)
    poses[1, :3, 3] = [1.0, 2.0, 3.0]
    poses[1, :3, :3] = matrix_from_quat_xyzw([0.0, 0.0, np.sin(0.3), np.cos(0.3)])
    poses[2, 0, 0] = np.nan                      # not finite: left out
    n = write_tum_trajectory(tmp_path / "t.tum", [1_000_000_001, 2_500_000_000, 3], poses)
    stamps, back = read_tum(tmp_path / "t.tum")
    assert n == 2 and stamps == ["1.000000001", "2.500000000"]
    np.testing.assert_allclose(back, poses[:2], atol=1e-12)


def test_save_map_writes_every_file_and_each_parses(tmp_path):
    rig = build_rig(RigConfig(num_cameras=2))
    poses = np.stack([np.eye(4)] * 4)
    poses[:, 0, 3] = np.arange(4) * 0.5
    files = save_map(tmp_path / "out" / "run1", PTS, COLS, [10, 20, 30, 40], poses, rig,
                     {"world_frame": "odom", "voxel_size": np.float32(0.05), "cams": ("a", "b")})
    names = sorted(Path(f).name for f in files)
    assert names == ["map.pcd", "map.ply", "rig.yaml", "settings.yaml", "trajectory.tum"]
    folder = tmp_path / "out" / "run1"
    assert len(read_ply(folder / "map.ply")[0]) == len(read_pcd(folder / "map.pcd")[0]) == 50
    stamps, back = read_tum(folder / "trajectory.tum")
    assert stamps == ["0.000000010", "0.000000020", "0.000000030", "0.000000040"]
    np.testing.assert_allclose(back[:, 0, 3], [0.0, 0.5, 1.0, 1.5])
    assert load_rig(folder / "rig.yaml").camera_names == rig.camera_names
    settings = load_yaml(folder / "settings.yaml", "settings")
    assert settings["world_frame"] == "odom" and settings["cams"] == ["a", "b"]
    assert settings["voxel_size"] == pytest.approx(0.05)


def test_save_map_into_a_file_path_is_an_input_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write into .*file"):
        save_map(blocker / "sub", PTS, COLS, [], np.zeros((0, 4, 4)), None, {})
