"""core/outputs: the odometry frame (starts at the first base pose, continuous across resets),
body-frame velocities, and the bounded, voxel-filtered cloud and path."""
from __future__ import annotations

import numpy as np
import pytest

from wint3r_ros.core import geometry as g
from wint3r_ros.core.outputs import (
    BASE_FROM_OPTICAL,
    OdomFrame,
    PathBuffer,
    cap_points,
    twist_between,
    voxel_downsample,
)


def _pose(yaw, t):
    c, s = np.cos(yaw), np.sin(yaw)
    return g.se3(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]), t)


def test_odom_starts_at_identity_and_stays_continuous_across_a_reset():
    world_a = g.se3(g.matrix_from_quat_xyzw(g.quat_normalize([0.3, -0.2, 0.1, 0.9])), [4.0, 5.0, 6.0])
    odom = OdomFrame()
    first = odom.base_in_odom(world_a @ _pose(0.0, [0, 0, 0]))
    np.testing.assert_allclose(first, np.eye(4), atol=1e-12)
    moved = odom.base_in_odom(world_a @ _pose(0.5, [1.0, 0.0, 0.0]))
    np.testing.assert_allclose(moved, _pose(0.5, [1.0, 0.0, 0.0]), atol=1e-12)
    pts = odom.points_in_odom((world_a @ np.array([1.0, 2.0, 3.0, 1.0]))[None, :3])
    np.testing.assert_allclose(pts[0], [1.0, 2.0, 3.0], atol=1e-5)
    # a new stream with an unrelated world: odometry continues from the last pose, no jump
    odom.reset()
    world_b = g.se3(t=[-10.0, 0.0, 0.0])
    again = odom.base_in_odom(world_b)
    np.testing.assert_allclose(again, moved, atol=1e-12)
    step = odom.base_in_odom(world_b @ _pose(0.0, [0.0, 2.0, 0.0]))
    np.testing.assert_allclose(step, moved @ _pose(0.0, [0.0, 2.0, 0.0]), atol=1e-12)


def test_twist_is_in_the_body_frame():
    T0 = _pose(np.pi / 2, [0.0, 0.0, 0.0])
    T1 = _pose(np.pi / 2 + 0.1, [0.0, 0.5, 0.0])  # facing +y, moving +y: forward in the body
    lin, ang = twist_between(T0, T1, 0.5)
    np.testing.assert_allclose(lin, [np.cos(0.1), -np.sin(0.1), 0.0], atol=1e-9)
    np.testing.assert_allclose(ang, [0.0, 0.0, 0.2], atol=1e-9)
    assert np.all(twist_between(T0, T1, 0.0)[0] == 0)


def test_voxel_filter_and_cap_bound_the_cloud():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (5000, 3)).astype(np.float32)
    pts[10] = np.nan
    cols = rng.integers(0, 255, (5000, 3), dtype=np.uint8)
    out, oc = voxel_downsample(pts, cols, 0.25)
    assert len(out) == 64 and np.isfinite(out).all()  # 4 x 4 x 4 voxels, one point each
    keys = {tuple(k) for k in np.floor(out / 0.25).astype(int)}
    assert len(keys) == 64
    i = int(np.flatnonzero((pts == out[0]).all(1))[0])
    assert (oc[0] == cols[i]).all()
    capped, cc = cap_points(out, oc, 10)
    assert len(capped) == 10 and len(cc) == 10 and (capped[0] == out[0]).all()
    assert len(voxel_downsample(pts, None, 0.0)[0]) == 4999


def test_path_keeps_the_newest_poses():
    path = PathBuffer(3)
    for k in range(5):
        path.append(np.eye(4) * 1.0, k)
    assert [s for _, s in path.items()] == [2, 3, 4]


def test_assumed_camera_mount_is_a_rotation_to_the_optical_convention():
    R = BASE_FROM_OPTICAL[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3))
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ [0, 0, 1], [1, 0, 0])   # optical z (forward) -> base x
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 0, -1])  # optical y (down) -> base -z
