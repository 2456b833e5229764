"""data.map_files: PLY (binary and ascii), PCD, TUM trajectory and the save_map folder, each
parsed back with a reader written here from the formats' published descriptions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures.map_readers import read_pcd, read_ply, read_tum

from wint3r_ros.core.geometry import matrix_from_quat_xyzw
from wint3r_ros.data.map_files import save_map, write_pcd, write_ply, write_tum_trajectory
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.data.synthetic import RigConfig, build_rig
from wint3r_ros.errors import InputError
from wint3r_ros.yaml_io import load_yaml

RNG = np.random.default_rng(3)
PTS = RNG.normal(size=(50, 3)).astype(np.float32) * 10
COLS = RNG.integers(0, 256, size=(50, 3), dtype=np.uint8)


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
