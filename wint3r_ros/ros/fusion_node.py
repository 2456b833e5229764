"""fusion_node: `WindowBatch` -> WinT3R streaming reconstruction -> TF, depth, clouds, odometry.

    ros2 run wint3r_ros fusion_node --ros-args --params-file config/wint3r.yaml \
        -r ~/windows:=/sync_node/windows
    python -m wint3r_ros.ros.fusion_node --ros-args -p rig_file:=rig.yaml -p device:=cuda

The subscription callback only queues the batch (a bounded queue: when full the oldest window
is dropped and counted); one worker thread decodes it, runs the core `StreamingReconstructor`
and publishes, so the executor never waits for the model. Everything is stamped with the source
image stamps:

- ``/tf``: ``world_frame -> base_frame`` per synchronised set (REP-105 odometry: the frame starts
  at the rig's first pose and stays continuous across resets); ``/tf_static`` (transient local):
  ``base_frame -> <camera optical frame>`` from the rig calibration (without one: camera 0 at
  an assumed mount on ``/tf_static``, the other cameras from the reconstruction on ``/tf``);
- ``~/<camera>/depth`` (32FC1, metres when the rig makes the scale metric, NaN where invalid or
  below ``confidence_threshold``), ``~/<camera>/camera_info`` (for the depth image's own size, same
  header), ``~/<camera>/confidence`` (32FC1);
- ``~/cloud``: PointCloud2 (x, y, z, rgb) in ``world_frame``, confidence-filtered,
  voxel-downsampled, at most ``cloud_max_points`` points per window;
- ``~/odometry`` (nav_msgs/Odometry with covariance) and ``~/path`` of the base;
- ``~/status`` (ReconstructionStatus, once per window) and ``/diagnostics``.

A new epoch from sync_node, stamps going backwards, or the ROS clock jumping back (a bag
played with ``--loop --clock`` and ``use_sim_time:=true``) resets the reconstruction; the reset is
logged and counted, never a crash.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node

from wint3r_ros.core import outputs
from wint3r_ros.errors import CalibrationError, ConfigError, InputError, Wint3rError
from wint3r_ros.model.loader import confidence_threshold_for, load_reconstruction_model
from wint3r_ros.ros import convert, diagnostics, qos
from wint3r_ros.ros.batch import WindowAssembler, decode_window_batch
from wint3r_ros.ros.params import ParamSpec, declare_parameters, set_parameters_callback, validate
from wint3r_ros.ros.tf import StaticTransformBroadcaster, TransformBroadcaster, check_frame_id

__all__ = ["FUSION_PARAMETERS", "FusionNode", "load_reconstruction_model", "main"]

DROP_REASONS = ("queue_full", "latency_budget", "stream_reset", "bad_window", "error",
                "bad_camera_info")


def _multiple_of_16(v: int) -> str | None:
    return None if v % 16 == 0 else f"{v} is not a multiple of 16"


FUSION_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("checkpoint", "", "str",
              "Model weights (.safetensors/.pth/.bin); empty: the package's tiny checkpoint"),
    ParamSpec("model_preset", "tiny", "str", "Network configuration of the weights",
              choices=("tiny", "official")),
    ParamSpec("device", "auto", "str", "auto (CUDA when present), cpu, cuda or cuda:N"),
    ParamSpec("precision", "fp32", "str",
              "Transformer matmul precision; auto: bf16 where the device has it (docs/MODEL.md)",
              choices=("auto", "fp32", "bf16", "fp16", "int8")),
    ParamSpec("input_long_side", 0, "int",
              "Long side of the model input, px (multiple of 16); 0: the checkpoint's own",
              low=0, high=4096, rule=_multiple_of_16),
    ParamSpec("torch_threads", 0, "int", "CPU threads for torch (0: torch's default)",
              low=0, high=1024),
    ParamSpec("confidence_threshold", 0.0, "float",
              "Depth and cloud points below this model confidence (>= 1) are NaN / left out; "
              "0: the checkpoint card's value (else 1.5); 1: keep every pixel",
              low=0.0, high=1e6, read_only=False),
    ParamSpec("scale_fit_max_residual", 0.25, "float",
              "A time step's rig fit (metric scale) is refused when its residual exceeds this share "
              "of the rig's size: the model did not resolve the camera positions",
              low=1e-6, high=1e6),
    ParamSpec("max_pool_tokens", 512, "int",
              "Bound on the camera token pool (frames); 0: unbounded (the authors' behaviour)",
              low=0, high=10_000_000),
    ParamSpec("pool_keyframe_every", 4, "int",
              "Keep every k-th window's tokens when the pool is full", low=1, high=10_000),
    ParamSpec("merge", "overlap", "str",
              "overlap: frames seen by two windows take the later pose (one window more "
              "latency); first: publish from the first window", choices=("overlap", "first")),
    ParamSpec("image_order", "time", "str", "Order of a window's images for the model",
              choices=("time", "camera")),
    ParamSpec("queue_size", 2, "int", "Windows waiting for the model (full: the oldest is dropped)",
              low=1, high=1000),
    ParamSpec("hold_timeout", 2.0, "float",
              "Publish the frames held for the next window's merge when no window has come for "
              "this long (wall time, s: the end of a bag, stopped cameras); 0: never",
              low=0.0, high=3600.0, read_only=False),
    ParamSpec("latency_budget", 1.0, "float",
              "Drop a window older than this (stream time, s) than the newest one received; 0: never",
              low=0.0, high=1e6, read_only=False),
    ParamSpec("rig_file", "", "str",
              "Rig calibration YAML: camera optical frames for /tf_static and the metric scale"),
    ParamSpec("world_frame", "odom", "str", "Frame of TF, odometry, path and cloud (REP-105 odom)"),
    ParamSpec("base_frame", "base_link", "str", "Rig base frame (empty: the rig_file's)"),
    ParamSpec("publish_tf", True, "bool", "Publish world_frame -> base_frame on /tf"),
    ParamSpec("publish_camera_tf", True, "bool",
              "Publish base_frame -> camera optical frames: on /tf_static from rig_file (without "
              "one: camera 0's assumed mount, the others on /tf from the reconstruction); off "
              "when robot_state_publisher already does"),
    ParamSpec("publish_depth", True, "bool", "Publish ~/<camera>/depth and ~/<camera>/camera_info"),
    ParamSpec("publish_confidence", True, "bool", "Publish ~/<camera>/confidence"),
    ParamSpec("publish_cloud", True, "bool", "Publish ~/cloud"),
    ParamSpec("publish_odometry", True, "bool", "Publish ~/odometry"),
    ParamSpec("publish_path", True, "bool", "Publish ~/path"),
    ParamSpec("cloud_voxel_size", 0.05, "float",
              "Voxel edge of the cloud, m (model units without metric scale); 0: no voxel filter",
              low=0.0, high=100.0, read_only=False),
    ParamSpec("cloud_max_points", 50000, "int", "Most points per cloud message", low=1,
              high=100_000_000, read_only=False),
    ParamSpec("cloud_pixel_stride", 4, "int", "Cloud points from every k-th model pixel",
              low=1, high=64),
    ParamSpec("path_max_poses", 2000, "int", "Poses kept in ~/path (oldest dropped)", low=1,
              high=10_000_000),
    ParamSpec("pose_covariance", [0.01, 0.01, 0.01, 0.01, 0.01, 0.01], "float_list",
              "Odometry pose variances (x, y, z, roll, pitch, yaw); the model gives none, "
              "so this is a setting", low=0.0, high=1e9,
              rule=lambda v: None if len(v) == 6 else f"needs 6 values, got {len(v)}"),
    ParamSpec("twist_covariance", [0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "float_list",
              "Odometry twist variances (vx, vy, vz, wx, wy, wz)", low=0.0, high=1e9,
              rule=lambda v: None if len(v) == 6 else f"needs 6 values, got {len(v)}"),
    ParamSpec("status_period", 1.0, "float", "Seconds (wall time) between /diagnostics messages",
              low=0.05, high=3600.0),
    ParamSpec("silence_timeout", 10.0, "float",
              "Warn when ~/windows delivers nothing for this long (wall time, s)",
              low=0.1, high=3600.0),
)


class FusionNode(Node):
    """The fusion node (see the module docstring). ``model`` (optional) replaces the checkpoint
    parameters (tests, embedding); keyword arguments go to rclpy's Node."""

    def __init__(self, node_name: str = "fusion_node", *, model: Any = None, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = p = declare_parameters(self, FUSION_PARAMETERS)
        self._load_rig(p)
        for name in ("world_frame", "base_frame"):
            try:
                check_frame_id(self.world_frame if name == "world_frame" else self.base_frame, name)
            except InputError as err:
                raise ConfigError(str(err)) from err
        if self.world_frame == self.base_frame:
            raise ConfigError(f"world_frame and base_frame are both {self.world_frame!r}")
        import torch

        if p["torch_threads"]:
            torch.set_num_threads(p["torch_threads"])
        self.model_state = "ok"
        if model is None:
            try:
                loaded = load_reconstruction_model(
                    p["checkpoint"], p["model_preset"], p["device"], p["precision"],
                    log=self.get_logger().error)
            except Wint3rError as err:
                raise ConfigError(str(err)) from err
            model, side, what = loaded.model, loaded.input_long_side, loaded.description
            if "meaningless" in what:
                self.model_state = "degraded: random model weights, outputs are meaningless"
        else:
            side, what, loaded = 128, f"given {type(model).__name__}", None
        self.model = model
        self._loaded = loaded
        self.input_long_side = p["input_long_side"] or side
        self.get_logger().info(
            f"model: {what}; input long side {self.input_long_side} px; confidence threshold "
            f"{self._confidence_threshold(p)}")

        self._cond = threading.Condition()
        self._queue: deque = deque()
        self._stop = threading.Event()
        self._pending_reset: str | None = None
        self._last_flushable: tuple[float, Any, list[str]] | None = None  # (wall time, batch, frame ids)
        self._newest_ns = 0
        self.drops = {r: 0 for r in DROP_REASONS}
        self.frames_in = 0
        self.frames_out = 0
        self.windows_done = 0
        self.resets = 0
        self._status_fresh = False
        self._ratelog = diagnostics.RateLimitedLog(self.get_logger().warning, 5.0)
        self._latency: deque = deque(maxlen=20)
        self._model_sec: deque = deque(maxlen=20)
        self._fps = diagnostics.RateMeter()
        # worker-thread state
        self.engine: Any = None
        self._rig_in_use: Any = None
        self._engine_key: tuple | None = None
        self._assembler = WindowAssembler(p["image_order"])
        self._epoch: int | None = None
        self._last_batch_ns: int | None = None
        self._stamps: dict[tuple[int, int], int] = {}
        self._odom = outputs.OdomFrame()
        self._path = outputs.PathBuffer(p["path_max_poses"])
        self._last_base: tuple[np.ndarray, int] | None = None
        self._camera_pubs: dict[str, dict[str, Any]] = {}
        self._static_sent: set[str] = set()
        self._warned_no_info: set[str] = set()

        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from nav_msgs.msg import Path as PathMsg
        from sensor_msgs.msg import PointCloud2

        from wint3r_ros.msg import ReconstructionStatus, WindowBatch

        self.tf = TransformBroadcaster(self) if p["publish_tf"] or p["publish_camera_tf"] else None
        self.tf_static = StaticTransformBroadcaster(self) if p["publish_camera_tf"] else None
        self.cloud_pub = self.create_publisher(PointCloud2, "~/cloud", qos.OUTPUT) \
            if p["publish_cloud"] else None
        self.odom_pub = self.create_publisher(Odometry, "~/odometry", qos.OUTPUT) \
            if p["publish_odometry"] else None
        self.path_pub = self.create_publisher(PathMsg, "~/path", qos.OUTPUT) \
            if p["publish_path"] else None
        self.status_pub = self.create_publisher(ReconstructionStatus, "~/status", qos.OUTPUT)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.OUTPUT)
        if self.rig is not None:
            self._send_static(self.rig.camera_names, [c.frame_id for c in self.rig.cameras])
            for cam in self.rig.cameras:
                self._publishers_for(cam.name)
        self.watchdog = qos.TopicWatchdog(self, timeout=p["silence_timeout"],
                                          clock_seen=lambda: self.get_clock().now().nanoseconds != 0,
                                          qos_parameter="")
        self.windows_sub = self.create_subscription(
            WindowBatch, "~/windows", self._on_batch, qos.WINDOWS,
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=self.watchdog.incompatible_qos_callback("~/windows")))
        self.watchdog.watch("~/windows", "wint3r_ros/msg/WindowBatch", qos.WINDOWS)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1_000_000),
                          on_clock_change=False),
            post_callback=self._on_clock_jump)
        self._status_timer = self.create_timer(p["status_period"], self._on_status_timer,
                                               clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(set_parameters_callback(FUSION_PARAMETERS))
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._worker = threading.Thread(target=self._work, name="wint3r_fusion", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"reading {self.windows_sub.topic_name}; publishing {self.world_frame} -> "
            f"{self.base_frame}, depth, cloud, odometry under {self.get_fully_qualified_name()}/")

    # ------------------------------------------------------------------------ configuration
    def _load_rig(self, p: dict[str, Any]) -> None:
        from wint3r_ros.data.rig_files import load_rig

        self.rig = None
        if p["rig_file"]:
            try:
                self.rig = load_rig(p["rig_file"])
            except CalibrationError as err:
                raise ConfigError(f"rig_file: {err}") from err
        self.world_frame = p["world_frame"]
        self.base_frame = p["base_frame"] or (self.rig.base_frame if self.rig else "base_link")
        if self.rig is not None and self.rig.base_frame != self.base_frame:
            self.get_logger().warning(
                f"base_frame parameter {self.base_frame!r} differs from rig_file's base_frame "
                f"{self.rig.base_frame!r}; using {self.base_frame!r}")

    def _apply_parameters(self, params: list) -> None:
        for prm in params:
            spec = next((s for s in FUSION_PARAMETERS if s.name == prm.name), None)
            if spec is None:
                continue
            value, _ = validate(spec, prm.value)
            with self._cond:
                self.p[prm.name] = value
            self.get_logger().info(f"parameter {prm.name} set to {value!r}")

    # ---------------------------------------------------------------------- executor side
    def _on_batch(self, msg: Any) -> None:
        """Queue a batch (never blocks on the model); a full queue drops its oldest window."""
        self.watchdog.mark("~/windows")
        arrival = time.monotonic()
        with self._cond:
            if len(self._queue) >= self.p["queue_size"]:
                self._queue.popleft()
                self.drops["queue_full"] += 1
            self._queue.append((msg, arrival))
            self._newest_ns = max(self._newest_ns, convert.ns_from_stamp(msg.header.stamp))
            self._cond.notify()

    def _on_clock_jump(self, jump: Any) -> None:
        """The ROS clock went back (a looping bag): reset, and drop queued windows of the old
        timeline (stamped after the clock's new time) instead of starting the new stream on them."""
        delta = jump.delta.nanoseconds / 1e9
        now_ns = self.get_clock().now().nanoseconds
        with self._cond:
            self._pending_reset = f"the ROS clock jumped back by {-delta:.3f} s"
            self._newest_ns = 0
            old = [q for q in self._queue if self._from_the_future(q[0], now_ns)]
            for q in old:
                self._queue.remove(q)
            self.drops["stream_reset"] += len(old)
            self._cond.notify()

    @staticmethod
    def _from_the_future(msg: Any, now_ns: int) -> bool:
        """A window stamped more than 1 s after the (simulated) clock: from an old timeline."""
        return now_ns > 0 and convert.ns_from_stamp(msg.header.stamp) > now_ns + 1_000_000_000

    def _on_status_timer(self) -> None:
        with self._cond:
            fresh, self._status_fresh = self._status_fresh, False
        if not fresh:  # no window since the last tick: say why (waiting, silent, error)
            self.status_pub.publish(self._status_msg())
        self.diag_pub.publish(self._diagnostics_msg())

    # ------------------------------------------------------------------------ worker side
    def _work(self) -> None:
        import torch

        while not self._stop.is_set():
            with self._cond:
                while not self._queue and self._pending_reset is None and not self._stop.is_set():
                    if self._flush_due():
                        break
                    self._cond.wait(0.25)
                if self._stop.is_set():
                    return
                reset, self._pending_reset = self._pending_reset, None
                item = self._queue.popleft() if self._queue else None
                newest = self._newest_ns
                params = dict(self.p)
            try:
                if reset is not None:
                    self._reset(reset)
                if item is not None:
                    with torch.inference_mode():
                        self._process(item[0], item[1], newest, params)
                elif self._flush_due():
                    self._flush_held(params)
            except Exception as err:  # keep the node alive; report and count
                if self._stop.is_set() or not self.context.ok():
                    return  # shutting down: publishers are gone
                with self._cond:
                    self.drops["error"] += 1
                self.get_logger().error(f"window processing failed: {type(err).__name__}: {err}")
                if not isinstance(err, Wint3rError):
                    import traceback

                    self.get_logger().debug(traceback.format_exc())

    def _flush_due(self) -> bool:
        """Frames are held for a next window that has not come for hold_timeout (wall) seconds."""
        timeout = self.p["hold_timeout"]
        return (timeout > 0 and self.engine is not None and self.engine.held_frames > 0
                and self._last_flushable is not None
                and time.monotonic() - self._last_flushable[0] > timeout)

    def _flush_held(self, params: dict[str, Any]) -> None:
        """Publish the held frames (end of a bag, stopped cameras) instead of losing them."""
        _, batch, frame_ids = self._last_flushable
        results = self.engine.flush()
        self._last_flushable = None
        self._publish_results(results, batch, frame_ids, params)
        with self._cond:
            self.frames_out += len(results)
            self._status_fresh = True
        self.get_logger().info(f"published {len(results)} held frame(s): no window for "
                               f"{params['hold_timeout']} s")
        self.status_pub.publish(self._status_msg())

    def _reset(self, reason: str) -> None:
        """Start a new reconstruction; frames held by the old one are dropped (old timeline)."""
        if self.engine is not None:
            dropped = self.engine.reset()
            with self._cond:
                self.drops["stream_reset"] += len(dropped)
        self._assembler.reset()
        self._odom.reset()
        self._path.clear()
        self._last_base = None
        self._last_batch_ns = None
        self._last_flushable = None
        self._epoch = None  # the next window starts the new stream, whatever its epoch
        self._stamps.clear()
        with self._cond:
            self.resets += 1
        self.get_logger().warning(f"reconstruction reset #{self.resets}: {reason}")

    def _confidence_threshold(self, params: dict[str, Any]) -> float:
        """confidence_threshold, or the checkpoint's recommendation when it is 0."""
        return confidence_threshold_for(params["confidence_threshold"], self._loaded)

    def _ensure_engine(self, names: list[str], L: int, O: int, params: dict[str, Any]) -> None:
        from wint3r_ros.core.engine import EngineConfig, StreamingReconstructor
        from wint3r_ros.core.window import WindowConfig

        key = (tuple(names), L, O)
        if self.engine is not None and key == self._engine_key:
            return
        if self.engine is not None:
            self._reset(f"the windows changed to cameras {names}, L={L}, O={O}")
        rig = None
        if self.rig is not None:
            missing = [n for n in names if n not in self.rig.camera_names]
            if missing:
                raise InputError(f"cameras {missing} of the windows are not in rig_file "
                                 f"{params['rig_file']} (it has {self.rig.camera_names})")
            rig = self.rig.with_cameras([self.rig.camera(n) for n in names])
        pool = params["max_pool_tokens"] or None
        if pool is not None and pool < 2 * L * len(names):
            self.get_logger().warning(f"max_pool_tokens={pool} cannot hold two windows of "
                                      f"{L * len(names)} frames; using {2 * L * len(names)}")
            pool = 2 * L * len(names)
        config = EngineConfig(
            window=WindowConfig(L, O, params["image_order"]), target_long_side=self.input_long_side,
            conf_threshold=self._confidence_threshold(params), merge=params["merge"],
            max_pool_entries=pool, keyframe_every=params["pool_keyframe_every"],
            latency_budget_s=None, max_pending_windows=1, points=params["publish_cloud"],
            points_stride=params["cloud_pixel_stride"],
            max_scale_fit_residual=params["scale_fit_max_residual"])
        self.engine = StreamingReconstructor(self.model, rig, config,
                                             camera_names=None if rig is not None else names)
        self._engine_key = key
        self._rig_in_use = rig

    def _process(self, msg: Any, arrival: float, newest_ns: int, params: dict[str, Any]) -> None:
        stamp_ns = convert.ns_from_stamp(msg.header.stamp)
        if self.get_parameter("use_sim_time").value and \
                self._from_the_future(msg, self.get_clock().now().nanoseconds):
            with self._cond:
                self.drops["stream_reset"] += 1
            self._ratelog("future", f"window {msg.window_index} (epoch {msg.epoch}) is stamped "
                                    "after the simulated clock: it belongs to the timeline before "
                                    "the clock jumped back; dropped")
            return
        budget = params["latency_budget"]
        if budget > 0 and newest_ns and (newest_ns - stamp_ns) / 1e9 > budget:
            with self._cond:
                self.drops["latency_budget"] += 1
            return
        try:
            batch = decode_window_batch(msg, self.windows_sub.topic_name)
        except InputError as err:
            with self._cond:
                self.drops["bad_window"] += 1
            self._ratelog("bad_window", f"{err}; window dropped")
            return
        if self._epoch is not None and batch.epoch != self._epoch:
            self._reset(f"sync_node started epoch {batch.epoch} (was {self._epoch}): its input "
                        "stamps jumped back")
        elif self._last_batch_ns is not None and batch.stamp_ns <= self._last_batch_ns:
            self._reset(f"window stamps went back from {self._last_batch_ns / 1e9:.3f} s to "
                        f"{batch.stamp_ns / 1e9:.3f} s")
        self._epoch = batch.epoch
        self._last_batch_ns = batch.stamp_ns
        try:
            self._ensure_engine(batch.camera_names, batch.num_steps, batch.overlap, params)
        except (InputError, ConfigError) as err:
            with self._cond:
                self.drops["bad_window"] += 1
            self._ratelog("bad_window", f"{err}; window dropped")
            return
        self.engine.config = replace(self.engine.config,
                                     conf_threshold=self._confidence_threshold(params))
        window = self._assembler.assemble(batch)
        for f in window.frames:
            self._stamps[f.key] = f.item.stamp_ns
        new = len(window.new_frames)
        try:
            results = self.engine.process(window)
        except InputError as err:
            with self._cond:
                self.drops["bad_window"] += 1
            self._ratelog("bad_window", f"{err}; window dropped")
            return
        frame_ids = self._frame_ids(batch)
        self._publish_results(results, batch, frame_ids, params)
        if window.set_indices:
            oldest = min(window.set_indices) - 16
            self._stamps = {k: v for k, v in self._stamps.items() if k[1] >= oldest}
        done = time.monotonic()
        with self._cond:
            self.frames_in += new
            self.frames_out += len(results)
            self.windows_done += 1
            self._latency.append(done - arrival)
            if self.engine.last_window_seconds is not None:
                self._model_sec.append(self.engine.last_window_seconds)
            self._fps.add(len(results))
            self._last_window = (batch.window_index, stamp_ns)
            self._status_fresh = True
        self._last_flushable = (done, batch, frame_ids)  # worker thread only
        self.status_pub.publish(self._status_msg())

    # -------------------------------------------------------------------------- publishing
    def _frame_ids(self, batch: Any) -> list[str]:
        rig = self._rig_in_use
        ids = [c.frame_id for c in rig.cameras] if rig is not None else list(batch.frame_ids)
        out = []
        for name, fid in zip(batch.camera_names, ids):
            out.append(fid if fid and not fid.startswith("/") else (fid.lstrip("/") or f"{name}_optical_frame"))
        if self.rig is None and self.tf_static is not None and out[0] not in self._static_sent:
            self.get_logger().warning(
                f"no rig_file: assuming camera '{batch.camera_names[0]}' ({out[0]}) is mounted at "
                f"{self.base_frame}'s origin looking along its x axis; other cameras are placed "
                "from the reconstruction (relative scale)")
            self._send_static([batch.camera_names[0]], [out[0]])
        return out

    def _send_static(self, names: list[str], frame_ids: list[str]) -> None:
        if self.tf_static is None:
            return
        transforms = []
        for name, fid in zip(names, frame_ids):
            T = self.rig.camera(name).T_base_camera if self.rig is not None else outputs.BASE_FROM_OPTICAL
            transforms.append(convert.transform_stamped(T, self.base_frame, fid, self.get_clock().now().to_msg()))
            self._static_sent.add(fid)
        self.tf_static.send(transforms)

    def _publishers_for(self, camera: str) -> dict[str, Any]:
        if camera not in self._camera_pubs:
            from sensor_msgs.msg import CameraInfo, Image

            pubs: dict[str, Any] = {}
            if self.p["publish_depth"]:
                pubs["depth"] = self.create_publisher(Image, f"~/{camera}/depth", qos.OUTPUT)
                pubs["info"] = self.create_publisher(CameraInfo, f"~/{camera}/camera_info", qos.OUTPUT)
            if self.p["publish_confidence"]:
                pubs["confidence"] = self.create_publisher(Image, f"~/{camera}/confidence", qos.OUTPUT)
            self._camera_pubs[camera] = pubs
        return self._camera_pubs[camera]

    def _camera_info(self, r: Any, batch: Any, frame_id: str, stamp: Any) -> Any:
        h, w = r.depth.shape
        if self._rig_in_use is not None:
            cam = self._rig_in_use.camera(r.camera)
            cam = cam if (cam.width, cam.height) == (w, h) else cam.scaled(w, h)
            return convert.camera_info_from_camera(cam, stamp, frame_id)
        info = batch.camera_infos[r.camera_index]
        try:
            if info is not None:
                convert.check_camera_info(info, self.windows_sub.topic_name)
        except InputError as err:
            with self._cond:
                self.drops["bad_camera_info"] += 1
            self._ratelog(("bad_camera_info", r.camera), f"camera '{r.camera}': {err}; its depth "
                                                         "is published without camera_info")
            return None
        if info is None or int(info.width) == 0 or not any(info.k):
            if r.camera not in self._warned_no_info:
                self._warned_no_info.add(r.camera)
                self.get_logger().warning(
                    f"camera '{r.camera}': no rig_file and no camera_info in the windows; its "
                    "depth is published without camera_info")
            return None
        return convert.camera_info_resized(info, w, h, stamp=stamp, frame_id=frame_id)

    def _publish_results(self, results: list[Any], batch: Any, frame_ids: list[str],
                         params: dict[str, Any]) -> None:
        by_set: dict[int, list[Any]] = {}
        for r in results:
            by_set.setdefault(r.set_index, []).append(r)
        transforms, camera_tf, poses = [], [], 0
        for set_index in sorted(by_set):
            frames = by_set[set_index]
            stamp_ns = outputs.set_stamp_ns(self._stamp_ns(r) for r in frames)
            base = self._base_pose(frames)
            if base is None:
                continue
            if self._rig_in_use is None and self.tf_static is not None:
                camera_tf += self._camera_transforms(base, frames, frame_ids)
            T = self._odom.base_in_odom(base)
            poses += 1
            stamp = convert.stamp_from_ns(stamp_ns)
            if params["publish_tf"]:
                transforms.append(convert.transform_stamped(T, self.world_frame, self.base_frame,
                                                            stamp))
            self._path.append(T, stamp)
            if self.odom_pub is not None:
                lin, ang = np.zeros(3), np.zeros(3)
                if self._last_base is not None:
                    lin, ang = outputs.twist_between(self._last_base[0], T,
                                                     (stamp_ns - self._last_base[1]) / 1e9)
                self.odom_pub.publish(convert.odometry(
                    T, stamp, self.world_frame, self.base_frame, lin, ang,
                    params["pose_covariance"], params["twist_covariance"]))
            self._last_base = (T, stamp_ns)
        if self.tf is not None and (transforms or camera_tf):
            self.tf.send(transforms + camera_tf)
        for r in results:
            fid = frame_ids[r.camera_index]
            stamp = convert.stamp_from_ns(self._stamp_ns(r))
            pubs = self._publishers_for(r.camera)
            if "depth" in pubs:
                pubs["depth"].publish(convert.image_from_array(r.depth, "32FC1", stamp, fid))
                info = self._camera_info(r, batch, fid, stamp)
                if info is not None:
                    pubs["info"].publish(info)
            if "confidence" in pubs:
                pubs["confidence"].publish(convert.image_from_array(
                    np.nan_to_num(r.confidence, nan=0.0).astype(np.float32), "32FC1", stamp, fid))
        if self.path_pub is not None and poses:
            self.path_pub.publish(convert.path_msg(self._path.items(), self.world_frame))
        if self.cloud_pub is not None and results:
            pts = [r.points for r in results if r.points is not None and len(r.points)]
            cols = [r.colors for r in results if r.points is not None and len(r.points)]
            points = np.concatenate(pts) if pts else np.zeros((0, 3), np.float32)
            colors = np.concatenate(cols) if cols else np.zeros((0, 3), np.uint8)
            points, colors = outputs.voxel_downsample(self._odom.points_in_odom(points), colors,
                                                      params["cloud_voxel_size"])
            points, colors = outputs.cap_points(points, colors, params["cloud_max_points"])
            newest = max(self._stamp_ns(r) for r in results)
            self.cloud_pub.publish(convert.pointcloud2_from_points(
                points, convert.stamp_from_ns(newest), self.world_frame, colors))

    def _stamp_ns(self, r: Any) -> int:
        """The exact source stamp of a result (float seconds only as a fallback)."""
        return self._stamps.get((r.camera_index, r.set_index), int(round(r.stamp * 1e9)))

    def _camera_transforms(self, world_from_base: np.ndarray, frames: list[Any],
                           frame_ids: list[str]) -> list[Any]:
        """Without a calibration: base_frame -> optical frame of cameras 1.. at their own stamps,
        from the reconstruction (camera 0 is the base's assumed mount, on /tf_static)."""
        inv = np.linalg.inv(world_from_base)
        return [convert.transform_stamped(inv @ r.world_from_cam, self.base_frame,
                                          frame_ids[r.camera_index],
                                          convert.stamp_from_ns(self._stamp_ns(r)))
                for r in frames if r.camera_index != 0]

    def _base_pose(self, frames: list[Any]) -> np.ndarray | None:
        """world_from_base of a set: from the engine (rig), else camera 0 with the assumed mount."""
        frames = sorted(frames, key=lambda r: r.camera_index)
        for r in frames:
            if r.world_from_base is not None:
                return r.world_from_base
        if frames[0].camera_index == 0:
            return frames[0].world_from_cam @ np.linalg.inv(outputs.BASE_FROM_OPTICAL)
        return None

    # ------------------------------------------------------------------------------ status
    def status_values(self) -> dict[str, Any]:
        """Counters for ~/status and /diagnostics (also read by tests)."""
        with self._cond:
            drops = dict(self.drops)
            values = {
                "frames_in": self.frames_in, "frames_out": self.frames_out,
                "windows": self.windows_done, "resets": self.resets, "queued": len(self._queue),
                "latency": float(np.mean(self._latency)) if self._latency else 0.0,
                "model_sec": float(np.mean(self._model_sec)) if self._model_sec else 0.0,
                "fps": self._fps.rate(), "last_window": getattr(self, "_last_window", (0, 0))}
        engine = self.engine
        if engine is not None:
            st = engine.status()
            drops["engine_budget"] = st["windows_dropped"]
            values.update(pool_size=st["pool"]["size"], metric=st["metric"],
                          metric_capable=st["metric_capable"], scale=st["metres_per_unit"] or 1.0)
        else:
            values.update(pool_size=0, metric=False, metric_capable=False, scale=1.0)
        values["drops"] = drops
        silent = self.watchdog.warnings.get("~/windows")
        if self.model_state != "ok":
            state = self.model_state
        elif values["windows"] == 0:
            state = "waiting: no window received yet" + (f" ({silent})" if silent else "")
        elif silent:
            state = f"degraded: {silent}"
        elif values["metric_capable"] and not values["metric"]:
            state = "degraded: no metric scale yet (rig baselines not fitted)"
        else:
            state = "ok"
        values["state"] = state
        return values

    def _status_msg(self) -> Any:
        v = self.status_values()
        index, stamp_ns = v["last_window"]
        return diagnostics.reconstruction_status(
            stamp=convert.stamp_from_ns(stamp_ns), frame_id=self.world_frame, window_index=index,
            latency_sec=v["latency"], model_sec=v["model_sec"], fps=v["fps"],
            frames_in=v["frames_in"], frames_out=v["frames_out"], drops=v["drops"],
            pool_size=v["pool_size"], scale=v["scale"], scale_is_metric=v["metric"],
            resets=v["resets"], state=v["state"])

    def _diagnostics_msg(self) -> Any:
        v = self.status_values()
        state = v["state"]
        level = diagnostics.OK if state == "ok" else (
            diagnostics.ERROR if state.startswith("error") else diagnostics.WARN)
        values = {k: v[k] for k in ("frames_in", "frames_out", "windows", "resets", "queued",
                                    "latency", "model_sec", "fps", "pool_size", "metric", "scale")}
        values.update({f"dropped.{k}": n for k, n in v["drops"].items()})
        values["input_long_side"] = self.input_long_side
        status = diagnostics.diagnostic_status(f"{self.get_fully_qualified_name()}: reconstruction",
                                               level, state, values, hardware_id=self.base_frame)
        return diagnostics.diagnostic_array(self.get_clock().now().to_msg(), [status])

    # ---------------------------------------------------------------------------- teardown
    def destroy_node(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=30.0)
        self.watchdog.destroy()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run wint3r_ros fusion_node` and `python -m wint3r_ros.ros.fusion_node`."""
    from wint3r_ros.ros.runner import run_node

    return run_node(FusionNode, args, "fusion_node", __doc__.split("\n\n")[0], FUSION_PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
