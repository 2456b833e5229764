"""process-bag on bags other tools write: an sqlite3 bag written with rosbags' own Writer (odd
topic names, rgb8 and bgr8, its own CameraInfo topics, no rig file); intrinsics from the bag's
CameraInfo topics or from camera_info YAML files, relative scale as the nodes without a rig; and
the same images as CompressedImage (JPEG, PNG) or Bayer / YUV 4:2:2 give the depth of raw input
(PNG exactly; JPEG and Bayer within the tolerance below)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wint3r_ros import cli
from wint3r_ros.core.rig import Camera
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader
from wint3r_ros.data.rig_files import save_camera_info_yaml
from wint3r_ros.errors import ConfigError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
from wint3r_ros.offline.process_bag import ProcessConfig, process_bag, sibling_camera_info_topic

torch.set_num_threads(1)
SETS, W, H = 6, 64, 48
FUSION = {"confidence_threshold": 1.0, "device": "cpu", "input_long_side": 64}
# odd names: deep namespaces, capitals, a camera_info that is not the image's sibling
TOPICS = ("/robot_1/FrontLeft/rgb/image_rect_color", "/stereo/right/img")
INFO_TOPICS = ("/robot_1/FrontLeft/rgb/camera_info", "/stereo/right/info")
FRAMES = ("front_left_rgb_optical", "stereo_right_optical")
ENCODINGS = ("rgb8", "bgr8")
# intrinsics unlike make-bag's, so the output shows where they came from
K = ((50.5, 0.0, 31.5, 0.0, 51.0, 23.5, 0.0, 0.0, 1.0),
     (60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0))
# Depth of JPEG (quality 95) and Bayer input against raw input of the same images, with the
# shipped tiny checkpoint: median relative difference per frame, at most (docs/ROBOT.md, "Camera
# input"; measured 0.6-1.2 % for JPEG, 0.8-2.1 % for Bayer). PNG is lossless: identical.
# (Random weights are chaotic: 30-1300 % for the same inputs; the depth comparisons use the
# trained checkpoint.)
LOSSY_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def model():
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """SETS sets of 2 RGB images (rendered by make-bag) with their stamps."""
    made = make_bag(tmp_path_factory.mktemp("src") / "src",
                    MakeBagConfig(cameras=2, frames=SETS, scene=1, width=W, height=H))
    out: list[tuple[int, list[np.ndarray]]] = []
    with BagReader(made.bag) as r:
        by_stamp: dict[int, list[np.ndarray]] = {}
        for msg in r.messages(["/cam0/image_raw", "/cam1/image_raw"]):
            by_stamp.setdefault(msg.stamp_ns, [None, None])[int(msg.topic[4])] = \
                m.rgb_from_image(msg.msg).copy()
    out = sorted(by_stamp.items())
    assert len(out) == SETS
    return out


def _image_msg(rgb: np.ndarray, kind: str, stamp: int, frame: str) -> tuple[str, object]:
    """(message type, message) of an RGB image sent as ``kind``."""
    Image, Compressed = m.msg_class("sensor_msgs/msg/Image"), m.msg_class(
        "sensor_msgs/msg/CompressedImage")
    head = m.header(stamp, frame)
    if kind in ("jpeg", "png"):
        ok, buf = cv2.imencode(".jpg" if kind == "jpeg" else ".png", rgb[..., ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, 95] if kind == "jpeg" else [])
        assert ok
        return "sensor_msgs/msg/CompressedImage", Compressed(header=head, format=kind,
                                                             data=buf.reshape(-1))
    if kind == "bayer_rggb8":
        mosaic = np.empty((H, W), np.uint8)
        for dy, dx, c in ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)):
            mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, c]
        data, step = mosaic, W
    else:
        data, step = (rgb if kind == "rgb8" else rgb[..., ::-1]), W * 3
    return "sensor_msgs/msg/Image", Image(header=head, height=H, width=W, encoding=kind,
                                          is_bigendian=0, step=step,
                                          data=np.ascontiguousarray(data).reshape(-1))


def _camera_info(c: int, stamp: int) -> object:
    Info = m.msg_class("sensor_msgs/msg/CameraInfo")
    fx, _, cx, _, fy, cy = K[c][:6]
    return Info(header=m.header(stamp, FRAMES[c]), height=H, width=W, distortion_model="plumb_bob",
                d=np.zeros(5), k=np.array(K[c]), r=np.eye(3).reshape(-1),
                p=np.array([fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], float), binning_x=0,
                binning_y=0, roi=m.msg_class("sensor_msgs/msg/RegionOfInterest")(
                    x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def write_foreign_bag(path: Path, frames, kinds=ENCODINGS, topics=TOPICS) -> Path:
    """An sqlite3 rosbag2 written with rosbags' Writer (not this package's BagWriter):
    images of ``kinds`` per camera and a CameraInfo topic per camera, log time = stamp."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = m.project_typestore()
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conns = []
        for c in range(2):
            msgtype, _ = _image_msg(frames[0][1][c], kinds[c], 0, FRAMES[c])
            conns.append((w.add_connection(topics[c], msgtype, typestore=store),
                          w.add_connection(INFO_TOPICS[c], "sensor_msgs/msg/CameraInfo",
                                           typestore=store)))
        for stamp, images in frames:
            for c, (img_conn, info_conn) in enumerate(conns):
                msgtype, msg = _image_msg(images[c], kinds[c], stamp, FRAMES[c])
                w.write(img_conn, stamp, store.serialize_cdr(msg, msgtype))
                w.write(info_conn, stamp, store.serialize_cdr(_camera_info(c, stamp),
                                                              "sensor_msgs/msg/CameraInfo"))
    return path


def _outputs(out: Path) -> tuple[dict[str, list[np.ndarray]], dict[str, tuple], dict[str, str], bool]:
    depth: dict[str, list[np.ndarray]] = {"cam0": [], "cam1": []}
    infos, frames, metric = {}, {}, None
    with BagReader(out) as r:
        for msg in r.messages():
            cam = msg.topic.split("/")[2] if msg.topic.count("/") == 3 else ""
            if msg.topic.endswith("/depth"):
                depth[cam].append(m.array_from_image(msg.msg).copy())
                frames[cam] = msg.msg.header.frame_id
            elif msg.topic.endswith("/camera_info"):
                infos[cam] = tuple(float(v) for v in msg.msg.k)
            elif msg.topic == "/fusion_node/status":
                metric = bool(msg.msg.scale_is_metric)
    return depth, infos, frames, metric


def _run(bag: Path, out: Path, model, **cfg) -> object:
    settings = ProcessConfig(fusion=FUSION, progress=False, **cfg)
    return process_bag(bag, out, None, settings, model=model, log=lambda text: None)


def test_a_foreign_sqlite3_bag_without_rig_uses_its_camera_info_topics(frames, model, tmp_path):
    bag = write_foreign_bag(tmp_path / "foreign", frames)
    res = _run(bag, tmp_path / "out", model, topics=TOPICS, camera_info_topics=INFO_TOPICS)
    assert (res.sets, res.frames_out, res.frames_dropped) == (SETS, 2 * SETS, 0)
    assert res.metric_scale is False
    depth, infos, frame_ids, metric = _outputs(res.out)
    assert infos == {"cam0": K[0], "cam1": K[1]}   # the bag's own intrinsics
    assert frame_ids == {"cam0": FRAMES[0], "cam1": FRAMES[1]}   # the images' frames
    assert metric is False
    assert all(d.shape == (H, W) and np.isfinite(d).any() for d in depth["cam0"] + depth["cam1"])


def test_camera_info_yaml_files_give_the_intrinsics_from_the_command_line(frames, model, tmp_path):
    bag = write_foreign_bag(tmp_path / "foreign", frames)
    files = []
    for c in range(2):
        cam = Camera(name=f"c{c}", topic=TOPICS[c], frame_id=FRAMES[c], width=W, height=H,
                     K=np.array(K[c]).reshape(3, 3) * [[1.1], [1.1], [1]])   # unlike the bag's
        save_camera_info_yaml(cam, tmp_path / f"c{c}.yaml")
        files.append(str(tmp_path / f"c{c}.yaml"))
    code = cli.main(["process-bag", str(bag), str(tmp_path / "out"), "--topics", *TOPICS,
                     "--camera-info", *files, "--input-long-side", "64", "--device", "cpu",
                     "--threads", "1", "--no-progress"])
    assert code == 0
    depth, infos, _, metric = _outputs(tmp_path / "out")
    assert len(depth["cam0"]) == len(depth["cam1"]) == SETS and metric is False
    assert infos["cam0"][0] == pytest.approx(K[0][0] * 1.1)
    assert infos["cam1"][4] == pytest.approx(K[1][4] * 1.1)


def test_without_rig_or_topics_the_error_says_what_to_pass(tmp_path, frames, capsys):
    bag = write_foreign_bag(tmp_path / "foreign", frames[:1])
    assert cli.main(["process-bag", str(bag), str(tmp_path / "out"), "--no-progress"]) == 1
    assert "--topics T0 T1" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--camera-info-topics gives 1 topics for 2"):
        _run(bag, tmp_path / "o2", None, topics=TOPICS, camera_info_topics=INFO_TOPICS[:1])


def test_sibling_camera_info_topics():
    assert sibling_camera_info_topic("/a/b/image_raw") == "/a/b/camera_info"
    assert sibling_camera_info_topic("/a/b/image_raw/compressed") == "/a/b/camera_info"
    assert sibling_camera_info_topic("/img") == "/camera_info"


@pytest.fixture(scope="module")
def raw_depth(frames, tmp_path_factory):
    """Depth of raw rgb8 input with the shipped checkpoint."""
    tmp = tmp_path_factory.mktemp("raw")
    bag = write_foreign_bag(tmp / "raw", frames, kinds=("rgb8", "rgb8"))
    return _outputs(_run(bag, tmp / "out", None, topics=TOPICS).out)[0]


def _median_relative_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        ok = np.isfinite(x) & np.isfinite(y) & (np.abs(y) > 1e-6)
        worst = max(worst, float(np.median(np.abs(x[ok] - y[ok]) / np.abs(y[ok]))))
    return worst


@pytest.mark.parametrize(("kinds", "tolerance"), [
    (("png", "png"), 0.0),
    (("jpeg", "png"), LOSSY_TOLERANCE),
    (("bayer_rggb8", "jpeg"), LOSSY_TOLERANCE),
])
def test_compressed_and_bayer_input_give_the_depth_of_raw_input(frames, tmp_path, raw_depth, kinds,
                                                                tolerance):
    topics = tuple(t + "/compressed" if k in ("jpeg", "png") else t for t, k in zip(TOPICS, kinds))
    bag = write_foreign_bag(tmp_path / "bag", frames, kinds=kinds, topics=topics)
    res = _run(bag, tmp_path / "out", None, topics=topics)
    assert res.frames_out == 2 * SETS and res.frames_dropped == 0
    depth = _outputs(res.out)[0]
    for cam in ("cam0", "cam1"):
        diff = _median_relative_difference(depth[cam], raw_depth[cam])
        assert diff <= tolerance, (kinds, cam, diff)
