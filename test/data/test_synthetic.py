"""The synthetic rig: deterministic scenes, exact depth and poses, a clear path."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from wint3r_ros.core.rig import Rig
from wint3r_ros.data.synthetic import RigConfig, SceneConfig, SyntheticRig, build_rig, build_scene
from wint3r_ros.errors import ConfigError

SMALL = RigConfig(num_cameras=3, width=48, height=36)


@pytest.fixture(scope="module")
def synth() -> SyntheticRig:
    return SyntheticRig(SceneConfig(seed=3), SMALL)


def _K(width: int, height: int, f: float) -> np.ndarray:
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def _looking_along_x(position) -> np.ndarray:
    """Camera-to-world pose of an optical frame (z forward, x right, y down) facing world +x."""
    T = np.eye(4)
    T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
    T[:3, 3] = position
    return T


def test_same_seed_renders_identical_frames_and_other_seeds_differ(synth):
    again = SyntheticRig(SceneConfig(seed=3), SMALL)
    for a, b in zip(synth.render(4), again.render(4)):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.T_world_cam, b.T_world_cam)
    other = SyntheticRig(SceneConfig(seed=4), SMALL).render(4)
    assert not np.array_equal(other[0].image, synth.render(4)[0].image)


def test_render_gives_rgb_depth_pose_and_stamp_per_camera(synth):
    frames = synth.render(2)
    assert [f.camera_name for f in frames] == ["cam0", "cam1", "cam2"]
    for f in frames:
        assert f.image.shape == (36, 48, 3) and f.image.dtype == np.uint8
        assert f.depth.shape == (36, 48) and f.depth.dtype == np.float32
        assert np.all(np.isfinite(f.depth)) and f.depth.min() > 0.2
        assert f.image.std() > 5.0                      # textured, not a flat colour
        assert f.stamp_ns == SMALL.start_ns + 200_000_000
    assert [len(fr) for fr in synth.frames(3, start=1)] == [3, 3, 3]


def test_depth_is_the_distance_to_the_room_planes_along_the_optical_axis():
    scene, _ = build_scene(SceneConfig(seed=0, num_boxes=0, num_spheres=0,
                                       room_size=(6.0, 5.0, 3.0)))
    w, h = 33, 25
    K = _K(w, h, 20.0)
    T = _looking_along_x([0.5, -0.4, 1.2])
    _, depth = scene.render_view(K, w, h, T)
    assert depth[12, 16] == pytest.approx(3.0 - 0.5, abs=1e-5)   # principal point -> x = 3 wall
    # Every pixel: z-depth of the first of the six planes along K^-1 [u, v, 1].
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    d = T[:3, :3] @ rays                                          # world, camera z = 1
    o = T[:3, 3][:, None]
    lo, hi = np.array([[-3.0], [-2.5], [0.0]]), np.array([[3.0], [2.5], [3.0]])
    with np.errstate(divide="ignore"):
        t = np.where(d > 0, (hi - o) / d, np.where(d < 0, (lo - o) / d, np.inf))
    np.testing.assert_allclose(depth.ravel(), t.min(axis=0), rtol=1e-5)


def test_depth_hits_a_sphere_and_a_rotated_box_where_geometry_says():
    base, _ = build_scene(SceneConfig(seed=0, num_boxes=1, num_spheres=1,
                                      room_size=(8.0, 6.0, 3.0), clearance=0.0))
    assert len(base.box_centre) == 1 and len(base.sphere_centre) == 1
    w, h = 33, 25
    K = _K(w, h, 20.0)
    T = _looking_along_x([-1.0, 0.0, 1.5])
    hidden_box = dict(box_centre=np.array([[3.5, 2.5, 2.5]]), box_half=np.full((1, 3), 0.1),
                      box_yaw=np.zeros(1))
    sphere = replace(base, sphere_centre=np.array([[1.5, 0.0, 1.5]]),
                     sphere_radius=np.array([0.5]), **hidden_box)
    _, depth = sphere.render_view(K, w, h, T)
    assert depth[12, 16] == pytest.approx(2.0, abs=1e-5)          # x = 1.0 on the sphere
    # Pixel 4 columns right: ray (4/20, 0, 1) in the camera; the sphere along it, by hand.
    dvec = np.array([1.0, -4 / 20, 0.0])                          # world, camera z = 1
    oc = np.array([-1.0, 0.0, 1.5]) - np.array([1.5, 0.0, 1.5])
    a, b, c = dvec @ dvec, dvec @ oc, oc @ oc - 0.25
    assert depth[12, 20] == pytest.approx((-b - math.sqrt(b * b - a * c)) / a, abs=1e-5)
    far_sphere = dict(sphere_centre=np.array([[3.5, -2.5, 2.5]]), sphere_radius=np.array([0.1]))
    for yaw in (0.0, math.pi / 6):
        box = replace(base, box_centre=np.array([[2.0, 0.0, 1.5]]),
                      box_half=np.array([[0.3, 0.3, 0.3]]), box_yaw=np.array([yaw]),
                      **far_sphere)
        _, depth = box.render_view(K, w, h, T)
        # The local -x face, (p - c) . (cos, sin) = -h, met by the axis ray from x = -1.
        assert depth[12, 16] == pytest.approx(2.0 + 1.0 - 0.3 / math.cos(yaw), abs=1e-5)


def test_camera_poses_are_the_base_pose_times_the_extrinsics(synth):
    for k in (0, 7):
        frames = synth.render(k)
        T_wb = synth.T_world_base(k)
        R = T_wb[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        for f, cam in zip(frames, synth.rig.cameras):
            np.testing.assert_allclose(f.T_world_cam, T_wb @ cam.T_base_camera, atol=1e-12)
            np.testing.assert_array_equal(f.T_world_base, T_wb)


def test_depth_of_one_view_reprojects_onto_the_depth_of_the_next(synth):
    """Multi-view consistency: points from cam0 at frame 5 land on cam0's surface at frame 6
    and on cam1's (overlapping view) at frame 5."""
    a = synth.render(5)
    b = synth.render(6)
    K = synth.rig.cameras[0].K
    h, w = a[0].depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    pts_cam = (np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])) * \
        a[0].depth.ravel()
    pts_world = a[0].T_world_cam[:3, :3] @ pts_cam + a[0].T_world_cam[:3, 3:]
    for target in (b[0], a[1]):
        T_cw = np.linalg.inv(target.T_world_cam)
        p = T_cw[:3, :3] @ pts_world + T_cw[:3, 3:]
        z = p[2]
        x, y = (K @ (p / z))[:2]
        inside = (z > 0) & (x >= 0) & (x < w - 1) & (y >= 0) & (y < h - 1)
        assert inside.sum() > 200
        x, y, z = x[inside], y[inside], z[inside]
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        D = target.depth
        sampled = (D[y0, x0] * (1 - fx) * (1 - fy) + D[y0, x0 + 1] * fx * (1 - fy)
                   + D[y0 + 1, x0] * (1 - fx) * fy + D[y0 + 1, x0 + 1] * fx * fy)
        err = np.abs(sampled - z)
        # Bilinear sampling is off at occlusion edges only; the bulk agrees to millimetres.
        assert np.median(err) < 0.005
        assert np.mean(err < 0.02) > 0.85


def test_rig_is_a_core_rig_with_rep103_optical_frames_and_real_baselines(synth):
    rig = synth.rig
    assert isinstance(rig, Rig) and rig.camera_names == ["cam0", "cam1", "cam2"]
    assert [c.topic for c in rig.cameras] == ["/cam0/image_raw", "/cam1/image_raw",
                                              "/cam2/image_raw"]
    assert all(0.1 <= b <= 0.3 for b in rig.baselines().values())
    z_axes = np.stack([c.T_base_camera[:3, 2] for c in rig.cameras])
    assert z_axes[0, 0] > 0.99                                   # cam0 looks forward (+x)
    assert z_axes[1, 1] > 0.5 and z_axes[2, 1] < -0.5            # cam1 left, cam2 right
    for cam in rig.cameras:
        assert cam.T_base_camera[2, 1] < -0.99                   # optical y points down
    assert build_rig(RigConfig(num_cameras=1)).camera_names == ["cam0"]


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_path_keeps_every_camera_clear_of_objects(seed):
    config = RigConfig(num_cameras=3)
    synth = SyntheticRig(SceneConfig(seed=seed), config)
    scene = synth.scene
    assert len(scene.box_centre) + len(scene.sphere_centre) >= 6
    centres = np.stack([(synth.T_world_base(k) @ cam.T_base_camera)[:3, 3]
                        for k in range(0, 150, 3) for cam in synth.rig.cameras])
    assert np.all(centres > scene.room_min + 0.3) and np.all(centres < scene.room_max - 0.3)
    for c, r in zip(scene.sphere_centre, scene.sphere_radius):
        assert np.linalg.norm(centres - c, axis=1).min() > r + 0.3
    for c, half in zip(scene.box_centre, scene.box_half):
        assert np.linalg.norm(centres - c, axis=1).min() > np.linalg.norm(half) + 0.3


def test_bad_rig_config_raises_config_error():
    with pytest.raises(ConfigError, match="num_cameras"):
        RigConfig(num_cameras=0)
    with pytest.raises(ConfigError, match="fov_deg"):
        RigConfig(fov_deg=179.0)
