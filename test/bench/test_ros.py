"""`wint3r-ros bench ros` runs the graph over DDS and reports latencies and batch sizes."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from wint3r_ros.bench.ros import bench_ros


def test_bench_ros_measures_the_sync_node_on_a_short_stream():
    r = bench_ros(cameras=2, width=64, height=48, rate=20.0, sets=12, transport="raw")
    # 12 sets, L=4, O=2: windows after sets 4, 6, 8, 10, 12 (the newest sets may still wait)
    assert 4 <= r["windows"] <= 5
    assert r["image_bytes_per_batch"] == 4 * 2 * 64 * 48 * 3
    for key in ("sync_internal_ms", "sync_end_to_end_ms"):
        assert r[key]["n"] == r["windows"] and 0 < r[key]["p50"] <= r[key]["max"]
    assert r["sync_drops"] == {}


def test_bench_transport_runs_bench_ros_once_per_transport(tmp_path, capsys):
    import json

    from wint3r_ros.cli import main

    out = tmp_path / "transport.json"
    assert main(["bench", "transport", "--cameras", "2", "--width", "64", "--height", "48",
                 "--rate", "20", "--sets", "8", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc == json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "transport" and doc["settings"]["transports"] == ["raw", "jpeg"]
    assert "versions" in doc["machine"]
    raw, jpeg = doc["results"]["raw"], doc["results"]["jpeg"]
    assert raw["image_bytes_per_batch"] == 4 * 2 * 64 * 48 * 3
    assert 0 < jpeg["image_bytes_per_batch"] < raw["image_bytes_per_batch"]
    for r in (raw, jpeg):
        assert r["windows"] >= 2 and r["end_to_end_ms"]["n"] == r["windows"]
