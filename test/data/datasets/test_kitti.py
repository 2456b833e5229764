"""KITTI odometry (calib.txt P0..P3 keys, times.txt, poses/NN.txt) and KITTI depth
(val_selection_cropped, sparse 16-bit depth / 256) readers."""
from __future__ import annotations

import numpy as np
import pytest
from fixtures.datasets import (
    KITTI_DRIVE,
    kitti_projection,
    rgb_pattern,
    write_kitti_depth,
    write_kitti_odometry,
)

from wint3r_ros.data.datasets import open_dataset
from wint3r_ros.data.datasets.kitti import read_calib
from wint3r_ros.errors import InputError


def test_kitti_odometry_is_a_stereo_rig_under_rectified_camera_0(tmp_path):
    fx = write_kitti_odometry(tmp_path)
    [seq] = open_dataset(f"kitti:{fx['dataset']}")
    assert seq.name == "00" and len(seq) == 3
    assert [f.stamp_ns for f in seq.frames] == [0, 103_622_400, 207_244_800]
    cam2, cam3 = seq.rig.cameras
    for cam, key in ((cam2, "P2"), (cam3, "P3")):
        P = kitti_projection(key)
        assert np.array_equal(cam.K, P[:, :3])
        np.testing.assert_allclose(cam.T_base_camera[:3, 3], -np.linalg.solve(P[:, :3], P[:, 3]),
                                   atol=1e-15)
        assert np.array_equal(cam.T_base_camera[:3, :3], np.eye(3))
    # the colour pair: cam2 about 6 cm left of camera 0, 0.53 m baseline
    assert -0.065 < cam2.T_base_camera[0, 3] < -0.055
    assert 0.52 < seq.rig.baselines()[("cam2", "cam3")] < 0.545
    for t in range(3):
        assert np.array_equal(seq.image(t, 0), rgb_pattern(t))
        assert np.array_equal(seq.image(t, 1), rgb_pattern(t + 50))
        assert np.array_equal(seq.frames[t].world_from_base, fx["poses"][t])
        np.testing.assert_allclose(seq.world_from_cam(t, 1), fx["poses"][t] @ cam3.T_base_camera)
    assert seq.depth(0) is None and not seq.has_depth


def test_kitti_calib_errors_name_the_line(tmp_path):
    path = tmp_path / "calib.txt"
    path.write_text("P0: 1 2 3\nP1 1 2 3\n")
    with pytest.raises(InputError, match="line 2"):
        read_calib(path)
    fx = write_kitti_odometry(tmp_path / "k")
    (fx["root"] / "calib.txt").write_text("P0: " + " ".join(["1"] * 12) + "\n")
    with pytest.raises(InputError, match="no P2"):
        open_dataset(f"kitti:{fx['root']}")


def test_kitti_depth_groups_by_drive_and_camera_and_scales_by_256(tmp_path):
    fx = write_kitti_depth(tmp_path)
    seqs = open_dataset(f"kitti-depth:{tmp_path / 'depth_selection'}")
    assert [s.name for s in seqs] == [f"{KITTI_DRIVE}_image_02", f"{KITTI_DRIVE}_image_03"]
    seq = seqs[0]
    assert [f.index for f in seq.frames] == [5, 6, 7]
    assert [f.stamp_ns for f in seq.frames] == [500_000_000, 600_000_000, 700_000_000]
    cam = seq.rig.cameras[0]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (721.5377, 721.5377, 596.6046, 149.854)
    for t, k in enumerate(fx["frames"]):
        raw = fx["raw_depth"][(k, "02")]
        depth = seq.depth(t)
        assert np.isnan(depth.flat[0])
        assert np.array_equal(depth.flat[1:], raw.flat[1:].astype(np.float32) / np.float32(256))
        assert seq.world_from_cam(t) is None
