"""``wint3r-ros process-bag IN OUT --rig RIG.yaml``: the offline pipeline, rosbag2 in and out.

The same code path as the live nodes, without DDS: images of the rig's cameras (``--topics``
overrides the rig file's topics, in camera order) are read in header-stamp order, matched by
the approximate-time policy (`core.sync`), grouped into lockstep windows (`core.window`) and
run through `core.engine.StreamingReconstructor`; what fusion_node publishes is written to the
output bag with the source stamps (as header stamps and log times), under the same topic names:

- ``/tf``: ``world_frame -> base_frame`` per synchronised set (REP-105 odometry frame, starting
  at the first pose); ``/tf_static``: ``base_frame -> <camera optical frame>`` from the rig;
- ``<ns>/<camera>/depth`` (32FC1, metres with a metric rig, NaN where invalid or below the
  confidence threshold), ``<ns>/<camera>/camera_info`` (for the depth image's size),
  ``<ns>/<camera>/confidence`` (32FC1);
- ``<ns>/cloud`` (PointCloud2 x, y, z, rgb in ``world_frame``, per window), ``<ns>/odometry``,
  ``<ns>/path``, ``<ns>/status`` (wint3r_ros/msg/ReconstructionStatus, per window);

with ``<ns>`` = ``/fusion_node``, so RViz layouts and ``wint3r-ros report`` work on either. When
the input has make-bag's ground truth (``/ground_truth/tf``, ``/ground_truth/<camera>/depth``),
``OUT.metrics.json`` beside the output holds ATE, RPE, depth Abs Rel and delta < 1.25 (see
`data.report`) and the frames processed and dropped. A corrupt or truncated input raises
`BagError` after closing the output bag, which then holds every frame processed before.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.errors import BagError, ConfigError, InputError

__all__ = ["ProcessConfig", "ProcessResult", "process_bag", "metrics_path_for",
           "load_params_file", "configure", "run"]

_NS = 1_000_000_000


@dataclass(frozen=True)
class ProcessConfig:
    """Settings, named as the nodes' parameters (config/rig.yaml, config/wint3r.yaml).

    topics: image topics in camera order (empty: the rig's); checkpoint empty: the shipped tiny
    weights; input_long_side 0: the checkpoint card's; max_sets: stop after this many
    synchronised sets (0: all)."""

    topics: tuple[str, ...] = ()
    storage: str = "mcap"
    checkpoint: str = ""
    model_preset: str = "tiny"
    device: str = "auto"
    precision: str = "fp32"
    input_long_side: int = 0
    torch_threads: int = 0
    confidence_threshold: float = 0.0
    scale_fit_max_residual: float = 0.25
    max_pool_tokens: int = 512
    pool_keyframe_every: int = 4
    merge: str = "overlap"
    image_order: str = "time"
    slop: float = 0.02
    queue_size: int = 10
    window_length: int = 4
    window_overlap: int = 2
    world_frame: str = "odom"
    base_frame: str = ""
    namespace: str = "/fusion_node"
    cloud_voxel_size: float = 0.05
    cloud_max_points: int = 50000
    cloud_pixel_stride: int = 4
    path_max_poses: int = 2000
    pose_covariance: tuple[float, ...] = (0.01,) * 6
    twist_covariance: tuple[float, ...] = (0.1,) * 6
    max_sets: int = 0
    progress: bool | None = None   # None: a bar when stderr is a terminal

    def __post_init__(self) -> None:
        from wint3r_ros.data.bag import STORAGE_FORMATS

        if self.storage not in STORAGE_FORMATS:
            raise ConfigError(f"--format must be one of {STORAGE_FORMATS}, got {self.storage!r}")
        if self.input_long_side % 16:
            raise ConfigError(f"input_long_side={self.input_long_side} is not a multiple of 16")
        if self.slop < 0 or self.queue_size < 1 or self.max_sets < 0:
            raise ConfigError(f"slop={self.slop} must be >= 0, queue_size={self.queue_size} "
                              f">= 1, max_sets={self.max_sets} >= 0")
        if self.world_frame == self.base_frame:
            raise ConfigError(f"world_frame and base_frame are both {self.world_frame!r}")
        if self.torch_threads < 0:
            raise ConfigError(f"--threads / torch_threads must be >= 0 (0: torch's default), "
                              f"got {self.torch_threads}")


def load_params_file(path: str | Path) -> dict[str, Any]:
    """The ``ros__parameters`` of a node parameter YAML (``/**:`` or ``<node>:`` key), merged."""
    from wint3r_ros.yaml_io import load_yaml

    path = Path(path)
    doc = load_yaml(path, "parameter file")
    if not isinstance(doc, dict):
        raise ConfigError(f"parameter file {path}: not a mapping of nodes to ros__parameters")
    out: dict[str, Any] = {}
    for _node, body in doc.items():
        if isinstance(body, dict) and isinstance(body.get("ros__parameters"), dict):
            out.update(body["ros__parameters"])
    if not out:
        raise ConfigError(f"parameter file {path}: no '<node>: ros__parameters:' section")
    return out


def config_from_params(params: dict[str, Any], base: ProcessConfig | None = None) -> ProcessConfig:
    """Apply node parameters that process-bag shares (others, e.g. QoS, are ignored)."""
    base = base or ProcessConfig()
    names = {f.name for f in fields(ProcessConfig)} - {"topics", "storage", "namespace",
                                                       "max_sets", "progress"}
    update: dict[str, Any] = {}
    for key, value in params.items():
        if key in names:
            current = getattr(base, key)
            if isinstance(current, tuple):
                value = tuple(float(v) for v in value)
            elif isinstance(current, float) and isinstance(value, int):
                value = float(value)
            update[key] = value
    return replace(base, **update)


def metrics_path_for(out: str | Path) -> Path:
    """``OUT.metrics.json`` beside the output bag."""
    out = Path(out)
    return out.with_name(out.name + ".metrics.json")


@dataclass
class ProcessResult:
    """What process_bag did: output paths, counts, timings (seconds), metrics (or None)."""

    out: Path
    metrics_path: Path | None
    sets: int = 0
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    windows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    weights: str = ""
    metric_scale: bool = False

    @property
    def frames_per_s(self) -> float:
        total = self.timings.get("total", 0.0)
        return self.frames_out / total if total > 0 else float("nan")


class _Timer:
    """Accumulates perf_counter seconds per phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"load_model": 0.0, "read_decode": 0.0,
                                          "sync_window": 0.0, "model": 0.0, "write": 0.0,
                                          "score": 0.0}

    def iterate(self, phase: str, it: Any) -> Any:
        it = iter(it)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.seconds[phase] += time.perf_counter() - t0
                return
            self.seconds[phase] += time.perf_counter() - t0
            yield item


def _progress(enabled: bool | None, total: int | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="set", desc="process-bag", dynamic_ncols=True)


class _Writer:
    """Builds fusion_node's messages (rosbags) from engine results and writes them."""

    def __init__(self, bag: Any, rig: Any, cfg: ProcessConfig, base_frame: str) -> None:
        from wint3r_ros.core.outputs import OdomFrame, PathBuffer

        self.bag, self.rig, self.cfg = bag, rig, cfg
        self.base_frame = base_frame
        self.ns = "/" + cfg.namespace.strip("/") if cfg.namespace.strip("/") else ""
        self.odom = OdomFrame()
        self.path = PathBuffer(cfg.path_max_poses)
        self.last_base: tuple[np.ndarray, int] | None = None
        self.base_by_stamp: dict[int, np.ndarray] = {}
        self.newest_ns = 0

    def topic(self, name: str) -> str:
        return f"{self.ns}/{name}"

    def static(self) -> None:
        """/tf_static, logged with the first output (a log time 0 made the bag span 56 years)."""
        from wint3r_ros.data.messages import tf_message, transform_stamped

        self.bag.write_with_next("/tf_static", tf_message(
            transform_stamped(c.T_base_camera, self.base_frame, c.frame_id, 0)
            for c in self.rig.cameras))

    def reset(self) -> None:
        self.odom.reset()
        self.path.clear()
        self.last_base = None

    def results(self, results: Sequence[Any], stamps: dict[tuple[int, int], int]) -> None:
        from wint3r_ros.core.outputs import BASE_FROM_OPTICAL, cap_points, set_stamp_ns, twist_between, voxel_downsample
        from wint3r_ros.data import messages as m

        cfg = self.cfg
        by_set: dict[int, list[Any]] = {}
        for r in results:
            by_set.setdefault(r.set_index, []).append(r)
        poses = 0
        for set_index in sorted(by_set):
            frames = sorted(by_set[set_index], key=lambda r: r.camera_index)
            stamp_ns = set_stamp_ns(stamps[(r.camera_index, r.set_index)] for r in frames)
            base = next((r.world_from_base for r in frames if r.world_from_base is not None), None)
            if base is None and frames[0].camera_index == 0:
                base = frames[0].world_from_cam @ np.linalg.inv(BASE_FROM_OPTICAL)
            if base is None:
                continue
            T = self.odom.base_in_odom(base)
            self.base_by_stamp[stamp_ns] = T
            poses += 1
            self.bag.write("/tf", m.tf_message([m.transform_stamped(
                T, cfg.world_frame, self.base_frame, stamp_ns)]), stamp_ns)
            self.path.append(T, stamp_ns)
            lin, ang = np.zeros(3), np.zeros(3)
            if self.last_base is not None:
                lin, ang = twist_between(self.last_base[0], T,
                                         (stamp_ns - self.last_base[1]) / 1e9)
            self.bag.write(self.topic("odometry"), m.odometry(
                T, stamp_ns, cfg.world_frame, self.base_frame, lin, ang,
                np.diag(cfg.pose_covariance), np.diag(cfg.twist_covariance)), stamp_ns)
            self.last_base = (T, stamp_ns)
        for r in results:
            cam = self.rig.camera(r.camera)
            stamp_ns = stamps[(r.camera_index, r.set_index)]
            self.newest_ns = max(self.newest_ns, stamp_ns)
            self.bag.write(self.topic(f"{r.camera}/depth"), m.image_from_array(
                r.depth, "32FC1", stamp_ns, cam.frame_id), stamp_ns)
            h, w = r.depth.shape
            info_cam = cam if (cam.width, cam.height) == (w, h) else cam.scaled(w, h)
            self.bag.write(self.topic(f"{r.camera}/camera_info"),
                           m.camera_info_from_camera(info_cam, stamp_ns, cam.frame_id), stamp_ns)
            self.bag.write(self.topic(f"{r.camera}/confidence"), m.image_from_array(
                np.nan_to_num(r.confidence, nan=0.0).astype(np.float32), "32FC1", stamp_ns,
                cam.frame_id), stamp_ns)
        if poses:
            items = self.path.items()
            self.bag.write(self.topic("path"), m.path_msg(
                [p for p, _ in items], [s for _, s in items], cfg.world_frame), items[-1][1])
        if results:
            have = [r for r in results if r.points is not None and len(r.points)]
            points = np.concatenate([r.points for r in have]) if have else np.zeros((0, 3), np.float32)
            colors = np.concatenate([r.colors for r in have]) if have else np.zeros((0, 3), np.uint8)
            points, colors = voxel_downsample(self.odom.points_in_odom(points), colors,
                                              cfg.cloud_voxel_size)
            points, colors = cap_points(points, colors, cfg.cloud_max_points)
            newest = max(stamps[(r.camera_index, r.set_index)] for r in results)
            self.bag.write(self.topic("cloud"), m.pointcloud2_from_points(
                points, newest, cfg.world_frame, colors), newest)

    def status(self, stamp_ns: int, window_index: int, seconds: float, model_sec: float,
               fps: float, frames_in: int, frames_out: int, drops: dict[str, int], engine: Any,
               resets: int, state: str) -> None:
        from wint3r_ros.data import messages as m

        st = engine.status()
        msg = m.msg_class("wint3r_ros/msg/ReconstructionStatus")(
            header=m.header(stamp_ns, self.cfg.world_frame), window_index=int(window_index),
            latency_sec=float(seconds), model_sec=float(model_sec), fps=float(fps),
            frames_in=int(frames_in), frames_out=int(frames_out),
            drop_reasons=list(drops), drop_counts=np.array(list(drops.values()), np.uint64),
            pool_size=int(st["pool"]["size"]), scale=float(st["metres_per_unit"] or 1.0),
            scale_is_metric=bool(st["metric"]), resets=int(resets), state=state)
        self.bag.write(self.topic("status"), msg, stamp_ns)


def _engine(model: Any, rig: Any, cfg: ProcessConfig, side: int) -> Any:
    from wint3r_ros.core.engine import EngineConfig, StreamingReconstructor
    from wint3r_ros.core.window import WindowConfig

    L, O = cfg.window_length, cfg.window_overlap
    pool = cfg.max_pool_tokens or None
    if pool is not None:
        pool = max(pool, 2 * L * len(rig.cameras))
    config = EngineConfig(
        window=WindowConfig(L, O, cfg.image_order), target_long_side=side,
        conf_threshold=cfg.confidence_threshold, merge=cfg.merge, max_pool_entries=pool,
        max_scale_fit_residual=cfg.scale_fit_max_residual,
        keyframe_every=cfg.pool_keyframe_every, latency_budget_s=None, max_pending_windows=1,
        points=True, points_stride=cfg.cloud_pixel_stride)
    return StreamingReconstructor(model, rig, config, image_of=lambda item: item[1])


def process_bag(input_bag: str | Path, out: str | Path, rig: Any,
                config: ProcessConfig | None = None, *, model: Any = None,
                input_long_side: int | None = None,
                log: Callable[[str], None] | None = None) -> ProcessResult:
    """Run the pipeline on ``input_bag`` and write ``out`` (a new bag) and, with ground truth,
    ``OUT.metrics.json``. ``model`` (optional) replaces the checkpoint settings (tests, bench);
    ``rig`` is a calibrated `Rig` (camera order = stream order)."""
    import torch

    from wint3r_ros.core.sync import ApproximateTimePolicy
    from wint3r_ros.core.window import WindowBuilder, WindowConfig
    from wint3r_ros.data.bag import BagReader, BagWriter, sigterm_as_interrupt
    from wint3r_ros.data.messages import (
        array_from_image,
        image_stamp_problem,
        large_image_warning,
        rgb_from_image,
        transforms_from_tf_message,
    )
    from wint3r_ros.model.loader import confidence_threshold_for, load_reconstruction_model
    from wint3r_ros.offline.make_bag import GROUND_TRUTH_TF_TOPIC, ground_truth_depth_topic
    from wint3r_ros.offline.report import MetricsAccumulator

    cfg = config or ProcessConfig()
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    out = Path(out)
    t_start = time.perf_counter()
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    names = list(rig.camera_names)
    if cfg.topics:
        if len(cfg.topics) != len(names):
            raise ConfigError(f"--topics gives {len(cfg.topics)} image topics but the rig has "
                              f"{len(names)} cameras {names}")
        rig = rig.with_cameras([replace(rig.camera(n), topic=t)
                                for n, t in zip(names, cfg.topics)])
    image_topics = [rig.camera(n).topic for n in names]
    base_frame = cfg.base_frame or rig.base_frame
    weights, loaded = "given model", None
    if model is None:
        loaded = load_reconstruction_model(cfg.checkpoint, cfg.model_preset, cfg.device,
                                           cfg.precision, log=log)
        model, weights = loaded.model, loaded.description
        side = input_long_side or cfg.input_long_side or loaded.input_long_side
    else:
        side = input_long_side or cfg.input_long_side or 128
    cfg = replace(cfg, confidence_threshold=confidence_threshold_for(cfg.confidence_threshold,
                                                                      loaded))
    result = ProcessResult(out=out, metrics_path=None, weights=weights)
    timer = _Timer()
    timer.seconds["load_model"] = time.perf_counter() - t_start
    t_start = time.perf_counter()   # frames/s counts the run, not the model loading
    reader = BagReader(input_bag)
    try:
        available = reader.topics
        missing = [t for t in image_topics if t not in available]
        if missing:
            raise BagError(f"bag {input_bag} has no image topic(s) {missing} (the rig's cameras "
                           f"{names}; --topics overrides them); it has {sorted(available)}")
        wrong = {t: available[t] for t in image_topics if available[t] != "sensor_msgs/msg/Image"}
        if wrong:
            raise BagError(f"bag {input_bag}: topic(s) {wrong} are not sensor_msgs/msg/Image")
        depth_topics = {ground_truth_depth_topic(n): i for i, n in enumerate(names)
                        if ground_truth_depth_topic(n) in available}
        has_gt_tf = GROUND_TRUTH_TF_TOPIC in available
        has_gt = has_gt_tf or bool(depth_topics)
        topics = image_topics + list(depth_topics) + ([GROUND_TRUTH_TF_TOPIC] if has_gt_tf else [])
        expected_sets = min(reader.message_count(t) for t in image_topics)
        if cfg.max_sets:
            expected_sets = min(expected_sets, cfg.max_sets)
        policy = ApproximateTimePolicy(len(names), cfg.queue_size, cfg.slop, stream_names=names)
        builder = WindowBuilder(names, WindowConfig(cfg.window_length, cfg.window_overlap,
                                                    cfg.image_order))
        engine = _engine(model, rig, cfg, side)
        acc = MetricsAccumulator()
        gt_depth: dict[tuple[int, int], np.ndarray] = {}
        gt_base: dict[int, np.ndarray] = {}
        stamps: dict[tuple[int, int], int] = {}
        rejected = {"bad_image": 0}
        counters = {"images": 0, "sets": 0, "windows": 0, "frames_in": 0, "frames_out": 0, "resets": 0,
                    "builder_resets": 0, "policy_resets": 0}
        bar = _progress(cfg.progress, expected_sets)
        writer = BagWriter(out, cfg.storage, replace_incomplete=True)
        if writer.replaced:
            log(f"process-bag: replaced the incomplete output {out} of an earlier run "
                f"({writer.replaced})")
        wctx = _Writer(writer, rig, cfg, base_frame)
        first_stamp: list[int] = []
        warned_size: set[int] = set()

        def drops() -> dict[str, int]:
            sync = policy.stats
            d: dict[str, int] = {}
            for st in sync.streams:
                for reason, n in st.dropped.items():
                    d[f"sync_{reason}"] = d.get(f"sync_{reason}", 0) + n
            d.update(rejected)
            d["engine_budget"] = engine.counters["frames_dropped"]
            return d

        def score(results: list[Any]) -> None:
            if not has_gt:
                return
            for r in results:
                key = (r.camera_index, stamps[(r.camera_index, r.set_index)])
                gt = gt_depth.pop(key, None)
                if gt is not None and gt.shape == r.depth.shape:
                    acc.add_depth(r.depth, gt, r.metric)

        def emit(results: list[Any], window: Any | None, t_window: float) -> None:
            if not results and window is None:
                return
            t0 = time.perf_counter()
            before = set(wctx.base_by_stamp)
            wctx.results(results, stamps)
            for s in set(wctx.base_by_stamp) - before:
                gt = gt_base.get(s)
                if gt is not None:
                    acc.add_pose(s, wctx.base_by_stamp[s], gt)
            wctx.base_by_stamp.clear()
            t1 = time.perf_counter()
            score(results)
            timer.seconds["score"] += time.perf_counter() - t1
            t0 += time.perf_counter() - t1
            counters["frames_out"] += len(results)
            if window is not None:
                write_status(max(stamps[f.key] for f in window.frames), window.index, t_window)
            for r in results:
                stamps.pop((r.camera_index, r.set_index), None)
            timer.seconds["write"] += time.perf_counter() - t0

        def write_status(stamp_ns: int, index: int, t_window: float) -> None:
            state = "ok" if not (engine.metric_capable and not engine.metric) else \
                "degraded: no metric scale yet (rig baselines not fitted)"
            if "meaningless" in weights:
                state = "degraded: random model weights, outputs are meaningless"
            elapsed = time.perf_counter() - t_start
            wctx.status(stamp_ns, index, t_window, engine.last_window_seconds or 0.0,
                        counters["frames_out"] / elapsed if elapsed > 0 else 0.0,
                        counters["frames_in"], counters["frames_out"], drops(), engine,
                        counters["resets"], state)

        def run_window(window: Any) -> None:
            for f in window.frames:
                stamps[f.key] = f.item[0]
            counters["windows"] += 1
            counters["frames_in"] += len(window.new_frames)
            t0 = time.perf_counter()
            with torch.inference_mode():
                results = engine.process(window)
            dt = time.perf_counter() - t0
            timer.seconds["model"] += dt
            emit(results, window, dt)
            oldest = min(window.set_indices) - 16
            for key in [k for k in stamps if k[1] < oldest]:
                del stamps[key]

        def reset(reason: str) -> None:
            t0 = time.perf_counter()
            with torch.inference_mode():
                held = engine.reset()
            timer.seconds["model"] += time.perf_counter() - t0
            emit(held, None, 0.0)
            wctx.reset()
            counters["resets"] += 1
            log(f"process-bag: reconstruction reset: {reason}")

        def push(sets: list[Any]) -> bool:
            """Feed synchronised sets; False once max_sets is reached."""
            for synced in sets:
                if cfg.max_sets and counters["sets"] >= cfg.max_sets:
                    return False
                counters["sets"] += 1
                if bar is not None:
                    bar.update(1)
                t0 = time.perf_counter()
                # the engine's windows still count time in seconds (stamps stay exact in the items)
                window = builder.push(synced, [None if s is None else s / 1e9 for s in synced.stamps])
                timer.seconds["sync_window"] += time.perf_counter() - t0
                if builder.stats["resets"] != counters["builder_resets"]:
                    counters["builder_resets"] = builder.stats["resets"]
                    reset("synchronised sets went back in time")
                if window is not None:
                    run_window(window)
            return True

        def prune_ground_truth(now_ns: int) -> None:
            horizon = now_ns - 30 * _NS   # results come at most a window (+ slop) late
            for key in [k for k in gt_depth if k[1] < horizon]:
                del gt_depth[key]
            for key in [k for k in gt_base if k < horizon]:
                del gt_base[key]

        with sigterm_as_interrupt(), writer:
            wctx.static()
            try:
                going = True
                for msg in timer.iterate("read_decode", reader.messages_by_stamp(topics)):
                    if not first_stamp:
                        first_stamp.append(msg.stamp_ns)
                    if msg.topic in depth_topics:
                        t0 = time.perf_counter()
                        gt_depth[(depth_topics[msg.topic], msg.stamp_ns)] = \
                            array_from_image(msg.msg, msg.topic).astype(np.float32)
                        timer.seconds["read_decode"] += time.perf_counter() - t0
                        continue
                    if msg.topic == GROUND_TRUTH_TF_TOPIC:
                        for _parent, child, stamp, T in transforms_from_tf_message(msg.msg):
                            if child == rig.base_frame:
                                gt_base[stamp] = T
                        continue
                    cam = image_topics.index(msg.topic)
                    counters["images"] += 1
                    stamp_problem = image_stamp_problem(msg.stamp_ns)
                    if stamp_problem is not None:    # counted as such, not as `late` by sync
                        rejected[stamp_problem[0]] = rejected.get(stamp_problem[0], 0) + 1
                        if rejected[stamp_problem[0]] <= 3:
                            log(f"process-bag: topic {msg.topic}: {stamp_problem[1]}; image "
                                f"skipped")
                        continue
                    if cam not in warned_size:
                        warned_size.add(cam)
                        note = large_image_warning(msg.msg, msg.topic, 16 + cfg.queue_size +
                                                   cfg.window_length, len(names))
                        if note:
                            log(f"process-bag: warning: {note}")
                    t0 = time.perf_counter()
                    try:
                        rgb = np.array(rgb_from_image(msg.msg, msg.topic))  # own, writable
                    except InputError as err:
                        rejected["bad_image"] += 1
                        if rejected["bad_image"] <= 3:
                            log(f"process-bag: {err}; image skipped")
                        continue
                    finally:
                        timer.seconds["read_decode"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    sets = policy.add(cam, msg.stamp_ns, (msg.stamp_ns, rgb))
                    timer.seconds["sync_window"] += time.perf_counter() - t0
                    if policy.stats.resets != counters["policy_resets"]:
                        counters["policy_resets"] = policy.stats.resets
                        builder.reset()
                        reset("image stamps jumped back")
                    if not push(sets):
                        going = False
                        break
                    if len(gt_depth) > 64 * len(names):
                        prune_ground_truth(msg.stamp_ns)
                if going:
                    push(policy.flush())
                tail = builder.flush()
                if tail is not None:
                    run_window(tail)
                t0 = time.perf_counter()
                with torch.inference_mode():
                    held = engine.flush()
                timer.seconds["model"] += time.perf_counter() - t0
                emit(held, None, 0.0)
                if counters["windows"]:   # the final counts, after the last held frames
                    t0 = time.perf_counter()
                    write_status(wctx.newest_ns, counters["windows"] - 1, 0.0)
                    timer.seconds["write"] += time.perf_counter() - t0
            except BagError as err:
                raise BagError(f"{err}; the output bag {out} is closed and holds the "
                               f"{counters['frames_out']} frames processed before") from err
            finally:
                if bar is not None:
                    bar.close()
        result.counts = dict(writer.counts)
    finally:
        reader.close()
    result.sets = counters["sets"]
    result.windows = counters["windows"]
    result.frames_in = counters["images"]
    result.frames_out = counters["frames_out"]
    d = drops()
    result.drops = d
    result.frames_dropped = int(sum(policy.stats.streams[i].dropped_total
                                    for i in range(len(names))) + sum(rejected.values())
                                + engine.counters["frames_dropped"])
    result.metric_scale = bool(engine.metric)
    timer.seconds["total"] = time.perf_counter() - t_start   # without load_model
    result.timings = dict(timer.seconds)
    if has_gt:
        result.metrics = acc.summary()
        result.metrics_path = metrics_path_for(out)
        doc = {"input": str(input_bag), "output": str(out), "weights": weights,
               "metrics": result.metrics, "frames_processed": result.frames_out,
               "frames_dropped": result.frames_dropped, "drops": d, "sets": result.sets,
               "windows": result.windows, "metric_scale": result.metric_scale,
               "frames_per_s": result.frames_per_s, "seconds": result.timings,
               "settings": {k: (list(v) if isinstance(v, tuple) else v)
                            for k, v in asdict(cfg).items()} | {"input_long_side": side}}
        result.metrics_path.write_text(json.dumps(doc, indent=1) + "\n")
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    from wint3r_ros.data.bag import STORAGE_FORMATS

    parser.add_argument("input", type=Path, help="input rosbag2 (directory, .mcap or .db3)")
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--rig", type=Path, default=None,
                        help="rig calibration YAML (default: INPUT.rig.yaml beside the input, "
                             "as make-bag writes it)")
    parser.add_argument("--topics", nargs="+", default=None,
                        help="image topics in the rig's camera order (default: the rig's)")
    parser.add_argument("--checkpoint", default=None,
                        help="model weights (default: the shipped tiny checkpoint)")
    parser.add_argument("--model-config", type=Path, default=None,
                        help="fusion_node parameter YAML (e.g. config/wint3r.yaml): checkpoint, "
                             "preset, input size, confidence threshold, pool, cloud, frames")
    parser.add_argument("--sync-config", type=Path, default=None,
                        help="sync_node parameter YAML (e.g. config/rig.yaml): slop, "
                             "queue_size, window_length, window_overlap")
    parser.add_argument("--format", choices=STORAGE_FORMATS, default="mcap",
                        help="output storage (default mcap)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--input-long-side", type=int, default=None,
                        help="model input long side (default: the checkpoint card's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--confidence-threshold", type=float, default=None,
                        help="depth below this model confidence is NaN (default 0: the "
                             "checkpoint card's value, else 1.5, as fusion_node; 1: keep all)")
    parser.add_argument("--max-sets", type=int, default=0,
                        help="stop after this many synchronised sets (0: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.data.rig_files import load_rig
    from wint3r_ros.errors import CalibrationError
    from wint3r_ros.offline.make_bag import rig_path_for

    cfg = ProcessConfig(storage=args.format, max_sets=args.max_sets,
                        progress=False if args.no_progress else None)
    for path in (args.sync_config, args.model_config):
        if path is not None:
            params = load_params_file(path)
            if "window_length" in params and "window_overlap" not in params:
                params["window_overlap"] = cfg.window_overlap
            cfg = config_from_params(params, cfg)
    overrides: dict[str, Any] = {}
    if args.topics:
        overrides["topics"] = tuple(args.topics)
    if args.checkpoint is not None:
        overrides["checkpoint"] = args.checkpoint
    if args.device is not None:
        overrides["device"] = args.device
    if args.input_long_side is not None:
        overrides["input_long_side"] = args.input_long_side
    if args.threads is not None:
        overrides["torch_threads"] = args.threads
    if args.confidence_threshold is not None:
        overrides["confidence_threshold"] = args.confidence_threshold
    cfg = replace(cfg, **overrides)
    rig_path = args.rig or rig_path_for(args.input)
    if not Path(rig_path).is_file():
        raise ConfigError(f"no rig file {rig_path}: pass --rig RIG.yaml (make-bag writes "
                          f"BAG.rig.yaml beside the bag; `wint3r-ros calibrate` makes one)")
    try:
        rig = load_rig(rig_path)
    except CalibrationError as err:
        raise ConfigError(f"--rig {rig_path}: {err}") from err
    result = process_bag(args.input, args.out, rig, cfg)
    t = result.timings
    print(f"wrote {result.out}: {result.frames_out} frames ({result.sets} sets x "
          f"{len(rig.cameras)} cameras, {result.windows} windows), {result.frames_dropped} "
          f"dropped, {result.frames_per_s:.1f} frames/s")
    print(f"weights: {result.weights}")
    if "meaningless" in result.weights:
        print("WARNING: the model weights are random: poses and depth are meaningless")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    if result.metrics is not None:
        m = result.metrics
        if m["depth_frames"] == 0 and result.frames_out:
            given = cfg.confidence_threshold or "of the checkpoint's card"
            print(f"note: no depth pixel passed the confidence threshold {given}; lower it "
                  f"with --confidence-threshold (1 keeps every pixel)")

        def f(x: Any) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        print(f"metrics ({result.metrics_path}): ATE {f(m['ate'])} m, RPE {f(m['rpe_trans'])} m "
              f"/ {f(m['rpe_rot_deg'])} deg, depth Abs Rel {f(m['abs_rel'])}, delta<1.25 "
              f"{f(m['delta1'])}")
    return 0
