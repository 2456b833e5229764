"""Simulated online windows: the engine's windowing, the fixed split, the render cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import ConfigError
from wint3r_ros.train.dataset import ClipDataset, SceneCache, clip_windows, epoch_order, parse_data_spec, split_seeds


def test_clip_windows_are_the_engines_time_major_windows_with_overlap():
    # 2 cameras, L = 4, O = 2, 6 sets: windows over sets 0-3 and 2-5, frame = set * 2 + camera
    assert clip_windows(6, 2, WindowConfig(4, 2)) == [[0, 1, 2, 3, 4, 5, 6, 7],
                                                      [4, 5, 6, 7, 8, 9, 10, 11]]
    assert clip_windows(8, 1, WindowConfig(4, 2)) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]


def test_splits_are_fixed_and_disjoint():
    train, val, test = split_seeds("train"), split_seeds("val"), split_seeds("test")
    assert (train[0], train[-1], len(train)) == (0, 199, 200)
    assert (val[0], val[-1], test[0], test[-1]) == (1000, 1019, 2000, 2019)
    assert not (set(train) & set(val)) and not (set(val) & set(test))
    assert split_seeds("test", 2) == [2000, 2001]
    with pytest.raises(ConfigError, match="holdout"):
        split_seeds("holdout")
    assert parse_data_spec("synthetic:val") == ("synthetic", "val")
    with pytest.raises(ConfigError, match="synthetic:<split>"):
        parse_data_spec("kitti:test")


def test_scene_cache_renders_once_and_reads_back_the_same(small_data):
    cache = SceneCache(small_data)
    first = cache.load(7)
    assert cache.path(7).exists()
    again = cache.load(7)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.depth, again.depth)
    assert first.images.shape == (6, 2, 48, 64, 3) and first.world_from_cam.shape == (6, 2, 4, 4)


def test_clip_ground_truth_is_consistent(small_data):
    ds = ClipDataset(small_data, [3])
    # starts 0, 1, 2, 3 (stride 1; a clip spans 3 sets of 6)
    assert [s for _, s in ds.index] == [0, 1, 2, 3]
    clip = ds[1]
    assert clip.images.shape == (6, 3, 48, 64) and clip.gt_points.shape == (6, 48, 64, 3)
    assert clip.windows == [[0, 1, 2, 3], [2, 3, 4, 5]]
    assert torch.allclose(clip.gt_pose[0], torch.tensor([0.0, 0, 0, 0, 0, 0, 1]), atol=1e-6)
    assert torch.allclose(clip.gt_points[..., 2], clip.depth)
    # the points reproject to their own pixels
    uvw = torch.einsum("fij,fhwj->fhwi", clip.K, clip.gt_points)
    u = uvw[..., 0] / uvw[..., 2]
    assert torch.allclose(u[0, 5], torch.arange(64, dtype=torch.float32), atol=1e-3)
    # cameras alternate, steps count sets inside the clip
    assert clip.camera.tolist() == [0, 1, 0, 1, 0, 1] and clip.step.tolist() == [0, 0, 1, 1, 2, 2]


def test_epoch_order_is_a_fixed_permutation_per_epoch():
    a, b = epoch_order(10, 0, 0), epoch_order(10, 0, 0)
    assert a == b and sorted(a) == list(range(10))
    assert epoch_order(10, 0, 1) != a
