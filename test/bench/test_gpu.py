"""`wint3r-ros bench gpu` in its reduced CPU setting prints valid JSON with every field and a
markdown table; `bench model --variants` compares precisions on one input; variants parse."""
from __future__ import annotations

import json

import pytest

from wint3r_ros.bench.variants import Variant, parse_variants
from wint3r_ros.cli import main as cli_main
from wint3r_ros.errors import ConfigError

ROW_FIELDS = {"variant", "ms_per_window", "min_ms_per_window", "p50_ms", "p99_ms", "frames_per_s",
              "first_call_s", "ratio_to_reference", "ratio_to_reference_min", "peak_vram_mb",
              "deviation", "cpu_ms_per_window", "cpu_ratio_to_reference"}
DEVIATION_FIELDS = {"pts_rel", "pts_rel_p99", "pts_rel_px_max", "conf_rel", "trans_rel", "rot_deg",
                    "scene_scale"}


def test_variants_parse_and_bad_ones_are_config_errors():
    assert Variant.parse("bf16+compile") == Variant("bf16", compile=True)
    assert Variant.parse("fp32+nocache").name == "fp32+nocache"
    assert [v.name for v in parse_variants("fp32+nocache, fp32,int8")] == ["fp32+nocache", "fp32", "int8"]
    for bad, message in (("fp64", "PRECISION one of"), ("bf16+fast", "unknown option"),
                         ("fp32,fp32", "distinct"), ("", "distinct")):
        with pytest.raises(ConfigError, match=message):
            parse_variants(bad)


def test_bench_gpu_reduced_cpu_setting_prints_every_field(tmp_path, capsys):
    pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")
    out, md = tmp_path / "gpu.json", tmp_path / "gpu.md"
    assert cli_main(["bench", "gpu", "--device", "cpu", "--threads", "1", "--iterations", "2",
                     "--out", str(out), "--markdown", str(md)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert doc["benchmark"] == "gpu" and doc["mode"] == "reduced (CPU)" and doc["device"] == "cpu"
    assert len(doc["machine"]["load_average"]) == 3 and doc["total_s"] > 0
    net = doc["network"]
    assert (net["preset"], net["width"], net["height"], net["reference"]) == ("tiny", 96, 64, "fp32")
    assert [r["variant"] for r in net["variants"]] == ["fp32", "bf16"]
    for row in net["variants"]:
        assert set(row) == ROW_FIELDS and set(row["deviation"]) == DEVIATION_FIELDS
        assert row["ms_per_window"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0
        assert row["peak_vram_mb"] is None  # no GPU here
    assert net["variants"][0]["deviation"]["pts_rel"] == 0.0
    assert net["variants"][1]["deviation"]["pts_rel"] > 0.0
    assert [s["variant"] for s in net["skipped"]] == ["fp16"]
    assert "not supported on the CPU" in net["skipped"][0]["reason"]
    ros = doc["ros_graph"]
    assert ros["fusion_windows"] >= 1 and ros["settings"]["cameras"] == 3
    for key in ("set_to_tf_ms", "set_to_depth_ms", "model_ms"):
        assert ros[key]["n"] >= 1 and ros[key]["p99"] >= ros[key]["p50"] > 0, key
    table = md.read_text()
    assert table.strip() == doc["markdown"].strip()
    assert "| fp32 |" in table and "| bf16 |" in table and "set -> /tf" in table


def test_bench_model_variants_compare_precisions_on_one_input(capsys):
    code = cli_main(["bench", "model", "--height", "32", "--width", "32", "--device", "cpu",
                     "--iterations", "1", "--warmup", "0", "--sequence", "4",
                     "--variants", "fp32+nocache,fp32,bf16,int8"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["variant"]: r for r in doc["results"]["variants"]}
    assert list(rows) == ["fp32+nocache", "fp32", "bf16", "int8"]
    assert rows["fp32+nocache"]["ratio_to_reference"] == 1.0
    assert rows["fp32"]["deviation"]["pts_rel"] < 1e-4  # the cache changes rounding only
    assert 0 < rows["bf16"]["deviation"]["pts_rel"] and 0 < rows["int8"]["deviation"]["pts_rel"]
    assert doc["settings"]["reference"] == "fp32+nocache" and doc["settings"]["interleaved"]
    assert "| int8 |" in doc["results"]["markdown"]
