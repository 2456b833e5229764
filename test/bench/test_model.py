"""`wint3r-ros bench model`: JSON with times, memory and the encoder-cache comparison."""
from __future__ import annotations

import json

import pytest
import torch

from wint3r_ros.cli import main as cli_main


def test_bench_model_prints_json_with_times_memory_and_the_naive_comparison(capsys):
    code = cli_main(["bench", "model", "--preset", "tiny", "--height", "32", "--width", "48",
                     "--device", "cpu", "--iterations", "2", "--warmup", "0", "--compare-naive"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    res = data["results"]
    assert data["settings"]["window"] == 4 and data["settings"]["weights"] == "random"
    assert res["ms_per_window"] > 0 and res["fps"] > 0 and len(res["times_s"]) == 2
    assert res["naive"]["ms_per_window"] > 0 and res["cached_over_naive"] > 0
    assert max(res["max_rel_diff"].values()) <= 1e-5
    assert res["peak_memory"]["process_max_rss_mb"] > 0
    assert data["machine"]["torch"] == torch.__version__


def test_bench_sequence_mode_and_bad_sizes(capsys):
    assert cli_main(["bench", "model", "--height", "32", "--width", "32", "--sequence", "5",
                     "--device", "cpu", "--iterations", "1", "--warmup", "0"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res["ms_per_frame"] == pytest.approx(res["ms_per_sequence"] / 5)
    assert cli_main(["bench", "model", "--height", "30", "--device", "cpu"]) == 1
    assert "multiples of 16" in capsys.readouterr().err
