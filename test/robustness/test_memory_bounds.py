"""Memory bounded in bytes, not only in counts (issue 22 item 8).

Buffers are bounded in images; an image above MAX_IMAGE_BYTES is refused where every image comes
in (`check_image_layout`, used by the nodes and by bag readers), one above LARGE_IMAGE_BYTES is
warned about with what the buffers may then hold, and the bag reorder buffer also has a byte
budget. The synthetic renderer casts rays in chunks (a 1920x1080 view took 2.5 GB) and refuses
absurd sizes; calibrate refuses a 20000x20000 PNG from its header (it cost 2.8 GB and 88 s)."""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from wint3r_ros.cli import main
from wint3r_ros.data import messages as m
from wint3r_ros.data.bag import BagReader, BagWriter
from wint3r_ros.data.synthetic import RigConfig, SceneConfig, SyntheticRig
from wint3r_ros.errors import ConfigError, InputError

T0 = 1_700_000_000 * 10**9


def test_the_renderer_works_in_bounded_memory_and_refuses_absurd_sizes():
    synth = SyntheticRig(SceneConfig(seed=3), RigConfig(num_cameras=1, width=640, height=480))
    tracemalloc.start()
    try:
        frame = synth.render(0)[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frame.image.shape == (480, 640, 3)
    assert peak < 80 * 2**20, f"{peak / 2**20:.0f} MiB (casting every ray at once took 350)"
    with pytest.raises(ConfigError, match="20000x20000 images are larger than the synthetic"):
        RigConfig(width=20000, height=20000)


def test_make_bag_of_absurd_size_is_refused_before_anything_is_rendered(tmp_path, capsys):
    code = main(["make-bag", str(tmp_path / "b"), "--width", "20000", "--height", "20000"])
    err = capsys.readouterr().err
    assert code == 1 and "larger than the synthetic renderer makes" in err, err
    assert not (tmp_path / "b").exists()


def test_calibrate_refuses_a_huge_png_from_its_header(tmp_path, capsys):
    (tmp_path / "cam0").mkdir()
    cv2.imwrite(str(tmp_path / "cam0" / "0001.png"), np.zeros((20000, 20000), np.uint8),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])
    tracemalloc.start()
    try:
        code = main(["calibrate", "--images", str(tmp_path / "cam0"), "--board", "9x6",
                     "--square", "0.04", "--out", str(tmp_path / "rig.yaml")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 1 and "a 400-megapixel image is larger than calibrate reads" in err, err
    assert peak < 50 * 2**20


def test_an_image_above_the_size_limit_is_refused_without_reading_its_data():
    msg = m.image_from_array(np.zeros((4, 4, 3), np.uint8), "rgb8", T0, "cam0")
    msg.width, msg.height, msg.step = 20000, 20000, 60000   # claims 1.1 GiB, carries 48 bytes
    with pytest.raises(InputError, match=r"/cam0/image_raw: a 20000x20000 rgb8 image of 1144 "
                                         r"MiB is larger than this package takes in"):
        m.rgb_from_image(msg, "/cam0/image_raw")


def test_large_images_are_warned_about_with_what_the_buffers_may_hold():
    small = m.image_from_array(np.zeros((480, 640, 3), np.uint8), "rgb8", T0, "cam0")
    assert m.large_image_warning(small, "/cam0/image_raw", 30, 3) is None
    big = m.image_from_array(np.zeros((6000, 2000, 3), np.uint8), "rgb8", T0, "cam0")
    note = m.large_image_warning(big, "/cam0/image_raw", 30, 3)
    assert note.startswith("topic /cam0/image_raw: 2000x6000 rgb8 images of 34 MiB: the "
                           "buffers may hold 30 per camera, about 3.0 GiB for 3 camera(s)")


def test_the_bag_reorder_buffer_has_a_byte_budget(tmp_path):
    path = tmp_path / "big"
    with BagWriter(path) as w:
        for k in range(12):     # stamps in reverse within the bag: the buffer wants them all
            img = m.image_from_array(np.full((100, 100), k, np.uint8), "mono8",
                                     T0 - k * 10**6, "a")
            w.write("/a", img, T0 + k)
    with BagReader(path) as r:
        unbounded = [x.stamp_ns for x in r.messages_by_stamp(["/a"], max_buffer=100)]
        assert unbounded == sorted(unbounded) and r.late_messages == 0
        budget = [x.stamp_ns for x in r.messages_by_stamp(["/a"], max_buffer=100,
                                                           max_buffer_bytes=35_000)]
        # about three 10 kB images fit: the rest is released early and counted late
        assert r.late_messages >= 8 and sorted(budget) == unbounded


def test_bench_soak_refuses_a_rendered_cycle_over_its_budget_before_rendering(capsys):
    code = main(["bench", "soak", "--cameras", "8", "--width", "4096", "--height", "3072",
                 "--frames", "10"])
    err = capsys.readouterr().err
    assert code == 1 and "--cycle 16 sets of 8 x 4096x3072 images would hold 4.5 GiB" in err, err
