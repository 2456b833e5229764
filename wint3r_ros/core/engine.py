"""`StreamingReconstructor`: windows in, per-frame poses and depth out (metric with a rig).

The engine feeds each `Window` (see window.py) to the model through a narrow interface
(`model.new_stream()`, `model.step(state, images, keys)`, `state.pool_size()`,
`state.pool_tokens()`, `state.keep_pool(indices)`), keeps the camera token pool bounded with
`TokenPool`, and turns the model's outputs into one `FrameResult` per frame:
- world_from_cam: camera-to-world 4x4 float64. The world frame is the optical frame of the
  stream's first frame (camera `camera_names[0]` at the first set in time-major order; the first
  frame of window 0 in general), as WinT3R defines it.
- depth [H, W] float32 at the camera's own image size (the preprocessing crop and resize undone,
  nearest neighbour), NaN outside the crop, where invalid, and where confidence is below
  `conf_threshold`; confidence [H, W] likewise (NaN outside the crop only).
- metric scale: with a calibrated rig of >= 2 cameras whose largest baseline is at least
  `min_baseline_m`, each window's camera centres are fitted, per time step, to the rig's
  calibrated centres with a similarity (Umeyama); the median of the steps' scales updates a
  smoothed scale (log-space exponential average with outlier rejection), and poses, depth and
  points are reported in metres (`metric=True`). Otherwise everything is in the model's
  relative units and says so (`metric=False`, `metres_per_unit=None`). `world_from_base` is the
  rig's base pose at the frame's step (from the same fit; without one, from the camera and its
  calibrated mounting; in relative units only the mounting's rotation is applied, the base
  origin is then the camera centre).

Merge rule for overlapping windows ("overlap", the default): a frame in the last O steps of a
window will be seen again by the next window, so it is held back; when the next window has been
processed it is published with the pose from the later window (more pool context, the authors'
"last" choice) and depth and confidence from whichever window has the higher mean confidence
(the authors' per-frame choice). A held frame whose next window never comes (dropped, or the end)
is published alone then, so no frame waits more than one window. "first" publishes every frame
from the first window that sees it (lowest latency, no merging).

The engine runs one window at a time, in the caller's thread (`process`); it keeps no queue:
fusion_node bounds its own queue of windows (and drops stale ones), process-bag feeds windows as
it reads them. Not thread-safe: one caller at a time (fusion_node's worker thread).
"""
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

from wint3r_ros.core.geometry import Similarity, se3_inverse
from wint3r_ros.core.pipeline.records import SourceMap
from wint3r_ros.core.scale import ScaleFit, ScaleSmoother, fit_rig_scale
from wint3r_ros.core.token_pool import TokenPool
from wint3r_ros.core.window import Frame, Window, WindowConfig
from wint3r_ros.errors import ConfigError, InputError
from wint3r_ros.model.loader import DEFAULT_CONFIDENCE_THRESHOLD
from wint3r_ros.model.preprocess import CropMapping, preprocess

__all__ = ["EngineConfig", "FrameResult", "ScaleFit", "ScaleSmoother", "StreamingReconstructor",
           "fit_rig_scale", "MERGE_POLICIES"]

MERGE_POLICIES = ("overlap", "first")


class StreamStateLike(Protocol):
    """What the engine needs of the model's per-stream state."""

    def pool_size(self) -> int: ...
    def pool_tokens(self) -> torch.Tensor: ...
    def keep_pool(self, indices: Sequence[int]) -> None: ...


class ModelLike(Protocol):
    """What the engine needs of the model: see wint3r_ros.model.stream for the contract."""

    def new_stream(self) -> StreamStateLike: ...
    def step(self, state: Any, images: torch.Tensor, keys: list | None = None) -> Any: ...


@dataclass(frozen=True)
class EngineConfig:
    """window: the WindowConfig the windows were built with (its overlap drives the merge);
    target_long_side: model input long side (512 published, smaller for the tiny model);
    conf_threshold: depth below this model confidence (>= 1) is NaN; merge: "overlap" or
    "first"; max_pool_entries / keyframe_every: token pool bound and keyframe spacing (None:
    unbounded); scale_smoothing: weight of the old scale in the
    log-space average (0: no smoothing); scale_outlier_ratio: estimates off the smoothed scale by
    more than this factor are rejected (3 in a row re-seed it); min_baseline_m: shortest
    baseline that makes a rig metric; max_scale_fit_residual: a time step's rig fit whose residual
    exceeds this share of the fitted rig's spread gives no scale (the model did not separate the
    cameras); points / points_stride: colored world points from every
    stride-th model pixel."""

    window: WindowConfig = field(default_factory=WindowConfig)
    target_long_side: int = 512
    conf_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    merge: str = "overlap"
    max_pool_entries: int | None = 256
    keyframe_every: int = 4
    scale_smoothing: float = 0.9
    scale_outlier_ratio: float = 1.5
    min_baseline_m: float = 0.02
    max_scale_fit_residual: float = 0.25
    points: bool = False
    points_stride: int = 4

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"EngineConfig: {name}={getattr(self, name)!r} {rule}")

        need(isinstance(self.window, WindowConfig), "window", "must be a WindowConfig")
        need(self.target_long_side >= 16 and self.target_long_side % 16 == 0, "target_long_side",
             "must be a positive multiple of 16")
        need(math.isfinite(self.conf_threshold), "conf_threshold", "must be finite")
        need(self.merge in MERGE_POLICIES, "merge", f"must be one of {MERGE_POLICIES}")
        need(0.0 <= self.scale_smoothing < 1.0, "scale_smoothing", "must lie in [0, 1)")
        need(self.scale_outlier_ratio > 1.0, "scale_outlier_ratio", "must be > 1")
        need(self.min_baseline_m > 0, "min_baseline_m", "must be > 0 metres")
        need(self.max_scale_fit_residual > 0, "max_scale_fit_residual", "must be > 0")
        need(self.points_stride >= 1, "points_stride", "must be >= 1")
        need(self.keyframe_every >= 1, "keyframe_every", "must be >= 1")


@dataclass
class FrameResult:
    """One published frame (see the module docstring for frames and units).

    world_from_cam [4, 4] float64; depth_map, confidence_map: `SourceMap`s at the model's crop
    size, `depth` and `confidence` the [H, W] float32 arrays at the source image size they make
    (a new array on each access: at 8000x6000 a window's maps at full size were GBs);
    intrinsics [3, 3] for that size (from the rig; None without one); metric / metres_per_unit:
    whether, and by what factor, model units were turned into metres; merged: the frame's two
    window predictions were merged; window_index: the window its pose came from;
    world_from_base [4, 4] or None; points [M, 3] float32 in the world frame and colors [M, 3]
    uint8 when EngineConfig.points is on.
    """

    stamp: float
    camera: str
    camera_index: int
    set_index: int
    window_index: int
    world_from_cam: np.ndarray
    depth_map: SourceMap
    confidence_map: SourceMap
    intrinsics: np.ndarray | None
    metric: bool
    metres_per_unit: float | None
    merged: bool
    world_from_base: np.ndarray | None = None
    points: np.ndarray | None = None
    colors: np.ndarray | None = None

    @property
    def depth(self) -> np.ndarray:
        return self.depth_map.full()

    @property
    def confidence(self) -> np.ndarray:
        return self.confidence_map.full()


# --------------------------------------------------------------------------------------------
# The engine


@dataclass
class _Prediction:
    """One window's prediction of one frame, in model units at the model's resolution."""

    frame: Frame
    window_index: int
    world_from_cam: np.ndarray      # [4, 4] float64
    pts_local: np.ndarray           # [Hc, Wc, 3] float32
    conf: np.ndarray                # [Hc, Wc] float32
    mapping: CropMapping
    rig_pose: Similarity | None     # base (metres) -> world (model units) at the frame's step

    @property
    def conf_mean(self) -> float:
        return float(np.mean(self.conf))


def _default_image_of(item: Any) -> Any:
    if isinstance(item, (np.ndarray, torch.Tensor)):
        return item
    image = getattr(item, "image", None)
    if image is None:
        raise InputError(f"engine: cannot get an image from a window item of type "
                         f"{type(item).__name__}; pass image_of= to StreamingReconstructor")
    return image


class StreamingReconstructor:
    """Windows in, `FrameResult`s out (see the module docstring).

    model: the network (WinT3R or anything with its streaming interface); rig: a calibrated
    `Rig` (camera order = stream order) or None; camera_names: needed without a rig;
    image_of: item -> RGB image [H, W, 3] uint8 (default: the item itself, or its `.image`).
    """

    def __init__(self, model: ModelLike, rig: Any = None, config: EngineConfig | None = None, *,
                 camera_names: Sequence[str] | None = None,
                 image_of: Callable[[Any], Any] | None = None) -> None:
        self.config = config or EngineConfig()
        if rig is not None:
            names = list(rig.camera_names)
            if camera_names is not None and list(camera_names) != names:
                raise ConfigError(f"StreamingReconstructor: camera_names {list(camera_names)} "
                                  f"differ from the rig's cameras {names}")
        elif camera_names is not None:
            names = list(camera_names)
        else:
            raise ConfigError("StreamingReconstructor: give a rig or camera_names")
        self.model = model
        self.rig = rig
        self.camera_names = names
        self.image_of = image_of or _default_image_of
        self._rig_poses = (np.stack([cam.T_base_camera for cam in rig.cameras])
                           if rig is not None else None)
        baselines = list(rig.baselines().values()) if rig is not None else []
        self.metric_capable = bool(baselines) and max(baselines) >= self.config.min_baseline_m
        params = list(model.parameters()) if hasattr(model, "parameters") else []
        self._device = params[0].device if params else torch.device("cpu")
        self._scale = ScaleSmoother(self.config.scale_smoothing, self.config.scale_outlier_ratio)
        self._newest_stamp: float | None = None
        self.counters = {"windows_processed": 0, "frames_published": 0, "frames_merged": 0,
                         "scale_estimates": 0, "scale_fits_rejected": 0, "resets": 0}
        self.last_window_seconds: float | None = None
        self._new_stream()

    # ------------------------------------------------------------------------- lifecycle
    def _new_stream(self) -> None:
        self._state = self.model.new_stream()
        if hasattr(self._state, "max_pool_tokens"):
            self._state.max_pool_tokens = None  # the engine's TokenPool does the eviction
        self._pool = TokenPool(self.camera_names, self.config.max_pool_entries,
                               self.config.keyframe_every)
        self._held: dict[tuple[int, int], _Prediction] = {}
        self._published: deque[set] = deque(maxlen=3)
        self._prep_cache: dict[tuple[int, int], torch.Tensor] = {}
        self._mappings: dict[str, CropMapping] = {}
        self._intrinsics: dict[tuple[str, int, int], np.ndarray] = {}

    def reset(self) -> list[FrameResult]:
        """Start a new stream (after a time jump): publish what is held, forget the rest."""
        out = self.flush()
        self._new_stream()
        self._scale.reset()
        self._newest_stamp = None
        self.counters["resets"] += 1
        return out

    def set_confidence_threshold(self, threshold: float) -> None:
        """Change the confidence threshold for the frames published from now on."""
        if threshold != self.config.conf_threshold:
            self.config = replace(self.config, conf_threshold=float(threshold))

    def process(self, window: Window) -> list[FrameResult]:
        """Run the model on one window; return the frames it lets us publish, oldest first."""
        if tuple(window.camera_names) != tuple(self.camera_names):
            raise InputError(f"engine: window cameras {list(window.camera_names)} differ from "
                             f"the engine's {self.camera_names}")
        if not window.frames:
            return []
        t0 = time.perf_counter()
        self._newest_stamp = window.stamp
        images = self._prepare(window)
        out = self.model.step(self._state, images, keys=window.keys)
        self._track_pool(window)
        preds = self._predictions(window, out)
        results = self._release(window, preds)
        self.counters["windows_processed"] += 1
        self.last_window_seconds = time.perf_counter() - t0
        return results

    def flush(self) -> list[FrameResult]:
        """Publish every held frame (end of stream)."""
        out: list[FrameResult] = []
        held = sorted(self._held.values(), key=lambda p: (p.frame.set_index, p.frame.camera_index))
        self._held.clear()
        out.extend(self._publish(p, merged=False) for p in held)
        if held:  # if the stream goes on after all, the next window must not publish them again
            self._published.append({p.frame.key for p in held})
        return out

    @property
    def held_frames(self) -> int:
        """Frames waiting for the next window (the merge rule); `flush` publishes them."""
        return len(self._held)

    # --------------------------------------------------------------------------- inference
    def _prepare(self, window: Window) -> torch.Tensor:
        """[S, 3, Hc, Wc] model input in window order; each frame preprocessed once."""
        cache: dict[tuple[int, int], torch.Tensor] = {}
        by_camera: dict[str, list[Frame]] = {}
        for f in window.frames:
            if f.key in self._prep_cache:
                cache[f.key] = self._prep_cache[f.key]
            else:
                by_camera.setdefault(f.camera, []).append(f)
        for cam, frames in by_camera.items():
            try:
                imgs = [self.image_of(f.item) for f in frames]
                x, mapping = preprocess(imgs, self.config.target_long_side, device=self._device)
            except InputError as err:
                raise InputError(f"camera '{cam}': {err}") from err
            self._mappings[cam] = mapping
            for f, t in zip(frames, x):
                cache[f.key] = t
        sizes = {c: m.output_size for c, m in self._mappings.items()
                 if c in {f.camera for f in window.frames}}
        if len(set(sizes.values())) > 1:
            raise InputError("engine: cameras give different model input sizes "
                             f"{ {c: f'{w}x{h}' for c, (w, h) in sizes.items()} }; the model needs one "
                             "size per window: use cameras of one aspect ratio")
        self._prep_cache = cache
        return torch.stack([cache[f.key] for f in window.frames])

    def _track_pool(self, window: Window) -> None:
        pool = self._pool
        pool.add_window(window.index, [(f.camera, f.stamp) for f in window.frames])
        if pool.max_entries is not None and pool.max_entries < 2 * len(window.frames):
            raise ConfigError(f"EngineConfig: max_pool_entries={pool.max_entries} cannot hold the "
                              f"anchor window and a new one ({len(window.frames)} frames each)")
        pool.check_size(self._state.pool_size())
        keep = pool.plan_eviction()
        if keep is not None:
            self._state.keep_pool(keep)
            pool.keep(keep)

    def _predictions(self, window: Window, out: Any) -> list[_Prediction]:
        c2w = out.cam_to_world.detach().to("cpu", torch.float64).numpy()
        pts = out.pts_local.detach().to("cpu", torch.float32).numpy()
        conf = out.conf.detach().to("cpu", torch.float32).numpy()
        rig_poses: dict[int, Similarity] = {}
        if self.metric_capable:
            estimates = []
            for step in range(window.num_steps):
                rows = [i for i, f in enumerate(window.frames) if f.step == step]
                cams = [window.frames[i].camera_index for i in rows]
                fit = fit_rig_scale(c2w[rows], self._rig_poses[cams],  # type: ignore[index]
                                    self.config.min_baseline_m, self.config.max_scale_fit_residual)
                if fit is None:
                    self.counters["scale_fits_rejected"] += len(rows) > 1
                else:
                    estimates.append(fit.scale)
                    rig_poses[step] = fit.similarity
            if estimates:
                self.counters["scale_estimates"] += 1
                self._scale.update(float(np.median(estimates)))
        return [_Prediction(f, window.index, c2w[i], pts[i], conf[i], self._mappings[f.camera],
                            rig_poses.get(f.step)) for i, f in enumerate(window.frames)]

    def _release(self, window: Window, preds: list[_Prediction]) -> list[FrameResult]:
        """Apply the merge rule: publish, merge or hold each prediction."""
        out: list[FrameResult] = []
        keys = {p.frame.key for p in preds}
        for key in sorted(k for k in self._held if k not in keys):  # their next window is gone
            out.append(self._publish(self._held.pop(key), merged=False))
        hold_from = window.num_steps - self.config.window.overlap
        published_now: set = set()
        for p in preds:
            key = p.frame.key
            if key in self._held:
                first = self._held.pop(key)
                better = p if p.conf_mean >= first.conf_mean else first
                p.pts_local, p.conf, p.mapping = better.pts_local, better.conf, better.mapping
                out.append(self._publish(p, merged=True))
            elif any(key in s for s in self._published):
                continue  # already out (a flush window repeats more than the overlap)
            elif self.config.merge == "overlap" and self.config.window.overlap and p.frame.step >= hold_from:
                self._held[key] = p
                continue
            else:
                out.append(self._publish(p, merged=False))
            published_now.add(key)
        self._published.append(published_now)
        out.sort(key=lambda r: (r.set_index, r.camera_index))
        return out

    # -------------------------------------------------------------------------- publishing
    @property
    def metric(self) -> bool:
        """True once a rig scale has been estimated: results are in metres."""
        return self.metric_capable and self._scale.value is not None

    @property
    def metres_per_unit(self) -> float | None:
        s = self._scale.value
        return 1.0 / s if (self.metric_capable and s is not None) else None

    def _camera_intrinsics(self, camera: str, width: int, height: int) -> np.ndarray | None:
        if self.rig is None:
            return None
        key = (camera, width, height)
        if key not in self._intrinsics:
            cam = self.rig.camera(camera)
            same = (cam.width, cam.height) == (width, height)
            self._intrinsics[key] = cam.K.copy() if same else cam.scaled(width, height).K.copy()
        return self._intrinsics[key]

    def _publish(self, p: _Prediction, merged: bool) -> FrameResult:
        f = p.frame
        k = self.metres_per_unit
        factor = 1.0 if k is None else k
        T = p.world_from_cam.copy()
        T[:3, 3] *= factor
        depth_model = p.pts_local[..., 2] * np.float32(factor)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(depth_model) | (depth_model <= 0) | ~(p.conf >= self.config.conf_threshold)
        depth_model = np.where(bad, np.float32(np.nan), depth_model).astype(np.float32)
        width, height = p.mapping.source_size
        depth = SourceMap(depth_model, (height, width), p.mapping.depth_to_source)
        confidence = SourceMap(np.asarray(p.conf, np.float32), (height, width),
                               p.mapping.depth_to_source)
        base = None
        if self.rig is not None:
            T_bc = self.rig.camera(f.camera).T_base_camera
            if p.rig_pose is not None and k is not None:  # the step's rig fit, in metres
                base = np.eye(4)
                base[:3, :3] = p.rig_pose.rotation
                base[:3, 3] = p.rig_pose.translation * factor
            elif k is not None:  # metric, but this step had no fit (one camera present)
                base = T @ se3_inverse(T_bc)
            else:  # relative units: the metric lever arm cannot be applied, only its rotation
                base = T.copy()
                base[:3, :3] = T[:3, :3] @ T_bc[:3, :3].T
        result = FrameResult(f.stamp, f.camera, f.camera_index, f.set_index, p.window_index, T,
                             depth, confidence, self._camera_intrinsics(f.camera, width, height),
                             k is not None, k, merged, base)
        if self.config.points:
            result.points, result.colors = self._points(p, T, factor, bad)
        self.counters["frames_published"] += 1
        self.counters["frames_merged"] += int(merged)
        return result

    def _points(self, p: _Prediction, T: np.ndarray, factor: float,
                bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = self.config.points_stride
        local = p.pts_local[::s, ::s].reshape(-1, 3).astype(np.float64) * factor
        keep = ~bad[::s, ::s].reshape(-1)
        world = (local[keep] @ T[:3, :3].T + T[:3, 3]).astype(np.float32)
        hc, wc = p.pts_local.shape[:2]
        v, u = np.mgrid[0:hc:s, 0:wc:s]
        x, y = p.mapping.crop_to_source(u.reshape(-1)[keep], v.reshape(-1)[keep])
        image = self.image_of(p.frame.item)
        image = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        h, w = image.shape[:2]
        xi = np.clip(np.rint(x).astype(np.int64), 0, w - 1)
        yi = np.clip(np.rint(y).astype(np.int64), 0, h - 1)
        colors = image[yi, xi, :3]
        if colors.dtype != np.uint8:
            colors = np.clip(colors * 255.0, 0, 255).astype(np.uint8)
        return world, colors

    # ------------------------------------------------------------------------------ status
    def status(self, with_tokens: bool = False) -> dict[str, Any]:
        """Counters, scale, pool (per camera) and timing, as plain data for status messages."""
        tokens = self._state.pool_tokens() if with_tokens and len(self._pool) else None
        views = self._pool.camera_views(tokens, now=self._newest_stamp)
        return {
            **self.counters,
            "held_frames": len(self._held),
            "metric": self.metric,
            "metric_capable": self.metric_capable,
            "metres_per_unit": self.metres_per_unit,
            "scale_last_estimate": self._scale.last_estimate,
            "scale_rejected": self._scale.rejected,
            "last_window_seconds": self.last_window_seconds,
            "pool": self._pool.stats(),
            "pool_cameras": {c: v.as_dict() for c, v in views.items()},
        }
