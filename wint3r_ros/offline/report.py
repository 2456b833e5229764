"""Score reconstruction outputs against ground truth and write a report folder.

`MetricsAccumulator` is fed one synchronised set (base pose) and one frame (depth) at a time,
so process-bag scores a bag of any length in bounded memory, and the demo scores what the live
nodes published the same way:
- ATE: RMSE of the rig base positions after a Sim(3) Umeyama alignment to the ground truth
  (the estimate's ``odom`` frame and scale are arbitrary without a metric rig);
- RPE (set to next set): translation RMSE after a least-squares scale fit, rotation RMSE in
  degrees;
- depth Abs Rel and delta < 1.25 per frame after median scaling, averaged over frames (with a
  metric rig also unscaled, over the frames published in metres: ``abs_rel_metric``,
  ``delta1_metric``);
- the metric-scale state: which frames and sets came out in metres (from the status messages
  over time), and each metric frame's scale error |median(depth / true depth) - 1|.

`wint3r-ros report --input BAG --outputs OUT_BAG --out DIR` reads a make-bag recording (ground
truth, images) and a bag of the nodes' outputs (``wint3r-ros record`` or ``process-bag``) and
writes DIR/metrics.json, DIR/trajectory.png (estimate vs ground truth), DIR/depth.png (every
camera at a few times: image, ground truth, estimate, error; grey = no depth), DIR/scale.png (the
metric-scale state over time) and DIR/cloud.ply (the accumulated point cloud).
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.metrics import ate, depth_metrics, rpe
from wint3r_ros.errors import BagError, InputError

__all__ = ["MetricsAccumulator", "OutputsRead", "read_outputs", "read_ground_truth",
           "plot_trajectory", "plot_depth", "plot_scale", "write_ply", "read_ply_vertex_count",
           "write_report", "configure", "run"]


def _finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


@dataclass
class MetricsAccumulator:
    """Pose pairs and per-frame depth scores (see the module docstring)."""

    stamps: list[int] = field(default_factory=list)
    estimate: list[np.ndarray] = field(default_factory=list)
    ground_truth: list[np.ndarray] = field(default_factory=list)
    depth_rows: list[tuple[float, float]] = field(default_factory=list)
    metric_rows: list[tuple[float, float]] = field(default_factory=list)
    # (stamp ns, camera, metric?, median(depth / true depth) or NaN) per scored depth frame
    frames: list[tuple[int, str, bool, float]] = field(default_factory=list)

    def add_pose(self, stamp_ns: int, estimate: np.ndarray, ground_truth: np.ndarray) -> None:
        """One set: the estimated and true base poses [4, 4] (any fixed frames)."""
        self.stamps.append(int(stamp_ns))
        self.estimate.append(np.asarray(estimate, np.float64))
        self.ground_truth.append(np.asarray(ground_truth, np.float64))

    def add_depth(self, pred: np.ndarray, gt: np.ndarray, metric: bool = False,
                  stamp_ns: int = 0, camera: str = "") -> bool:
        """One frame's depth [H, W] against ground truth (metric: published in metres);
        False when no pixel is valid."""
        if np.shape(pred) != np.shape(gt):
            raise InputError(f"depth {np.shape(pred)} and ground truth {np.shape(gt)} differ")
        try:
            d = depth_metrics(pred, gt, median_scale=True)
        except InputError:
            return False
        self.depth_rows.append((d.abs_rel, d.delta1))
        ratio = math.nan
        if metric:
            m = depth_metrics(pred, gt, median_scale=False)
            self.metric_rows.append((m.abs_rel, m.delta1))
            with np.errstate(invalid="ignore", divide="ignore"):
                ok = np.isfinite(pred) & np.isfinite(gt) & (gt > 0) & (pred > 0)
                ratio = float(np.median(pred[ok] / gt[ok]))
        self.frames.append((int(stamp_ns), camera, bool(metric), ratio))
        return True

    def scale_summary(self, skip_sets: int = 6) -> dict[str, Any]:
        """Metric-scale state of the scored depth frames: the share of sets (all frames of a
        stamp) in metres, overall and after the first `skip_sets` sets (two windows of 4 sets
        overlapping by 2), and the median / mean scale error |median(depth / truth) - 1|."""
        sets: dict[int, bool] = {}
        for stamp, _cam, metric, _ratio in self.frames:
            sets[stamp] = sets.get(stamp, True) and metric
        flags = [sets[k] for k in sorted(sets)]
        errors = [abs(r - 1.0) for *_, metric, r in self.frames if metric and math.isfinite(r)]
        return {"sets": len(flags), "metric_sets_share": _finite_or_none(float(np.mean(flags)))
                if flags else None,
                "metric_sets_share_after_2_windows": _finite_or_none(float(np.mean(flags[skip_sets:])))
                if len(flags) > skip_sets else None,
                "metric_frames": len(errors),
                "scale_error_median": _finite_or_none(float(np.median(errors))) if errors else None,
                "scale_error_mean": _finite_or_none(float(np.mean(errors))) if errors else None}

    def aligned(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(stamps [P], estimated positions Sim(3)-aligned to the ground truth [P, 3], ground
        truth positions [P, 3]) in stamp order, or None with fewer than 3 poses."""
        if len(self.stamps) < 3:
            return None
        order = np.argsort(self.stamps, kind="stable")
        est = np.stack(self.estimate)[order][:, :3, 3]
        gt = np.stack(self.ground_truth)[order][:, :3, 3]
        if float(np.ptp(est, axis=0).max()) < 1e-12:
            return np.asarray(self.stamps)[order], np.broadcast_to(gt.mean(0), gt.shape).copy(), gt
        result = ate(est, gt, "sim3")
        return np.asarray(self.stamps)[order], result.transform.apply(est), gt

    def summary(self) -> dict[str, Any]:
        """ATE, RPE, depth scores and the counts they rest on (None where not computable)."""
        out: dict[str, Any] = {"poses": len(self.stamps), "depth_frames": len(self.depth_rows),
                               "ate": None, "rpe_trans": None, "rpe_rot_deg": None,
                               "abs_rel": None, "delta1": None}
        if len(self.stamps) >= 3:
            order = np.argsort(self.stamps, kind="stable")
            est = np.stack(self.estimate)[order]
            gt = np.stack(self.ground_truth)[order]
            a = self.aligned()
            assert a is not None
            out["ate"] = _finite_or_none(float(np.sqrt(np.mean(np.sum((a[1] - a[2]) ** 2, 1)))))
            r = rpe(est, gt, delta=1, fit_scale=True)
            out["rpe_trans"] = _finite_or_none(r.trans_rmse)
            out["rpe_rot_deg"] = _finite_or_none(r.rot_rmse_deg)
        if self.depth_rows:
            rows = np.asarray(self.depth_rows)
            out["abs_rel"] = _finite_or_none(float(rows[:, 0].mean()))
            out["delta1"] = _finite_or_none(float(rows[:, 1].mean()))
        if self.metric_rows:
            rows = np.asarray(self.metric_rows)
            out["abs_rel_metric"] = _finite_or_none(float(rows[:, 0].mean()))
            out["delta1_metric"] = _finite_or_none(float(rows[:, 1].mean()))
        out["scale"] = self.scale_summary()
        return out


# --------------------------------------------------------------------------------------------
# Reading bags


@dataclass
class GroundTruth:
    """world_from_base per stamp; depth [H, W] per (camera name, stamp)."""

    base: dict[int, np.ndarray]
    depth: dict[tuple[str, int], np.ndarray]


def read_ground_truth(bag: str | Path, rig: Any) -> GroundTruth:
    """The ground truth topics of a make-bag recording (empty where absent)."""
    from wint3r_ros.data.bag import BagReader
    from wint3r_ros.data.messages import array_from_image, transforms_from_tf_message
    from wint3r_ros.offline.make_bag import GROUND_TRUTH_TF_TOPIC, ground_truth_depth_topic

    depth_topics = {ground_truth_depth_topic(n): n for n in rig.camera_names}
    base: dict[int, np.ndarray] = {}
    depth: dict[tuple[str, int], np.ndarray] = {}
    with BagReader(bag) as reader:
        topics = [t for t in [GROUND_TRUTH_TF_TOPIC, *depth_topics] if t in reader.topics]
        for m in reader.messages(topics) if topics else []:
            if m.topic == GROUND_TRUTH_TF_TOPIC:
                for _parent, child, stamp, T in transforms_from_tf_message(m.msg):
                    if child == rig.base_frame:
                        base[stamp] = T
            else:
                depth[(depth_topics[m.topic], m.stamp_ns)] = \
                    array_from_image(m.msg, m.topic).astype(np.float32)
    return GroundTruth(base, depth)


@dataclass
class OutputsRead:
    """What a bag of the nodes' outputs holds: base poses in the world frame per stamp, depth
    per (camera, stamp), the last status, all cloud points (world frame), and the scale state
    of every status message: (stamp ns, scale_is_metric, scale = metres per model unit)."""

    base: dict[int, np.ndarray]
    depth: dict[tuple[str, int], np.ndarray]
    status: Any
    points: np.ndarray
    colors: np.ndarray
    metric: bool
    statuses: list[tuple[int, bool, float]] = field(default_factory=list)

    def metric_at(self, stamp_ns: int) -> bool:
        """Was a frame of this stamp published in metres? The state of the first status at or
        after it (the status of the window that published it); the last state otherwise."""
        for stamp, metric, _scale in self.statuses:
            if stamp >= stamp_ns:
                return metric
        return self.metric


def read_outputs(bag: str | Path, camera_names: Sequence[str], namespace: str = "/fusion_node",
                 world_frame: str = "odom", base_frame: str = "base_link") -> OutputsRead:
    """Read /tf (world_frame -> base_frame), <namespace>/<camera>/depth, <namespace>/cloud and
    <namespace>/status from an outputs bag."""
    from wint3r_ros.data.bag import BagReader
    from wint3r_ros.data.messages import array_from_image, points_from_pointcloud2, transforms_from_tf_message

    ns = namespace.rstrip("/")
    depth_topics = {f"{ns}/{c}/depth": c for c in camera_names}
    base: dict[int, np.ndarray] = {}
    depth: dict[tuple[str, int], np.ndarray] = {}
    pts: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    status = None
    statuses: list[tuple[int, bool, float]] = []
    with BagReader(bag) as reader:
        wanted = ["/tf", f"{ns}/cloud", f"{ns}/status", *depth_topics]
        topics = [t for t in wanted if t in reader.topics]
        if "/tf" not in topics:
            raise BagError(f"outputs bag {bag} has no /tf (it has {sorted(reader.topics)})")
        for m in reader.messages(topics):
            if m.topic == "/tf":
                for parent, child, stamp, T in transforms_from_tf_message(m.msg):
                    if parent == world_frame and child == base_frame:
                        base[stamp] = T
            elif m.topic in depth_topics:
                depth[(depth_topics[m.topic], m.stamp_ns)] = array_from_image(m.msg, m.topic)
            elif m.topic.endswith("/cloud"):
                p, c = points_from_pointcloud2(m.msg, m.topic)
                pts.append(p)
                cols.append(c if c is not None else np.full((len(p), 3), 200, np.uint8))
            else:
                status = m.msg
                stamp = m.msg.header.stamp
                statuses.append((int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
                                 bool(m.msg.scale_is_metric), float(m.msg.scale)))
    points = np.concatenate(pts) if pts else np.zeros((0, 3), np.float32)
    colors = np.concatenate(cols) if cols else np.zeros((0, 3), np.uint8)
    metric = bool(getattr(status, "scale_is_metric", False))
    statuses.sort(key=lambda row: row[0])
    return OutputsRead(base, depth, status, points, colors, metric, statuses)


def _nearest(stamps: np.ndarray, stamp: int, tolerance_ns: int) -> int | None:
    if not len(stamps):
        return None
    i = int(np.argmin(np.abs(stamps - stamp)))
    return int(stamps[i]) if abs(int(stamps[i]) - stamp) <= tolerance_ns else None


def score_outputs(outputs: OutputsRead, truth: GroundTruth,
                  tolerance_ns: int = 20_000_000) -> MetricsAccumulator:
    """Pair estimates with ground truth by stamp (nearest within ``tolerance_ns``)."""
    acc = MetricsAccumulator()
    gt_stamps = np.array(sorted(truth.base), dtype=np.int64)
    for stamp in sorted(outputs.base):
        s = _nearest(gt_stamps, stamp, tolerance_ns)
        if s is not None:
            acc.add_pose(stamp, outputs.base[stamp], truth.base[s])
    by_camera: dict[str, np.ndarray] = {}
    for cam, s in truth.depth:
        by_camera.setdefault(cam, []).append(s)  # type: ignore[union-attr]
    by_camera = {c: np.array(sorted(v), dtype=np.int64) for c, v in by_camera.items()}
    for (cam, stamp), pred in sorted(outputs.depth.items(), key=lambda kv: kv[0][1]):
        s = _nearest(by_camera.get(cam, np.zeros(0, np.int64)), stamp, tolerance_ns)
        if s is not None:
            gt = truth.depth[(cam, s)]
            if gt.shape == pred.shape:
                acc.add_depth(pred, gt, outputs.metric_at(stamp), stamp, cam)
    return acc


# --------------------------------------------------------------------------------------------
# Figures and the point cloud


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectory(acc: MetricsAccumulator, path: str | Path, title: str = "") -> Path | None:
    """Estimated base trajectory (Sim(3)-aligned) over the ground truth: top view in the ground
    truth's two main directions, and the position error over time. None with < 3 poses."""
    a = acc.aligned()
    if a is None:
        return None
    stamps, est, gt = a
    plt = _pyplot()
    centre = gt.mean(0)
    _, _, vt = np.linalg.svd(gt - centre, full_matrices=False)
    axes = vt[:2]
    g2, e2 = (gt - centre) @ axes.T, (est - centre) @ axes.T
    t = (stamps - stamps[0]) / 1e9
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax0.plot(g2[:, 0], g2[:, 1], "k-", lw=2, label="ground truth")
    ax0.plot(e2[:, 0], e2[:, 1], "-", color="tab:orange", lw=1.5, label="estimate (Sim(3) aligned)")
    ax0.plot(g2[0, 0], g2[0, 1], "ko", ms=5)
    ax0.set_aspect("equal", adjustable="datalim")
    ax0.set_xlabel("m (main direction 1)")
    ax0.set_ylabel("m (main direction 2)")
    ax0.legend(loc="best", fontsize=8)
    ax0.set_title("rig base trajectory, top view")
    ax1.plot(t, np.linalg.norm(est - gt, axis=1), color="tab:red")
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("position error after alignment (m)")
    ax1.set_title("absolute trajectory error")
    ax1.grid(alpha=0.3)
    return _save(fig, path, title, dpi=100)


def _save(fig: Any, path: str | Path, title: str, dpi: int) -> Path:
    """Title, lay out, write and close a figure."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


NO_DEPTH_COLOR = "#9e9e9e"  # grey: pixels without depth (NaN) in the depth panels
NO_DEPTH_LEGEND = ("grey = no depth (NaN): confidence below the threshold, invalid, or outside "
                   "the model's crop")


def plot_depth(rows: Sequence[tuple[str, np.ndarray | None, np.ndarray, np.ndarray, bool]],
               path: str | Path, title: str = "") -> Path | None:
    """rows of (label, image [H, W, 3] or None, ground truth depth, estimated depth, metric?):
    one row per frame with the image, the ground truth, the estimate (in metres as published
    when metric, else median-scaled to the ground truth) and the relative error. Pixels without
    depth (NaN) are grey, with a legend saying why a pixel has none. None without rows."""
    if not rows:
        return None
    plt = _pyplot()
    import matplotlib.patches as mpatches

    fig, axes = plt.subplots(len(rows), 4, figsize=(13, 2.6 * len(rows) + 0.5), squeeze=False)
    for r, (label, image, gt, pred, metric) in enumerate(rows):
        ok = np.isfinite(gt) & np.isfinite(pred) & (gt > 0) & (pred > 0)
        scale = 1.0 if metric else (float(np.median(gt[ok]) / np.median(pred[ok])) if ok.any() else 1.0)
        scaled = pred * scale
        lo, hi = (np.nanpercentile(gt, 2), np.nanpercentile(gt, 98)) if np.isfinite(gt).any() \
            else (0.0, 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(ok, np.abs(scaled - gt) / gt, np.nan)
        missing = float(np.mean(~np.isfinite(pred)))
        name = "estimate (m, as published)" if metric else f"estimate x {scale:.3g} (median-scaled)"
        panels = [(image, None, "image"), (gt, "viridis", "ground truth depth (m)"),
                  (scaled, "viridis", f"{name}, {missing:.0%} no depth"),
                  (rel, "magma", "abs rel error (0..0.5)")]
        for c, (data, cmap, panel) in enumerate(panels):
            ax = axes[r, c]
            ax.axis("off")
            if data is None:
                ax.text(0.5, 0.5, "no image", ha="center", va="center")
            elif cmap is None:
                ax.imshow(data)
            else:
                vmin, vmax = (0.0, 0.5) if cmap == "magma" else (lo, hi)
                colormap = plt.get_cmap(cmap).with_extremes(bad=NO_DEPTH_COLOR)
                im = ax.imshow(np.ma.masked_invalid(data), cmap=colormap, vmin=vmin, vmax=vmax)
                fig.colorbar(im, ax=ax, fraction=0.035)
            ax.set_title(f"{label}: {panel}" if c == 0 else panel, fontsize=8)
    fig.legend(handles=[mpatches.Patch(color=NO_DEPTH_COLOR, label=NO_DEPTH_LEGEND)],
               loc="lower center", fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.4 / (2.6 * len(rows) + 0.5), 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_scale(acc: MetricsAccumulator, statuses: Sequence[tuple[int, bool, float]],
               path: str | Path, title: str = "", tolerance: float = 0.05) -> Path | None:
    """The metric-scale state over time: whether the engine had a metric scale (each status
    message), and each metric frame's depth / true depth ratio per camera with the +-tolerance
    band. None when there is nothing to draw."""
    statuses = [row for row in statuses if row[0] > 0]  # (a status before any window has stamp 0)
    if not statuses and not acc.frames:
        return None
    plt = _pyplot()
    t0 = min([s for s, *_ in statuses] + [f[0] for f in acc.frames])
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(12, 5), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 2]})
    if statuses:
        t = [(s - t0) / 1e9 for s, *_ in statuses]
        ax0.step(t, [int(m) for _, m, _ in statuses], where="post", color="tab:blue")
    ax0.set_yticks([0, 1], ["relative", "metric"])
    ax0.set_ylim(-0.2, 1.2)
    ax0.set_title("scale state of the engine (status messages)", fontsize=9)
    ax0.grid(alpha=0.3)
    ax1.axhspan(1 - tolerance, 1 + tolerance, color="tab:green", alpha=0.15,
                label=f"within {tolerance:.0%}")
    ax1.axhline(1.0, color="k", lw=0.8)
    cameras = sorted({cam for _, cam, metric, _ in acc.frames if metric})
    for cam in cameras:
        pts = [((s - t0) / 1e9, r) for s, c, metric, r in acc.frames if c == cam and metric]
        ax1.plot(*zip(*pts), ".-", ms=3, lw=0.8, label=cam)
    if not cameras:
        ax1.text(0.5, 0.5, "no frame was published in metres", ha="center", va="center",
                 transform=ax1.transAxes)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("median(depth / true depth)")
    ax1.set_title("scale of each frame published in metres (1 = exact)", fontsize=9)
    ax1.legend(loc="best", fontsize=8)
    ax1.grid(alpha=0.3)
    return _save(fig, path, title, dpi=90)


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """An ASCII PLY of points [N, 3] (float) with optional colours [N, 3] uint8."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    keep = np.isfinite(pts).all(1)
    pts = pts[keep]
    cols = None if colors is None else np.asarray(colors, np.uint8).reshape(-1, 3)[keep]
    header = ["ply", "format ascii 1.0", f"element vertex {len(pts)}",
              "property float x", "property float y", "property float z"]
    if cols is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    path = Path(path)
    with path.open("w", encoding="ascii") as f:
        f.write("\n".join(header) + "\n")
        for i in range(len(pts)):
            x, y, z = pts[i]
            line = f"{x:.5f} {y:.5f} {z:.5f}"
            if cols is not None:
                line += f" {cols[i, 0]} {cols[i, 1]} {cols[i, 2]}"
            f.write(line + "\n")
    return path


def read_ply_vertex_count(path: str | Path) -> tuple[int, int]:
    """(declared vertex count, vertex lines present) of an ASCII PLY."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    end = lines.index("end_header")
    declared = next(int(l.split()[-1]) for l in lines[:end] if l.startswith("element vertex"))
    return declared, len([l for l in lines[end + 1:] if l.strip()])


# --------------------------------------------------------------------------------------------
# The report folder


def _input_images(bag: str | Path, rig: Any, wanted: set[tuple[str, int]]
                  ) -> dict[tuple[str, int], np.ndarray]:
    from wint3r_ros.data.bag import BagReader
    from wint3r_ros.data.messages import rgb_from_image

    topics = {rig.camera(n).topic: n for n in rig.camera_names}
    out: dict[tuple[str, int], np.ndarray] = {}
    with BagReader(bag) as reader:
        for m in reader.messages([t for t in topics if t in reader.topics]):
            key = (topics[m.topic], m.stamp_ns)
            if key in wanted:
                out[key] = rgb_from_image(m.msg, m.topic)
    return out


def write_report(input_bag: str | Path, outputs_bag: str | Path, rig: Any, out_dir: str | Path,
                 *, namespace: str = "/fusion_node", world_frame: str = "odom",
                 base_frame: str | None = None, depth_frames: int = 2, max_points: int = 200_000,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write metrics.json, trajectory.png, depth.png (every camera at `depth_frames` times),
    scale.png and cloud.ply under ``out_dir``; returns the metrics document (with the paths of
    what was written)."""
    from wint3r_ros.core.outputs import cap_points, voxel_downsample

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_frame = base_frame or rig.base_frame
    outputs = read_outputs(outputs_bag, rig.camera_names, namespace, world_frame, base_frame)
    truth = read_ground_truth(input_bag, rig)
    acc = score_outputs(outputs, truth)
    metrics = acc.summary()
    st = outputs.status
    doc: dict[str, Any] = {
        "input": str(input_bag), "outputs": str(outputs_bag), "metrics": metrics,
        "frames_processed": int(st.frames_out) if st is not None else len(outputs.depth),
        "frames_in": int(st.frames_in) if st is not None else None,
        "frames_dropped": int(sum(st.drop_counts)) if st is not None else None,
        "drops": dict(zip(st.drop_reasons, map(int, st.drop_counts))) if st is not None else {},
        "depth_images": len(outputs.depth), "poses": len(outputs.base),
        "ground_truth": {"poses": len(truth.base), "depth_images": len(truth.depth)},
        "metric_scale": outputs.metric, "state": str(st.state) if st is not None else None,
        "scale_over_time": [{"stamp_ns": s, "metric": m, "metres_per_unit": k}
                            for s, m, k in outputs.statuses],
        **(extra or {})}
    files: dict[str, str | None] = {}
    title = extra.get("weights", "") if extra else ""
    tr = plot_trajectory(acc, out_dir / "trajectory.png", title=str(title))
    files["trajectory_png"] = str(tr) if tr else None
    # depth comparison: every camera at `depth_frames` evenly spread stamps
    keys = sorted(k for k in outputs.depth if k in truth.depth)
    chosen: list[tuple[str, int]] = []
    for cam in rig.camera_names:
        own = sorted((k for k in keys if k[0] == cam), key=lambda k: k[1])
        if own:
            idx = np.linspace(0, len(own) - 1, min(depth_frames, len(own))).round().astype(int)
            chosen += [own[i] for i in sorted(set(idx.tolist()))]
    first = min((k[1] for k in keys), default=0)
    images = _input_images(input_bag, rig, set(chosen)) if chosen else {}
    rows = [(f"{c} t={(s - first) / 1e9:.1f}s", images.get((c, s)), truth.depth[(c, s)],
             outputs.depth[(c, s)], outputs.metric_at(s)) for c, s in chosen]
    dp = plot_depth(rows, out_dir / "depth.png", title=str(title))
    files["depth_png"] = str(dp) if dp else None
    sp = plot_scale(acc, outputs.statuses, out_dir / "scale.png", title=str(title))
    files["scale_png"] = str(sp) if sp else None
    pts, cols = voxel_downsample(outputs.points, outputs.colors, 0.0)
    pts, cols = cap_points(pts, cols, max_points)
    files["cloud_ply"] = str(write_ply(out_dir / "cloud.ply", pts, cols))
    doc["cloud_points"] = int(len(pts))
    doc["files"] = files
    (out_dir / "metrics.json").write_text(json.dumps(doc, indent=1) + "\n")
    files["metrics_json"] = str(out_dir / "metrics.json")
    return doc


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True,
                        help="the recording with ground truth (wint3r-ros make-bag)")
    parser.add_argument("--outputs", type=Path, required=True,
                        help="bag of the outputs (wint3r-ros record, or process-bag)")
    parser.add_argument("--rig", type=Path, default=None,
                        help="rig YAML (default: INPUT.rig.yaml beside the input bag)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--namespace", default="/fusion_node",
                        help="namespace of the depth/cloud/status topics (/fusion_node)")
    parser.add_argument("--world-frame", default="odom", help="frame of the /tf estimate (odom)")
    parser.add_argument("--weights", default="", help="a line about the weights, for the figures")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.data.rig_files import load_rig
    from wint3r_ros.offline.make_bag import rig_path_for

    rig = load_rig(args.rig or rig_path_for(args.input))
    extra = {"weights": args.weights} if args.weights else None
    doc = write_report(args.input, args.outputs, rig, args.out, namespace=args.namespace,
                       world_frame=args.world_frame, extra=extra)
    print(headline(doc, args.out))
    return 0


def headline(doc: dict[str, Any], out_dir: str | Path) -> str:
    """The report's numbers in a few lines."""
    m = doc["metrics"]

    def f(x: Any, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [f"report: {out_dir}/ (metrics.json, trajectory.png, depth.png, scale.png, cloud.ply)",
             f"  frames processed {doc.get('frames_processed')}, dropped "
             f"{doc.get('frames_dropped')}; poses scored {m['poses']}, depth frames "
             f"{m['depth_frames']}",
             f"  ATE {f(m['ate'], '.3f')} m (Sim3-aligned), RPE {f(m['rpe_trans'], '.3f')} m / "
             f"{f(m['rpe_rot_deg'], '.2f')} deg per set",
             f"  depth Abs Rel {f(m['abs_rel'], '.3f')}, delta<1.25 {f(m['delta1'], '.3f')} "
             f"(median-scaled)"]
    if m.get("abs_rel_metric") is not None:
        lines.append(f"  metric depth (no scaling) Abs Rel {f(m['abs_rel_metric'], '.3f')}, "
                     f"delta<1.25 {f(m['delta1_metric'], '.3f')}")
    sc = m.get("scale")
    if sc and sc["sets"]:
        lines.append(f"  metric scale on {f(sc['metric_sets_share'], '.0%')} of sets "
                     f"({f(sc['metric_sets_share_after_2_windows'], '.0%')} after the first two "
                     f"windows), median scale error {f(sc['scale_error_median'], '.3f')} over "
                     f"{sc['metric_frames']} metric frames")
    return "\n".join(lines)
