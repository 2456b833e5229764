"""Simulated online windows: the engine's windowing, the fixed split, the render cache."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wint3r_ros.core.window import WindowBuilder, WindowConfig
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
    assert parse_data_spec("synthetic-rig:test") == ("synthetic-rig", "test")
    with pytest.raises(ConfigError, match="<kind>:<split>"):
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


def _rig_data(small_data):
    return dataclasses.replace(small_data, rig_family="random", frames_per_scene=7, window_size=3,
                               window_overlap=1, windows_per_clip=2)


def test_rig_clip_windows_equal_what_window_builder_makes_from_the_same_sets(small_data):
    data = _rig_data(small_data)
    seed = next(s for s in range(20) if data.rig_config(s).num_cameras == 3)
    ds = ClipDataset(data, [seed])
    scene = ds.cache.load(seed)
    clip = ds[1]  # sets 2..6 of the scene (stride 2)
    assert clip.start == 2 and scene.images.shape[1] == 3
    names = scene.camera_names
    builder = WindowBuilder(names, WindowConfig(3, 1))
    windows = []
    for t in range(clip.start, clip.start + data.clip_sets):
        w = builder.push([(t, c) for c in range(3)], stamps=[0.1 * t] * 3, set_index=t)
        if w is not None:
            windows.append(w)
    assert len(windows) == len(clip.windows) == 2
    for w, rows in zip(windows, clip.windows):
        # the same frames, in the same (time-major) order
        assert [((t - clip.start) * 3 + c) for t, c in w.items] == rows
        for (t, c), row in zip(w.items, rows):
            assert int(clip.camera[row]) == c and int(clip.step[row]) == t - clip.start
            assert torch.allclose(clip.depth[row], torch.from_numpy(scene.depth[t, c]))
            assert torch.allclose(clip.rgb[row].permute(1, 2, 0) * 255,
                                  torch.from_numpy(scene.images[t, c]).float(), atol=0.5)
    # the curriculum keeps the first cameras, windowed as WindowBuilder does for that rig
    two = ds.clip(1, max_cameras=2)
    assert two.camera.tolist()[:4] == [0, 1, 0, 1] and two.windows == clip_windows(5, 2, WindowConfig(3, 1))


def test_random_rig_family_draws_a_rig_per_seed_with_held_out_geometry():
    from wint3r_ros.data.synthetic import RigConfig, RigFamily, build_rig

    family = RigFamily()
    base = RigConfig()
    assert family.member(5, base) == family.member(5, base)  # deterministic
    members = [family.member(s, base) for s in range(200)]
    assert {m.num_cameras for m in members} == {1, 2, 3, 4}
    assert any(m.mounts is None and m.num_cameras == 3 for m in members)  # the demo rig itself

    def spread_and_span(m):
        rig = build_rig(m)
        if m.mounts is None or m.num_cameras < 2:
            return None, None
        yaws = [mt[3] for mt in m.mounts]
        c = np.stack([cam.T_base_camera[:3, 3] for cam in rig.cameras])
        return max(yaws) - min(yaws), float(np.ptp(c[:, 1]))

    lo, hi = family.held_out_spread_deg
    stats = [spread_and_span(m) for m in members]
    spreads = [s for s, _ in stats if s is not None]
    spans = [b for _, b in stats if b is not None]
    assert 0.05 - 1e-9 <= min(spans) and max(spans) <= 0.40 + 1e-9
    assert min(spreads) == 0.0 and max(spreads) > 100.0  # stereo pairs and wide rigs
    assert not any(lo <= s < hi for s in spreads)  # training never sees the held-out band
    held = [spread_and_span(family.member(s, base, held_out=True))[0] for s in range(2000, 2020, 2)]
    assert sum(s is not None and lo <= s < hi for s in held) >= 8
