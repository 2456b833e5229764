"""`wint3r-ros bench core`: runs through the CLI and reports a complete JSON document."""
from __future__ import annotations

import json

from wint3r_ros.bench.core import bench_core
from wint3r_ros.cli import main


def test_bench_core_cli_prints_settings_machine_and_per_set_timings(capsys, tmp_path):
    out = tmp_path / "core.json"
    rc = main(["bench", "core", "--cameras", "3", "--rate", "30", "--width", "64", "--height", "48",
               "--sets", "60", "--output", str(out)])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert doc["settings"]["width"] == 64 and doc["settings"]["sets"] == 60
    assert doc["machine"]["versions"]["numpy"]
    (res,) = doc["results"]
    assert res["cameras"] == 3 and res["messages"] == 180
    assert res["sets_emitted"] == 60 and res["windows"] == 1 + (60 - 4) // 2
    assert res["mean_us_per_set"] > 0 and res["p99_us_per_set"] >= res["p50_us_per_set"]


def test_bench_core_counts_drops_when_messages_are_lost():
    res = bench_core(cameras=2, rate=30, width=8, height=8, sets=200, drop=0.2, seed=1)
    assert res["sets_emitted"] < 200
    assert sum(res["dropped"].values()) > 0


def test_bench_core_rejects_bad_arguments(capsys):
    assert main(["bench", "core", "--cameras", "0"]) == 1
    assert "--cameras 0" in capsys.readouterr().err


def test_bench_core_reports_the_matching_rate_on_reordered_streams():
    kw = dict(cameras=4, rate=30, width=8, height=8, sets=300, drop=0.02, seed=0, reorder=0.1)
    auto = bench_core(**kw)
    none = bench_core(**kw, reorder_window=0.0)
    assert auto["complete_steps"] == none["complete_steps"] > 250
    assert auto["matched_steps"] == auto["complete_steps"] and auto["match_rate"] == 1.0
    assert none["matched_steps"] < none["complete_steps"]


def test_bench_drift_detects_the_drifting_camera_and_auto_offset_keeps_the_sets():
    from wint3r_ros.bench.core import bench_drift

    doc = bench_drift(seconds=20.0)
    assert doc["steps"] == 600
    assert doc["auto_offset"]["true_sets"] == 600 and doc["fixed_slop"]["true_sets"] < 200
    assert doc["auto_offset"]["detected_after_s"] < 10.0
    assert doc["auto_offset"]["drift_error_at_10s"] < 0.1
    assert doc["fixed_slop"]["first_warning_s"] < 10.0
