"""Faults of the input, handled once in the shared pipeline (issue 22 items 5 and 12, and a run
where every image is dropped), as a user hits them with process-bag: every frame out or counted,
a clear refusal or a warning, never a silent exit 0."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wint3r_ros import cli
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader, BagWriter
from wint3r_ros.data.rig_files import load_rig, save_rig
from wint3r_ros.errors import InputError
from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
from wint3r_ros.offline.process_bag import ProcessConfig, process_bag

torch.set_num_threads(1)
FRAMES = 8
SETTINGS = ProcessConfig(fusion={"input_long_side": 64, "torch_threads": 1}, progress=False)
IMAGES = ("/cam0/image_raw", "/cam1/image_raw")


@pytest.fixture(scope="module")
def model():
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_bag(tmp_path_factory.mktemp("faults") / "input",
                    MakeBagConfig(cameras=2, frames=FRAMES, width=64, height=48,
                                  ground_truth_depth=False))


def _copy(src: Path, out: Path, keep=lambda k, x: True, edit=lambda k, x: x, loops: int = 1):
    """The image topics of ``src`` into a new bag, ``loops`` times in a row (the log time goes
    on, the header stamps start again: a recording of a bag played in a loop)."""
    with BagReader(src) as r:
        msgs = list(r.messages(list(IMAGES)))
    span = msgs[-1].log_time_ns - msgs[0].log_time_ns + 100_000_000
    with BagWriter(out, "mcap") as w:
        for loop in range(loops):
            for k, x in enumerate(msgs):
                if keep(k, x):
                    w.write(x.topic, edit(k, x.msg), x.log_time_ns + loop * span)
    return out


def _stamps(out: Path, topic: str) -> list[int]:
    with BagReader(out) as r:
        return [x.stamp_ns for x in r.messages([topic])]


def test_stamps_jumping_back_once_give_one_reset_and_every_frame_out_or_counted(
        made, model, tmp_path):
    bag = _copy(made.bag, tmp_path / "looped", loops=2)   # the stamps go back 0.7 s
    cfg = ProcessConfig(sync={"jump_back_threshold": 0.5}, fusion=SETTINGS.fusion, progress=False)
    res = process_bag(bag, tmp_path / "out", made.rig, cfg, model=model, log=lambda text: None)
    assert res.frames_in == 2 * FRAMES * 2
    assert res.frames_out + res.frames_dropped == res.frames_in, res.drops
    assert res.frames_out >= 2 * (2 * FRAMES - 2), res.drops   # at most the set at the jump
    with BagReader(tmp_path / "out") as r:
        status = [x.msg for x in r.messages(["/fusion_node/status"])][-1]
    assert status.resets == 1
    depth = _stamps(tmp_path / "out", "/fusion_node/cam0/depth")   # both timelines' frames
    assert len(depth) == res.frames_out // 2 and set(depth) == set(_stamps(bag, IMAGES[0]))


def test_rig_of_another_image_size_with_the_same_aspect_is_rescaled_with_a_warning(
        made, model, tmp_path):
    rig = made.rig.with_cameras([c.scaled(128, 96) for c in made.rig.cameras])
    logs: list[str] = []
    process_bag(made.bag, tmp_path / "out", rig, SETTINGS, model=model, log=logs.append)
    assert any("images are 64x48" in t and "128x96" in t and "rescaled" in t for t in logs), logs
    with BagReader(tmp_path / "out") as r:
        info = next(r.messages(["/fusion_node/cam0/camera_info"])).msg
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), made.rig.cameras[0].K,
                               rtol=1e-9)


def test_rig_of_another_aspect_ratio_is_refused_in_one_line(made, tmp_path, capsys):
    rig = made.rig.with_cameras([c.scaled(100, 500) for c in made.rig.cameras])
    path = tmp_path / "wrong.rig.yaml"
    save_rig(rig, path)
    assert cli.main(["process-bag", str(made.bag), str(tmp_path / "out"), "--rig", str(path),
                     "--input-long-side", "64", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "images are 64x48" in err[-1] and "100x500" in err[-1] and "aspect" in err[-1]
    with pytest.raises(InputError, match="aspect"):
        process_bag(made.bag, tmp_path / "out2", load_rig(path), SETTINGS,
                    model=WinT3R(WinT3RConfig.tiny()).eval(), log=lambda text: None)


def test_a_camera_that_goes_silent_is_counted_and_named(made, model, tmp_path, capsys):
    silent = _copy(made.bag, tmp_path / "silent",
                   keep=lambda k, x: not (x.topic == IMAGES[1] and k >= 2 * 3))
    cfg = ProcessConfig(sync={"stream_timeout": 0.25}, fusion=SETTINGS.fusion, progress=False)
    res = process_bag(silent, tmp_path / "out", made.rig, cfg, model=model, log=lambda text: None)
    assert res.frames_out + res.frames_dropped == res.frames_in == 2 * FRAMES - (FRAMES - 3)
    assert res.frames_dropped > 0 and res.silent_cameras == ["cam1"]
    # with min_cameras, the rig keeps going on the cameras still there
    sync = tmp_path / "sync.yaml"
    sync.write_text("sync_node:\n  ros__parameters:\n    min_cameras: 1\n"
                    "    stream_timeout: 0.25\n")
    code = cli.main(["process-bag", str(silent), str(tmp_path / "out2"), "--rig",
                     str(made.rig_path), "--sync-config", str(sync), "--input-long-side", "64",
                     "--threads", "1", "--no-progress"])
    assert code == 0
    assert len(_stamps(tmp_path / "out2", "/fusion_node/cam0/depth")) == FRAMES
    assert len(_stamps(tmp_path / "out2", "/fusion_node/cam1/depth")) == 3


def test_every_image_dropped_is_an_error_not_exit_0(made, tmp_path, capsys):
    def to_float(k, msg):
        a = np.zeros((msg.height, msg.width), np.float32)
        return m.image_from_array(a, "32FC1", m.stamp_ns_of(msg), msg.header.frame_id)

    bad = _copy(made.bag, tmp_path / "float", edit=to_float)
    assert cli.main(["process-bag", str(bad), str(tmp_path / "out"), "--rig",
                     str(made.rig_path), "--input-long-side", "64", "--threads", "1",
                     "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "no frame came out" in err and "bad_image 16" in err
