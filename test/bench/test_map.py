"""bench map: the JSON of a short run holds the insert timings and memory within its bound."""
from __future__ import annotations

import json

from wint3r_ros import cli


def test_bench_map_prints_timings_and_memory_under_the_bound(capsys, tmp_path):
    out = tmp_path / "map.json"
    code = cli.main(["bench", "map", "--windows", "60", "--points", "2000", "--max-points",
                     "3000", "--voxel-size", "0.1", "--out", str(out)])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    r = doc["results"]
    assert doc["benchmark"] == "map" and doc["settings"]["max_points"] == 3000
    assert r["voxels"] <= 3000 and r["peak_bytes"] <= r["max_bytes"] and r["evicted"] > 0
    assert r["inserted_points"] == 60 * 2000
    assert set(r["insert_ms"]) == {"median", "mean", "p99", "max"}
    assert 0 < r["insert_ms"]["median"] <= r["insert_ms"]["max"]
