"""config/, launch/ and docs/ROBOT.md agree with the nodes: every parameter is in the params
files with a comment (fusion defaults equal the code's), the example calibration matches the
example rig, RViz shows topics the nodes publish, the launch file declares the documented
arguments, and the documented parameter tables are the nodes' own."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.ros.fusion_node import FUSION_PARAMETERS
from wint3r_ros.ros.params import format_table, validate
from wint3r_ros.ros.sync_node import SYNC_PARAMETERS

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"


def _params(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    return data["/**"]["ros__parameters"]


def _uncommented_keys(path: Path) -> list[str]:
    """Parameter keys with no comment above them (a comment may introduce a group of keys)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "ros__parameters:")
    bad = []
    for i in range(start + 1, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        j = i - 1
        while j > start and lines[j].strip() and not lines[j].strip().startswith("#"):
            j -= 1  # walk up over the keys of the same group
        if j <= start or not lines[j].strip().startswith("#"):
            bad.append(line.split(":")[0])
    return bad


@pytest.mark.parametrize("name,specs", [("rig.yaml", SYNC_PARAMETERS),
                                        ("wint3r.yaml", FUSION_PARAMETERS)])
def test_params_files_hold_every_parameter_with_a_comment_and_a_valid_value(name, specs):
    values = _params(CONFIG / name)
    assert sorted(values) == sorted(s.name for s in specs)
    assert _uncommented_keys(CONFIG / name) == []
    for spec in specs:
        _, reason = validate(spec, values[spec.name])
        assert reason is None, f"{name}: {spec.name}: {reason}"


def test_fusion_params_file_documents_the_code_defaults():
    values = _params(CONFIG / "wint3r.yaml")
    for spec in FUSION_PARAMETERS:
        assert values[spec.name] == spec.default, spec.name


def test_example_calibration_matches_the_example_rig():
    rig = load_rig(CONFIG / "example_rig_calibration.yaml")
    values = _params(CONFIG / "rig.yaml")
    assert rig.camera_names == values["camera_names"]
    assert [c.topic for c in rig.cameras] == values["image_topics"]
    assert [c.camera_info_topic for c in rig.cameras] == values["camera_info_topics"]
    assert rig.base_frame == values["base_frame"] == _params(CONFIG / "wint3r.yaml")["base_frame"]
    assert min(rig.baselines().values()) > 0.1  # metric scale possible


def test_rviz_layout_shows_what_fusion_node_publishes():
    rviz = yaml.safe_load((CONFIG / "wint3r.rviz").read_text())
    manager = rviz["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == _params(CONFIG / "wint3r.yaml")["world_frame"]
    topics = {d["Topic"]["Value"] for d in manager["Displays"] if "Topic" in d}
    cams = _params(CONFIG / "rig.yaml")["camera_names"]
    published = {"/fusion_node/cloud", "/fusion_node/map_cloud", "/fusion_node/path",
                 "/fusion_node/odometry"} | \
        {f"/fusion_node/{c}/depth" for c in cams}
    assert topics == published
    assert {d["Class"] for d in manager["Displays"]} >= {"rviz_default_plugins/TF",
                                                         "rviz_default_plugins/PointCloud2",
                                                         "rviz_default_plugins/Path",
                                                         "rviz_default_plugins/Image"}


def test_launch_file_declares_the_documented_arguments_and_uses_existing_files():
    tree = ast.parse((REPO / "launch" / "rig.launch.py").read_text())
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert declared >= {"rig_config", "model_config", "checkpoint", "device", "use_sim_time", "rviz",
                        "namespace", "rig_file", "extrinsics_source", "bag_mode"}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for name in ("rig.yaml", "wint3r.yaml", "wint3r.rviz"):
        assert name in strings and (CONFIG / name).is_file()
    rig_file = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", "") == "DeclareLaunchArgument"
                    and node.args[0].value == "rig_file")
    default = next(k.value.value for k in rig_file.keywords if k.arg == "default_value")
    assert default == ""   # no invented calibration: without one, both nodes say depth is relative
    for exe in ("sync_node", "fusion_node"):
        assert exe in strings and (REPO / "scripts" / "nodes" / exe).is_file()


def test_robot_doc_parameter_tables_are_the_nodes_own():
    doc = (REPO / "docs" / "ROBOT.md").read_text()
    assert format_table(SYNC_PARAMETERS) in doc
    assert format_table(FUSION_PARAMETERS) in doc
