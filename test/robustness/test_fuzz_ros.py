"""Bounded fuzzing of the rclpy-side decoders: Image, JPEG CompressedImage, CameraInfo and
WindowBatch (see test_fuzz.py for the rules: only project errors may escape)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fuzz import FUZZ, camera_info_fields, image_fields, only_project_errors

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from wint3r_ros.core.pipeline.fusion import WindowAssembler  # noqa: E402
from wint3r_ros.msg import WindowBatch  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.batch import decode_window_batch  # noqa: E402


@st.composite
def ros_images(draw):
    f = draw(image_fields())
    msg = Image(encoding=f["encoding"], height=max(f["height"], 0), width=max(f["width"], 0),
                step=max(f["step"], 0), is_bigendian=min(f["is_bigendian"], 1))
    msg.header.stamp.sec = draw(st.integers(0, 5))
    msg.data = f["data"].tobytes()
    return msg


@FUZZ
@given(ros_images())
def test_fuzzed_ros_images_decode_or_raise_input_error(msg):
    only_project_errors(cv.check_image, msg, "/fuzz")
    only_project_errors(cv.rgb_from_image, msg, "/fuzz")
    only_project_errors(cv.array_from_image, msg, "/fuzz")


@FUZZ
@given(st.one_of(st.binary(max_size=64),
                 st.just(cv.compressed_from_image(cv.image_from_array(
                     np.zeros((4, 6, 3), np.uint8), "rgb8", 1, "f")).data.tobytes())),
       st.integers(0, 40))
def test_fuzzed_jpeg_decodes_or_raises_input_error(data, cut):
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8")
    msg.data = data[:len(data) - cut] if cut < len(data) else data
    only_project_errors(cv.rgb_from_compressed, msg, "/fuzz")


@FUZZ
@given(camera_info_fields())
def test_fuzzed_ros_camera_infos_give_a_camera_or_input_error(fields):
    if len(fields["k"]) != 9:
        return  # rclpy refuses a K that is not 9 numbers on assignment
    info = CameraInfo(width=max(fields["width"], 0), height=max(fields["height"], 0),
                      distortion_model=fields["distortion_model"])
    info.k = fields["k"]
    info.d = fields["d"].tolist()
    only_project_errors(cv.camera_from_camera_info, info, name="cam0", topic="/cam0/image_raw")
    only_project_errors(cv.camera_info_resized, info, 32, 24)


@st.composite
def window_batches(draw):
    names = draw(st.lists(st.sampled_from(["a", "b", "c", ""]), max_size=4))
    msg = WindowBatch(num_cameras=draw(st.integers(0, 4)), num_steps=draw(st.integers(0, 3)),
                      overlap=draw(st.integers(0, 3)), window_index=draw(st.integers(0, 5)),
                      epoch=draw(st.integers(0, 2)))
    msg.camera_names = names
    msg.frame_ids = draw(st.lists(st.sampled_from(["fa", "fb", "fc"]), max_size=4))
    k = draw(st.integers(0, 12))
    if draw(st.booleans()):
        msg.images = draw(st.lists(ros_images(), min_size=k, max_size=k))
    if draw(st.booleans()):
        packed = []
        for _ in range(draw(st.integers(0, 3))):
            c = CompressedImage(format="jpeg")
            c.data = draw(st.binary(max_size=16))
            packed.append(c)
        msg.compressed_images = packed
    stamps = []
    for _ in range(draw(st.integers(0, 12))):
        s = type(msg.header.stamp)()
        s.sec, s.nanosec = draw(st.integers(0, 3)), draw(st.integers(0, 999_999_999))
        stamps.append(s)
    msg.image_stamps = stamps
    msg.camera_infos = [CameraInfo() for _ in range(draw(st.integers(0, 4)))]
    return msg


@FUZZ
@given(window_batches())
def test_fuzzed_window_batches_decode_or_raise_input_error(msg):
    batch = only_project_errors(decode_window_batch, msg, "/fuzz/windows")
    if batch is not None:
        window = only_project_errors(WindowAssembler("time").assemble, batch)
        if window is not None:
            assert len(window.frames) <= batch.num_steps * len(batch.camera_names)
