"""Bounded fuzzing of everything that reads outside input: image and camera_info decoders (rclpy
and rosbags messages), JPEG, WindowBatch decoding, the YAML loaders (rig, camera_info, Kalibr
camchain, training config) and the parameter validator. Only the project's own errors may
escape (a Wint3rError subclass with a message), never a raw IndexError, ValueError, KeyError or
TypeError. Small example counts keep the file under ~20 s on two shared cores."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wint3r_ros.data import messages as m
from wint3r_ros.data import rig_files as calib
from wint3r_ros.errors import Wint3rError

REPO = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ENCODINGS = ["mono8", "rgb8", "bgr8", "rgba8", "bgra8", "mono16", "32FC1", "8UC3", "16UC1",
             "yuv422", "bayer_rggb8", "", "RGB8"]

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, -1.0, 1e308, float("nan"), float("inf")]))
# what a YAML value can be
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), floats,
                    st.text(max_size=8))
yaml_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def only_project_errors(fn, *args, **kwargs):
    """Run fn; a project error is fine (it must carry a message), anything else fails."""
    try:
        return fn(*args, **kwargs)
    except Wint3rError as err:
        assert str(err), f"{type(err).__name__} without a message"
        return None


# ------------------------------------------------------------------------- images (rosbags)


@st.composite
def image_fields(draw):
    enc = draw(st.sampled_from(ENCODINGS))
    h, w = draw(st.integers(-2, 6)), draw(st.integers(-2, 6))
    step = draw(st.integers(-4, 40))
    exact = draw(st.booleans())
    n = max(step, 0) * max(h, 0) if exact else draw(st.integers(0, 80))
    return dict(encoding=enc, height=h, width=w, step=step, is_bigendian=draw(st.integers(0, 2)),
                data=np.frombuffer(draw(st.binary(min_size=n, max_size=n)), np.uint8))


@FUZZ
@given(image_fields())
def test_fuzzed_bag_images_decode_or_raise_input_error(fields):
    msg = m.msg_class("sensor_msgs/msg/Image")(header=m.header(1, "f"), **fields)
    for fn in (m.array_from_image, m.rgb_from_image):
        out = only_project_errors(fn, msg, "/fuzz/image")
        if out is not None:
            assert out.shape[:2] == (fields["height"], fields["width"])


# ---------------------------------------------------------------------- camera_info (rosbags)


@st.composite
def camera_info_fields(draw):
    k = draw(st.one_of(st.lists(floats, min_size=9, max_size=9),
                       st.lists(floats, min_size=0, max_size=12),
                       st.just([500.0, 0, 320, 0, 500.0, 240, 0, 0, 1])))
    return dict(width=draw(st.integers(-1, 800)), height=draw(st.integers(-1, 600)),
                k=np.asarray(k, np.float64),
                d=np.asarray(draw(st.lists(floats, max_size=9)), np.float64),
                distortion_model=draw(st.sampled_from(
                    ["plumb_bob", "equidistant", "fisheye", "rational_polynomial", "", "x"])))


@FUZZ
@given(camera_info_fields())
def test_fuzzed_bag_camera_infos_give_a_camera_or_input_error(fields):
    info = m.msg_class("sensor_msgs/msg/CameraInfo")(
        header=m.header(1, "cam0_optical"), r=np.eye(3).reshape(-1), p=np.zeros(12),
        binning_x=0, binning_y=0,
        roi=m.msg_class("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0,
                                                            width=0, do_rectify=False), **fields)
    cam = only_project_errors(m.camera_from_camera_info, info, name="cam0", topic="/cam0/image_raw")
    if cam is not None:
        assert np.isfinite(cam.K).all() and cam.width > 0 and cam.height > 0


# ------------------------------------------------------------------------------ YAML loaders


def _mutations(base):
    """Strategy: `base` with a few values replaced, keys removed or unknown keys added."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append(path + (i,))
                walk(v, path + (i,))

    walk(base, ())

    @st.composite
    def mutated(draw):
        data = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            parent = data
            try:
                for key in path[:-1]:
                    parent = parent[key]
                action = draw(st.sampled_from(["replace", "delete", "unknown"]))
                if action == "replace":
                    parent[path[-1]] = draw(yaml_values)
                elif action == "delete":
                    del parent[path[-1]]
                elif isinstance(parent, dict):
                    parent[draw(st.text(min_size=1, max_size=6))] = draw(scalars)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier mutation changed the shape; keep what we have
        return data

    return st.one_of(mutated(), yaml_values)


def _rig_dict():
    from wint3r_ros.data.synthetic import RigConfig, build_rig

    return calib.rig_to_dict(build_rig(RigConfig(num_cameras=2)))


def _write(tmp_path_factory, data) -> str:
    path = tmp_path_factory.mktemp("fuzz") / "file.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


@FUZZ
@given(data=_mutations(_rig_dict()))
def test_fuzzed_rig_yaml_loads_or_raises_a_calibration_error(tmp_path_factory, data):
    rig = only_project_errors(calib.load_rig, _write(tmp_path_factory, data))
    if rig is not None:
        for cam in rig.cameras:
            assert np.isfinite(cam.K).all() and np.isfinite(cam.T_base_camera).all()


@FUZZ
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_rig_yaml_is_refused_with_a_calibration_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "rig.yaml"
    path.write_text(text)
    assert only_project_errors(calib.load_rig, path) is None


def _camera_info_dict():
    from wint3r_ros.data.synthetic import RigConfig, build_rig

    return calib.camera_info_yaml_dict(build_rig(RigConfig(num_cameras=1)).cameras[0])


@FUZZ
@given(data=_mutations(_camera_info_dict()))
def test_fuzzed_camera_info_yaml_loads_or_raises(tmp_path_factory, data):
    only_project_errors(calib.load_camera_info_yaml, _write(tmp_path_factory, data))


KALIBR = {"cam0": {"camera_model": "pinhole", "intrinsics": [400.0, 400.0, 320.0, 240.0],
                   "distortion_model": "radtan", "distortion_coeffs": [0.1, -0.05, 0.001, 0.002],
                   "resolution": [640, 480], "rostopic": "/cam0/image_raw"},
          "cam1": {"camera_model": "pinhole", "intrinsics": [400.0, 400.0, 320.0, 240.0],
                   "distortion_model": "radtan", "distortion_coeffs": [0.1, -0.05, 0.001, 0.002],
                   "resolution": [640, 480], "rostopic": "/cam1/image_raw",
                   "T_cn_cnm1": [[1, 0, 0, -0.1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}}


@FUZZ
@given(data=_mutations(KALIBR))
def test_fuzzed_kalibr_camchain_loads_or_raises(tmp_path_factory, data):
    only_project_errors(calib.load_kalibr_camchain, _write(tmp_path_factory, data))


def _train_dict():
    from wint3r_ros.train.trainer import TrainConfig

    return TrainConfig.from_yaml(REPO / "config" / "train_tiny.yaml").to_dict()


@FUZZ
@given(data=_mutations(_train_dict()))
def test_fuzzed_training_config_yaml_loads_or_raises_a_config_error(tmp_path_factory, data):
    from wint3r_ros.train.trainer import TrainConfig

    only_project_errors(TrainConfig.from_yaml, _write(tmp_path_factory, data))


@FUZZ
@given(value=yaml_values)
def test_parameter_validation_never_raises_and_gives_a_reason(value):
    from wint3r_ros.ros.params import validate

    for spec in _specs():
        v, reason = validate(spec, value)
        assert reason is None or isinstance(reason, str)


def _specs():
    pytest.importorskip("rclpy", reason="the node parameter tables import rclpy")
    from wint3r_ros.ros.fusion_node import FUSION_PARAMETERS
    from wint3r_ros.ros.sync_node import SYNC_PARAMETERS

    return [*SYNC_PARAMETERS, *FUSION_PARAMETERS]
