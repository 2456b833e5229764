"""``wint3r-ros process-bag IN OUT --rig RIG.yaml``: the pipeline on a rosbag2, outputs to a bag.

A thin shell around the one pipeline (`core.pipeline`): images of the rig's cameras
(``--topics`` overrides the rig file's topics, in camera order) are read in header-stamp order
and fed to `core.pipeline.offline.Pipeline` (the front end sync_node runs, then the fusion stage
fusion_node runs); each output batch becomes the messages fusion_node publishes
(`data.builders.output_messages`), written with the source stamps as header stamps and log
times, under the same topic names:

- ``/tf``: ``world_frame -> base_frame`` per synchronised set (REP-105 odometry frame, starting
  at the first pose); ``/tf_static``: ``base_frame -> <camera optical frame>`` from the rig,
  stamped with the first output;
- ``<ns>/<camera>/depth`` (32FC1, metres with a metric rig, NaN where invalid or below the
  confidence threshold), ``<ns>/<camera>/camera_info`` (for the depth image's size),
  ``<ns>/<camera>/confidence`` (32FC1);
- ``<ns>/cloud``, ``<ns>/odometry``, ``<ns>/path``, ``<ns>/status`` (per window);

with ``<ns>`` = ``/fusion_node``, so RViz layouts and ``wint3r-ros report`` work on either.

Settings: the nodes' parameter files, each for its own half (``--sync-config``: sync_node's,
``--model-config``: fusion_node's), checked with the nodes' own rules (`core.pipeline.params`);
the command-line flags override the model file. When the input has make-bag's ground truth,
``OUT.metrics.json`` beside the output holds ATE, RPE, depth Abs Rel and delta < 1.25 (see
`offline.report`). The command line is `offline.process_bag_command`. A corrupt or truncated
input raises `BagError` after closing the output bag, which then holds every frame processed
before. A run that writes no frame is an error.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.errors import BagError, ConfigError, InputError
from wint3r_ros.offline.bag_cameras import CAMERA_TYPES, camera_info_topics, sibling_camera_info_topic
from wint3r_ros.offline.ground_truth import GroundTruthScorer
from wint3r_ros.offline.process_config import ProcessConfig, load_params_file, settings_from_files

__all__ = ["ProcessConfig", "ProcessResult", "process_bag", "metrics_path_for",
           "sibling_camera_info_topic", "CAMERA_TYPES",
           "load_params_file", "settings_from_files"]

_NS = 1_000_000_000


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
    silent_cameras: list[str] = field(default_factory=list)
    map_files: list[str] = field(default_factory=list)
    peak_buffer_bytes: int = 0   # most bytes of images the front end held (with a budget)
    buffer_budget_bytes: int = 0

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
        self._t0: dict[str, float] = {}

    def start(self, phase: str) -> None:
        self._t0[phase] = time.perf_counter()

    def stop(self, phase: str) -> None:
        self.seconds[phase] += time.perf_counter() - self._t0.pop(phase)


def _progress(enabled: bool | None, total: int | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="set", desc="process-bag", dynamic_ncols=True)


class _BagRun:
    """One process-bag run, step by step: open, read, write, finish, result."""

    def __init__(self, input_bag: Path, out: Path, rig: Any, cfg: ProcessConfig, model: Any,
                 log: Callable[[str], None]) -> None:
        self.input_bag, self.out, self.rig, self.cfg, self.log = input_bag, out, rig, cfg, log
        # without a rig (relative scale): cam0, cam1, ... in --topics order
        self.names = list(rig.camera_names) if rig is not None else \
            [f"cam{i}" for i in range(len(cfg.topics))]
        self.timer = _Timer()
        self.timer.start("load_model")
        self.pipeline, self.weights = self._build_pipeline(model)
        self.timer.stop("load_model")
        self.t_start = time.perf_counter()   # frames/s counts the run, not the model loading
        self.counts = {"images": 0, "sets": 0, "frames_out": 0}
        self.rejected = {"bad_image": 0, "bad_camera_info": 0}
        self.size_checked: set[int] = set()
        self.writer: Any = None
        self.newest_ns = 0

    # ------------------------------------------------------------------------ set-up
    def _build_pipeline(self, model: Any) -> tuple[Any, str]:
        from wint3r_ros.core.pipeline.frontend import SyncFrontEnd
        from wint3r_ros.core.pipeline.fusion import FusionStage
        from wint3r_ros.core.pipeline.offline import Pipeline
        from wint3r_ros.core.pipeline.settings import model_settings, resolve_base_frame, sync_settings
        from wint3r_ros.model.loader import load_reconstruction_model
        from wint3r_ros.model.runtime import set_torch_threads

        fusion = self.cfg.fusion
        base_frame = resolve_base_frame(fusion["base_frame"], self.rig, self.log)
        self.base_frame = base_frame
        if base_frame == fusion["world_frame"]:
            raise ConfigError(f"world_frame and base_frame are both {base_frame!r}")
        set_torch_threads(fusion["torch_threads"])
        loaded = None
        if model is None:
            loaded = load_reconstruction_model(fusion["checkpoint"], fusion["model_preset"],
                                               fusion["device"], fusion["precision"], log=self.log)
            model = loaded.model
        resolved = model_settings(fusion, loaded)
        stage = FusionStage(model, fusion, resolved, self.rig, base_frame=base_frame,
                            log=lambda text: self.log(f"process-bag: {text}"))
        cameras = self.rig.cameras if self.rig is not None else []
        front = SyncFrontEnd(self.names, sync_settings(
            self.cfg.sync, [c.time_offset for c in cameras] or [0.0] * len(self.names)))
        # no rig: each camera's optical frame is its images' header frame (set by the first one)
        frame_ids = [c.frame_id for c in cameras] or [""] * len(self.names)
        return Pipeline(front, stage, frame_ids), resolved.description

    def open_input(self, reader: Any) -> list[str]:
        """Check the input's topics; the topics to read (images, then ground truth)."""
        names = self.names
        self.image_topics = [self.rig.camera(n).topic for n in names] if self.rig is not None \
            else list(self.cfg.topics)
        available = reader.topics
        missing = [t for t in self.image_topics if t not in available]
        if missing:
            raise BagError(f"bag {self.input_bag} has no image topic(s) {missing} (the rig's "
                           f"cameras {names}; --topics overrides them); it has {sorted(available)}")
        wrong = {t: available[t] for t in self.image_topics if available[t] not in CAMERA_TYPES}
        if wrong:
            raise BagError(f"bag {self.input_bag}: topic(s) {wrong} are neither "
                           f"{' nor '.join(CAMERA_TYPES)}")
        self.info_topics, fixed = camera_info_topics(self.cfg, self.names, self.image_topics,
                                                     available, self.rig is not None,
                                                     self.input_bag, self.log)
        if fixed is not None:
            self.pipeline.camera_infos = fixed
        self.scorer = GroundTruthScorer(names, available, self.base_frame)
        self.expected_sets = min(reader.message_count(t) for t in self.image_topics)
        if self.cfg.max_sets:
            self.expected_sets = min(self.expected_sets, self.cfg.max_sets)
        return self.image_topics + [t for t in self.info_topics if t] + self.scorer.topics

    def camera_info(self, msg: Any) -> bool:
        """Take a CameraInfo message of a camera (the latest is used); False for other topics."""
        from wint3r_ros.data.messages import camera_info_record

        if msg.topic not in self.info_topics:
            return False
        cam = self.info_topics.index(msg.topic)
        try:
            self.pipeline.camera_infos[cam] = camera_info_record(msg.msg, msg.topic)
            if not self.pipeline.frame_ids[cam]:
                self.pipeline.frame_ids[cam] = str(msg.msg.header.frame_id).lstrip("/")
        except InputError as err:
            self._reject(cam, "bad_camera_info", f"{err}; the last good one is used")
        return True

    # ------------------------------------------------------------------------- steps
    def image(self, msg: Any) -> bool:
        """Decode one image and feed it to the pipeline; False once max_sets is reached."""
        from wint3r_ros.data.messages import rgb_from_camera_message

        cam = self.image_topics.index(msg.topic)
        self.counts["images"] += 1
        if not self._usable(cam, msg):
            return True
        if not self.pipeline.frame_ids[cam]:   # no rig: the images' own optical frame
            self.pipeline.frame_ids[cam] = str(msg.msg.header.frame_id).lstrip("/") or \
                f"{self.names[cam]}_optical_frame"
        self.timer.start("read_decode")
        try:
            rgb = np.array(rgb_from_camera_message(msg.msg, msg.topic))  # own, writable
        except InputError as err:
            self._reject(cam, "bad_image", str(err))
            return True
        finally:
            self.timer.stop("read_decode")
        self.write(self._step(lambda: self.pipeline.add(cam, msg.stamp_ns, rgb)))
        for e in self.pipeline.front.events():  # drained, so they never pile up
            if e.kind == "clock_warning":
                self.log(f"process-bag: warning: sync: {e.detail}")
        return not (self.cfg.max_sets and self.pipeline.front.sets >= self.cfg.max_sets)

    def _usable(self, cam: int, msg: Any) -> bool:
        """False (counted, logged) for an image whose stamp cannot be used (0, before 1970);
        a warning once per camera for images large enough to fill the memory."""
        from wint3r_ros.data.messages import image_stamp_problem, large_image_warning

        problem = image_stamp_problem(msg.stamp_ns)
        if problem is not None:    # counted as such, not as `late` by sync
            self._reject(cam, problem[0], f"topic {msg.topic}: {problem[1]}")
            return False
        if cam not in self.size_checked and hasattr(msg.msg, "encoding"):
            self.size_checked.add(cam)
            sync = self.cfg.sync
            note = large_image_warning(msg.msg, msg.topic, 16 + sync["queue_size"] +
                                       sync["window_length"], len(self.image_topics),
                                       self.pipeline.front.settings.buffer_bytes,
                                       sync["window_length"] * len(self.image_topics))
            if note:
                self.log(f"process-bag: warning: {note}")
        return True

    def _reject(self, cam: int, reason: str, text: str) -> None:
        from wint3r_ros.core.pipeline.frontend import REJECT_REASONS

        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        if reason in REJECT_REASONS:
            self.pipeline.front.reject(cam, reason)
        if self.rejected[reason] <= 3:
            self.log(f"process-bag: {text}; image skipped")

    def _step(self, run: Callable[[], list[Any]]) -> list[Any]:
        import torch

        windows = self.pipeline.windows
        t0 = time.perf_counter()
        with torch.inference_mode():
            batches = run()
        spent = time.perf_counter() - t0
        engine = self.pipeline.fusion.engine
        model = (engine.last_window_seconds or 0.0) * (self.pipeline.windows - windows) \
            if engine is not None else 0.0
        self.timer.seconds["model"] += min(model, spent)
        self.timer.seconds["sync_window"] += max(0.0, spent - model)
        return batches

    def write(self, batches: list[Any]) -> None:
        """Write the messages of each batch; a status after each window's batch."""
        from wint3r_ros.data.builders import output_messages, status_msg

        stage = self.pipeline.fusion
        settings = stage.outputs.settings
        for batch in batches:
            if not batch:
                continue
            self.timer.start("write")
            for m in output_messages(batch, settings):
                if m.topic == "/tf_static":   # logged with the next message: the bag's span
                    self.writer.write_with_next(m.topic, m.msg)
                    continue
                self.writer.write(self.topic(m.topic), m.msg, m.stamp_ns)
                self.newest_ns = max(self.newest_ns, m.stamp_ns)
            self.counts["frames_out"] += len(batch.frames)
            if batch.window is not None:
                self.writer.write(self.topic("status"), status_msg(self.status(), settings.world_frame),
                                  stage.last_stamp_ns)
            self.timer.stop("write")
            self.timer.start("score")
            self.scorer.score(batch)
            self.timer.stop("score")

    def topic(self, name: str) -> str:
        if name.startswith("/"):
            return name
        ns = self.cfg.namespace.strip("/")
        return f"/{ns}/{name}" if ns else f"/{name}"

    def drops(self) -> dict[str, int]:
        """Frames dropped, per reason (the front end's per camera summed, the rejected)."""
        d: dict[str, int] = {}
        for cam in self.pipeline.front.stats()["cameras"]:
            for reason, n in cam["dropped"].items():
                d[f"sync_{reason}"] = d.get(f"sync_{reason}", 0) + n
            d["sync_pending"] = d.get("sync_pending", 0) + cam["pending"]
        d.update(self.rejected)
        return d

    def status(self) -> Any:
        elapsed = time.perf_counter() - self.t_start
        return self.pipeline.fusion.status(
            drops=self.drops(), latency_sec=0.0,
            fps=self.counts["frames_out"] / elapsed if elapsed > 0 else 0.0)

    def finish(self, drain: bool) -> None:
        """The end of the input: the last sets and windows (``drain``: every set still
        possible), the held frames, a final status."""
        from wint3r_ros.data.builders import status_msg

        self.write(self._step(lambda: self.pipeline.finish(drain)))
        if self.pipeline.windows:   # the final counts, after the last held frames
            self.writer.write(self.topic("status"), status_msg(
                replace(self.status(), stamp_ns=self.newest_ns),
                self.pipeline.fusion.outputs.settings.world_frame), self.newest_ns)

    def result(self) -> ProcessResult:
        stats = self.pipeline.front.stats()
        result = ProcessResult(out=self.out, metrics_path=None, weights=self.weights)
        result.sets, result.windows = stats["sets"], self.pipeline.windows
        result.frames_in, result.frames_out = self.counts["images"], self.counts["frames_out"]
        result.drops = self.drops()
        result.frames_dropped = int(sum(result.drops.values()))
        result.counts = dict(self.writer.counts)
        result.silent_cameras = [c["name"] for c in stats["cameras"] if c["silent"]]
        result.peak_buffer_bytes = stats["peak_held_bytes"]
        result.buffer_budget_bytes = self.pipeline.front.settings.buffer_bytes
        engine = self.pipeline.fusion.engine
        result.metric_scale = bool(engine is not None and engine.metric)
        self.timer.seconds["total"] = time.perf_counter() - self.t_start
        result.timings = dict(self.timer.seconds)
        return result


def process_bag(input_bag: str | Path, out: str | Path, rig: Any,
                config: ProcessConfig | None = None, *, model: Any = None,
                log: Callable[[str], None] | None = None,
                map_dir: str | Path | None = None) -> ProcessResult:
    """Run the pipeline on ``input_bag`` and write ``out`` (a new bag) and, with ground truth,
    ``OUT.metrics.json``. ``model`` (optional) replaces the checkpoint settings (tests, bench);
    ``rig`` is a calibrated `Rig` (camera order = stream order); ``map_dir``: also write the
    accumulated map there, as fusion_node's ~/save_map does (`data.map_files.save_map`)."""
    from wint3r_ros.data.bag import BagReader, BagWriter, sigterm_as_interrupt

    cfg = config or ProcessConfig()
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    if rig is None and not cfg.topics:
        raise ConfigError("without a rig file, --topics names the image topics (camera order)")
    run_ = _BagRun(Path(input_bag), Path(out), _rig_with_topics(rig, cfg.topics), cfg, model, log)
    with BagReader(input_bag) as reader:
        topics = run_.open_input(reader)
        bar = _progress(cfg.progress, run_.expected_sets)
        run_.writer = BagWriter(run_.out, cfg.storage, replace_incomplete=True)
        if run_.writer.replaced:
            log(f"process-bag: replaced the incomplete output {out} of an earlier run "
                f"({run_.writer.replaced})")
        with sigterm_as_interrupt(), run_.writer:
            try:
                _read(run_, reader, topics, bar)
            except BagError as err:
                raise BagError(f"{err}; the output bag {out} is closed and holds the "
                               f"{run_.counts['frames_out']} frames processed before") from err
            finally:
                if bar is not None:
                    bar.close()
    result = run_.result()
    if run_.scorer.active:
        _write_metrics(result, run_, input_bag)
    if map_dir is not None:
        result.map_files = _save_map(run_, map_dir)
    return result


def _save_map(run_: _BagRun, map_dir: str | Path) -> list[str]:
    """The map folder of the run (the same files as fusion_node's ~/save_map)."""
    from wint3r_ros.data.map_files import save_map

    stage = run_.pipeline.fusion
    points, colors, stamps, poses, stats = stage.map.snapshot()
    settings = {**dict(run_.cfg.fusion), "base_frame": stage.outputs.settings.base_frame,
                "input": str(run_.input_bag), "scale_is_metric": bool(
                    stage.engine is not None and stage.engine.metric), "map": stats}
    return save_map(map_dir, points, colors, stamps, poses, stage.rig, settings)


def _read(run_: _BagRun, reader: Any, topics: list[str], bar: Any) -> None:
    """Feed every message of ``topics`` in stamp order; then finish the stream."""
    budget = run_.pipeline.front.settings.buffer_bytes   # a quarter for the stamp-order buffer
    stream = reader.messages_by_stamp(
        topics, jump_back_s=run_.cfg.sync["jump_back_threshold"],
        max_buffer_bytes=min(256 << 20, budget // 4) if budget else 256 << 20)
    going = True
    while going:
        run_.timer.start("read_decode")
        msg = next(stream, None)
        run_.timer.stop("read_decode")
        if msg is None:
            break
        if run_.scorer.take(msg) or run_.camera_info(msg):
            continue
        going = run_.image(msg)
        if bar is not None and run_.pipeline.front.sets != bar.n:
            bar.update(run_.pipeline.front.sets - bar.n)
    run_.finish(drain=going)


def _rig_with_topics(rig: Any, topics: tuple[str, ...]) -> Any:
    """The rig with ``--topics`` as its cameras' image topics (camera order)."""
    if not topics or rig is None:
        return rig
    names = list(rig.camera_names)
    if len(topics) != len(names):
        raise ConfigError(f"--topics gives {len(topics)} image topics but the rig has "
                          f"{len(names)} cameras {names}")
    return rig.with_cameras([replace(rig.camera(n), topic=t) for n, t in zip(names, topics)])


def _write_metrics(result: ProcessResult, run_: _BagRun, input_bag: Any) -> None:
    result.metrics = run_.scorer.acc.summary()
    result.metrics_path = metrics_path_for(result.out)
    side = run_.pipeline.fusion.model_settings.input_long_side
    settings = {"sync": dict(run_.cfg.sync), "fusion": dict(run_.cfg.fusion) |
                {"input_long_side": side}, **{k: v for k, v in asdict(run_.cfg).items()
                                              if k not in ("sync", "fusion")}}
    doc = {"input": str(input_bag), "output": str(result.out), "weights": result.weights,
           "metrics": result.metrics, "frames_processed": result.frames_out,
           "frames_dropped": result.frames_dropped, "drops": result.drops, "sets": result.sets,
           "windows": result.windows, "metric_scale": result.metric_scale,
           "clock": [c["clock"] for c in run_.pipeline.front.stats()["cameras"]],
           "frames_per_s": result.frames_per_s, "seconds": result.timings,
           "settings": json.loads(json.dumps(settings, default=list))}
    result.metrics_path.write_text(json.dumps(doc, indent=1) + "\n")
