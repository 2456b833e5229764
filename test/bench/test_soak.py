"""`bench soak` on a short stream: the JSON document's shape and every buffer bounded (memory
itself is judged by the full 10000-frame run in docs/BENCHMARKS.md, not by a timed test)."""
from __future__ import annotations

import json

import torch

from wint3r_ros.cli import main

torch.set_num_threads(1)


def test_soak_reports_a_memory_curve_and_keeps_every_buffer_bounded(tmp_path, capsys):
    out = tmp_path / "soak.json"
    code = main(["bench", "soak", "--frames", "160", "--cameras", "3", "--sample-every", "40",
                 "--reference", "40", "--cycle", "4", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc == json.loads(capsys.readouterr().out)
    assert doc["benchmark"] == "soak"
    assert {"cpu", "cpu_count", "python", "versions"} <= set(doc["machine"])
    assert doc["settings"]["frames"] == 160 and doc["settings"]["cameras"] == 3
    r = doc["results"]
    assert [s["frames"] for s in r["curve"]] == [0, 40, 80, 120, 160]
    assert all(s["rss_mb"] > 0 for s in r["curve"])
    assert r["reference_frames"] == 40
    assert r["end_over_reference"] == r["rss_mb_end"] / r["rss_mb_at_reference"]
    assert r["peak_over_reference"] >= r["end_over_reference"] > 0
    assert isinstance(r["within_10_percent"], bool)
    # 160 sets, L=4, O=2: a window every 2 sets, every frame published once
    assert r["windows"] == 79 and r["frames_published"] == 160 * 3
    # bounded: the pool at its bound, at most one window of everything else
    window_frames = 4 * 3
    m = r["buffer_max"]
    assert all(s["pool_entries"] <= s["pool_bound"] == 256 for s in r["curve"])
    assert r["curve"][-1]["pool_entries"] == r["curve"][-1]["model_pool_size"] == 256
    assert r["engine_counters"]["frames_published"] == 160 * 3
    assert m["held_frames"] <= 2 * 3
    assert m["prep_cache"] <= window_frames and m["window_buffered"] <= window_frames
    assert m["sync_pending"] <= 10 * 3
