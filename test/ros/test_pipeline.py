"""The ROS graph in one process over real DDS: 3 synthetic cameras with stamp jitter, one
dropped frame and one frame of a bad encoding -> sync_node -> WindowBatch -> fusion_node (tiny
model, random weights) -> TF, depth + camera_info, confidence, cloud, odometry, path, status."""
from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.cameras import MOUNTS, NAMES, make_rig  # noqa: E402
from fixtures.graph import make_graph, play, spin_for, spin_until  # noqa: E402

from wint3r_ros.ros import convert as cv  # noqa: E402

torch.set_num_threads(1)

SETS = range(12)
DROP = {(1, 4)}          # camera 1 misses set 4
BAD = {(2, 7)}           # camera 2 sends set 7 as nv21
EMITTED = [k for k in SETS if k not in (4, 7)]          # the sets sync can form
WINDOW_SETS = [EMITTED[0:4], EMITTED[2:6], EMITTED[4:8], EMITTED[6:10]]
PUBLISHED = EMITTED[:-2]  # the last O=2 sets wait for a window that does not come


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the stream once; the tests below read what came out."""
    context = rclpy.Context()
    rclpy.init(context=context)
    tmp = tmp_path_factory.mktemp("pipeline")
    ex, sync, fusion, cams, rec, pub = make_graph(
        context, tmp, fusion_extra={"pose_covariance": [0.01, 0.02, 0.03, 0.04, 0.05, 0.06],
                                    # random weights: accept any rig fit, to exercise the metric path
                                    "scale_fit_max_residual": 1e6},
        cameras_kw={"drop": DROP, "bad_encoding": BAD})
    try:
        play(ex, cams, SETS)
        assert spin_until(ex, lambda: fusion.status_values()["windows"] >= 4, 30.0), \
            f"fusion processed {fusion.status_values()['windows']} windows"
        spin_until(ex, lambda: len(rec.msgs["/fusion_node/cam2/depth"]) >= len(PUBLISHED), 10.0)
        spin_for(ex, 0.6)  # status timers (0.2 s) fire with the final counters
        yield {"rec": rec.msgs, "cams": cams, "sync": sync.status_values(),
               "fusion": fusion.status_values()}
    finally:
        ex.shutdown()
        for n in (fusion, sync, pub):
            n.destroy_node()
        context.try_shutdown()


def _set_stamp(cams, k):
    return max(cams.stamps[(c, k)] for c in range(3))


def test_sync_node_window_batches_hold_the_matched_images_in_rig_order(run):
    cams, batches = run["cams"], run["rec"]["/sync_node/windows"]
    assert len(batches) == 4
    rig = make_rig()
    for i, (b, sets) in enumerate(zip(batches, WINDOW_SETS)):
        assert (b.window_index, b.epoch, b.num_cameras, b.num_steps, b.overlap) == (i, 0, 3, 4, 2)
        assert list(b.camera_names) == list(NAMES)
        assert list(b.frame_ids) == [f"{n}_optical_frame" for n in NAMES]
        assert b.header.frame_id == "base_link"
        assert cv.ns_from_stamp(b.header.stamp) == _set_stamp(cams, sets[-1])
        assert [cv.ns_from_stamp(s) for s in b.image_stamps] == \
            [cams.stamps[(c, k)] for k in sets for c in range(3)]
        assert len(b.images) == 12 and not b.compressed_images
        for j, img in enumerate(b.images):
            k, c = sets[j // 3], j % 3
            assert (img.encoding, img.width, img.height) == ("rgb8", 64, 48)
            np.testing.assert_array_equal(cv.rgb_from_image(img), cams.sent[(c, k)])
        for c, info in enumerate(b.camera_infos):
            assert (info.width, info.height) == (64, 48)
            np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), rig.cameras[c].K)


def test_sync_node_status_counts_the_dropped_frame_and_the_rejected_encoding(run):
    v = run["sync"]
    assert v["drops"] == {"cam0/no_match": 2, "cam1/no_match": 1, "cam2/no_match": 1,
                          "cam2/bad_encoding": 1}
    msg = run["rec"]["/sync_node/status"][-1]
    assert dict(zip(msg.drop_reasons, msg.drop_counts)) == v["drops"]
    assert msg.frames_in == 35 and msg.frames_out == 30 and msg.resets == 0
    assert msg.state == "ok" and msg.header.frame_id == "base_link"
    diags = [s for a in run["rec"]["/diagnostics"] for s in a.status if "camera cam2" in s.name]
    values = {kv.key: kv.value for kv in diags[-1].values}
    assert values["rejected.bad_encoding"] == "1" and values["received"] == "12"
    assert values["matched"] == "10" and values["topic"] == "/cam2/image_raw"
    assert diags[-1].level == b"\x01"  # WARN: it is sending images we cannot use


def test_fusion_publishes_world_to_base_tf_with_source_stamps(run):
    cams = run["cams"]
    tfs = [t for m in run["rec"]["/tf"] for t in m.transforms]
    assert [(t.header.frame_id, t.child_frame_id) for t in tfs] == [("odom", "base_link")] * len(PUBLISHED)
    assert [cv.ns_from_stamp(t.header.stamp) for t in tfs] == [_set_stamp(cams, k) for k in PUBLISHED]
    first = tfs[0].transform
    assert [first.translation.x, first.translation.y, first.translation.z] == pytest.approx([0, 0, 0], abs=1e-12)
    assert abs(first.rotation.w) == pytest.approx(1.0)
    static = run["rec"]["/tf_static"][-1].transforms
    got = {t.child_frame_id: t for t in static}
    assert sorted(got) == [f"{n}_optical_frame" for n in NAMES]
    for n in NAMES:
        t = got[f"{n}_optical_frame"]
        assert t.header.frame_id == "base_link"
        (_, _, _, T), = cv.transforms_from_tf_message(type("M", (), {"transforms": [t]}))
        np.testing.assert_allclose(T, MOUNTS[n], atol=1e-9)


def test_fusion_depth_confidence_and_camera_info_per_camera(run):
    cams, rec = run["cams"], run["rec"]
    rig = make_rig()
    for c, name in enumerate(NAMES):
        depth = rec[f"/fusion_node/{name}/depth"]
        infos = rec[f"/fusion_node/{name}/camera_info"]
        conf = rec[f"/fusion_node/{name}/confidence"]
        want = [cams.stamps[(c, k)] for k in PUBLISHED]
        assert [cv.ns_from_stamp(m.header.stamp) for m in depth] == want
        assert [cv.ns_from_stamp(m.header.stamp) for m in infos] == want
        assert [cv.ns_from_stamp(m.header.stamp) for m in conf] == want
        for d, i, q in zip(depth, infos, conf):
            assert (d.encoding, d.width, d.height) == ("32FC1", 64, 48)
            assert d.header.frame_id == i.header.frame_id == q.header.frame_id == f"{name}_optical_frame"
            assert (i.width, i.height) == (d.width, d.height)
            np.testing.assert_allclose(np.asarray(i.k).reshape(3, 3), rig.cameras[c].K)
            z = cv.array_from_image(d)
            valid = np.isfinite(z)
            assert valid.any() and (z[valid] > 0).all()
            cq = cv.array_from_image(q)
            assert q.encoding == "32FC1" and np.isfinite(cq).all() and (cq >= 1.0).all()


def test_fusion_cloud_odometry_and_path(run):
    rec, cams = run["rec"], run["cams"]
    clouds = rec["/fusion_node/cloud"]
    assert len(clouds) == 4
    for cl in clouds:
        assert [f.name for f in cl.fields] == ["x", "y", "z", "rgb"] and cl.header.frame_id == "odom"
        pts, cols = cv.points_from_pointcloud2(cl)
        assert 0 < len(pts) <= 300 and np.isfinite(pts).all() and cols.shape == pts.shape
        keys = np.floor(pts / 0.01).astype(np.int64)  # one point per voxel
        assert len(np.unique(keys, axis=0)) == len(pts)
    odo = rec["/fusion_node/odometry"]
    assert [cv.ns_from_stamp(o.header.stamp) for o in odo] == [_set_stamp(cams, k) for k in PUBLISHED]
    assert {(o.header.frame_id, o.child_frame_id) for o in odo} == {("odom", "base_link")}
    np.testing.assert_allclose(cv.pose_from_odometry(odo[0]), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(np.diag(np.asarray(odo[0].pose.covariance).reshape(6, 6)),
                               [0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    tfs = [t for m in rec["/tf"] for t in m.transforms]
    for o, t in zip(odo, tfs):
        assert o.pose.pose.position.x == pytest.approx(t.transform.translation.x)
    path = rec["/fusion_node/path"][-1]
    assert path.header.frame_id == "odom" and len(path.poses) == len(PUBLISHED)


def test_fusion_status_reports_frames_pool_scale_and_state(run):
    v = run["fusion"]
    assert (v["frames_in"], v["frames_out"], v["windows"], v["resets"]) == (30, 24, 4, 0)
    assert all(n == 0 for n in v["drops"].values())
    msgs = run["rec"]["/fusion_node/status"]
    last = msgs[-1]
    assert last.window_index == 3 and last.frames_out == 24 and last.pool_size > 0
    assert last.scale_is_metric and last.scale > 0
    assert last.state == "ok"
    assert last.latency_sec > 0 and last.model_sec > 0
    assert set(last.drop_reasons) >= {"queue_full", "latency_budget", "stream_reset"}
    diag = [s for a in run["rec"]["/diagnostics"] for s in a.status if "reconstruction" in s.name]
    assert diag and {kv.key: kv.value for kv in diag[-1].values}["frames_out"] == "24"
