"""Rig/Camera types and their file formats: round trips, imports, and every malformed case."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from wint3r_ros.core.rig import Camera, Rig, quaternion_xyzw_from_rotation, rotation_from_quaternion_xyzw
from wint3r_ros.data.rig_files import (
    camera_from_camera_info_dict,
    load_camera_info_yaml,
    load_kalibr_camchain,
    load_rig,
    rig_from_dict,
    rig_from_kalibr_dict,
    rig_to_dict,
    save_camera_info_yaml,
    save_rig,
)
from wint3r_ros.errors import CalibrationError
from wint3r_ros.yaml_io import dump_yaml


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _pose(R: np.ndarray, t: list[float]) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def _rig() -> Rig:
    K = np.array([[500.0, 0.0, 319.5], [0.0, 505.0, 239.5], [0.0, 0.0, 1.0]])
    cams = [
        Camera("cam0", "/cam0/image_raw", "cam0_optical", 640, 480, K, "plumb_bob",
               [-0.1, 0.01, 0.001, -0.002, 0.0003], np.eye(4), "/cam0/camera_info"),
        Camera("cam1", "/cam1/image_raw", "cam1_optical", 640, 480, K * [[1.01], [1], [1]],
               "equidistant", [0.1, -0.02, 0.003, -0.0004],
               _pose(_rot("y", 10.0) @ _rot("x", -3.0), [0.12, 0.001, -0.002])),
        Camera("cam2", "/cam2/image_raw", "cam2_optical", 320, 240, K / [[2], [2], [1]],
               "none", [], _pose(_rot("z", 170.0), [-0.1, 0.05, 0.02])),
    ]
    return Rig("test_rig", "base_link", cams)


# ---------------------------------------------------------------------------------------------
# Round trips and helpers


def test_rig_yaml_round_trip_preserves_every_field(tmp_path: Path) -> None:
    rig = _rig()
    path = tmp_path / "rig.yaml"
    save_rig(rig, path, comment="written by a test\nsecond line")
    back = load_rig(path)
    assert back.name == "test_rig" and back.base_frame == "base_link"
    assert back.camera_names == ["cam0", "cam1", "cam2"]
    for a, b in zip(rig.cameras, back.cameras):
        assert (a.name, a.topic, a.frame_id, a.width, a.height, a.distortion_model,
                a.camera_info_topic) == (b.name, b.topic, b.frame_id, b.width, b.height,
                                         b.distortion_model, b.camera_info_topic)
        np.testing.assert_array_equal(a.K, b.K)
        np.testing.assert_array_equal(a.distortion_coefficients, b.distortion_coefficients)
        np.testing.assert_allclose(a.T_base_camera, b.T_base_camera, atol=1e-14)
    assert back.cameras[1].camera_info_topic is None
    # A second save writes the same text: the format is stable.
    path2 = tmp_path / "rig2.yaml"
    save_rig(back, path2)
    assert yaml.safe_load(path2.read_text()) == yaml.safe_load(path.read_text())
    assert path.read_text().startswith("# written by a test\n# second line\n")


def test_rig_helpers_give_baselines_and_relative_poses() -> None:
    rig = _rig()
    b = rig.baselines()
    assert set(b) == {("cam0", "cam1"), ("cam0", "cam2"), ("cam1", "cam2")}
    assert b[("cam0", "cam1")] == pytest.approx(math.sqrt(0.12**2 + 0.001**2 + 0.002**2))
    T01 = rig.T_cam_i_from_cam_j("cam0", "cam1")
    np.testing.assert_allclose(T01, rig.cameras[1].T_base_camera, atol=1e-15)
    T12 = rig.T_cam_i_from_cam_j(1, 2)
    T21 = rig.T_cam_i_from_cam_j("cam2", "cam1")
    np.testing.assert_allclose(T12 @ T21, np.eye(4), atol=1e-12)
    # Chaining through cam0 gives the same transform.
    np.testing.assert_allclose(rig.T_cam_i_from_cam_j(1, 0) @ rig.T_cam_i_from_cam_j(0, 2), T12,
                               atol=1e-12)
    assert rig.camera("cam2").width == 320
    assert rig.index("cam1") == 1 and len(rig) == 3
    np.testing.assert_allclose(rig.centres()[2], [-0.1, 0.05, 0.02])
    with pytest.raises(CalibrationError, match=r"no camera named 'cam9' \(cameras: cam0, cam1, "):
        rig.camera("cam9")
    with pytest.raises(CalibrationError, match="camera index 3 out of range 0..2"):
        rig.camera(3)


def test_camera_arrays_are_float64_and_read_only() -> None:
    cam = _rig().cameras[0]
    assert cam.K.dtype == np.float64 and cam.T_base_camera.dtype == np.float64
    with pytest.raises(ValueError):
        cam.K[0, 0] = 1.0
    assert cam.fx == 500.0 and cam.fy == 505.0 and cam.cx == 319.5 and cam.cy == 239.5


def test_quaternion_conversions_round_trip_for_all_branches() -> None:
    rng = np.random.default_rng(0)
    for R in [np.eye(3), _rot("x", 179.0), _rot("y", 179.0), _rot("z", 179.0),
              _rot("x", 180.0) @ _rot("y", 0.0)]:
        q = quaternion_xyzw_from_rotation(R)
        assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation_from_quaternion_xyzw(q), R, atol=1e-12)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        R = rotation_from_quaternion_xyzw(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        q2 = quaternion_xyzw_from_rotation(R)
        np.testing.assert_allclose(q2, q if q[3] >= 0 else -q, atol=1e-12)


def test_scaled_intrinsics_follow_pixel_centre_convention() -> None:
    cam = _rig().cameras[0]
    half = cam.scaled(320, 240)
    assert (half.width, half.height) == (320, 240)
    assert half.fx == pytest.approx(250.0) and half.fy == pytest.approx(252.5)
    assert half.cx == pytest.approx((319.5 + 0.5) / 2 - 0.5)
    assert half.cy == pytest.approx((239.5 + 0.5) / 2 - 0.5)
    # A 3-D point lands where cv2.resize puts the original pixel: u' = (u + 0.5) s - 0.5.
    X = np.array([0.3, -0.2, 2.0])
    u = cam.K @ X / X[2]
    sx, sy = 1000 / 640, 600 / 480
    u2 = cam.scaled(1000, 600).K @ X / X[2]
    np.testing.assert_allclose(u2[:2], [(u[0] + 0.5) * sx - 0.5, (u[1] + 0.5) * sy - 0.5])
    np.testing.assert_array_equal(half.distortion_coefficients, cam.distortion_coefficients)
    np.testing.assert_array_equal(half.T_base_camera, cam.T_base_camera)
    with pytest.raises(CalibrationError, match="camera 'cam0' field 'width'"):
        cam.scaled(0, 240)


def test_camera_info_dict_has_ros2_fields() -> None:
    rig = _rig()
    info = rig.cameras[0].camera_info_dict()
    assert info["width"] == 640 and info["height"] == 480
    assert info["distortion_model"] == "plumb_bob"
    assert info["k"] == [500.0, 0.0, 319.5, 0.0, 505.0, 239.5, 0.0, 0.0, 1.0]
    assert info["d"] == [-0.1, 0.01, 0.001, -0.002, 0.0003]
    assert info["r"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert info["p"] == [500.0, 0.0, 319.5, 0.0, 0.0, 505.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert info["frame_id"] == "cam0_optical"
    none = rig.cameras[2].camera_info_dict()
    assert none["distortion_model"] == "plumb_bob" and none["d"] == [0.0] * 5
    assert rig.cameras[1].camera_info_dict()["distortion_model"] == "equidistant"


# ---------------------------------------------------------------------------------------------
# ROS camera_info YAML

CAMERA_INFO_YAML = """\
image_width: 752
image_height: 480
camera_name: narrow_stereo/left
camera_matrix:
  rows: 3
  cols: 3
  data: [458.654, 0, 367.215, 0, 457.296, 248.375, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [458.654, 0, 367.215, 0, 0, 457.296, 248.375, 0, 0, 0, 1, 0]
"""


def test_camera_info_yaml_import(tmp_path: Path) -> None:
    path = tmp_path / "left.yaml"
    path.write_text(CAMERA_INFO_YAML)
    cam = load_camera_info_yaml(path, name="left", topic="/left/image_raw",
                                camera_info_topic="/left/camera_info")
    assert (cam.name, cam.topic, cam.frame_id) == ("left", "/left/image_raw",
                                                   "left_optical_frame")
    assert (cam.width, cam.height) == (752, 480)
    np.testing.assert_array_equal(cam.K, [[458.654, 0, 367.215], [0, 457.296, 248.375],
                                          [0, 0, 1]])
    assert cam.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(cam.distortion_coefficients,
                                  [-0.28340811, 0.07395907, 0.00019359, 1.76187114e-05, 0])
    np.testing.assert_array_equal(cam.T_base_camera, np.eye(4))
    assert cam.camera_info_topic == "/left/camera_info"
    # Without a name, camera_name is used (slashes and all: it is only a label).
    assert load_camera_info_yaml(path).name == "narrow_stereo/left"


def test_camera_info_yaml_export_round_trip(tmp_path: Path) -> None:
    for cam in _rig().cameras:
        path = tmp_path / f"{cam.name}.yaml"
        save_camera_info_yaml(cam, path)
        data = yaml.safe_load(path.read_text())
        assert data["camera_name"] == cam.name and data["image_width"] == cam.width
        assert data["projection_matrix"]["cols"] == 4
        back = load_camera_info_yaml(path, name=cam.name)
        np.testing.assert_array_equal(back.K, cam.K)
        if cam.distortion_model == "none":
            assert back.distortion_model == "plumb_bob"
            np.testing.assert_array_equal(back.distortion_coefficients, np.zeros(5))
        else:
            assert back.distortion_model == cam.distortion_model
            np.testing.assert_array_equal(back.distortion_coefficients,
                                          cam.distortion_coefficients)


def test_camera_info_plumb_bob_with_four_coefficients_is_padded() -> None:
    data = yaml.safe_load(CAMERA_INFO_YAML)
    data["distortion_coefficients"] = {"rows": 1, "cols": 4, "data": [0.1, 0.2, 0.3, 0.4]}
    cam = camera_from_camera_info_dict(data, "x.yaml")
    np.testing.assert_array_equal(cam.distortion_coefficients, [0.1, 0.2, 0.3, 0.4, 0.0])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(distortion_model="rational_polynomial"),
     r"x.yaml: camera 'narrow_stereo/left' field 'distortion_model': 'rational_polynomial' is "
     r"not supported"),
    (lambda d: d["camera_matrix"].update(data=[1, 2, 3]),
     r"field 'camera_matrix' field 'data': 3x3 matrix needs 9 numbers, got 3"),
    (lambda d: d["camera_matrix"].update(rows=2, data=[1, 0, 0, 0, 1, 0]),
     r"field 'camera_matrix': must be 3x3, got 2x3"),
    (lambda d: d.update(image_width="752"),
     r"x.yaml field 'image_width': must be an integer, got '752'"),
    (lambda d: d.update(lens="wide"), r"x.yaml: unknown field\(s\) 'lens'"),
    (lambda d: d["camera_matrix"]["data"].__setitem__(0, float("nan")),
     r"field 'camera_matrix' field 'data': contains nan"),
    (lambda d: d["distortion_coefficients"].update(cols=6, data=[0.0] * 6),
     r"field 'distortion_coefficients': plumb_bob takes 5 coefficients"),
    (lambda d: d["camera_matrix"]["data"].__setitem__(0, -458.0),
     r"camera 'narrow_stereo/left' field 'K': focal lengths must be positive"),
])
def test_camera_info_malformed_cases_name_the_field(mutate, message: str) -> None:
    data = yaml.safe_load(CAMERA_INFO_YAML)
    mutate(data)
    with pytest.raises(CalibrationError, match=message):
        camera_from_camera_info_dict(data, "x.yaml")


# ---------------------------------------------------------------------------------------------
# Kalibr camchain


def _kalibr_dict() -> tuple[dict, np.ndarray, np.ndarray]:
    T10 = _pose(_rot("y", -5.0), [-0.11, 0.0, 0.001])   # cam1 <- cam0
    T21 = _pose(_rot("x", 2.0) @ _rot("z", 1.0), [-0.09, 0.002, 0.0])   # cam2 <- cam1
    cam = {
        "camera_model": "pinhole",
        "intrinsics": [461.6, 460.2, 363.0, 248.1],
        "distortion_model": "radtan",
        "distortion_coeffs": [-0.279, 0.0667, 0.0001, -0.00002],
        "resolution": [752, 480],
        "rostopic": "/cam0/image_raw",
        "cam_overlaps": [1],
    }
    c1 = dict(cam, rostopic="/cam1/image_raw", T_cn_cnm1=T10.tolist(), cam_overlaps=[0, 2])
    c2 = dict(cam, rostopic="/cam2/image_raw", T_cn_cnm1=T21.tolist(),
              distortion_model="equidistant", distortion_coeffs=[0.01, -0.02, 0.003, -0.001])
    return {"cam0": cam, "cam1": c1, "cam2": c2}, T10, T21


def test_kalibr_camchain_import_chains_extrinsics(tmp_path: Path) -> None:
    data, T10, T21 = _kalibr_dict()
    path = tmp_path / "camchain.yaml"
    path.write_text(dump_yaml(data))
    rig = load_kalibr_camchain(path, name="euroc")
    assert rig.name == "euroc" and rig.base_frame == "rig_base"
    assert rig.camera_names == ["cam0", "cam1", "cam2"]
    assert [c.topic for c in rig.cameras] == ["/cam0/image_raw", "/cam1/image_raw",
                                              "/cam2/image_raw"]
    c0 = rig.cameras[0]
    np.testing.assert_array_equal(c0.K, [[461.6, 0, 363.0], [0, 460.2, 248.1], [0, 0, 1]])
    assert c0.distortion_model == "plumb_bob"
    np.testing.assert_array_equal(c0.distortion_coefficients,
                                  [-0.279, 0.0667, 0.0001, -0.00002, 0.0])
    assert rig.cameras[2].distortion_model == "equidistant"
    np.testing.assert_array_equal(c0.T_base_camera, np.eye(4))
    np.testing.assert_allclose(rig.T_cam_i_from_cam_j("cam1", "cam0"), T10, atol=1e-12)
    np.testing.assert_allclose(rig.T_cam_i_from_cam_j("cam2", "cam1"), T21, atol=1e-12)
    np.testing.assert_allclose(rig.T_cam_i_from_cam_j("cam2", "cam0"), T21 @ T10, atol=1e-12)
    assert rig.baselines()[("cam0", "cam1")] == pytest.approx(math.hypot(0.11, 0.001))


def test_kalibr_camchain_with_imu_base() -> None:
    data, T10, _ = _kalibr_dict()
    T_cam0_imu = _pose(_rot("z", 90.0), [0.02, -0.06, 0.01])
    for key in data:
        data[key]["T_cam_imu"] = T_cam0_imu.tolist()   # values only checked past cam0
    rig = rig_from_kalibr_dict(data, imu_base=True)
    assert rig.base_frame == "imu"
    np.testing.assert_allclose(rig.cameras[0].T_base_camera, np.linalg.inv(T_cam0_imu),
                               atol=1e-12)
    np.testing.assert_allclose(rig.T_cam_i_from_cam_j(1, 0), T10, atol=1e-12)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["cam1"]["T_cn_cnm1"][0].__setitem__(0, 1.5),
     r"camera 'cam1' field 'T_cn_cnm1': rotation is not orthonormal"),
    (lambda d: d["cam1"].pop("T_cn_cnm1"),
     r"camera 'cam1' field 'T_cn_cnm1': missing"),
    (lambda d: d["cam2"].update(distortion_model="fov"),
     r"camera 'cam2' field 'distortion_model': must be one of"),
    (lambda d: d["cam0"].update(camera_model="omni"),
     r"camera 'cam0' field 'camera_model': only pinhole is supported, got 'omni'"),
    (lambda d: d["cam0"].update(intrinsics=[1.0, 2.0, 3.0]),
     r"camera 'cam0' field 'intrinsics': must have shape 4, got 3"),
    (lambda d: d["cam0"].update(resolution=[752.5, 480]),
     r"camera 'cam0' field 'resolution': must be two positive integers"),
    (lambda d: d.update(cam3=d.pop("cam2")), r"camera keys must be cam0..cam2 without gaps"),
    (lambda d: d.update(imu0={}), r"unknown top-level key 'imu0'"),
    (lambda d: d["cam0"].update(distortion_coeffs=[0.1, 0.2]),
     r"camera 'cam0' field 'distortion_coeffs': radtan takes 4 coefficients, got 2"),
])
def test_kalibr_malformed_cases_name_camera_and_field(mutate, message: str) -> None:
    data, _, _ = _kalibr_dict()
    mutate(data)
    with pytest.raises(CalibrationError, match=message):
        rig_from_kalibr_dict(data, "camchain.yaml")


# ---------------------------------------------------------------------------------------------
# Malformed rig YAML: each case names the camera and field


def _set(path: list, value):
    def mutate(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _delete(path: list):
    def mutate(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return mutate


NAN, INF = float("nan"), float("inf")

MALFORMED = [
    (_set(["cameras", 1, "lens"], "wide"), r"camera 'cam1': unknown field\(s\) 'lens'"),
    (_set(["extra"], 1), r"rig.yaml: unknown field\(s\) 'extra'"),
    (_delete(["cameras", 0, "topic"]), r"camera 'cam0' field 'topic': missing"),
    (_delete(["version"]), r"rig.yaml field 'version': missing"),
    (_set(["version"], 2), r"field 'version': unsupported rig schema version 2"),
    (_set(["cameras", 1, "width"], "640"), r"camera 'cam1' field 'width': must be an integer"),
    (_set(["cameras", 1, "width"], 640.0), r"camera 'cam1' field 'width': must be an integer"),
    (_set(["cameras", 1, "height"], True), r"camera 'cam1' field 'height': must be an integer"),
    (_set(["cameras", 1, "height"], -480), r"camera 'cam1' field 'height': must be positive"),
    (_set(["cameras", 0, "K", 0, 0], NAN), r"camera 'cam0' field 'K': contains nan"),
    (_set(["cameras", 0, "K", 0, 2], "319.5"),
     r"camera 'cam0' field 'K': must contain only numbers, got '319.5'"),
    (_set(["cameras", 0, "K"], [500.0, 505.0, 319.5, 239.5]),
     r"camera 'cam0' field 'K': must have shape 3x3, got 4"),
    (_set(["cameras", 0, "K", 2, 2], 2.0), r"camera 'cam0' field 'K': must be \[\[fx, s, cx\]"),
    (_set(["cameras", 0, "K", 1, 1], 0.0),
     r"camera 'cam0' field 'K': focal lengths must be positive"),
    (_set(["cameras", 2, "T_base_camera", "translation", 1], INF),
     r"camera 'cam2' field 'T_base_camera' field 'translation': contains inf"),
    (_set(["cameras", 2, "T_base_camera", "quaternion_xyzw"], [0.0, 0.0, 0.5, 0.5]),
     r"camera 'cam2' field 'T_base_camera' field 'quaternion_xyzw': must be a unit quaternion"),
    (_set(["cameras", 2, "T_base_camera", "rotation"], [0, 0, 0, 1]),
     r"camera 'cam2' field 'T_base_camera': unknown field\(s\) 'rotation'"),
    (_delete(["cameras", 2, "T_base_camera", "translation"]),
     r"camera 'cam2' field 'T_base_camera' field 'translation': missing"),
    (_set(["cameras", 1, "distortion_model"], "radtan"),
     r"camera 'cam1' field 'distortion_model': must be one of"),
    (_set(["cameras", 1, "distortion_coefficients"], [0.1, 0.2, 0.3, 0.4, 0.5]),
     r"camera 'cam1' field 'distortion_coefficients': model 'equidistant' takes 4 "
     r"coefficients, got 5"),
    (_set(["cameras", 0, "distortion_coefficients", 4], NAN),
     r"camera 'cam0' field 'distortion_coefficients': contains nan"),
    (_set(["cameras", 1, "name"], "cam0"),
     r"camera 'cam0' field 'name': 'cam0' is also used by camera 'cam0'"),
    (_set(["cameras", 1, "topic"], "/cam0/image_raw"),
     r"camera 'cam1' field 'topic': '/cam0/image_raw' is also used by camera 'cam0'"),
    (_set(["cameras", 2, "frame_id"], "cam1_optical"),
     r"camera 'cam2' field 'frame_id': 'cam1_optical' is also used by camera 'cam1'"),
    (_set(["cameras", 0, "camera_info_topic"], ""),
     r"camera 'cam0' field 'camera_info_topic': must be a non-empty string"),
    (_set(["cameras"], []), r"rig.yaml field 'cameras': must be a non-empty list"),
    (_set(["cameras", 1], "cam1"), r"rig.yaml: cameras\[1\]: must be a mapping"),
    (_set(["base_frame"], "cam0_optical"), r"field 'base_frame': 'cam0_optical' is also a "),
]


@pytest.mark.parametrize("mutate, message", MALFORMED)
def test_malformed_rig_yaml_names_camera_and_field(tmp_path: Path, mutate, message: str) -> None:
    data = copy.deepcopy(rig_to_dict(_rig()))
    mutate(data)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationError, match=message) as info:
        load_rig(path)
    assert str(path) in str(info.value)


def test_rig_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"missing.yaml: cannot read rig calibration"):
        load_rig(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n")
    with pytest.raises(CalibrationError, match=r"bad.yaml: not valid YAML"):
        load_rig(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(CalibrationError, match=r"empty.yaml: must be a mapping"):
        load_rig(empty)


def test_yaml_nan_literal_is_rejected() -> None:
    data = rig_to_dict(_rig())
    text = yaml.safe_dump(data).replace("- 319.5", "- .nan", 1)
    with pytest.raises(CalibrationError, match=r"camera 'cam0' field 'K': contains nan"):
        rig_from_dict(yaml.safe_load(text), "r.yaml")


@pytest.mark.parametrize("T, message", [
    (_pose(np.diag([1.0, 1.0, 1.01]), [0, 0, 0]), "rotation is not orthonormal"),
    (_pose(np.diag([1.0, 1.0, -1.0]), [0, 0, 0]), "rotation has determinant -1"),
    (np.eye(3), "must be 4x4"),
    (np.vstack([np.eye(4)[:3], [[0, 0, 1, 1]]]), r"last row must be \[0, 0, 0, 1\]"),
    (_pose(np.eye(3), [0, NAN, 0]), "contains NaN or infinity"),
])
def test_camera_rejects_bad_poses(T: np.ndarray, message: str) -> None:
    K = np.diag([500.0, 500.0, 1.0])
    with pytest.raises(CalibrationError, match=f"camera 'c' field 'T_base_camera': {message}"):
        Camera("c", "/c", "c_optical", 64, 48, K, "none", [], T)


def test_camera_rejects_bad_scalar_fields() -> None:
    K = np.diag([500.0, 500.0, 1.0])
    with pytest.raises(CalibrationError, match="camera 'c' field 'topic': must be a non-empty"):
        Camera("c", "", "c_optical", 64, 48, K, "none", [])
    with pytest.raises(CalibrationError, match="camera 'c' field 'width': must be a positive"):
        Camera("c", "/c", "c_optical", 64.0, 48, K, "none", [])  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match="camera 'c' field 'distortion_model'"):
        Camera("c", "/c", "c_optical", 64, 48, K, "fisheye", [])
    with pytest.raises(CalibrationError, match="rig field 'base_frame'"):
        Rig("r", "", [Camera("c", "/c", "c_optical", 64, 48, K, "none", [])])
    with pytest.raises(CalibrationError, match="needs at least one camera"):
        Rig("r", "base", [])
