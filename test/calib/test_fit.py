"""The fitting machinery: projection Jacobians, the joint refinement, and checks of fisheye rigs."""
from __future__ import annotations

import numpy as np
import pytest

from wint3r_ros.calib.fit import T_from_rt, project, refine_poses, rt_from_T
from wint3r_ros.calib.pipeline import CalibrateConfig, check
from wint3r_ros.calib.validate import Thresholds
from wint3r_ros.core.rig import Camera

K = np.array([[400.0, 0.0, 330.0], [0.0, 402.0, 242.0], [0.0, 0.0, 1.0]])
CAMS = {
    "plumb_bob": Camera("a", "/a", "a_optical", 640, 480, K, "plumb_bob",
                        [-0.25, 0.09, 0.001, -0.002, 0.01]),
    "equidistant": Camera("b", "/b", "b_optical", 640, 480, K, "equidistant",
                          [0.05, -0.01, 0.003, -0.001]),
    "none": Camera("c", "/c", "c_optical", 640, 480, K, "none", []),
}


@pytest.mark.parametrize("model", sorted(CAMS))
def test_projection_jacobian_matches_finite_differences(model: str, board) -> None:
    cam = CAMS[model]
    obj = board.object_points()
    rt = np.array([0.2, -0.3, 0.1, -0.15, -0.1, 0.8])
    uv, J = project(cam, rt[:3], rt[3:], obj)
    assert uv.shape == (board.size, 2) and J.shape == (2 * board.size, 6)
    eps = 1e-6
    for k in range(6):
        d = np.zeros(6)
        d[k] = eps
        up, _ = project(cam, (rt + d)[:3], (rt + d)[3:], obj)
        um, _ = project(cam, (rt - d)[:3], (rt - d)[3:], obj)
        np.testing.assert_allclose(J[:, k], ((up - um) / (2 * eps)).reshape(-1), rtol=1e-4,
                                   atol=1e-3)


def test_pose_vectors_round_trip() -> None:
    rt = np.array([0.3, -1.2, 2.0, 1.0, -2.0, 3.0])
    np.testing.assert_allclose(rt_from_T(T_from_rt(rt)), rt, atol=1e-12)


def test_joint_refinement_recovers_extrinsics_from_a_perturbed_start(board) -> None:
    """Noise-free views: LM must land on the exact extrinsics and board poses (fisheye too)."""
    cams = [CAMS["plumb_bob"], CAMS["equidistant"], CAMS["none"]]
    T_cam_base = [np.eye(4), T_from_rt(np.array([0.02, -0.15, 0.01, -0.12, 0.0, 0.01])),
                  T_from_rt(np.array([-0.01, 0.12, 0.0, 0.1, 0.01, 0.0]))]
    obj = board.object_points()
    rng = np.random.default_rng(0)
    boards = {f: T_from_rt(np.array([*rng.normal(0, 0.2, 3), *rng.normal(0, 0.05, 2), 0.9]))
              @ T_from_rt(np.array([0, 0, 0, -0.17, -0.1, 0])) for f in range(6)}
    obs = []
    for f, T in boards.items():
        for c, cam in enumerate(cams):
            Tc = T_cam_base[c] @ T
            uv, _ = project(cam, rt_from_T(Tc)[:3], Tc[:3, 3], obj)
            obs.append((f, c, uv))
    start_ext = [T_cam_base[0]] + [T_from_rt(rt_from_T(T) + rng.normal(0, 0.01, 6))
                                   for T in T_cam_base[1:]]
    start_boards = {f: T_from_rt(rt_from_T(T) + rng.normal(0, 0.01, 6)) for f, T in boards.items()}
    ext, brd, stats = refine_poses(cams, obj, obs, start_ext, start_boards, free_cameras=[1, 2])
    assert stats["rms_before"] > 1.0 and stats["rms_after"] < 1e-6
    for got, want in zip(ext, T_cam_base):
        np.testing.assert_allclose(got, want, atol=1e-7)
    for f in boards:
        np.testing.assert_allclose(brd[f], boards[f], atol=1e-7)
    # Camera 0 is the reference and never moves.
    np.testing.assert_array_equal(ext[0], np.eye(4))


def test_check_handles_fisheye_cameras(synth, board) -> None:
    """A stored rig with an equidistant camera validates to the corner noise level."""
    truth = synth["make_rig"](2)
    fish = truth.cameras[1]
    fisheye = Camera(fish.name, fish.topic, fish.frame_id, fish.width, fish.height, fish.K,
                     "equidistant", [0.04, -0.01, 0.002, 0.0], fish.T_base_camera)
    rig = truth.with_cameras([truth.cameras[0], fisheye])
    poses = synth["plan_poses"](rig, board, seed=5, single=2, shared=6)
    det = synth["corner_detections"](rig, board, poses, seed=5, sigma=0.05)
    result = check(rig, det, CalibrateConfig(board, thresholds=Thresholds(min_coverage=0.0,
                                                                          min_board_area=0.0)))
    cams = result.report["cameras"]
    assert result.passed, result.warnings
    assert 0.03 < cams["cam1"]["check"]["mono_rms_px"] < 0.08
    assert 0.03 < cams["cam1"]["check"]["rig_rms_px"] < 0.08
    assert result.report["pairs"]["cam0-cam1"]["check"]["sets"] == 6
