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
