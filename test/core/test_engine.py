"""StreamingReconstructor: per-frame outputs with the real tiny model on a synthetic 3-camera
stream, the merge rule, latency-budget drops, the pool bound, and the metric scale (exactly, with
a stub model of known geometry, and the scale fit itself with noise)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fixtures.models import CountingPoolState

from wint3r_ros.core import geometry as g
from wint3r_ros.core.engine import EngineConfig, ScaleSmoother, StreamingReconstructor, fit_rig_scale
from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.core.sync import ApproximateTimePolicy
from wint3r_ros.core.window import WindowBuilder, WindowConfig
from wint3r_ros.errors import ConfigError, InputError

torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared 2-core machine

NAMES = ["front", "left", "rear"]
SIZES = [(80, 60), (80, 60), (160, 120)]  # (W, H): the rear camera has twice the resolution
# camera optical frames in the base frame: front at the origin, left 0.3 m to the side,
# rear turned 180 degrees about the vertical (optical y) axis and 0.2 m back
MOUNTS = [g.se3(),
          g.se3(t=[-0.3, 0.0, 0.0]),
          g.se3(g.matrix_from_quat_xyzw([0, 1, 0, 0]), [0.0, 0.0, -0.2])]


def make_rig(sizes=SIZES) -> Rig:
    cams = []
    for name, (w, h), T in zip(NAMES, sizes, MOUNTS):
        K = np.array([[0.8 * w, 0, w / 2 - 0.5], [0, 0.8 * w, h / 2 - 0.5], [0, 0, 1]])
        cams.append(Camera(name, f"/{name}/image", f"{name}_optical", w, h, K, T_base_camera=T))
    return Rig("test_rig", "base_link", cams)


def image(cam: int, k: int, size) -> np.ndarray:
    w, h = size
    y, x = np.mgrid[0:h, 0:w] * (80.0 / w)
    r = np.sin(0.21 * x + 0.5 * k + cam) * 0.5 + 0.5
    gch = np.cos(0.17 * y - 0.3 * k + 2 * cam) * 0.5 + 0.5
    b = ((x // 8 + y // 8 + k) % 2) * 0.8
    return (np.stack((r, gch, b), -1) * 255).astype(np.uint8)


def synced_windows(n_sets: int, config: WindowConfig, seed: int = 0, jitter: float = 0.003):
    """The whole front end: sync policy over 3 jittered streams, then the window builder."""
    rng = np.random.default_rng(seed)
    policy = ApproximateTimePolicy(3, slop=0.01, stream_names=NAMES)
    builder = WindowBuilder(NAMES, config)
    windows, stamps = [], {}
    for k in range(n_sets):
        for c in rng.permutation(3):
            t = int(round((10.0 + 0.1 * k + rng.uniform(-jitter, jitter)) * 1e9))
            stamps[(int(c), k)] = t / 1e9
            for s in policy.add(int(c), t, image(int(c), k, SIZES[c])):
                w = builder.push(s, [x / 1e9 for x in s.stamps])
                if w is not None:
                    windows.append(w)
    for s in policy.flush():
        w = builder.push(s, [x / 1e9 for x in s.stamps])
        if w is not None:
            windows.append(w)
    tail = builder.flush()
    if tail is not None:
        windows.append(tail)
    return windows, stamps


@pytest.fixture(scope="module")
def tiny_model():
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    torch.manual_seed(0)
    return WinT3R(WinT3RConfig.tiny()).init_weights(seed=0).eval()


def tiny_engine(model, **kw) -> StreamingReconstructor:
    cfg = EngineConfig(window=WindowConfig(4, 2), target_long_side=64, conf_threshold=1.0, **kw)
    return StreamingReconstructor(model, make_rig(), cfg)


# ------------------------------------------------------------------------ tiny model, e2e


def test_engine_publishes_every_frame_once_with_stamps_shapes_and_frames(tiny_model):
    windows, stamps = synced_windows(10, WindowConfig(4, 2))
    assert [w.set_indices for w in windows] == [(0, 1, 2, 3), (2, 3, 4, 5), (4, 5, 6, 7), (6, 7, 8, 9)]
    eng = tiny_engine(tiny_model, points=True, points_stride=8)
    results = []
    for w in windows:
        results.extend(eng.process(w))
    assert all(r.set_index <= 7 for r in results)       # sets 8, 9 wait for a window that
    results.extend(eng.flush())                         # never comes: flush releases them
    assert len(results) == 30
    got = {(r.camera_index, r.set_index): r for r in results}
    assert len(got) == 30                                # every frame exactly once
    for (c, k), r in got.items():
        assert r.camera == NAMES[c]
        assert r.stamp == stamps[(c, k)]                 # the source stamp, untouched
        w, h = SIZES[c]
        assert r.depth.shape == (h, w) and r.depth.dtype == np.float32
        assert r.confidence.shape == (h, w)
        # held at the model's crop size; made at the camera's size on each access
        assert r.depth_map.crop.shape == r.confidence_map.crop.shape == (48, 64)
        assert r.depth is not r.depth and r.depth_map.shape == (h, w)
        assert np.isfinite(r.confidence).all()           # 4:3 images: the crop covers them
        assert r.world_from_cam.shape == (4, 4) and r.world_from_cam.dtype == np.float64
        R = r.world_from_cam[:3, :3]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
        assert r.intrinsics.shape == (3, 3) and r.intrinsics[0, 0] == pytest.approx(0.8 * w)
        # random weights do not separate the cameras like the rig: every step's fit is refused
        # (counted) and nothing claims metres; the metric path is tested with an oracle model
        assert not r.metric and r.metres_per_unit is None
        assert r.world_from_base.shape == (4, 4)
        assert r.points.dtype == np.float32 and r.points.shape[1] == 3
        assert r.colors.dtype == np.uint8 and len(r.colors) == len(r.points)
        valid = np.isfinite(r.depth)
        assert (r.depth[valid] > 0).all()
    assert eng.counters["scale_fits_rejected"] > 0 and eng.counters["scale_estimates"] == 0
    # world frame: the first frame of the stream (front camera, first set)
    np.testing.assert_allclose(got[(0, 0)].world_from_cam, np.eye(4), atol=1e-4)
    # merged frames: those in two windows (sets 2..7); the others come from one window
    assert sorted(k for (c, k), r in got.items() if r.merged and c == 0) == [2, 3, 4, 5, 6, 7]
    assert got[(1, 3)].window_index == 1                 # pose from the later window
    st = eng.status(with_tokens=True)
    assert st["frames_published"] == 30 and st["frames_merged"] == 18
    assert st["windows_processed"] == 4
    assert st["pool"]["size"] == 4 * 12 and st["pool_cameras"]["rear"]["size"] == 16
    assert st["pool_cameras"]["front"]["token_norm_mean"] > 0


def test_engine_first_policy_publishes_without_holding(tiny_model):
    windows, _ = synced_windows(6, WindowConfig(4, 2))
    eng = tiny_engine(tiny_model, merge="first")
    first = eng.process(windows[0])
    assert len(first) == 12 and not any(r.merged for r in first)
    assert eng.process(windows[1]) and eng.flush() == []
    assert eng.status()["frames_published"] == 18


def test_engine_confidence_threshold_masks_depth_with_nan(tiny_model):
    windows, _ = synced_windows(4, WindowConfig(4, 2))
    eng = tiny_engine(tiny_model)
    eng2 = StreamingReconstructor(tiny_model, make_rig(), EngineConfig(
        window=WindowConfig(4, 2), target_long_side=64, conf_threshold=1e9))
    a = eng.process(windows[0]) + eng.flush()
    b = eng2.process(windows[0]) + eng2.flush()
    assert any(np.isfinite(r.depth).any() for r in a)
    assert all(np.isnan(r.depth).all() for r in b)              # everything under threshold
    np.testing.assert_allclose(a[0].confidence, b[0].confidence)  # confidence itself is kept


def test_engine_confidence_threshold_changes_for_the_next_frames(tiny_model):
    windows, _ = synced_windows(6, WindowConfig(4, 2))
    eng = tiny_engine(tiny_model)
    kept = eng.process(windows[0])
    assert kept and all(np.isfinite(r.depth).any() for r in kept)
    eng.set_confidence_threshold(1e9)                  # e.g. `ros2 param set`: no pixel passes
    later = eng.process(windows[1]) + eng.flush()
    assert later and all(np.isnan(r.depth).all() for r in later)
    assert eng.config.conf_threshold == 1e9 and eng.status()["windows_processed"] == 2


def test_engine_pool_stays_bounded_on_a_long_stream(tiny_model):
    windows, _ = synced_windows(14, WindowConfig(4, 2))
    eng = tiny_engine(tiny_model, max_pool_entries=36, keyframe_every=2)
    for w in windows:
        eng.process(w)
    st = eng.status()
    assert st["pool"]["size"] == 36 and eng._state.pool_size() == 36
    assert st["pool"]["evicted"] == len(windows) * 12 - 36
    assert st["pool"]["anchor_window"] == 0


def test_engine_without_rig_reports_relative_scale(tiny_model):
    windows, _ = synced_windows(4, WindowConfig(4, 2))
    cfg = EngineConfig(window=WindowConfig(4, 2), target_long_side=64, conf_threshold=1.0)
    eng = StreamingReconstructor(tiny_model, None, cfg, camera_names=NAMES)
    res = eng.process(windows[0]) + eng.flush()
    assert len(res) == 12
    assert not any(r.metric for r in res) and all(r.metres_per_unit is None for r in res)
    assert all(r.intrinsics is None and r.world_from_base is None for r in res)
    assert eng.status()["metric_capable"] is False


def test_engine_rejects_mismatched_windows_and_configs(tiny_model):
    with pytest.raises(ConfigError, match="merge='best'"):
        EngineConfig(merge="best")
    with pytest.raises(ConfigError, match="scale_smoothing=1.0"):
        EngineConfig(scale_smoothing=1.0)
    with pytest.raises(ConfigError, match="rig or camera_names"):
        StreamingReconstructor(tiny_model, None)
    with pytest.raises(ConfigError, match="differ from the rig"):
        StreamingReconstructor(tiny_model, make_rig(), camera_names=["a", "b", "c"])
    windows, _ = synced_windows(4, WindowConfig(4, 2))
    eng = StreamingReconstructor(tiny_model, None, camera_names=["x", "y", "z"])
    with pytest.raises(InputError, match="window cameras"):
        eng.process(windows[0])
    eng = tiny_engine(tiny_model, max_pool_entries=12)
    with pytest.raises(ConfigError, match="max_pool_entries=12"):
        eng.process(windows[0])


def test_engine_handles_degraded_sets_with_a_missing_camera(tiny_model):
    b = WindowBuilder(NAMES, WindowConfig(2, 1))
    windows = []
    for k in range(4):
        rear = None if k in (1, 2) else image(2, k, SIZES[2])
        w = b.push([image(0, k, SIZES[0]), image(1, k, SIZES[1]), rear],
                   [0.1 * k, 0.1 * k, None if rear is None else 0.1 * k])
        if w is not None:
            windows.append(w)
    eng = tiny_engine(tiny_model)
    results = [r for w in windows for r in eng.process(w)] + eng.flush()
    assert sorted((r.set_index, r.camera) for r in results) == sorted(
        (k, c) for k in range(4) for c in NAMES if not (c == "rear" and k in (1, 2)))
    assert eng.status()["pool"]["per_camera"] == {"front": 6, "left": 6, "rear": 2}


def test_engine_rejects_cameras_of_different_aspect(tiny_model):
    b = WindowBuilder(NAMES, WindowConfig(1, 0))
    w = b.push([image(0, 0, (80, 60)), image(1, 0, (80, 60)), image(2, 0, (96, 48))], [0.0, 0.0, 0.0])
    with pytest.raises(InputError, match="different model input sizes"):
        tiny_engine(tiny_model).process(w)


# --------------------------------------------------------------- metric scale, known geometry


MODEL_UNITS_PER_METRE = 0.5
DEPTH_M = 2.0


def true_world_from_base(k: int) -> np.ndarray:
    """World = front camera's optical frame at set 0; the base drives forward and turns."""
    yaw = 0.05 * k
    motion = g.se3(g.matrix_from_quat_xyzw([0, math.sin(yaw / 2), 0, math.cos(yaw / 2)]),
                   [0.0, 0.0, 0.2 * k])
    return g.se3_inverse(MOUNTS[0]) @ motion


class KnownGeometryModel:
    """A stand-in with the model's streaming interface that outputs the true geometry scaled
    by MODEL_UNITS_PER_METRE: a fronto-parallel plane at DEPTH_M, confidence 5 except 1 in the
    first pixel column, poses from true_world_from_base and MOUNTS."""

    def new_stream(self):
        return CountingPoolState()

    def step(self, state, images, keys=None):
        from types import SimpleNamespace

        s, _, h, w = images.shape
        state.n += s
        poses = []
        for cam, k in keys:
            T = true_world_from_base(k) @ MOUNTS[cam]
            T[:3, 3] *= MODEL_UNITS_PER_METRE
            poses.append(torch.from_numpy(T).float())
        pts = torch.zeros(s, h, w, 3)
        pts[..., 2] = DEPTH_M * MODEL_UNITS_PER_METRE
        conf = torch.full((s, h, w), 5.0)
        conf[..., 0] = 1.0
        return SimpleNamespace(pts_local=pts, conf=conf, cam_to_world=torch.stack(poses))


def test_engine_recovers_metric_scale_poses_and_depth_from_the_rig():
    windows, _ = synced_windows(8, WindowConfig(4, 2))
    cfg = EngineConfig(window=WindowConfig(4, 2), target_long_side=64, scale_smoothing=0.5)
    eng = StreamingReconstructor(KnownGeometryModel(), make_rig(), cfg)
    results = []
    for w in windows:
        results.extend(eng.process(w))
    results.extend(eng.flush())
    assert len(results) == 24
    assert eng.metres_per_unit == pytest.approx(1 / MODEL_UNITS_PER_METRE, rel=1e-6)
    for r in results:
        assert r.metric
        truth = true_world_from_base(r.set_index) @ MOUNTS[r.camera_index]
        np.testing.assert_allclose(r.world_from_cam, truth, atol=1e-5)
        np.testing.assert_allclose(r.world_from_base, true_world_from_base(r.set_index), atol=1e-5)
        # confidence 1 < threshold 3 in model column 0: NaN on the source columns mapping there
        w = SIZES[r.camera_index][0]
        to_col0 = np.rint((np.arange(w) + 0.5) * 64 / w - 0.5) == 0
        assert to_col0[0] and not to_col0[w // 2]
        np.testing.assert_array_equal(np.isnan(r.depth).all(axis=0), to_col0)
        np.testing.assert_allclose(r.depth[:, ~to_col0], DEPTH_M, rtol=1e-6)
        assert r.confidence[0, 0] == 1.0 and r.confidence[0, 5] == 5.0


def _rig_poses(centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    T = np.tile(np.eye(4), (len(centres), 1, 1))
    T[:, :3, :3] = g.matrix_from_quat_xyzw(rng.normal(size=(len(centres), 4)))
    T[:, :3, 3] = centres
    return T


def _small_rotation(rng: np.random.Generator, degrees: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis *= math.radians(degrees) / np.linalg.norm(axis)
    theta = float(np.linalg.norm(axis))
    k = axis / theta
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * K + (1 - math.cos(theta)) * K @ K


def test_fit_rig_scale_recovers_a_known_scale_and_rotation_under_noise():
    rng = np.random.default_rng(0)
    rig = _rig_poses(np.array([[0, 0, 0], [0.3, 0, 0], [0, -0.1, -0.2], [0.25, 0.05, -0.15]]), rng)
    errors = []
    for _trial in range(20):
        truth = g.Similarity(0.37, g.matrix_from_quat_xyzw(rng.normal(size=4)), rng.normal(size=3))
        pred = truth.apply_pose(rig)
        pred[:, :3, 3] += rng.normal(scale=0.003 * 0.37, size=(4, 3))  # 3 mm of centre noise
        for T in pred:  # and 1 degree of orientation noise per camera
            T[:3, :3] = _small_rotation(rng, 1.0) @ T[:3, :3]
        fit = fit_rig_scale(pred, rig)
        errors.append(abs(fit.scale / 0.37 - 1))
        assert fit.n == 4 and fit.rms < 0.02 * 0.37
        assert float(g.rotation_angle(fit.similarity.rotation.T @ truth.rotation)) < math.radians(1.0)
    # relative scale error with 3 mm of centre noise on a 0.3 m rig: well under 2 %
    assert float(np.mean(errors)) < 0.01 and max(errors) < 0.02
    # two cameras give the scale from their one baseline, exactly without noise
    two = truth.apply_pose(rig[:2])
    two[:, :3, 3] = (two[:, :3, 3] - truth.translation) / 0.37 * 0.5 + truth.translation
    fit = fit_rig_scale(two, rig[:2])
    assert fit.scale == pytest.approx(0.5)


def test_fit_rig_scale_refuses_rigs_the_model_does_not_resolve():
    rng = np.random.default_rng(1)
    rig = _rig_poses(np.array([[0, 0, 0], [0.3, 0, 0], [0, -0.1, -0.2]]), rng)
    # the model put all three centres within noise of one point: no scale, not a tiny one
    pred = rig.copy()
    pred[:, :3, 3] = 1.0 + rng.normal(scale=0.01, size=(3, 3))
    assert fit_rig_scale(pred, rig) is None
    # centres in the mirror order of the rig: the scale would be negative
    flipped = rig.copy()
    flipped[:, :3, 3] = -rig[:, :3, 3]
    assert fit_rig_scale(flipped, rig) is None
    # too short a baseline, one camera, or NaN poses give no fit
    short = rig[:2].copy()
    short[1, :3, 3] = [0.01, 0, 0]
    assert fit_rig_scale(rig[:2], short) is None
    assert fit_rig_scale(rig[:1], rig[:1]) is None
    nan = rig.copy()
    nan[1:, 0, 0] = np.nan
    assert fit_rig_scale(nan, rig) is None


def test_scale_smoother_averages_rejects_outliers_and_follows_real_changes():
    s = ScaleSmoother(smoothing=0.5, outlier_ratio=1.5, max_rejections=3)
    assert s.value is None
    s.update(2.0)
    s.update(8.0)                       # 4x off: rejected
    assert s.value == pytest.approx(2.0) and s.rejected == 1
    s.update(2.0 * math.e ** 0.2)       # accepted: log average moves half way
    assert s.value == pytest.approx(2.0 * math.e ** 0.1)
    for _ in range(3):                  # the scale really changed: re-seeded on the third
        s.update(10.0)
    assert s.value == pytest.approx(10.0)
    assert not s.update(float("nan")) and not s.update(-1.0)


class OracleModel(KnownGeometryModel):
    """Returns the synthetic renderer's exact depth and poses (relative to the stream's first
    frame), in model units of MODEL_UNITS_PER_METRE per metre."""

    def __init__(self, frames: dict):
        self.frames = frames
        self.world_from_first = g.se3_inverse(frames[(0, 0)].T_world_cam)

    def step(self, state, images, keys=None):
        from types import SimpleNamespace

        state.n += images.shape[0]
        gt = [self.frames[k] for k in keys]
        poses = np.stack([self.world_from_first @ f.T_world_cam for f in gt])
        poses[:, :3, 3] *= MODEL_UNITS_PER_METRE
        pts = torch.zeros(len(gt), *images.shape[-2:], 3)
        pts[..., 2] = torch.from_numpy(np.stack([f.depth for f in gt])) * MODEL_UNITS_PER_METRE
        return SimpleNamespace(pts_local=pts, conf=torch.full(pts.shape[:-1], 10.0),
                               cam_to_world=torch.from_numpy(poses).float())


def test_engine_on_the_synthetic_rig_returns_metric_ground_truth_with_an_oracle_model():
    from wint3r_ros.core.metrics import ate, depth_metrics
    from wint3r_ros.data.synthetic import RigConfig, SyntheticRig

    synth = SyntheticRig(rig=RigConfig(width=64, height=48))
    frames = {(f.camera_index, f.frame_index): f for views in synth.frames(7) for f in views}
    names = synth.rig.camera_names
    policy = ApproximateTimePolicy(3, slop=0.005, stream_names=names)
    builder = WindowBuilder(names, WindowConfig(4, 2))
    eng = StreamingReconstructor(OracleModel(frames), synth.rig, EngineConfig(
        window=WindowConfig(4, 2), target_long_side=64, scale_smoothing=0.9))
    results = []
    for k in range(7):
        for f in reversed([frames[(c, k)] for c in range(3)]):   # items are CameraFrames
            for s in policy.add(f.camera_index, f.stamp_ns, f):
                if (w := builder.push(s, [x * 1e-9 for x in s.stamps])) is not None:
                    results.extend(eng.process(w))
    if (w := builder.flush()) is not None:
        results.extend(eng.process(w))
    results.extend(eng.flush())
    assert len(results) == 21 and all(r.metric for r in results)
    assert eng.metres_per_unit == pytest.approx(1 / MODEL_UNITS_PER_METRE, rel=1e-5)
    results.sort(key=lambda r: (r.set_index, r.camera_index))
    gt = [frames[(r.camera_index, r.set_index)] for r in results]
    first = g.se3_inverse(frames[(0, 0)].T_world_cam)
    est_poses = np.stack([r.world_from_cam for r in results])
    gt_poses = np.stack([first @ f.T_world_cam for f in gt])
    assert ate(est_poses, gt_poses, "none").rmse < 1e-5               # metres, no alignment
    depth = depth_metrics(np.stack([r.depth for r in results]), np.stack([f.depth for f in gt]))
    assert depth.n == 21 * 64 * 48 and depth.abs_rel < 1e-6 and depth.delta1 == 1.0
    for r, f in zip(results, gt):
        assert r.stamp == f.stamp and r.camera == f.camera_name
        base = first @ f.T_world_base
        np.testing.assert_allclose(r.world_from_base, base, atol=1e-5)
