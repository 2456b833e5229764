"""Odd bags given to ``wint3r-ros process-bag`` (and replayed): stamps before 1970 or 0,
camera images in depth or yuv encodings, random bytes in the bag file. Each is refused or
counted with its own reason; the output is always a readable bag, never a 43-byte file; nothing
escapes as a traceback (issue 22 items 6, 9 and 13)."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures.cameras import make_rig, texture

from wint3r_ros.cli import main
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader, BagWriter
from wint3r_ros.data.rig_files import save_rig
from wint3r_ros.errors import BagError, InputError

T0 = 1_700_000_000 * 10**9
MS = 1_000_000


def _bag(path: Path, stamp_of, encoding_of=lambda cam, k: "rgb8", sets: int = 10) -> Path:
    """A 3-camera bag of ``sets`` sets at 10 Hz; header stamps from ``stamp_of(k)``, log times
    always after 1970 (as a recorder writes them)."""
    rig = make_rig()
    with BagWriter(path) as w:
        for k in range(sets):
            for c, cam in enumerate(rig.cameras):
                enc = encoding_of(c, k)
                img = texture(c, k, cam.width, cam.height)
                if enc == "16UC1":
                    img = img[..., 0].astype(np.uint16) * 256
                msg = m.image_from_array(img, enc, stamp_of(k), cam.frame_id)
                if enc == "nv21":
                    msg = m.image_from_array(img, "rgb8", stamp_of(k), cam.frame_id)
                    msg.encoding = "nv21"
                w.write(cam.topic, msg, T0 + k * 100 * MS + c * MS)
    save_rig(rig, path.with_name(path.name + ".rig.yaml"), "test rig")
    return path


def _process(bag: Path, out: Path, capsys) -> tuple[int, str, str]:
    code = main(["process-bag", str(bag), str(out), "--no-progress", "--threads", "1",
                 "--input-long-side", "64"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_negative_stamps_are_refused_per_image_and_the_output_is_readable(tmp_path, capsys):
    bag = _bag(tmp_path / "neg", lambda k: -10**9 + k * 100 * MS)   # 1969: sec = -1
    code, out, err = _process(bag, tmp_path / "out", capsys)
    assert "Traceback" not in err
    assert "image stamp -1000000000 ns is before 1970" in err
    assert "30 dropped" in out or code != 0
    with BagReader(tmp_path / "out") as r:          # a closed bag, not a 43-byte file
        assert r.incomplete is None or "negative" in r.incomplete
        list(r.messages())


def test_unstamped_images_are_counted_as_zero_stamp_not_late(tmp_path, capsys):
    from wint3r_ros.offline.process_bag import ProcessConfig, process_bag

    stamps = lambda k: 0 if k in (3, 4) else T0 + k * 100 * MS
    bag = _bag(tmp_path / "zero", stamps)
    import torch

    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    torch.set_num_threads(1)
    model = WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()
    result = process_bag(bag, tmp_path / "out", make_rig(), ProcessConfig(
        fusion={"device": "cpu", "confidence_threshold": 1.0, "input_long_side": 64},
        progress=False), model=model, log=lambda text: None)
    assert result.drops["zero_stamp"] == 6
    assert result.drops.get("sync_late", 0) == 0
    assert result.frames_out + result.frames_dropped == 30


@pytest.mark.parametrize("encoding", ["16UC1", "nv21", "32FC1", "8UC3"])
def test_camera_images_in_non_camera_encodings_are_refused_with_the_supported_list(encoding):
    img = np.zeros((4, 4), np.uint16) if encoding == "16UC1" else (
        np.zeros((4, 4), np.float32) if encoding == "32FC1" else np.zeros((4, 4, 3), np.uint8))
    msg = m.image_from_array(img, "rgb8" if encoding == "nv21" else encoding, T0, "f")
    msg.encoding = encoding
    with pytest.raises(InputError) as info:
        m.rgb_from_image(msg, "/cam0/image_raw")
    text = str(info.value)
    assert f"/cam0/image_raw: image encoding '{encoding}' is not supported" in text
    assert "use one of mono8, rgb8, bgr8, rgba8, bgra8, mono16, bayer_rggb8" in text
    supported = text.split("use one of")[1]
    assert "yuv422" in supported and "32FC1" not in supported and "16UC1" not in supported


def _corrupt_copies(src: Path, dst: Path, seeds: range):
    data_file = next(p for p in src.iterdir() if p.suffix in (".mcap", ".db3"))
    data = data_file.read_bytes()
    for seed in seeds:
        rng = random.Random(seed)
        d = bytearray(data)
        mode = rng.choice(["flip", "cut", "stomp"])
        if mode == "flip":
            for _ in range(rng.randint(1, 20)):
                d[rng.randrange(len(d))] = rng.randrange(256)
        elif mode == "cut":
            d = d[:rng.randrange(len(d))]
        else:
            i = rng.randrange(len(d))
            d[i:i + 8] = b"\xff" * 8
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        (dst / data_file.name).write_bytes(bytes(d))
        yield seed, dst


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_random_bytes_in_a_bag_give_bag_error_or_messages(tmp_path, storage):
    """Fault injection: 150 corruptions of a small bag (bit flips, cuts, stomped lengths); mcap
    lengths gave OverflowError / MemoryError and sqlite3 apsw.CorruptError before."""
    src = tmp_path / "src"
    with BagWriter(src, storage) as w:
        for k in range(40):
            t = T0 + k * 10 * MS
            w.write("/a", m.image_from_array(np.full((8, 8), k, np.uint8), "mono8", t, "a"), t)
            w.write("/odom", m.odometry(np.eye(4), t, "odom", "base"), t)
    outcomes = {"read": 0, "refused": 0}
    for _seed, bag in _corrupt_copies(src, tmp_path / "bad", range(150)):
        try:
            with BagReader(bag) as r:
                for _ in r.messages_by_stamp():
                    pass
            outcomes["read"] += 1
        except BagError as err:
            assert str(bag) in str(err) and "\n" not in str(err)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 20 and sum(outcomes.values()) == 150


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recover_bag_of_random_bytes_gives_a_bag_or_bag_error(tmp_path, storage):
    """60 corruptions of a bag a killed writer left (mcap without its summary; sqlite3): the
    recovery scans record by record and stops at the first bad one, or says it cannot."""
    from wint3r_ros.data.bag_recovery import recover_bag

    src = tmp_path / "src"
    w = BagWriter(src, storage, flush_every_s=0.0)
    for k in range(30):
        t = T0 + k * 10 * MS
        w.write("/a", m.image_from_array(np.full((8, 8), k, np.uint8), "mono8", t, "a"), t)
        w.write("/odom", m.odometry(np.eye(4), t, "odom", "base"), t)
    if storage == "mcap":       # left as SIGKILL leaves it: chunks on disk, no summary
        w._writer.storage.bio.flush()
        w._writer = None
    else:
        w.close()
    recovered = 0
    for seed, bag in _corrupt_copies(src, tmp_path / "bad", range(60)):
        out = tmp_path / f"out{seed}"
        try:
            stats = recover_bag(bag, out)
        except BagError as err:
            assert "\n" not in str(err)
            continue
        recovered += 1
        try:      # a flipped byte inside a message is copied as it is (rosbags writes no CRC)
            with BagReader(out) as r:
                assert sum(1 for _ in r.messages()) == stats["messages"]
        except BagError as err:
            assert "reading failed after" in str(err)
    assert recovered > 10
