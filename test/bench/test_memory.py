"""bench memory: process-bag on a bag of images whose window does not fit the budget: the JSON
reports the child's peak RSS, the front end's peak within the window floor, the warning."""
from __future__ import annotations

import json

import pytest

from wint3r_ros import cli


def test_bench_memory_reports_the_peak_within_the_floor_of_one_window(capsys, tmp_path):
    out = tmp_path / "memory.json"
    code = cli.main(["bench", "memory", "--cameras", "2", "--width", "320", "--height", "240",
                     "--sets", "6", "--budget-mb", "1", "--workdir", str(tmp_path), "--out",
                     str(out)])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    r = doc["results"]
    assert doc["benchmark"] == "memory" and doc["settings"]["budget_mb"] == 1
    assert r["frames_out"] == 12 and r["warned"]       # a window of 8 images is 1.8 MiB
    assert r["image_mb"] == pytest.approx(320 * 240 * 3 / 2**20)
    assert 8 * r["image_mb"] <= r["buffers_peak_mb"] <= r["window_floor_mb"] + 0.05
    assert r["peak_rss_mb"] is None or r["peak_rss_mb"] > 50      # a python with torch
    assert list(tmp_path.iterdir()) == [out]                      # the bags are gone


def test_bench_memory_refuses_images_no_input_takes(capsys):
    assert cli.main(["bench", "memory", "--width", "20000", "--height", "20000"]) == 1
    assert "rgb8 is above the 256 MiB every input refuses" in capsys.readouterr().err
