"""process-bag's settings: the nodes' parameter files, each for its own half, checked with the
nodes' own rules (one table per node), the flags after the files, one engine configuration."""
from __future__ import annotations

from pathlib import Path

import pytest

from wint3r_ros import cli
from wint3r_ros.core.pipeline.params import FUSION_PARAMETERS, SYNC_PARAMETERS, defaults
from wint3r_ros.core.pipeline.settings import engine_config, model_settings, sync_settings
from wint3r_ros.core.window import WindowConfig
from wint3r_ros.errors import ConfigError
from wint3r_ros.offline.process_config import ProcessConfig, load_params_file, settings_from_files

REPO = Path(__file__).resolve().parents[2]
RIG_YAML, MODEL_YAML = REPO / "config" / "rig.yaml", REPO / "config" / "wint3r.yaml"


def _params_file(tmp_path: Path, node: str, **values) -> Path:
    body = "\n".join(f"    {k}: {v}" for k, v in values.items())
    path = tmp_path / f"{node}.yaml"
    path.write_text(f"{node}:\n  ros__parameters:\n{body}\n")
    return path


def test_each_parameter_file_sets_its_own_nodes_queue_size():
    cfg = settings_from_files(RIG_YAML, MODEL_YAML, {})
    assert cfg.sync["queue_size"] == 10 and cfg.fusion["queue_size"] == 2
    assert sync_settings(cfg.sync).sync.queue_size == 10   # messages per camera, not windows
    cfg = settings_from_files(RIG_YAML, None, {})
    assert cfg.sync["queue_size"] == 10 and cfg.fusion["queue_size"] == 2


def test_the_sync_queue_size_reaches_the_front_end_that_process_bag_runs(tmp_path, monkeypatch):
    from wint3r_ros.core.pipeline import frontend
    from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag

    seen = []
    real = frontend.Synchronizer

    def spy(names, config):
        sync = real(names, config)
        seen.append((sync.policy.queue_size, sync.policy.slop))
        return sync

    monkeypatch.setattr(frontend, "Synchronizer", spy)
    made = make_bag(tmp_path / "in", MakeBagConfig(cameras=2, frames=2, width=32, height=32))
    sync = _params_file(tmp_path, "sync_node", queue_size=7, slop=0.015)
    model = _params_file(tmp_path, "fusion_node", queue_size=3, input_long_side=32,
                         torch_threads=1)
    assert cli.main(["process-bag", str(made.bag), str(tmp_path / "out"), "--sync-config",
                     str(sync), "--model-config", str(model), "--no-progress"]) == 0
    assert seen == [(7, 0.015)]


@pytest.mark.parametrize("node,key,value,needle", [
    ("fusion_node", "confidence_treshold", 2.0, "unknown parameter(s) confidence_treshold"),
    ("fusion_node", "confidence_threshold", -1.0, "confidence_threshold: -1.0 is out of range"),
    ("fusion_node", "input_long_side", 1600000, "input_long_side: 1600000 is out of range"),
    ("fusion_node", "cloud_max_points", 0, "cloud_max_points: 0 is out of range"),
    ("fusion_node", "world_frame", "base_link", "world_frame and base_frame are both 'base_link'"),
    ("sync_node", "window_overlap", 4, "window_overlap=4 must be smaller than window_length=4"),
    ("sync_node", "slop", "fast", "slop: must be a number"),
])
def test_bad_values_in_a_parameter_file_are_refused_with_the_nodes_rules(
        tmp_path, node, key, value, needle):
    path = _params_file(tmp_path, node, **{key: value})
    flag = "--model-config" if node == "fusion_node" else "--sync-config"
    with pytest.raises(ConfigError, match=f"{flag} {path}: .*") as err:
        settings_from_files(path if node == "sync_node" else None,
                            path if node == "fusion_node" else None, {})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_flags_are_refused_with_the_same_rules(capsys, tmp_path):
    with pytest.raises(ConfigError, match="--threads: torch_threads: -1 is out of range"):
        settings_from_files(None, None, {"threads": -1})
    assert cli.main(["process-bag", str(tmp_path / "in"), str(tmp_path / "out"),
                     "--input-long-side", "1600000"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input_long_side: 1600000 is out of range" in err[0]


def test_flags_override_the_model_file_and_a_combined_file_serves_both_nodes(tmp_path):
    both = tmp_path / "both.yaml"
    both.write_text("sync_node:\n  ros__parameters:\n    queue_size: 5\n"
                    "fusion_node:\n  ros__parameters:\n    queue_size: 4\n"
                    "    confidence_threshold: 2.0\n")
    cfg = settings_from_files(both, both, {"confidence_threshold": 3.0, "threads": 2})
    assert (cfg.sync["queue_size"], cfg.fusion["queue_size"]) == (5, 4)
    assert (cfg.fusion["confidence_threshold"], cfg.fusion["torch_threads"]) == (3.0, 2)
    assert load_params_file(both, "sync_node") == {"queue_size": 5}


def test_a_world_frame_equal_to_the_rigs_base_frame_is_refused_after_resolving(tmp_path):
    from dataclasses import replace

    from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
    from wint3r_ros.offline.process_bag import process_bag

    made = make_bag(tmp_path / "in", MakeBagConfig(cameras=2, frames=1, width=32, height=32))
    rig = replace(made.rig, base_frame="rig_base")
    cfg = ProcessConfig(fusion={"world_frame": "rig_base", "base_frame": ""})  # "" = the rig's
    with pytest.raises(ConfigError, match="world_frame and base_frame are both 'rig_base'"):
        process_bag(made.bag, tmp_path / "out", rig, cfg, model=object())


def test_one_function_builds_the_engine_config_with_one_threshold_default():
    from wint3r_ros.model.loader import DEFAULT_CONFIDENCE_THRESHOLD

    values = defaults(FUSION_PARAMETERS)
    resolved = model_settings(values, None)
    assert resolved.confidence_threshold == DEFAULT_CONFIDENCE_THRESHOLD
    cfg = engine_config(values, resolved, cameras=3, window=WindowConfig(4, 2))
    assert cfg.conf_threshold == DEFAULT_CONFIDENCE_THRESHOLD
    assert (cfg.max_pool_entries, cfg.keyframe_every, cfg.merge) == (512, 4, "overlap")
    values["max_pool_tokens"] = 10
    warned = []
    assert engine_config(values, resolved, cameras=3, window=WindowConfig(4, 2),
                         warn=warned.append).max_pool_entries == 24 and warned
    assert {s.name for s in SYNC_PARAMETERS} & {s.name for s in FUSION_PARAMETERS} == \
        {"rig_file", "base_frame", "queue_size", "status_period", "silence_timeout", "hold_timeout",
         "bag_mode", "buffer_budget_mb"}
