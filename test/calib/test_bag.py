"""Calibration from a rosbag2 file: stamp pairing, image decoding, and the CLI's --bag route."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from wint3r_ros import cli
from wint3r_ros.calib.sources import _pair_stamps, decode_image_msg, iter_bag
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.errors import BagError, CalibrationError

TS = get_typestore(Stores.ROS2_HUMBLE)
Image = TS.types["sensor_msgs/msg/Image"]
CompressedImage = TS.types["sensor_msgs/msg/CompressedImage"]
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
TOPICS = ["/stereo/left/image_raw", "/stereo/right/image_raw"]


def _header(ns: int, frame: str = "cam") -> object:
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000),
                  frame_id=frame)


def _image(gray: np.ndarray, ns: int, encoding: str = "mono8") -> object:
    if encoding == "bgr8":
        data = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    else:
        data = gray
    h, w = gray.shape
    return Image(header=_header(ns), height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=data.strides[0], data=np.ascontiguousarray(data).reshape(-1))


@pytest.fixture(scope="module")
def stereo_bag(rendered2, tmp_path_factory) -> tuple[Path, list[int]]:
    """30 sets of the rendered stereo rig: left mono8, right bgr8 stamped 1 ms later, plus one
    right image with no partner. Cameras that did not see the board get a blank image."""
    _, frames = rendered2
    path = tmp_path_factory.mktemp("bag") / "stereo"
    blank = np.full((480, 640), 110, np.uint8)
    stamps = []
    with Writer(path, version=8) as writer:
        conns = [writer.add_connection(t, Image.__msgtype__, typestore=TS) for t in TOPICS]
        for k, frame in enumerate(frames[:30]):
            ns = 1_700_000_000_000_000_000 + k * 100_000_000
            stamps.append(ns)
            for c, (conn, enc) in enumerate(zip(conns, ("mono8", "bgr8"))):
                img = frame.images[c] if frame.images[c] is not None else blank
                t = ns + c * 1_000_000
                writer.write(conn, t, TS.serialize_cdr(_image(img, t, enc), Image.__msgtype__))
        late = stamps[-1] + 50_000_000
        writer.write(conns[1], late, TS.serialize_cdr(_image(blank, late, "bgr8"),
                                                      Image.__msgtype__))
    return path, stamps


def test_bag_sets_are_paired_by_header_stamp(stereo_bag, rendered2) -> None:
    path, stamps = stereo_bag
    _, frames = rendered2
    sets = list(iter_bag(path, TOPICS, slop=0.005))
    assert len(sets) == 30   # the unpartnered message is skipped
    assert sets[3].key == f"{stamps[3] // 10**9}.{stamps[3] % 10**9:09d}"
    assert sets[3].sources[1] == f"{path}:{TOPICS[1]}@{(stamps[3] + 10**6) // 10**9}." \
                                 f"{(stamps[3] + 10**6) % 10**9:09d}"
    np.testing.assert_array_equal(sets[0].images[0], frames[0].images[0])
    np.testing.assert_array_equal(sets[0].images[1], frames[0].images[1])   # bgr8 -> gray
    assert len(list(iter_bag(path, TOPICS, slop=0.005, stride=4))) == 8
    # With a slop below the 1 ms offset nothing pairs.
    assert list(iter_bag(path, TOPICS, slop=0.0005)) == []


def test_cli_calibrates_from_a_bag(stereo_bag, tmp_path: Path, capsys) -> None:
    path, _ = stereo_bag
    out = tmp_path / "rig.yaml"
    rc = cli.main(["calibrate", "--bag", str(path), "--topics", *TOPICS, "--board", "8x5",
                   "--square", "0.05", "--out", str(out), "--holdout", "0.15"])
    stdout = capsys.readouterr().out
    assert rc == 0, stdout
    rig = load_rig(out)
    assert [c.topic for c in rig.cameras] == TOPICS
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["sets"] <= 30 and report["cameras"]["cam1"]["views_fit"] >= 5
    assert any(src.startswith(f"{path}:") for src in report["images_without_board"])
    # --check on a bag defaults to the rig's topics.
    assert cli.main(["calibrate", "--bag", str(path), "--board", "8x5", "--square", "0.05",
                     "--check", str(out)]) == 0
    assert "checked 2 camera(s)" in capsys.readouterr().out


def test_bag_errors_name_the_topic_or_file(stereo_bag, tmp_path: Path) -> None:
    path, _ = stereo_bag
    with pytest.raises(BagError, match=r"no topic '/nope' \(image topics in the bag: "
                                       r"/stereo/left/image_raw, /stereo/right/image_raw\)"):
        list(iter_bag(path, ["/nope", TOPICS[0]]))
    with pytest.raises(BagError, match=r"missing: no such bag"):
        list(iter_bag(tmp_path / "missing", TOPICS))
    with pytest.raises(CalibrationError, match=r"each camera needs its own topic"):
        list(iter_bag(path, [TOPICS[0], TOPICS[0]]))


def test_pairing_uses_each_message_once_within_slop() -> None:
    # topic 1 has two candidates near t=100; the nearer one pairs, the other is free later.
    sets = _pair_stamps([[100, 200, 300], [99, 104, 202, 500]], slop_ns=5)
    assert sets == [[0, 0], [1, 2]]
    assert _pair_stamps([[300, 100], [101, 299]], slop_ns=2) == [[1, 0], [0, 1]]


def _msg(encoding: str, data: np.ndarray, h: int, w: int, step: int, big: int = 0) -> object:
    return Image(header=_header(0), height=h, width=w, encoding=encoding, is_bigendian=big,
                 step=step, data=np.ascontiguousarray(data).reshape(-1).view(np.uint8))


def test_image_messages_decode_to_gray() -> None:
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    rgb = np.dstack([gray, gray, gray])
    assert np.array_equal(decode_image_msg(_msg("rgb8", rgb, 12, 10, 30), "sensor_msgs/msg/Image",
                                           "x"), gray)
    bgra = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    assert np.array_equal(decode_image_msg(_msg("bgra8", bgra, 12, 10, 40),
                                           "sensor_msgs/msg/Image", "x"), gray)
    padded = np.zeros((12, 16), np.uint8)
    padded[:, :10] = gray
    assert np.array_equal(decode_image_msg(_msg("mono8", padded, 12, 10, 16),
                                           "sensor_msgs/msg/Image", "x"), gray)
    wide = (gray.astype(np.uint16) << 8).astype(">u2")
    assert np.array_equal(decode_image_msg(_msg("mono16", wide, 12, 10, 20, big=1),
                                           "sensor_msgs/msg/Image", "x"), gray)
    bayer = decode_image_msg(_msg("bayer_rggb8", gray, 12, 10, 10), "sensor_msgs/msg/Image", "x")
    assert bayer.shape == (12, 10) and bayer.dtype == np.uint8
    ok, png = cv2.imencode(".png", gray)
    comp = CompressedImage(header=_header(0), format="png", data=png.reshape(-1))
    assert np.array_equal(decode_image_msg(comp, "sensor_msgs/msg/CompressedImage", "x"), gray)


def test_bad_image_messages_name_the_message() -> None:
    gray = np.zeros((4, 5), np.uint8)
    with pytest.raises(CalibrationError, match=r"bag:/t@1: unsupported image encoding '32FC1'"):
        decode_image_msg(_msg("32FC1", gray, 4, 5, 5), "sensor_msgs/msg/Image", "bag:/t@1")
    with pytest.raises(CalibrationError, match=r"bag:/t@1: Image 5x8 mono8 with step 5 does not "
                                               r"match its 20 data bytes"):
        decode_image_msg(_msg("mono8", gray, 8, 5, 5), "sensor_msgs/msg/Image", "bag:/t@1")
    junk = CompressedImage(header=_header(0), format="jpeg", data=np.arange(10, dtype=np.uint8))
    with pytest.raises(CalibrationError, match=r"cannot decode CompressedImage \(format 'jpeg'\)"):
        decode_image_msg(junk, "sensor_msgs/msg/CompressedImage", "bag:/t@1")
