"""``--level`` / ``--cam0-pose``: the calibrated rig's base follows REP-103 (x forward, z up)."""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from wint3r_ros import cli
from wint3r_ros.calib.fit import FitOptions
from wint3r_ros.calib.frames import base_from_cam0
from wint3r_ros.calib.pipeline import CalibrateConfig, calibrate
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.errors import CalibrationError

UP = np.array([0.0, 0.0, 1.0])
IMAGE_UP = np.array([0.0, -1.0, 0.0])   # optical frames: y points down the image


@pytest.fixture(scope="module")
def level_stereo(synth, board):
    """The stereo truth rig is level: camera 0's optical axis horizontal, image rows level."""
    truth = synth["make_rig"](2)
    poses = synth["plan_poses"](truth, board, seed=31, single=8, shared=12)
    return truth, synth["corner_detections"](truth, board, poses, seed=31)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b),
                                                -1, 1))))


def test_a_level_rig_gets_a_base_with_z_up_and_x_forward(level_stereo, board) -> None:
    truth, det = level_stereo
    opts = FitOptions(base_frame="base_link", cam0_mount=(0.0,) * 6)
    result = calibrate(det, CalibrateConfig(board, fit=opts))
    rig = result.rig
    assert rig.base_frame == "base_link"
    cam0 = rig.cameras[0].T_base_camera
    np.testing.assert_allclose(cam0[:3, 3], 0.0, atol=1e-12)
    np.testing.assert_allclose(cam0[:3, :3] @ [0, 0, 1], [1, 0, 0], atol=1e-12)   # x forward
    np.testing.assert_allclose(cam0[:3, :3] @ [-1, 0, 0], [0, 1, 0], atol=1e-12)  # y left
    for cam in rig.cameras:   # every camera's image "up" is the base's z (cam1 rolls ~1 deg)
        assert _angle_deg(cam.T_base_camera[:3, :3] @ IMAGE_UP, UP) < 2.0
    # Re-basing moves no camera relative to another.
    assert rig.baselines()[("cam0", "cam1")] == pytest.approx(
        truth.baselines()[("cam0", "cam1")], rel=0.01)
    assert result.report["base"]["convention"] == "REP-103 (x forward, y left, z up)"
    # cam1 sits 12 cm to the right of cam0: -y in REP-103.
    assert rig.cameras[1].T_base_camera[1, 3] == pytest.approx(-0.12, abs=0.003)


def test_cam0_pose_places_and_pitches_camera_0(level_stereo, board) -> None:
    _, det = level_stereo
    opts = FitOptions(cam0_mount=(0.2, 0.0, 0.5, 0.0, 10.0, 0.0))   # 10 deg nose down
    rig = calibrate(det, CalibrateConfig(board, fit=opts)).rig
    T = rig.cameras[0].T_base_camera
    np.testing.assert_allclose(T[:3, 3], [0.2, 0.0, 0.5], atol=1e-12)
    down = math.radians(10.0)
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [math.cos(down), 0, -math.sin(down)],
                               atol=1e-12)
    yawed = base_from_cam0((0, 0, 0, 0, 0, 90.0))   # looking left
    np.testing.assert_allclose(yawed[:3, :3] @ [0, 0, 1], [0, 1, 0], atol=1e-12)
    with pytest.raises(CalibrationError, match=r"6 finite numbers X Y Z ROLL PITCH YAW"):
        base_from_cam0((0, 0, 0, float("nan"), 0, 0))


def test_cli_level_writes_a_rep103_rig(image_dirs2, tmp_path) -> None:
    out = tmp_path / "rig.yaml"
    with contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(["calibrate", "--images", *map(str, image_dirs2), "--board", "8x5",
                       "--square", "0.05", "--out", str(out), "--base-frame", "base_link",
                       "--level", "--min-coverage", "0.3"])
    assert rc == 0
    rig = load_rig(out)
    assert rig.base_frame == "base_link"
    for cam in rig.cameras:
        assert _angle_deg(cam.T_base_camera[:3, :3] @ IMAGE_UP, UP) < 2.0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["base"] == {"frame": "base_link", "cam0_mount_xyz_rpy_deg": [0.0] * 6,
                              "convention": "REP-103 (x forward, y left, z up)"}


def test_rebase_keeps_every_camera_field_but_the_pose() -> None:
    from dataclasses import replace

    from wint3r_ros.calib.frames import rebase
    from wint3r_ros.core.rig import Camera, Rig

    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    T1 = np.eye(4)
    T1[0, 3] = 0.1
    cams = [Camera(f"cam{i}", f"/cam{i}/image_raw", f"cam{i}_optical_frame", 64, 48, K,
                   camera_info_topic=f"/cam{i}/info", time_offset=0.001 * (i + 1),
                   T_base_camera=T) for i, T in enumerate([np.eye(4), T1])]
    rig = rebase(Rig("r", "rig_base", cams), base_from_cam0([0, 0, 0.3, 0, 0, 0]), "base_link")
    assert rig.base_frame == "base_link"
    for old, new in zip(cams, rig.cameras):
        assert new.camera_info_topic == old.camera_info_topic and new.time_offset == old.time_offset
        assert new == replace(old, T_base_camera=new.T_base_camera)
    rel = np.linalg.inv(rig.cameras[0].T_base_camera) @ rig.cameras[1].T_base_camera
    np.testing.assert_allclose(rel, T1, atol=1e-12)
