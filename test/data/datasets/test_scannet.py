"""ScanNet (SensReader export) reader: colour resized to the depth size with scaled colour
intrinsics, millimetre depth, -inf poses read as missing."""
from __future__ import annotations

import numpy as np
from fixtures.datasets import SCANNET_K, write_scannet

from wint3r_ros.data.datasets import open_dataset


def test_scannet_reads_depth_poses_and_scaled_colour_intrinsics(tmp_path):
    fx = write_scannet(tmp_path)
    [seq] = open_dataset(f"scannet:{tmp_path}")
    assert seq.name == "scene0707_00" and len(seq) == 3
    cam = seq.rig.cameras[0]
    assert (cam.width, cam.height) == (8, 6)                # the depth size; colour is 16x12
    assert cam.fx == SCANNET_K[0, 0] / 2 and cam.fy == SCANNET_K[1, 1] / 2
    assert cam.cx == (SCANNET_K[0, 2] + 0.5) / 2 - 0.5 and cam.cy == (SCANNET_K[1, 2] + 0.5) / 2 - 0.5
    for t in range(3):
        image = seq.image(t)
        assert image.shape == (6, 8, 3)
        assert np.abs(image.astype(int) - fx["colors"][t]).max() <= 3      # JPEG
        raw = fx["raw_depth"][t]
        depth = seq.depth(t)
        assert np.isnan(depth.flat[0])
        assert np.array_equal(depth.flat[1:], raw.flat[1:].astype(np.float32) / np.float32(1000))
    assert np.array_equal(seq.world_from_cam(0), fx["poses"][0])
    assert seq.world_from_cam(1) is None                   # ScanNet's -inf pose
    assert np.array_equal(seq.world_from_cam(2), fx["poses"][2])
