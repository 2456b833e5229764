"""process-bag's synchronisation settings (issue 18): the rig's time offsets, sync_policy and
auto_offset reach the synchroniser it runs, and the clocks are in its metrics JSON."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from wint3r_ros import cli
from wint3r_ros.data.rig_files import load_rig, save_rig


def _params_file(tmp_path: Path, **values) -> Path:
    body = "\n".join(f"    {k}: {v}" for k, v in values.items())
    path = tmp_path / "sync_node.yaml"
    path.write_text(f"sync_node:\n  ros__parameters:\n{body}\n")
    return path


def test_process_bag_takes_the_rig_time_offsets_and_reports_the_clocks(tmp_path, monkeypatch):
    from wint3r_ros.core.pipeline import frontend
    from wint3r_ros.offline.make_bag import MakeBagConfig, make_bag
    from wint3r_ros.offline.process_bag import metrics_path_for

    seen = []
    real = frontend.Synchronizer

    def spy(names, config):
        seen.append(config)
        return real(names, config)

    monkeypatch.setattr(frontend, "Synchronizer", spy)
    made = make_bag(tmp_path / "in", MakeBagConfig(cameras=2, frames=4, width=32, height=32))
    rig = load_rig(made.rig_path)
    rig = rig.with_cameras([rig.cameras[0], dataclasses.replace(rig.cameras[1], time_offset=0.001)])
    save_rig(rig, tmp_path / "rig.yaml")
    model = tmp_path / "fusion_node.yaml"
    model.write_text("fusion_node:\n  ros__parameters:\n    input_long_side: 32\n"
                     "    torch_threads: 1\n")
    out = tmp_path / "out"
    assert cli.main(["process-bag", str(made.bag), str(out), "--rig", str(tmp_path / "rig.yaml"),
                     "--sync-config", str(_params_file(tmp_path, auto_offset="true")),
                     "--model-config", str(model), "--no-progress"]) == 0
    (config,) = seen
    assert config.time_offsets == (0.0, 0.001) and config.auto_offset
    doc = json.loads(metrics_path_for(out).read_text())
    assert [c["name"] for c in doc["clock"]] == rig.camera_names
    assert [c["time_offset_s"] for c in doc["clock"]] == [0.0, 0.001]
    assert doc["settings"]["sync"]["auto_offset"] is True
