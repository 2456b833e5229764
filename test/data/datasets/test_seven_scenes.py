"""7-Scenes reader on a folder in its format: millimetre depth with 0 and 65535 invalid,
4x4 camera-to-world pose files, the published intrinsics, 30 Hz stamps."""
from __future__ import annotations

import numpy as np
from fixtures.datasets import rgb_pattern, write_seven_scenes

from wint3r_ros.data.datasets import open_dataset


def test_seven_scenes_reads_depth_poses_and_intrinsics(tmp_path):
    fx = write_seven_scenes(tmp_path)
    [seq] = open_dataset(f"7scenes:{tmp_path}")        # found below the dataset root
    assert seq.name == "chess_seq-01" and len(seq) == 3
    assert [f.stamp_ns for f in seq.frames] == [0, 33_333_333, 66_666_667]
    cam = seq.rig.cameras[0]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (585.0, 585.0, 320.0, 240.0)
    for t in range(3):
        assert np.array_equal(seq.image(t), rgb_pattern(t))
        raw = fx["raw_depth"][t]
        depth = seq.depth(t)
        assert np.isnan(depth.flat[0]) and np.isnan(depth.flat[1])     # 0 and 65535
        assert np.array_equal(depth.flat[2:], raw.flat[2:].astype(np.float32) / np.float32(1000))
        assert np.array_equal(seq.world_from_cam(t), fx["poses"][t])


def test_seven_scenes_select_keeps_published_indices(tmp_path):
    write_seven_scenes(tmp_path, frames=5)
    [seq] = open_dataset(f"7scenes:{tmp_path / 'chess' / 'seq-01'}")
    sub = seq.select(start=1, count=2, stride=2)
    assert [f.index for f in sub.frames] == [1, 3]
