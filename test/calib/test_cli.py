"""``wint3r-ros calibrate`` end to end on PNG folders: YAML, report, camera_info, exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from wint3r_ros import cli
from wint3r_ros.data.rig_files import load_camera_info_yaml, load_rig, save_rig


@pytest.fixture(scope="module")
def calibrated(image_dirs2, tmp_path_factory) -> tuple[int, Path, str]:
    out = tmp_path_factory.mktemp("cli") / "out" / "rig.yaml"
    argv = ["calibrate", "--images", *map(str, image_dirs2), "--board", "8x5", "--square",
            "0.05", "--out", str(out), "--camera-info-dir", str(out.parent / "info"),
            "--names", "left", "right", "--rig-name", "stereo", "--base-frame", "base_link",
            "--min-coverage", "0.3"]
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(argv)
    return rc, out, buf.getvalue()


def test_cli_writes_rig_yaml_report_and_camera_info(calibrated, rendered2) -> None:
    rc, out, stdout = calibrated
    truth, _ = rendered2
    assert rc == 0, stdout
    rig = load_rig(out)
    assert rig.name == "stereo" and rig.base_frame == "base_link"
    assert rig.camera_names == ["left", "right"]
    assert [c.topic for c in rig.cameras] == ["/left/image_raw", "/right/image_raw"]
    assert rig.baselines()[("left", "right")] == pytest.approx(
        truth.baselines()[("cam0", "cam1")], rel=0.01)
    assert out.read_text().startswith("# Written by wint3r-ros calibrate")
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["mode"] == "calibrate" and report["board"] == {"cols": 8, "rows": 5,
                                                                 "square_m": 0.05}
    assert set(report["cameras"]) == {"left", "right"}
    assert report["pairs"]["left-right"]["holdout"]["rms_px"] < 0.3
    assert report["split"]["holdout_fraction"] == 0.2 and report["split"]["holdout_sets"]
    assert all(Path(r["image"]).exists() for r in report["images"])
    for name, cam in zip(("left", "right"), rig.cameras):
        info = load_camera_info_yaml(out.parent / "info" / f"{name}.yaml")
        np.testing.assert_array_equal(info.K, cam.K)
        np.testing.assert_array_equal(info.distortion_coefficients, cam.distortion_coefficients)
    # The printed summary: a camera table, the pair, the worst images, the verdict, the files.
    assert "left" in stdout and "left-right" in stdout and "worst images by mono RMS" in stdout
    assert "PASSED quality thresholds" in stdout
    assert f"wrote {out}" in stdout


def test_cli_check_passes_the_stored_rig_and_fails_a_wrong_one(calibrated, image_dirs2,
                                                               tmp_path: Path, capsys) -> None:
    _, out, _ = calibrated
    base = ["calibrate", "--images", *map(str, image_dirs2), "--board", "8x5", "--square",
            "0.05", "--min-coverage", "0.3", "--strict"]
    assert cli.main([*base, "--check", str(out)]) == 0
    report = json.loads(out.with_suffix(".check.json").read_text())
    assert report["mode"] == "check" and report["passed"] is True
    assert report["cameras"]["right"]["check"]["rig_rms_px"] < 0.3
    assert "checked 2 camera(s)" in capsys.readouterr().out
    # Shift the right camera by 2 cm: the check must fail, with exit code 3 under --strict.
    data = yaml.safe_load(out.read_text())
    data["cameras"][1]["T_base_camera"]["translation"][0] += 0.02
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert cli.main([*base, "--check", str(bad), "--report", str(tmp_path / "r.json")]) == 3
    text = capsys.readouterr().out
    assert "FAILED quality thresholds" in text and "pair left-right: check reprojection RMS" in text
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is False


def test_cli_errors_are_one_line_with_exit_code_1(image_dirs2, tmp_path: Path, capsys) -> None:
    dirs = list(map(str, image_dirs2))
    cases = [
        (["--images", *dirs, "--board", "8by5", "--square", "0.05", "--out", "x.yaml"],
         "--board '8by5': expected COLSxROWS"),
        (["--images", *dirs, "--board", "8x5", "--square", "0.05"],
         "give --out RIG_YAML"),
        (["--board", "8x5", "--square", "0.05", "--out", "x.yaml"],
         "give exactly one of --images DIR ... or --bag BAG --topics ..."),
        (["--bag", str(tmp_path / "b"), "--board", "8x5", "--square", "0.05", "--out", "x.yaml"],
         "--bag needs --topics"),
        (["--images", *dirs, "--board", "8x5", "--square", "0.05", "--out", "x.yaml",
          "--names", "a"], "--names gives 1 names for 2 cameras"),
        (["--images", dirs[0], "--board", "8x5", "--square", "0.05", "--check",
          str(tmp_path / "missing.yaml")], "missing.yaml: cannot read rig calibration"),
        (["--images", *dirs, "--board", "8x5", "--square", "0.05", "--check", "x.yaml",
          "--level"], "--level and --cam0-pose set the base frame of a new calibration"),
    ]
    for args, message in cases:
        assert cli.main(["calibrate", *args]) == 1, args
        err = capsys.readouterr().err
        assert err.startswith("wint3r-ros calibrate: error: ") and message in err, err
        assert err.count("\n") == 1


def test_cli_check_needs_one_source_per_rig_camera(calibrated, image_dirs2, capsys) -> None:
    _, out, _ = calibrated
    rc = cli.main(["calibrate", "--images", str(image_dirs2[0]), "--board", "8x5", "--square",
                   "0.05", "--check", str(out)])
    assert rc == 1
    assert "has 2 cameras (left, right) but 1 image sources were given" in capsys.readouterr().err


def test_saved_rig_round_trips_through_the_cli_output(calibrated, tmp_path: Path) -> None:
    _, out, _ = calibrated
    rig = load_rig(out)
    save_rig(rig, tmp_path / "again.yaml")
    again = load_rig(tmp_path / "again.yaml")
    for a, b in zip(rig.cameras, again.cameras):
        np.testing.assert_array_equal(a.K, b.K)
        np.testing.assert_allclose(a.T_base_camera, b.T_base_camera, atol=1e-14)
