"""Every calibration error names what is wrong and where; the corner-level path keeps it fast."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from wint3r_ros.calib.board import AMBIGUOUS_ORDER
from wint3r_ros.calib.detect import detect_frames
from wint3r_ros.calib.fit import FitOptions
from wint3r_ros.calib.pipeline import CalibrateConfig, calibrate
from wint3r_ros.calib.sources import Frame, pair_image_dirs
from wint3r_ros.calib.validate import split_sets
from wint3r_ros.errors import CalibrationError


@pytest.fixture(scope="module")
def corners3(synth, board):
    """A 3-camera fan (cam0 and cam2 never share a view), corners with 0.1 px noise."""
    rig = synth["make_rig"](3)
    poses = synth["plan_poses"](rig, board, seed=11, single=8, shared=8)
    return rig, poses, synth["corner_detections"](rig, board, poses, seed=11)


def test_corner_level_path_recovers_the_three_camera_rig(corners3, board) -> None:
    truth, _, det = corners3
    result = calibrate(det, CalibrateConfig(board, holdout=0.2, seed=1))
    assert result.report["extrinsics"]["chained_from"] == {"cam1": "cam0", "cam2": "cam1"}
    for t, f in zip(truth.cameras, result.rig.cameras):
        np.testing.assert_allclose(np.diag(f.K)[:2], np.diag(t.K)[:2], rtol=0.005)
        np.testing.assert_allclose(f.K[:2, 2], t.K[:2, 2], atol=2.0)
    for pair, d in truth.baselines().items():
        assert result.rig.baselines()[pair] == pytest.approx(d, rel=0.01)
    held = result.report["cameras"]["cam2"]["holdout"]["mono_rms_px"]
    assert 0.08 < held < 0.25   # sqrt(2) * 0.1 px noise, give or take


def test_too_few_views_names_the_camera_and_counts(corners3, board) -> None:
    _, _, det = corners3
    with pytest.raises(CalibrationError,
                       match=r"too few views: camera cam0 sees the whole board in \d+ image\(s\) "
                             r"of the fit set; need at least 40"):
        calibrate(det, CalibrateConfig(board, fit=FitOptions(min_views=40)))


def test_pairs_without_common_views_are_named(corners3, board, synth) -> None:
    rig, poses, _ = corners3
    # Drop every set that cam1 shares with cam2: cam2 is then connected to nothing.
    alone = [(T, see) for T, see in poses if not (1 in see and 2 in see)]
    det = synth["corner_detections"](rig, board, alone, seed=12)
    with pytest.raises(CalibrationError) as info:
        calibrate(det, CalibrateConfig(board, holdout=0.0))
    msg = str(info.value)
    assert "camera(s) cam2 share no common views with cam0, cam1" in msg
    assert "cam0-cam2: 0, cam1-cam2: 0" in msg


def test_too_few_common_views_are_named(corners3, board, synth) -> None:
    rig, poses, _ = corners3
    few = [(T, see) for T, see in poses if see != [1, 2]] + \
        [(T, see) for T, see in poses if see == [1, 2]][:2]
    det = synth["corner_detections"](rig, board, few, seed=13)
    with pytest.raises(CalibrationError,
                       match=r"cam2 share fewer than 3 common views .* cam1-cam2: 2"):
        calibrate(det, CalibrateConfig(board, holdout=0.0))


def _frame(key: str, *images) -> Frame:
    return Frame(key, list(images), [None if im is None else f"cam{i}/{key}.png"
                                     for i, im in enumerate(images)])


def test_mismatched_image_sizes_name_the_image(rendered2, board) -> None:
    _, frames = rendered2
    small = cv2.resize(frames[0].images[0], (320, 240))
    frames = [frames[0], _frame("odd", small, None)]
    with pytest.raises(CalibrationError,
                       match=r"camera cam0: image cam0/odd.png is 320x240 but cam0/0000.png is "
                             r"640x480; all images of one camera must have the same size"):
        detect_frames(frames, board, ["cam0", "cam1"])


def test_check_rejects_images_of_another_size_than_the_rig(rendered2, board) -> None:
    _, frames = rendered2
    small = cv2.resize(frames[0].images[1], (320, 240))
    with pytest.raises(CalibrationError,
                       match=r"camera cam1: image cam1/s.png is 320x240 but rig.yaml is 640x480"):
        detect_frames([_frame("s", None, small)], board, ["cam0", "cam1"],
                      expected_sizes=[(640, 480), (640, 480)], size_origin="rig.yaml")


def test_no_board_found_is_named_and_fatal_under_strict(detected2, board) -> None:
    _, det = detected2
    blank = np.full((480, 640), 128, np.uint8)
    extra = detect_frames([_frame("blank", blank)], board, ["cam0"])
    assert extra.no_board == [(0, "cam0/blank.png")] and extra.keys == []
    det.no_board.append((0, "cam0/blank.png"))
    try:
        with pytest.raises(CalibrationError,
                           match=r"^no board found in image \S+.png \(\d+ image\(s\) without a "
                                 r"board: .*cam0/blank.png\); remove them or run without "
                                 r"--strict$"):
            calibrate(det, CalibrateConfig(board, strict=True))
        lenient = calibrate(det, CalibrateConfig(board, strict=False))
        assert any("cam0/blank.png" in w for w in lenient.warnings)
        assert "cam0/blank.png" in lenient.report["images_without_board"]
    finally:
        det.no_board.pop()


def test_views_dropped_for_an_ambiguous_corner_order_are_counted_and_named(detected2,
                                                                         board) -> None:
    _, det = detected2
    det.dropped.append((1, "cam1/turned.png", AMBIGUOUS_ORDER))
    try:
        result = calibrate(det, CalibrateConfig(board))
    finally:
        det.dropped.pop()
    assert result.report["views_dropped"] == [
        {"camera": "cam1", "image": "cam1/turned.png", "reason": "ambiguous corner order"}]
    assert "1 board view(s) dropped, their corner order was ambiguous (the squares' colours " \
           "did not say which end is corner 0): cam1/turned.png" in result.warnings


def test_a_camera_that_never_sees_the_board_is_an_error(rendered2, board) -> None:
    _, frames = rendered2
    blank = np.full((480, 640), 128, np.uint8)
    det = detect_frames([frames[0], _frame("b1", None, blank), _frame("b2", None, blank)], board,
                        ["cam0", "cam1"])
    det.corners[0][1] = None   # cam1's only board view is gone too
    with pytest.raises(CalibrationError,
                       match=r"camera cam1: no board found in any of its 3 image\(s\) "
                             r"\(e.g. cam1/b1.png\); check that --board counts INNER corners"):
        calibrate(det, CalibrateConfig(board))


def test_holdout_must_be_a_fraction() -> None:
    with pytest.raises(CalibrationError, match=r"--holdout must be in \[0, 1\), got 1.5"):
        split_sets(10, 1.5)


def test_image_dirs_pair_by_name_and_reject_bad_folders(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (a, b, c):
        d.mkdir()
    img = np.zeros((4, 4), np.uint8)
    for name in ("1", "2", "10"):
        cv2.imwrite(str(a / f"{name}.png"), img)
    for name in ("2", "10", "11"):
        cv2.imwrite(str(b / f"{name}.jpg"), img)
    pairs = pair_image_dirs([a, b])
    assert [n for n, _ in pairs] == ["1", "2", "10", "11"]   # natural order
    assert pairs[0][1] == [a / "1.png", None] and pairs[1][1] == [a / "2.png", b / "2.jpg"]
    cv2.imwrite(str(c / "x.png"), img)
    with pytest.raises(CalibrationError, match=r"--images .*/a: no file name in common with the "
                                               r"other cameras' directories"):
        pair_image_dirs([a, c])
    cv2.imwrite(str(a / "2.jpg"), img)
    with pytest.raises(CalibrationError, match=r"two images named '2' \(2.jpg, 2.png\)"):
        pair_image_dirs([a, b])
    with pytest.raises(CalibrationError, match=r"--images .*nope: not a directory"):
        pair_image_dirs([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match=r"empty: no images"):
        pair_image_dirs([tmp_path / "empty"])
