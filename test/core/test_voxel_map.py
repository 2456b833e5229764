"""core.voxel_map: one point per voxel (running mean), the bound and its eviction rule, memory
flat over a long run."""
from __future__ import annotations

import numpy as np
import pytest

from wint3r_ros.core.voxel_map import BYTES_PER_VOXEL, MapConfig, VoxelMap
from wint3r_ros.errors import ConfigError


def test_points_in_one_voxel_become_their_mean_with_the_newest_colour():
    m = VoxelMap(MapConfig(voxel_size=1.0, max_points=10))
    m.insert([[0.1, 0.1, 0.1], [0.3, 0.5, 0.9]], [[10, 10, 10], [20, 20, 20]])
    m.insert([[0.2, 0.3, 0.2]], [[30, 30, 30]])
    m.insert([[5.5, 0.5, 0.5]])
    pts, cols = m.points()
    assert len(m) == 2
    np.testing.assert_allclose(pts[0], [0.2, 0.3, 0.4], atol=1e-6)
    assert cols[0].tolist() == [30, 30, 30]
    np.testing.assert_allclose(pts[1], [5.5, 0.5, 0.5])
    assert cols[1].tolist() == [128, 128, 128]   # no colour given: grey


def test_negative_coordinates_get_their_own_voxels():
    m = VoxelMap(MapConfig(voxel_size=1.0, max_points=10))
    m.insert([[-0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [-0.5, -0.5, -0.5], [-1.5, 0.5, 0.5]])
    assert len(m) == 4


def test_non_finite_and_far_points_are_refused_and_counted():
    m = VoxelMap(MapConfig(voxel_size=0.05, max_points=10))
    m.insert([[np.nan, 0, 0], [np.inf, 1, 1], [1e9, 0, 0], [1.0, 2.0, 3.0]])
    assert len(m) == 1 and m.refused == 3
    np.testing.assert_allclose(m.points()[0], [[1.0, 2.0, 3.0]])


def test_over_the_bound_the_least_recently_seen_voxels_are_evicted():
    m = VoxelMap(MapConfig(voxel_size=1.0, max_points=3))
    m.insert([[0.5, 0.5, 0.5]])        # A, seen at 1
    m.insert([[1.5, 0.5, 0.5]])        # B, seen at 2
    m.insert([[2.5, 0.5, 0.5]])        # C, seen at 3
    m.insert([[0.6, 0.6, 0.6]])        # A again: now the newest
    m.insert([[3.5, 0.5, 0.5]])        # D: B (oldest) goes
    xs = sorted(p[0] for p in m.points()[0])
    np.testing.assert_allclose(xs, [0.55, 2.5, 3.5])
    assert m.evicted == 1 and len(m) == 3


def test_config_refuses_a_zero_voxel_and_a_zero_bound():
    with pytest.raises(ConfigError, match="voxel_size"):
        MapConfig(voxel_size=0.0)
    with pytest.raises(ConfigError, match="max_points"):
        MapConfig(max_points=0)


def test_a_long_run_stays_under_its_bound_with_flat_memory_and_keeps_the_recent_area():
    """600 windows of 1000 points each along a 600 m corridor: never more than max_points
    voxels or max_bytes; once full the map stays between 90 % and 100 % of its bound (the
    eviction batch), and the last windows' area is all in the map."""
    rng = np.random.default_rng(0)
    cfg = MapConfig(voxel_size=0.1, max_points=5_000)
    m = VoxelMap(cfg)
    sizes = []
    for step in range(600):
        x0 = step * 1.0
        pts = np.column_stack([x0 + rng.uniform(0, 3, 1000), rng.uniform(-2, 2, 1000),
                               rng.uniform(0, 1, 1000)]).astype(np.float32)
        m.insert(pts, rng.integers(0, 255, (1000, 3), dtype=np.uint8))
        assert len(m) <= cfg.max_points
        assert m.nbytes <= cfg.max_bytes == 5_000 * BYTES_PER_VOXEL
        sizes.append(m.nbytes)
    second_half = sizes[300:]
    assert min(second_half) >= 0.9 * cfg.max_bytes and max(second_half) <= cfg.max_bytes
    pts, _ = m.points()
    assert pts[:, 0].max() > 599.0                               # the newest area is kept
    assert pts[:, 0].min() > 590.0                               # the oldest went first
    assert m.evicted == m.stats()["evicted"] > 0
    assert m.inserted == 600 * 1000 and m.refused == 0


def test_eviction_keeps_90_percent_of_a_large_bound_and_drops_the_oldest_first():
    m = VoxelMap(MapConfig(voxel_size=1.0, max_points=100))
    for k in range(100):                                          # 100 voxels, one per insert
        m.insert([[k + 0.5, 0.5, 0.5]])
    assert len(m) == 100 and m.evicted == 0
    m.insert([[0.5, 0.5, 0.5]])                                   # voxel 0 seen again: newest
    m.insert([[100.5, 0.5, 0.5]])                                 # over the bound
    assert len(m) == 90 and m.evicted == 11
    xs = sorted(p[0] for p in m.points()[0])
    assert xs[0] == 0.5 and xs[1] == 12.5 and xs[-1] == 100.5     # 1..11 went (the oldest)


def test_run_map_keeps_the_newest_poses_and_counts_changes():
    from wint3r_ros.core.voxel_map import RunMap

    run = RunMap(MapConfig(voxel_size=1.0, max_points=10), max_poses=3)
    for k in range(5):
        T = np.eye(4)
        T[0, 3] = k
        run.add_pose(100 + k, T)
    v = run.version
    run.add_cloud(np.zeros((0, 3)), None)          # nothing new: no change
    assert run.version == v
    run.add_cloud(np.array([[0.5, 0.5, 0.5]]), None)
    assert run.version == v + 1 and len(run.cloud) == 1
    pts, cols, stamps, poses, stats = run.snapshot()
    assert stamps == [102, 103, 104] and poses[:, 0, 3].tolist() == [2.0, 3.0, 4.0]
    assert len(pts) == len(cols) == stats["voxels"] == 1


def _reference_map(batches, voxel, max_points):
    """The rule of the module docstring, written plainly with a dict: mean per voxel, newest
    colour, last insert seen; over the bound evict the oldest (ties: lower key) down to 90 %."""
    vox: dict[tuple, list] = {}
    for tick, (pts, cols) in enumerate(batches, 1):
        for p, c in zip(pts, cols):
            k = tuple(np.floor(p.astype(np.float64) / voxel).astype(int))
            if k in vox:
                s, n, _, _ = vox[k]
                vox[k] = [s + p.astype(np.float64), n + 1, c, tick]
            else:
                vox[k] = [p.astype(np.float64), 1, c, tick]
        if len(vox) > max_points:
            order = sorted(vox, key=lambda k: (vox[k][3], k))
            for k in order[:len(vox) - (max_points - max_points // 10)]:
                del vox[k]
    return {k: (v[0] / v[1], tuple(v[2])) for k, v in vox.items()}


def test_the_map_equals_a_plain_reference_through_merges_and_evictions():
    rng = np.random.default_rng(7)
    batches = []
    for step in range(40):
        n = int(rng.integers(1, 400))
        pts = np.column_stack([step * 0.3 + rng.uniform(-1, 2, n), rng.uniform(-1, 1, n),
                               rng.uniform(-0.5, 0.5, n)]).astype(np.float32)
        batches.append((pts, rng.integers(0, 256, (n, 3), dtype=np.uint8)))
    for max_points in (50, 700, 100_000):        # evicting often, now and then, never
        m = VoxelMap(MapConfig(voxel_size=0.25, max_points=max_points))
        for pts, cols in batches:
            m.insert(pts, cols)
            assert len(m) <= max_points
        ref = _reference_map(batches, 0.25, max_points)
        pts, cols = m.points()
        got = {tuple(np.floor(p.astype(np.float64) / 0.25).astype(int)): (p, tuple(c))
               for p, c in zip(pts, cols)}
        assert len(got) == len(pts) == len(ref)
        assert got.keys() == ref.keys()
        for k, (p, c) in got.items():
            np.testing.assert_allclose(p, ref[k][0], atol=1e-5)
            assert c == ref[k][1]
