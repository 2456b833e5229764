"""The evaluation protocol of docs/EVALUATION.md: run the online engine, score, compare baselines.

Each sequence (a synthetic test scene, or a recorded bag with ground truth) goes through the
same path as the live nodes: `core.window.WindowBuilder` (L sets x N cameras, overlap O) ->
`core.engine.StreamingReconstructor` (model steps, overlap merge). Every published frame is
scored against ground truth:
- ATE: RMSE of all camera centres after a Sim(3) Umeyama alignment per sequence (the model's
  scale is arbitrary), averaged over sequences;
- RPE (set to next set, per camera): translation RMSE after a least-squares scale fit, and
  rotation RMSE in degrees, averaged over sequences and cameras;
- depth Abs Rel and delta < 1.25 per frame after median scaling (prediction x median(gt) /
  median(pred)), averaged over frames (dataset video depth: one ratio per sequence and a depth
  cap, `Sequence.depth_scaling` / `max_depth`, train/dataset_source.py); where the engine is
  metric (calibrated rig of >= 2 cameras) the unscaled numbers of the frames published in metres
  are reported too.
Metric-scale results (calibrated rigs of >= 2 cameras), kept apart from the median-scaled ones:
the share of sets published in metres (an accepted rig scale), overall and after the first two
windows; the scale error of each metric frame, |median(depth / true depth) - 1|; the metric depth
Abs Rel (no median scaling); and the ATE of the metric frames after an SE(3) alignment (no
scale fit).
Baselines on the same frames and pixels: constant depth = the per-frame median of the ground
truth; static pose (every camera at the origin) and constant velocity (every camera moving along
its optical axis by one unit per set, no rotation), scored with the same alignment.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wint3r_ros.core.engine import EngineConfig, StreamingReconstructor
from wint3r_ros.core.metrics import ate, depth_metrics, rpe
from wint3r_ros.core.window import WindowBuilder, WindowConfig
from wint3r_ros.errors import InputError

__all__ = ["Sequence", "synthetic_sequences", "run_engine", "score_sequence", "evaluate",
           "summarise"]


@dataclass
class Sequence:
    """One evaluation sequence of T synchronised sets of N cameras.

    images [T, N, H, W, 3] uint8 RGB; depth [T, N, H, W] metres (NaN where unknown) or None;
    world_from_cam [T, N, 4, 4] ground truth or None (NaN where a frame has none); stamps [T]
    seconds; rig: a calibrated Rig or None. Depth scoring: `depth_scaling` "frame" (a median
    ratio per frame) or "sequence" (one over all frames: video depth), ground truth above
    `max_depth` metres ignored and scaled predictions clipped to it. stamps_ns [T]: the exact
    stamps when known (dataset sequences).
    """

    name: str
    images: np.ndarray
    depth: np.ndarray | None
    world_from_cam: np.ndarray | None
    stamps: np.ndarray
    camera_names: list[str]
    rig: Any = None
    depth_scaling: str = "frame"
    max_depth: float = math.inf
    stamps_ns: np.ndarray | None = None


def synthetic_sequences(seeds: Iterable[int], frames: int, data_config: Any) -> Iterator[Sequence]:
    """The synthetic scenes `seeds` rendered with the rig of `data_config` (frames sets each; with
    the random rig family, each scene's own rig)."""
    from wint3r_ros.data.synthetic import SceneConfig, SyntheticRig

    for seed in seeds:
        rig = SyntheticRig(SceneConfig(seed=int(seed)), data_config.rig_config(seed))
        images, depth, poses, stamps = [], [], [], []
        for _k, fs in enumerate(rig.frames(frames)):
            images.append(np.stack([f.image for f in fs]))
            depth.append(np.stack([f.depth for f in fs]))
            poses.append(np.stack([f.T_world_cam for f in fs]))
            stamps.append(fs[0].stamp_ns * 1e-9)
        kind = "synthetic-rig" if getattr(data_config, "rig_family", "fixed") == "random" else "synthetic"
        yield Sequence(f"{kind}:{seed}", np.stack(images), np.stack(depth), np.stack(poses),
                       np.asarray(stamps), [c.name for c in rig.rig.cameras],
                       rig.rig if len(rig.rig.cameras) > 1 else None)


def run_engine(model: Any, seq: Sequence, window: WindowConfig, long_side: int
               ) -> tuple[dict[tuple[int, int], Any], float, bool]:
    """Run the online engine over a sequence: ({(set, camera): FrameResult}, seconds spent in the
    engine, metric?). Depth is kept at every pixel (confidence threshold 0)."""
    config = EngineConfig(window=window, target_long_side=long_side, conf_threshold=0.0,
                          max_pool_entries=None)
    engine = StreamingReconstructor(model, seq.rig, config,
                                    camera_names=None if seq.rig is not None else seq.camera_names)
    builder = WindowBuilder(seq.camera_names, window)
    results: dict[tuple[int, int], Any] = {}
    seconds = 0.0

    def keep(items: list[Any]) -> None:
        for r in items:
            results[(r.set_index, r.camera_index)] = r

    with torch.inference_mode():
        for t in range(len(seq.images)):
            n = len(seq.camera_names)
            w = builder.push(list(seq.images[t]), stamps=[float(seq.stamps[t])] * n, set_index=t)
            if w is not None:
                t0 = time.perf_counter()
                keep(engine.process(w))
                seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        last = builder.flush()
        if last is not None:
            keep(engine.process(last))
        keep(engine.flush())
        seconds += time.perf_counter() - t0
    return results, seconds, engine.metric


def _static_ate(gt: np.ndarray) -> float:
    """ATE of a trajectory that never moves: its best Sim(3) image is gt's centroid."""
    return float(np.sqrt(np.mean(np.sum((gt - gt.mean(0)) ** 2, axis=1))))


def _pose_scores(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """est, gt [T, N, 4, 4] -> ATE (Sim3) and per-camera RPE averaged over cameras."""
    known = np.isfinite(gt).all((-2, -1)).reshape(-1)       # frames with a ground-truth pose
    centres = est[..., :3, 3].reshape(-1, 3)[known]
    gt_c = gt[..., :3, 3].reshape(-1, 3)[known]
    spread = float(np.ptp(centres, axis=0).max()) if len(centres) else 0.0
    ate_rmse = _static_ate(gt_c) if spread < 1e-9 else ate(centres, gt_c, "sim3").rmse
    trans, rot = [], []
    if len(est) > 1:
        for c in range(est.shape[1]):
            known_c = np.isfinite(gt[:, c]).all((-2, -1))
            if not (known_c[:-1] & known_c[1:]).any():
                continue          # no two consecutive frames with a true pose (dataset gaps)
            r = rpe(est[:, c], gt[:, c], delta=1, fit_scale=True)
            trans.append(r.trans_rmse)
            rot.append(r.rot_rmse_deg)
    return {"ate": ate_rmse, "rpe_trans": float(np.mean(trans)) if trans else math.nan,
            "rpe_rot_deg": float(np.mean(rot)) if rot else math.nan}


def score_sequence(seq: Sequence, results: dict[tuple[int, int], Any], metric: bool
                   ) -> dict[str, Any]:
    """Scores of the model and of the baselines on one sequence (see the module docstring)."""
    t_count, n = seq.images.shape[:2]
    missing = [(t, c) for t in range(t_count) for c in range(n) if (t, c) not in results]
    if missing:
        raise InputError(f"{seq.name}: the engine published no result for {len(missing)} frames "
                         f"(first: set {missing[0][0]}, camera {missing[0][1]})")
    out: dict[str, Any] = {"name": seq.name, "frames": t_count * n, "metric": metric}
    if seq.rig is not None:
        out["scale"] = _scale_state(seq, results, t_count, n)
    if seq.world_from_cam is not None:
        est = np.stack([[results[(t, c)].world_from_cam for c in range(n)] for t in range(t_count)])
        out["model_pose"] = _pose_scores(est, seq.world_from_cam)
        static = np.broadcast_to(np.eye(4), est.shape).copy()
        out["static_pose"] = _pose_scores(static, seq.world_from_cam)
        metric_est = [(results[(t, c)].world_from_cam[:3, 3], seq.world_from_cam[t, c, :3, 3])
                      for t in range(t_count) for c in range(n) if results[(t, c)].metric]
        if len(metric_est) >= 3:
            e, g = (np.stack(x) for x in zip(*metric_est))
            out["model_pose"]["ate_se3_metric"] = ate(e, g, "se3").rmse
        cv = static.copy()
        cv[..., 2, 3] = np.arange(t_count, dtype=np.float64)[:, None]
        out["constant_velocity_pose"] = _pose_scores(cv, seq.world_from_cam)
    if seq.depth is not None:
        out.update(_depth_scores(seq, results, metric))
    return out


def _depth_scores(seq: Sequence, results: dict[tuple[int, int], Any], metric: bool) -> dict[str, Any]:
    """Per-frame depth rows of the model (median-scaled per frame or per sequence), the
    constant-depth baseline and, when metric, the unscaled model."""
    t_count, n = seq.images.shape[:2]
    cap = seq.max_depth
    frames = []
    for t in range(t_count):
        for c in range(n):
            pred = np.asarray(results[(t, c)].depth, dtype=np.float64)
            gt = np.asarray(seq.depth[t, c], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 1e-3) & (gt <= cap) & (pred > 0)
            if ok.any():  # (the frame published in metres?)
                frames.append((pred, np.where(ok, gt, np.nan), ok,
                               getattr(results[(t, c)], "metric", True)))
    scale = None
    if seq.depth_scaling == "sequence" and frames:
        scale = float(np.median(np.concatenate([g[ok] for _, g, ok, _ in frames])) /
                      np.median(np.concatenate([p[ok] for p, _, ok, _ in frames])))
    model, base, metric_rows = [], [], []
    for pred, gt_ok, ok, in_metres in frames:
        p = np.where(ok, pred, np.nan)
        if scale is not None:
            d = depth_metrics(np.clip(p * scale, 1e-3, cap), gt_ok, max_depth=cap)
        else:
            d = depth_metrics(p, gt_ok, median_scale=True, max_depth=cap)
        b = depth_metrics(np.where(ok, np.nanmedian(gt_ok), np.nan), gt_ok, max_depth=cap)
        model.append((d.abs_rel, d.delta1))
        base.append((b.abs_rel, b.delta1))
        if metric and in_metres:
            m = depth_metrics(p, gt_ok, median_scale=False, max_depth=cap)
            metric_rows.append((m.abs_rel, m.delta1))
    out: dict[str, Any] = {"depth_frames": len(model), "model_depth": _depth_rows(model),
                           "constant_depth": _depth_rows(base)}
    if scale is not None:
        out["depth_scale"] = scale
    if metric_rows:
        out["model_depth_metric"] = _depth_rows(metric_rows)
    return out


def _scale_state(seq: Sequence, results: dict[tuple[int, int], Any], t_count: int, n: int
                 ) -> dict[str, Any]:
    """Metric-scale state of a sequence: which sets came out in metres, and how far off."""
    metric_sets = [all(results[(t, c)].metric for c in range(n)) for t in range(t_count)]
    errors = []
    if seq.depth is not None:
        for t in range(t_count):
            for c in range(n):
                r = results[(t, c)]
                if not r.metric:
                    continue
                pred = np.asarray(r.depth, dtype=np.float64)
                gt = np.asarray(seq.depth[t, c], dtype=np.float64)
                ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 1e-3) & (pred > 0)
                if ok.any():
                    errors.append(abs(float(np.median(pred[ok] / gt[ok])) - 1.0))
    return {"metric_sets": [bool(m) for m in metric_sets], "scale_errors": errors}


def _depth_rows(rows: list[tuple[float, float]]) -> dict[str, Any]:
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    return {"abs_rel": float(arr[:, 0].mean()) if len(arr) else math.nan,
            "delta1": float(arr[:, 1].mean()) if len(arr) else math.nan, "n": int(len(arr))}


def summarise(per_sequence: list[dict[str, Any]], frames: int, seconds: float,
              window_steps: tuple[int, int] = (4, 2)) -> dict[str, Any]:
    """Aggregate per-sequence scores: poses averaged over sequences, depth over frames."""
    def mean(key: str, field: str) -> float:
        vals = [s[key][field] for s in per_sequence
                if key in s and math.isfinite(s[key].get(field, math.nan))]
        return float(np.mean(vals)) if vals else math.nan

    def depth(key: str) -> dict[str, float]:
        rows = [s[key] for s in per_sequence if key in s]
        n = sum(r["n"] for r in rows)
        if n == 0:
            return {"abs_rel": math.nan, "delta1": math.nan}
        return {"abs_rel": sum(r["abs_rel"] * r["n"] for r in rows) / n,
                "delta1": sum(r["delta1"] * r["n"] for r in rows) / n}

    model: dict[str, Any] = {"ate": mean("model_pose", "ate"),
                             "rpe_trans": mean("model_pose", "rpe_trans"),
                             "rpe_rot_deg": mean("model_pose", "rpe_rot_deg")}
    model.update(depth("model_depth"))
    model["frames_per_s"] = frames / seconds if seconds > 0 else math.nan
    if any("model_depth_metric" in s for s in per_sequence):
        metric = depth("model_depth_metric")
        model["abs_rel_metric"], model["delta1_metric"] = metric["abs_rel"], metric["delta1"]
    scale = _scale_summary(per_sequence, window_steps)
    baselines = {
        "constant_median_depth": depth("constant_depth"),
        "static_pose": {k: mean("static_pose", k) for k in ("ate", "rpe_trans", "rpe_rot_deg")},
        "constant_velocity_pose": {k: mean("constant_velocity_pose", k)
                                   for k in ("ate", "rpe_trans", "rpe_rot_deg")},
    }
    ratios = {
        "abs_rel_vs_constant_depth": _ratio(model["abs_rel"], baselines["constant_median_depth"]["abs_rel"]),
        "ate_vs_static": _ratio(model["ate"], baselines["static_pose"]["ate"]),
        "ate_vs_constant_velocity": _ratio(model["ate"], baselines["constant_velocity_pose"]["ate"]),
    }
    targets = {"abs_rel_at_most_half_baseline": bool(ratios["abs_rel_vs_constant_depth"] <= 0.5),
               "ate_at_most_half_static": bool(ratios["ate_vs_static"] <= 0.5)}
    out = {"model": model, "baselines": baselines, "ratios": ratios, "targets": targets,
           "frames": frames, "sequences": len(per_sequence)}
    if scale is not None:
        out["metric_scale"] = scale
    return out


def _scale_summary(per_sequence: list[dict[str, Any]], window_steps: tuple[int, int]
                   ) -> dict[str, Any] | None:
    """Metric-scale results over the sequences with a calibrated rig (None if there are none):
    share of sets with an accepted scale (all, and after the first two windows), median and
    mean scale error over metric frames, metric depth Abs Rel and SE(3) ATE of metric frames."""
    rigs = [s for s in per_sequence if "scale" in s and len(s["scale"]["metric_sets"])]
    if not rigs:
        return None
    size, stride = window_steps
    skip = size + stride  # sets covered by the first two windows
    sets = [m for s in rigs for m in s["scale"]["metric_sets"]]
    later = [m for s in rigs for m in s["scale"]["metric_sets"][skip:]]
    errors = [e for s in rigs for e in s["scale"]["scale_errors"]]
    rows = [s["model_depth_metric"] for s in rigs if "model_depth_metric" in s]
    n = sum(r["n"] for r in rows)
    ates = [s["model_pose"]["ate_se3_metric"] for s in rigs
            if "ate_se3_metric" in s.get("model_pose", {})]
    return {
        "sequences": len(rigs),
        "accepted_share": float(np.mean(sets)),
        "accepted_share_after_2_windows": float(np.mean(later)) if later else math.nan,
        "scale_error_median": float(np.median(errors)) if errors else math.nan,
        "scale_error_mean": float(np.mean(errors)) if errors else math.nan,
        "metric_frames": len(errors),
        "abs_rel_metric": sum(r["abs_rel"] * r["n"] for r in rows) / n if n else math.nan,
        "ate_se3_metric": float(np.mean(ates)) if ates else math.nan,
        "sequences_with_scale": sum(any(s["scale"]["metric_sets"]) for s in rigs),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def evaluate(model: Any, sequences: Iterable[Sequence], window: WindowConfig, long_side: int,
             progress: Any = None, trajectory: Any = None) -> dict[str, Any]:
    """Run and score every sequence; returns {"summary": ..., "sequences": [...]}.
    `trajectory(seq, est)` receives each sequence's estimated poses est [T, N, 4, 4]."""
    per_sequence, frames, seconds = [], 0, 0.0
    for seq in sequences:
        results, secs, metric = run_engine(model, seq, window, long_side)
        if trajectory is not None:
            t_count, n = seq.images.shape[:2]
            trajectory(seq, np.stack([[results[(t, c)].world_from_cam for c in range(n)]
                                      for t in range(t_count)]))
        scores = score_sequence(seq, results, metric)
        scores["seconds"] = secs
        per_sequence.append(scores)
        frames += scores["frames"]
        seconds += secs
        if progress is not None:
            progress(scores)
    if not per_sequence:
        raise InputError("evaluate: no sequences")
    summary = summarise(per_sequence, frames, seconds, (window.size, window.size - window.overlap))
    return {"summary": summary, "sequences": per_sequence}
