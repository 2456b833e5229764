"""A camera's static time offset in the rig: rig YAML and Kalibr's timeshift_cam_imu."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wint3r_ros.core.rig import Camera
from wint3r_ros.data.rig_files import load_rig, rig_from_kalibr_dict, save_rig
from wint3r_ros.errors import CalibrationError

K = [[400.0, 0, 320.0], [0, 400.0, 240.0], [0, 0, 1]]


def _kalibr(shifts):
    out = {}
    for i, shift in enumerate(shifts):
        cam = {"camera_model": "pinhole", "intrinsics": [400.0, 400.0, 320.0, 240.0],
               "distortion_model": "none", "resolution": [640, 480],
               "rostopic": f"/cam{i}/image_raw"}
        if i:
            cam["T_cn_cnm1"] = [[1, 0, 0, -0.1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        if shift is not None:
            cam["timeshift_cam_imu"] = shift
        out[f"cam{i}"] = cam
    return out


def test_kalibr_timeshift_cam_imu_becomes_the_camera_time_offset():
    rig = rig_from_kalibr_dict(_kalibr([0.0012, None, -0.0031]))
    assert [c.time_offset for c in rig.cameras] == [0.0012, 0.0, -0.0031]
    with pytest.raises(CalibrationError, match="cam1' field 'timeshift_cam_imu'"):
        rig_from_kalibr_dict(_kalibr([0.0, "late", 0.0]))


def test_rig_yaml_time_offset_round_trips_and_defaults_to_zero(tmp_path: Path):
    rig = rig_from_kalibr_dict(_kalibr([0.0, 0.025]))
    path = tmp_path / "rig.yaml"
    save_rig(rig, path)
    text = path.read_text()
    assert text.count("time_offset") == 1          # written only where it is not zero
    back = load_rig(path)
    assert back == rig and back.cameras[1].time_offset == 0.025
    assert back.cameras[0].time_offset == 0.0
    assert back != rig_from_kalibr_dict(_kalibr([0.0, 0.024]))


def test_rig_yaml_refuses_a_bad_time_offset_by_camera_and_field(tmp_path: Path):
    path = tmp_path / "rig.yaml"
    save_rig(rig_from_kalibr_dict(_kalibr([0.0, 0.01])), path)
    path.write_text(path.read_text().replace("time_offset: 0.01", "time_offset: .nan"))
    with pytest.raises(CalibrationError, match="camera 'cam1' field 'time_offset'"):
        load_rig(path)
    with pytest.raises(CalibrationError, match="time_offset.*within"):
        Camera("c", "/c", "c_frame", 640, 480, np.array(K), "none", [], np.eye(4),
               time_offset=60.0)
