"""``wint3r-ros make-bag``: every topic, the right counts, exact ground truth, a rig file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.interfaces import QosDurability

from wint3r_ros import cli
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader
from wint3r_ros.data.rig_files import load_rig, rig_from_dict
from wint3r_ros.data.synthetic import SceneConfig, SyntheticRig
from wint3r_ros.errors import BagError, ConfigError
from wint3r_ros.offline.make_bag import (
    GROUND_TRUTH_TF_TOPIC,
    RIG_CUSTOM_DATA_KEY,
    MakeBagConfig,
    ground_truth_depth_topic,
    make_bag,
    rig_path_for,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = MakeBagConfig(cameras=2, frames=4, scene=1, width=40, height=30)


def _same_rig(a, b) -> bool:
    """Equal up to the YAML quaternion round trip (1e-12 on the poses)."""
    return (a.name, a.base_frame, a.camera_names) == (b.name, b.base_frame, b.camera_names) and \
        all((ca.topic, ca.frame_id, ca.camera_info_topic, ca.width, ca.height) ==
            (cb.topic, cb.frame_id, cb.camera_info_topic, cb.width, cb.height)
            and np.array_equal(ca.K, cb.K)
            and np.allclose(ca.T_base_camera, cb.T_base_camera, rtol=0, atol=1e-12)
            for ca, cb in zip(a.cameras, b.cameras))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return make_bag(tmp_path_factory.mktemp("mk") / "small", CONFIG)


def test_make_bag_writes_every_topic_with_the_right_counts(recorded):
    expected = {"/cam0/image_raw": 4, "/cam0/camera_info": 4, "/cam1/image_raw": 4,
                "/cam1/camera_info": 4, "/tf_static": 1, GROUND_TRUTH_TF_TOPIC: 4,
                "/ground_truth/cam0/depth": 4, "/ground_truth/cam1/depth": 4}
    assert recorded.counts == expected
    with BagReader(recorded.bag) as r:
        assert {t: r.message_count(t) for t in r.topics} == expected
        assert r.topics[GROUND_TRUTH_TF_TOPIC] == "tf2_msgs/msg/TFMessage"
        assert r.topics["/ground_truth/cam1/depth"] == "sensor_msgs/msg/Image"
        assert r.offered_qos("/tf_static")[0].durability == QosDurability.TRANSIENT_LOCAL
        assert _same_rig(rig_from_dict(yaml.safe_load(r.custom_data[RIG_CUSTOM_DATA_KEY])),
                         recorded.rig)


def test_make_bag_content_is_the_rendered_rig_with_exact_ground_truth(recorded):
    rig = load_rig(rig_path_for(recorded.bag))
    assert _same_rig(rig, recorded.rig) and recorded.rig_path == rig_path_for(recorded.bag)
    synth = SyntheticRig(SceneConfig(seed=1), CONFIG.rig_config())
    rig = synth.rig
    frames = [synth.render(k) for k in range(4)]
    with BagReader(recorded.bag) as r:
        msgs = list(r.messages())
    by_topic: dict[str, list] = {}
    for x in msgs:
        by_topic.setdefault(x.topic, []).append(x)
    static = m.transforms_from_tf_message(by_topic["/tf_static"][0].msg)
    assert [(p, c) for p, c, _, _ in static] == [("base_link", "cam0_optical"),
                                                 ("base_link", "cam1_optical")]
    for (_, _, _, T), cam in zip(static, rig.cameras):
        np.testing.assert_allclose(T, cam.T_base_camera, atol=1e-12)
    for k in range(4):
        (parent, child, stamp, T_wb), = m.transforms_from_tf_message(
            by_topic[GROUND_TRUTH_TF_TOPIC][k].msg)
        assert (parent, child, stamp) == ("world", "base_link", frames[k][0].stamp_ns)
        np.testing.assert_allclose(T_wb, frames[k][0].T_world_base, atol=1e-12)
        for i, cam in enumerate(rig.cameras):
            img = by_topic[cam.topic][k]
            assert img.stamp_ns == frames[k][i].stamp_ns and img.msg.encoding == "rgb8"
            assert img.msg.header.frame_id == cam.frame_id
            np.testing.assert_array_equal(m.array_from_image(img.msg), frames[k][i].image)
            depth = by_topic[ground_truth_depth_topic(cam.name)][k].msg
            assert depth.encoding == "32FC1"
            np.testing.assert_array_equal(m.array_from_image(depth), frames[k][i].depth)
            info = by_topic[cam.camera_info_topic][k].msg
            back = m.camera_from_camera_info(info, name=cam.name, topic=cam.topic,
                                             info_topic=cam.camera_info_topic,
                                             T_base_camera=cam.T_base_camera)
            assert back == cam


def test_cli_make_bag_sqlite3_and_its_errors(tmp_path, capsys):
    out = tmp_path / "cli_bag"
    assert cli.main(["make-bag", str(out), "--cameras", "1", "--frames", "2", "--scene", "4",
                     "--format", "sqlite3", "--width", "16", "--height", "12", "--no-depth"]) == 0
    assert "/cam0/image_raw: 2" in capsys.readouterr().out
    assert next(out.glob("*.db3")).exists()
    with BagReader(out) as r:
        assert sorted(r.topics) == ["/cam0/camera_info", "/cam0/image_raw", GROUND_TRUTH_TF_TOPIC,
                                    "/tf_static"]
        img = next(x.msg for x in r.messages(["/cam0/image_raw"]))
        assert (img.width, img.height) == (16, 12)
    assert cli.main(["make-bag", str(out), "--frames", "1"]) == 1
    assert f"output bag {out} already exists" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--frames"):
        MakeBagConfig(frames=0)
    with pytest.raises(BagError):
        make_bag(out)


def test_make_bag_stopped_with_sigterm_leaves_a_readable_bag(tmp_path):
    out = tmp_path / "stopped"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "wint3r_ros.cli", "make-bag", str(out),
                             "--frames", "100000", "--width", "16", "--height", "12"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*.mcap")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)                                 # let it write some frames
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    with BagReader(out) as r:
        n = r.message_count("/cam0/image_raw")
        assert n >= 1 and r.message_count("/tf_static") == 1
        assert sum(1 for _ in r.messages(["/cam0/image_raw"])) == n
