"""Geometry: round trips, Umeyama recovering a known Sim(3), intrinsics under crop/resize."""
from __future__ import annotations

import math

import numpy as np
import pytest

from wint3r_ros.core import geometry as g
from wint3r_ros.errors import InputError


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return g.matrix_from_quat_xyzw(q)


def test_quaternion_matrix_round_trip_many_rotations():
    rng = np.random.default_rng(0)
    q = g.quat_normalize(rng.normal(size=(200, 4)))
    R = g.matrix_from_quat_xyzw(q)
    assert R.shape == (200, 3, 3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(g.quat_xyzw_from_matrix(R), q, atol=1e-12)


def test_quaternion_is_scalar_last():
    # 90 degrees about z: [0, 0, sin 45, cos 45]
    q = [0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]
    R = g.matrix_from_quat_xyzw(q)
    np.testing.assert_allclose(R @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-15)
    # 180-degree rotations (w = 0) come back with the right axis
    for axis in np.eye(3):
        q = np.append(axis, 0.0)
        np.testing.assert_allclose(np.abs(g.quat_xyzw_from_matrix(g.matrix_from_quat_xyzw(q))), q, atol=1e-12)


def test_quat_multiply_matches_matrix_product_and_conjugate_inverts():
    rng = np.random.default_rng(1)
    a, b = g.quat_normalize(rng.normal(size=4)), g.quat_normalize(rng.normal(size=4))
    np.testing.assert_allclose(g.matrix_from_quat_xyzw(g.quat_multiply(a, b)),
                               g.matrix_from_quat_xyzw(a) @ g.matrix_from_quat_xyzw(b), atol=1e-12)
    np.testing.assert_allclose(g.quat_normalize(g.quat_multiply(a, g.quat_conjugate(a))), [0, 0, 0, 1],
                               atol=1e-12)


def test_slerp_endpoints_and_midpoint_angle():
    q0 = np.array([0, 0, 0, 1.0])
    q1 = np.array([0, 0, math.sin(0.5), math.cos(0.5)])  # 1 rad about z
    np.testing.assert_allclose(g.quat_slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(g.quat_slerp(q0, q1, 1.0), q1, atol=1e-12)
    mid = g.matrix_from_quat_xyzw(g.quat_slerp(q0, q1, 0.5))
    assert g.rotation_angle(mid) == pytest.approx(0.5, abs=1e-12)


def test_zero_quaternion_is_rejected():
    with pytest.raises(InputError, match="non-zero"):
        g.quat_normalize([0, 0, 0, 0])


def test_se3_inverse_and_pose_round_trip():
    rng = np.random.default_rng(2)
    T = g.pose_from_translation_quat(rng.normal(size=(5, 3)), rng.normal(size=(5, 4)))
    np.testing.assert_allclose(g.se3_inverse(T) @ T, np.broadcast_to(np.eye(4), T.shape), atol=1e-12)
    t, q = g.translation_quat_from_pose(T)
    np.testing.assert_allclose(g.pose_from_translation_quat(t, q), T, atol=1e-12)


def test_orthonormalize_gives_nearest_rotation():
    rng = np.random.default_rng(3)
    R = random_rotation(rng)
    noisy = R + 1e-3 * rng.normal(size=(3, 3))
    Rn = g.orthonormalize(noisy)
    np.testing.assert_allclose(Rn @ Rn.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(Rn) == pytest.approx(1.0)
    assert np.abs(Rn - R).max() < 5e-3


def test_umeyama_recovers_known_similarity():
    rng = np.random.default_rng(4)
    src = rng.normal(size=(50, 3))
    R = random_rotation(rng)
    truth = g.Similarity(2.5, R, np.array([1.0, -2.0, 0.5]))
    dst = truth.apply(src)
    fit = g.umeyama(src, dst)
    assert fit.scale == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(fit.rotation, R, atol=1e-12)
    np.testing.assert_allclose(fit.translation, truth.translation, atol=1e-12)
    assert fit.rms < 1e-12
    np.testing.assert_allclose(fit.inverse().apply(dst), src, atol=1e-12)
    np.testing.assert_allclose(g.sim3_inverse(fit.matrix()) @ fit.matrix(), np.eye(4), atol=1e-12)


def test_umeyama_without_scale_is_rigid_and_ignores_nan_rows():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(30, 3))
    R = random_rotation(rng)
    dst = src @ R.T + [0.3, 0.2, 0.1]
    dst[3] = np.nan
    fit = g.umeyama(src, dst, with_scale=False)
    assert fit.scale == 1.0
    np.testing.assert_allclose(fit.rotation, R, atol=1e-12)


def test_umeyama_two_points_gives_exact_scale():
    src = np.array([[0.0, 0, 0], [0.2, 0, 0]])
    dst = np.array([[1.0, 1, 1], [1.0, 1.5, 1]])
    fit = g.umeyama(src, dst)
    assert fit.scale == pytest.approx(2.5)
    np.testing.assert_allclose(fit.apply(src), dst, atol=1e-12)


def test_umeyama_errors_name_the_problem():
    with pytest.raises(InputError, match=">= 2"):
        g.umeyama(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(InputError, match="zero spread"):
        g.umeyama(np.ones((4, 3)), np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(InputError, match="shape"):
        g.umeyama(np.ones((4, 3)), np.ones((5, 3)))


def test_similarity_apply_pose_keeps_rotation_rigid():
    rng = np.random.default_rng(6)
    T = g.pose_from_translation_quat(rng.normal(size=3), rng.normal(size=4))
    S = g.Similarity(3.0, random_rotation(rng), rng.normal(size=3))
    out = S.apply_pose(T)
    np.testing.assert_allclose(out[:3, :3] @ out[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(out[:3, 3], S.apply(T[:3, 3]), atol=1e-12)


def test_depth_points_projection_round_trip():
    K = np.array([[300.0, 0.5, 160.2], [0, 310.0, 119.7], [0, 0, 1]])
    rng = np.random.default_rng(7)
    depth = rng.uniform(0.5, 10.0, size=(24, 32))
    depth[0, 0] = np.nan
    pts = g.points_from_depth(depth, K)
    assert pts.shape == (24, 32, 3)
    np.testing.assert_allclose(g.depth_from_points(pts), depth)
    uv, z = g.project_points(pts, K)
    v, u = np.mgrid[0:24, 0:32]
    np.testing.assert_allclose(uv[1:, :, 0], u[1:], atol=1e-9)
    np.testing.assert_allclose(uv[1:, :, 1], v[1:], atol=1e-9)
    assert np.isnan(uv[0, 0]).all()


def test_intrinsics_after_crop_resize_maps_pixels_consistently():
    K = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])
    point = np.array([0.3, -0.2, 2.0])
    (u, v), _ = g.project_points(point, K)
    # crop (40, 20, 560, 420) then resize to 280 x 210: a pixel x maps to (x - x0 + 0.5) s - 0.5
    K2 = g.intrinsics_after_crop_resize(K, (40, 20, 560, 420), (280, 210))
    (u2, v2), _ = g.project_points(point, K2)
    assert u2 == pytest.approx((u - 40 + 0.5) * 0.5 - 0.5)
    assert v2 == pytest.approx((v - 20 + 0.5) * 0.5 - 0.5)
    with pytest.raises(InputError, match="empty crop"):
        g.intrinsics_after_crop_resize(K, (0, 0, 0, 10), (10, 10))
