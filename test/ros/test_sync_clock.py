"""sync_node's synchronisation settings (issue 18): the rig's time offsets (Kalibr's
timeshift_cam_imu), time_offsets, sync_policy, auto_offset, and the clock report in its status
and /diagnostics."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

from fixtures.cameras import NAMES, make_rig, texture  # noqa: E402
from fixtures.graph import sync_overrides  # noqa: E402

from wint3r_ros.core.pipeline.params import SYNC_PARAMETERS, cross_check, defaults  # noqa: E402
from wint3r_ros.core.pipeline.settings import sync_settings  # noqa: E402
from wint3r_ros.data.rig_files import save_rig  # noqa: E402
from wint3r_ros.errors import ConfigError  # noqa: E402
from wint3r_ros.ros import convert as cv  # noqa: E402
from wint3r_ros.ros.sync_node import SyncNode  # noqa: E402

T0 = 5_000_000_000
PERIOD = 100_000_000  # 10 Hz


def _image(cam: int, ns: int):
    return cv.image_from_array(texture(cam, 0, 64, 48), "rgb8", ns, f"{NAMES[cam]}_optical_frame")


def _rig(tmp: Path, offsets) -> Path:
    rig = make_rig()
    rig = rig.with_cameras([dataclasses.replace(c, time_offset=o)
                            for c, o in zip(rig.cameras, offsets)])
    path = tmp / "rig.yaml"
    save_rig(rig, path, "rig with time offsets")
    return path


def _feed(node: SyncNode, frames: int, late: dict[int, int], drift: dict[int, float] | None = None):
    drift = drift or {}
    for k in range(frames):
        t = T0 + k * PERIOD
        for c in range(3):
            node._on_image(c, _image(c, t + late.get(c, 0) + int(drift.get(c, 0.0) * k * PERIOD)))


def _camera_diag(node: SyncNode, name: str) -> dict[str, str]:
    v = node.status_values()
    cam = next(c for c in v["stats"]["cameras"] if c["name"] == name)
    return v, cam


def test_sync_settings_take_time_offsets_from_the_parameter_else_the_rig():
    values = defaults(SYNC_PARAMETERS)
    assert sync_settings(values).sync.time_offsets == ()
    assert sync_settings(values, [0.0, 0.0, 0.0]).sync.time_offsets == ()
    assert sync_settings(values, [0.0, -0.03, 0.0]).sync.time_offsets == (0.0, -0.03, 0.0)
    values.update(time_offsets=[0.001, 0.0, 0.0], sync_policy="exact")
    cfg = sync_settings(values, [0.0, -0.03, 0.0]).sync
    assert cfg.time_offsets == (0.001, 0.0, 0.0) and cfg.sync_policy == "exact"
    assert "auto_offset needs sync_policy approximate" in cross_check(
        {**values, "auto_offset": True})


def test_sync_node_applies_the_rig_time_offset_and_reports_the_clocks(rclpy_context, tmp_path):
    # cam1's driver stamps 40 ms late; the rig file's time_offset (Kalibr's timeshift) fixes it
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        _rig(tmp_path, [0.0, -0.04, 0.0])))
    try:
        _feed(node, 40, late={1: 40_000_000})
        v, cam1 = _camera_diag(node, "cam1")
        assert v["stats"]["sets"] >= 38 and v["state"] == "ok"
        assert cam1["clock"]["time_offset_s"] == -0.04 and cam1["clock"]["state"] == "ok"
        assert cam1["clock"]["offset_s"] == pytest.approx(0.0, abs=1e-6)
    finally:
        node.destroy_node()
    # the parameter wins over the rig file; a wrong length is refused by name
    with pytest.raises(ConfigError, match="time_offsets has 2 values for 3 cameras"):
        SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
            _rig(tmp_path, [0.0, -0.04, 0.0]), time_offsets=[0.0, 0.0]))


def test_sync_node_warns_about_a_drifting_camera_and_auto_offset_keeps_its_sets(
        rclpy_context, tmp_path):
    rig = _rig(tmp_path, [0.0, 0.0, 0.0])
    # cam2 drifts 1 ms per frame (10 ms/s at 10 Hz); slop 10 ms
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(rig))
    try:
        _feed(node, 40, late={}, drift={2: 0.01})
        v, cam2 = _camera_diag(node, "cam2")
        assert v["stats"]["sets"] < 20
        assert cam2["clock"]["state"] in ("near_slop", "no_sets")
        assert v["state"].startswith("warning: clock offset") and "cam2" in v["state"]
        assert v["off_clock"] == ["cam2"]
    finally:
        node.destroy_node()
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, auto_offset=True))
    try:
        _feed(node, 40, late={}, drift={2: 0.01})
        v, cam2 = _camera_diag(node, "cam2")
        assert v["stats"]["sets"] == 40 and v["state"] == "ok"
        assert cam2["clock"]["drift"] == pytest.approx(0.01, rel=0.05)
        assert cam2["clock"]["correction_s"] == pytest.approx(0.39 * 0.01 * 10, abs=0.005)
    finally:
        node.destroy_node()


def test_sync_node_exact_policy_and_its_refusals(rclpy_context, tmp_path):
    rig = _rig(tmp_path, [0.0, 0.0, 0.0])
    node = SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
        rig, sync_policy="exact"))
    try:
        _feed(node, 10, late={2: 1})   # one nanosecond off: never an exact set
        assert node.status_values()["stats"]["sets"] == 0
        for k in range(10, 20):
            for c in range(3):
                node._on_image(c, _image(c, T0 + k * PERIOD))
        assert node.status_values()["stats"]["sets"] >= 9
    finally:
        node.destroy_node()
    with pytest.raises(ConfigError, match="auto_offset needs sync_policy approximate"):
        SyncNode(context=rclpy_context, parameter_overrides=sync_overrides(
            rig, sync_policy="exact", auto_offset=True))


def test_front_end_orders_sets_by_the_rig_clock_when_an_offset_exceeds_a_frame():
    from wint3r_ros.core.pipeline.frontend import SyncFrontEnd
    from wint3r_ros.core.pipeline.settings import SyncSettings
    from wint3r_ros.core.synchronizer import SyncConfig
    from wint3r_ros.core.window import WindowConfig

    # cam1 stamps 150 ms early (time_offset +0.15 s); it falls silent for a while and comes
    # back: a set with it starts 150 ms before the last set without it, on the source stamps
    front = SyncFrontEnd(["a", "b"], SyncSettings(
        SyncConfig(slop=0.01, min_cameras=1, stream_timeout=0.3, time_offsets=(0.0, 0.15)),
        WindowConfig(2, 0, "time")))
    windows = []
    for k in range(30):
        t = T0 + k * PERIOD
        windows += front.add(0, t, ("a", k))
        if not 10 <= k < 20:
            windows += front.add(1, t - 150_000_000, ("b", k))
    assert front.epoch == 0 and front.stats()["degraded_sets"] > 0
    assert len(windows) >= 14 and all(w.epoch == 0 for w in windows)
