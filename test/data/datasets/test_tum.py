"""TUM RGB-D and Bonn readers on folders written in TUM's format (comment lines, tabs,
unsynchronised rgb/depth stamps, 16-bit depth at 5000 per metre, quaternion ground truth)."""
from __future__ import annotations

import random

import numpy as np
import pytest
from fixtures.datasets import (
    TUM_GT_OF_FRAME,
    TUM_PAIRS,
    ns,
    rgb_pattern,
    write_tum,
)

from wint3r_ros.data.datasets import open_dataset
from wint3r_ros.data.datasets.tum import TUM_INTRINSICS, associate
from wint3r_ros.errors import InputError


def reference_associate(first, second, max_difference, offset=0):
    """associate.py's algorithm as published: every pair, sorted, taken greedily."""
    first_keys, second_keys = list(first), list(second)
    potential = sorted((abs(a - (b + offset)), a, b) for a in first_keys for b in second_keys
                       if abs(a - (b + offset)) < max_difference)
    matches = []
    for _diff, a, b in potential:
        if a in first_keys and b in second_keys:
            first_keys.remove(a)
            second_keys.remove(b)
            matches.append((a, b))
    return sorted(matches)


def test_associate_matches_the_published_algorithm_on_random_stamps():
    rng = random.Random(7)
    for _ in range(50):
        a = sorted(rng.sample(range(0, 2_000_000_000, 1_000), rng.randint(1, 40)))
        b = sorted(rng.sample(range(0, 2_000_000_000, 1_000), rng.randint(1, 40)))
        offset = rng.choice([0, 5_000_000, -3_000_000])
        limit = rng.choice([20_000_000, 50_000_000, 200_000_000])
        assert associate(a, b, limit, offset) == reference_associate(a, b, limit, offset)


def test_tum_sequence_pairs_rgb_and_depth_greedily_and_reads_what_the_files_hold(tmp_path):
    fx = write_tum(tmp_path)
    [seq] = open_dataset(f"tum:{tmp_path}")
    assert seq.kind == "tum" and seq.name == "rgbd_dataset_freiburg1_xyz"
    assert [f.stamp_ns for f in seq.frames] == [ns(a) for a, _ in TUM_PAIRS]
    assert [f.depths[0].name for f in seq.frames] == [f"{b}.png" for _, b in TUM_PAIRS]
    # frames keep their rgb list order: 100.033 is frame 1, its image the pattern written second
    assert np.array_equal(seq.image(1), rgb_pattern(1))
    for t, (_, b) in enumerate(TUM_PAIRS):
        depth = seq.depth(t)
        raw = fx["raw_depth"][b]
        assert depth.dtype == np.float32 and np.isnan(depth.flat[0])
        ok = raw > 0
        assert np.array_equal(depth[ok], raw[ok].astype(np.float32) / np.float32(5000))
        np.testing.assert_allclose(seq.world_from_cam(t), fx["poses"][TUM_GT_OF_FRAME[t]],
                                   atol=1e-12)
    cam = seq.rig.cameras[0]
    (fxx, fyy, cx, cy), dist = TUM_INTRINSICS["freiburg1"]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (fxx, fyy, cx, cy) == (517.3, 516.5, 318.6, 255.3)
    assert cam.distortion_coefficients.tolist() == list(dist)
    assert (cam.width, cam.height) == (8, 6)


def test_tum_ground_truth_is_associated_greedily_and_may_be_missing(tmp_path):
    fx = write_tum(tmp_path, "rgbd_dataset_freiburg3_walking_xyz")
    gt = fx["root"] / "groundtruth.txt"
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(ln for ln in lines if not ln.startswith("100.030")) + "\n")
    [seq] = open_dataset(f"tum:{fx['root']}")
    # 100.045 takes 100.041 (4 ms); 100.033 then gets 100.052 (19 ms), its only one left
    np.testing.assert_allclose(seq.world_from_cam(1), fx["poses"]["100.052000"], atol=1e-12)
    gt.write_text("\n".join(ln for ln in lines if not ln.startswith(("100.030", "100.052"))) + "\n")
    [seq] = open_dataset(f"tum:{fx['root']}")
    assert seq.world_from_cam(1) is None and seq.world_from_cam(0) is not None
    assert seq.rig.cameras[0].fx == 535.4 and seq.rig.cameras[0].distortion_model == "none"


def test_bonn_reads_the_tum_layout_with_bonn_intrinsics(tmp_path):
    write_tum(tmp_path, "rgbd_bonn_balloon")
    [seq] = open_dataset(f"bonn:{tmp_path}")
    assert seq.kind == "bonn" and len(seq) == 3
    cam = seq.rig.cameras[0]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (542.822841, 542.576870, 315.593520, 237.756098)


def test_tum_errors_name_the_file_and_line(tmp_path):
    fx = write_tum(tmp_path)
    (fx["root"] / "rgb.txt").write_text("# header\n100.0x rgb/a.png\n")
    with pytest.raises(InputError, match=r"rgb.txt line 2.*'100.0x'"):
        open_dataset(f"tum:{fx['root']}")
    with pytest.raises(InputError, match="no tum sequence"):
        open_dataset(f"tum:{tmp_path / 'nowhere'}")
