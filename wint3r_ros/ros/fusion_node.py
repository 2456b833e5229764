"""fusion_node: `WindowBatch` -> WinT3R streaming reconstruction -> TF, depth, clouds, odometry.

    ros2 run wint3r_ros fusion_node --ros-args --params-file config/wint3r.yaml \
        -r ~/windows:=/sync_node/windows
    python -m wint3r_ros.ros.fusion_node --ros-args -p rig_file:=rig.yaml -p device:=cuda

A thin shell around the fusion half of the one pipeline (`core.pipeline.fusion.FusionStage`,
the same code process-bag runs). The subscription callback only queues the batch (a bounded
queue: when full the oldest window is dropped and counted); one worker thread decodes it into a
`WindowInput`, runs the stage and publishes the messages of its output records
(`data.builders.output_messages` with the rclpy kit), so the executor never waits for the
model. Everything is stamped with the source image stamps:

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
played with ``--loop --clock`` and ``use_sim_time:=true``) resets the reconstruction; the frames
held for the merge are published first, the reset is logged and counted, never a crash.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node

from wint3r_ros.core.pipeline.params import FUSION_PARAMETERS, cross_check
from wint3r_ros.core.sync import item_nbytes
from wint3r_ros.data.builders import output_messages, status_msg
from wint3r_ros.errors import ConfigError, InputError, Wint3rError
from wint3r_ros.ros import convert, diagnostics, qos
from wint3r_ros.ros.batch import decode_window_batch
from wint3r_ros.ros.extrinsics import RigSource
from wint3r_ros.ros.map_services import MapServices
from wint3r_ros.ros.params import declare_parameters, load_rig_file, set_parameters_callback, validate
from wint3r_ros.ros.tf import StaticTransformBroadcaster, TransformBroadcaster
from wint3r_ros.ros.worker import stop_worker

if TYPE_CHECKING:   # the engine and the loader import torch: `fusion_node --help` stays light
    from wint3r_ros.core.pipeline.fusion import FusionStage

__all__ = ["FUSION_PARAMETERS", "FusionNode", "main"]


def __getattr__(name: str) -> Any:
    """``load_reconstruction_model`` stays importable from here, imported when first asked for."""
    if name == "load_reconstruction_model":
        from wint3r_ros.model.loader import load_reconstruction_model
        return load_reconstruction_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

DROP_REASONS = ("queue_full", "byte_budget", "latency_budget", "stream_reset", "bad_window",
                "error", "bad_camera_info")


class FusionNode(Node):
    """The fusion node (see the module docstring). ``model`` (optional) replaces the checkpoint
    parameters (tests, embedding); keyword arguments go to rclpy's Node."""

    def __init__(self, node_name: str = "fusion_node", *, model: Any = None, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = p = declare_parameters(self, FUSION_PARAMETERS)
        if p["extrinsics_source"] == "tf" and p["publish_camera_tf"]:
            p["publish_camera_tf"] = False   # the URDF's publisher owns base -> camera frames
            self.get_logger().info("extrinsics_source tf: the camera frames come from /tf_static; "
                                   "this node publishes none (publish_camera_tf off)")
        self.stage = self._make_stage(p, model)
        self.world_frame = p["world_frame"]
        self.base_frame = self.stage.outputs.settings.base_frame
        self.rig_source = RigSource(self, p, self.rig, self.base_frame)
        self._cond = threading.Condition()
        self._queue: deque = deque()
        self._stop = threading.Event()
        self._pending_reset: str | None = None
        self._changes: dict[str, Any] = {}
        self._last_window_time: float | None = None  # wall time of the last window (worker)
        self._newest_ns = 0
        self.drops = {r: 0 for r in DROP_REASONS}
        self.windows_done = 0
        self._status_fresh = False
        self._ratelog = diagnostics.RateLimitedLog(self.get_logger().warning, 5.0)
        self._latency: deque = deque(maxlen=20)
        self._model_sec: deque = deque(maxlen=20)
        self._fps = diagnostics.RateMeter()
        self._make_publishers(p)
        self.map_services = MapServices(self, self.stage, p, self._request_reset,
                                        self._saved_settings, lambda: self.stage.rig)
        self.watchdog = qos.TopicWatchdog(self, timeout=p["silence_timeout"],
                                          clock_seen=lambda: self.get_clock().now().nanoseconds != 0,
                                          qos_parameter="")
        from wint3r_ros.msg import WindowBatch

        self.windows_sub = self.create_subscription(
            WindowBatch, "~/windows", self._on_batch, qos.windows_qos(p["bag_mode"]),
            event_callbacks=SubscriptionEventCallbacks(
                incompatible_qos=self.watchdog.incompatible_qos_callback("~/windows")))
        self.watchdog.watch("~/windows", "wint3r_ros/msg/WindowBatch", qos.windows_qos(p["bag_mode"]))
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
    def _make_stage(self, p: dict[str, Any], model: Any) -> FusionStage:
        """Rig, frames, model (checkpoint or given) and the pipeline's fusion stage."""
        from wint3r_ros.core.pipeline.fusion import FusionStage
        from wint3r_ros.core.pipeline.settings import model_settings, resolve_base_frame
        from wint3r_ros.model.loader import load_reconstruction_model
        from wint3r_ros.model.runtime import set_torch_threads

        rig = load_rig_file(p["rig_file"])
        base_frame = resolve_base_frame(p["base_frame"], rig, self.get_logger().warning)
        problem = cross_check({"world_frame": p["world_frame"], "base_frame": base_frame})
        if problem:
            raise ConfigError(f"node '{self.get_name()}': {problem}")
        set_torch_threads(p["torch_threads"])
        loaded = None
        if model is None:
            try:
                loaded = load_reconstruction_model(p["checkpoint"], p["model_preset"], p["device"],
                                                   p["precision"], log=self.get_logger().error)
            except Wint3rError as err:
                raise ConfigError(str(err)) from err
            model = loaded.model
        resolved = model_settings(p, loaded)
        self.rig = rig
        self.input_long_side = resolved.input_long_side
        self.get_logger().info(
            f"model: {resolved.description}; input long side {resolved.input_long_side} px; "
            f"confidence threshold {resolved.confidence_threshold}")
        return FusionStage(model, p, resolved, rig, base_frame=base_frame,
                           log=self.get_logger().warning)

    def _make_publishers(self, p: dict[str, Any]) -> None:
        """Publishers of every enabled output (per camera: once the rig or a window names it)."""
        self.tf = TransformBroadcaster(self) if p["publish_tf"] or p["publish_camera_tf"] else None
        self.tf_static = StaticTransformBroadcaster(self) if p["publish_camera_tf"] else None
        self._pubs: dict[str, Any] = {}
        for name, enabled in (("cloud", p["publish_cloud"]), ("odometry", p["publish_odometry"]),
                              ("path", p["publish_path"]), ("status", True)):
            if enabled:
                self._publisher(name)
        from diagnostic_msgs.msg import DiagnosticArray

        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos.OUTPUT)
        self.status_pub = self._pubs["status"]
        if self.rig is not None:
            static = self.stage.outputs.static_transforms(self.get_clock().now().nanoseconds)
            self._publish_static(static)
            for cam in self.rig.cameras:
                for kind in ("depth", "camera_info", "confidence"):
                    if p["publish_depth" if kind != "confidence" else "publish_confidence"]:
                        self._publisher(f"{cam.name}/{kind}")

    def _publisher(self, topic: str) -> Any:
        """The publisher of an output topic (relative to the node), made on first use."""
        pub = self._pubs.get(topic)
        if pub is None:
            from nav_msgs.msg import Odometry
            from nav_msgs.msg import Path as PathMsg
            from sensor_msgs.msg import CameraInfo, Image, PointCloud2

            from wint3r_ros.msg import ReconstructionStatus

            kind = topic.rsplit("/", 1)[-1]
            types = {"cloud": PointCloud2, "odometry": Odometry, "path": PathMsg,
                     "status": ReconstructionStatus, "depth": Image, "confidence": Image,
                     "camera_info": CameraInfo}
            pub = self._pubs[topic] = self.create_publisher(types[kind], f"~/{topic}", qos.OUTPUT)
        return pub

    def _apply_parameters(self, params: list) -> None:
        for prm in params:
            spec = next((s for s in FUSION_PARAMETERS if s.name == prm.name), None)
            if spec is None:
                continue
            value, _ = validate(spec, prm.value)
            with self._cond:
                self.p[prm.name] = value
                self._changes[prm.name] = value  # the worker applies them between windows
            self.get_logger().info(f"parameter {prm.name} set to {value!r}")

    # ---------------------------------------------------------------------- executor side
    def _on_batch(self, msg: Any) -> None:
        """Queue a batch (never blocks on the model); a full queue (queue_size windows, or
        buffer_budget_mb of images) drops its oldest window, or in bag mode makes this callback
        wait for the worker (lossless). The newest window is always taken."""
        self.watchdog.mark("~/windows")
        arrival = time.monotonic()
        size = batch_bytes(msg)
        with self._cond:
            while self.p["bag_mode"] and self._queue_full(size) and not self._stop.is_set():
                self._cond.wait(0.05)
            while self._queue_full(size):
                reason = "queue_full" if len(self._queue) >= self.p["queue_size"] else "byte_budget"
                self._queue.popleft()
                self.drops[reason] += 1
            self._queue.append((msg, arrival, size))
            self._newest_ns = max(self._newest_ns, convert.ns_from_stamp(msg.header.stamp))
            self._cond.notify()

    def _queue_full(self, size: int) -> bool:
        """No room for a window of ``size`` bytes (the lock is held)."""
        if len(self._queue) >= self.p["queue_size"]:
            return True
        budget = self.p["buffer_budget_mb"] << 20
        return bool(budget and self._queue and sum(q[2] for q in self._queue) + size > budget)

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
    def _next_job(self) -> tuple[str | None, Any, int, dict[str, Any]] | None:
        """Wait for a window, a reset or a due flush; None when stopping."""
        with self._cond:
            while not self._queue and self._pending_reset is None and not self._stop.is_set():
                if self._flush_due():
                    break
                self._cond.wait(0.25)
            if self._stop.is_set():
                return None
            reset, self._pending_reset = self._pending_reset, None
            item = self._queue.popleft() if self._queue else None
            changes, self._changes = self._changes, {}
            return reset, item, self._newest_ns, changes

    def _work(self) -> None:
        import torch

        while (job := self._next_job()) is not None:
            reset, item, newest, changes = job
            try:
                for name, value in changes.items():
                    self.stage.set_parameter(name, value)
                with torch.inference_mode():
                    if reset is not None:
                        self._publish(self.stage.reset(reset))
                    if item is not None:
                        self._process(item[0], item[1], newest)
                    elif self._flush_due():
                        self._flush_held()
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
        return (timeout > 0 and self.stage.held_frames > 0 and self._last_window_time is not None
                and time.monotonic() - self._last_window_time > timeout)

    def _flush_held(self) -> None:
        """Publish the held frames (end of a bag, stopped cameras) instead of losing them."""
        batch = self.stage.flush()
        self._last_window_time = None
        self._publish(batch)
        self.get_logger().info(f"published {len(batch.frames)} held frame(s): no window for "
                               f"{self.p['hold_timeout']} s")
        with self._cond:
            self._status_fresh = True
        self.status_pub.publish(self._status_msg())

    def _stale(self, msg: Any, newest_ns: int) -> bool:
        """Drop (counted) a window of an old timeline or behind the latency budget."""
        stamp_ns = convert.ns_from_stamp(msg.header.stamp)
        if self.get_parameter("use_sim_time").value and \
                self._from_the_future(msg, self.get_clock().now().nanoseconds):
            reason = "stream_reset"
            self._ratelog("future", f"window {msg.window_index} (epoch {msg.epoch}) is stamped "
                                    "after the simulated clock: it belongs to the timeline before "
                                    "the clock jumped back; dropped")
        elif self.p["latency_budget"] > 0 and not self.p["bag_mode"] and newest_ns and \
                (newest_ns - stamp_ns) / 1e9 > self.p["latency_budget"]:
            reason = "latency_budget"
        else:
            return False
        with self._cond:
            self.drops[reason] += 1
        return True

    def _bad_window(self, err: Exception) -> None:
        with self._cond:
            self.drops["bad_window"] += 1
        self._ratelog("bad_window", f"{err}; window dropped")

    def _bad_info(self, camera: str, err: Exception) -> None:
        with self._cond:
            self.drops["bad_camera_info"] += 1
        self._ratelog(("bad_camera_info", camera), f"camera '{camera}': {err}; its depth is "
                                                   "published without camera_info")

    def _process(self, msg: Any, arrival: float, newest_ns: int) -> None:
        if self._stale(msg, newest_ns):
            return
        try:
            win = decode_window_batch(msg, self.windows_sub.topic_name, on_bad_info=self._bad_info)
            if self.rig_source.pending and \
                    (rig := self.rig_source.resolve(win, self._stop.is_set)) is not None:
                self.stage.set_rig(rig)
            batches = self.stage.process(win)
        except (InputError, ConfigError) as err:
            self._bad_window(err)
            return
        for batch in batches:
            self._publish(batch)
        done = time.monotonic()
        self._last_window_time = done
        with self._cond:
            self.windows_done += 1
            self._latency.append(done - arrival)
            if self.stage.engine is not None and self.stage.engine.last_window_seconds is not None:
                self._model_sec.append(self.stage.engine.last_window_seconds)
            self._fps.add(sum(len(b.frames) for b in batches))
            self._status_fresh = True
        self.status_pub.publish(self._status_msg())

    # ------------------------------------------------------------------- services, TF rig
    def _request_reset(self, reason: str) -> None:
        """~/reset: the worker starts a new stream before its next window (as on a clock jump);
        TF extrinsics still missing are looked up again."""
        with self._cond:
            self._pending_reset = reason
            self.rig_source.look_again()
            self._cond.notify()

    def _saved_settings(self) -> dict[str, Any]:
        """The settings written next to a saved map."""
        keys = ("rig_file", "extrinsics_source", "world_frame", "checkpoint", "model_preset",
                "confidence_threshold", "map_voxel_size", "map_max_points", "cloud_pixel_stride",
                "max_pool_tokens", "merge", "image_order")
        with self._cond:
            values = {k: self.p[k] for k in keys}
        v = self.status_values()
        return {**values, "base_frame": self.base_frame, "input_long_side": self.input_long_side,
                "depth": self.rig_source.depth[1], "scale_is_metric": v["metric"], "scale": v["scale"],
                "frames_out": v["frames_out"], "resets": v["resets"]}

    # -------------------------------------------------------------------------- publishing
    def _publish(self, batch: Any) -> None:
        """Publish the messages of one output batch (the one builder, rclpy kit)."""
        for m in output_messages(batch, self.stage.outputs.settings, convert.RCLPY):
            if m.topic == "/tf":
                if self.tf is not None:
                    self.tf.send(list(m.msg.transforms))
            elif m.topic == "/tf_static":
                if self.tf_static is not None:
                    self.tf_static.send(list(m.msg.transforms))
            else:
                self._publisher(m.topic).publish(m.msg)

    def _publish_static(self, transforms: list[Any]) -> None:
        if transforms and self.tf_static is not None:
            from wint3r_ros.core.pipeline.records import OutputBatch

            self._publish(OutputBatch(static=transforms))

    # ------------------------------------------------------------------------------ status
    def status_values(self) -> dict[str, Any]:
        """Counters for ~/status and /diagnostics (also read by tests)."""
        counters = dict(self.stage.counters)
        with self._cond:
            drops = dict(self.drops)
            values = {
                "frames_in": counters["frames_in"], "frames_out": counters["frames_out"],
                "windows": self.windows_done, "resets": counters["resets"],
                "queued": len(self._queue),
                "queued_mb": sum(q[2] for q in self._queue) / 2**20,
                "latency": float(np.mean(self._latency)) if self._latency else 0.0,
                "model_sec": float(np.mean(self._model_sec)) if self._model_sec else 0.0,
                "fps": self._fps.rate()}
        drops["tf_missing"] = self.rig_source.tf_missing
        record = self.stage.status(drops=drops)
        values.update(pool_size=record.pool_size,
                      metric=record.scale_is_metric, scale=record.scale, drops=drops,
                      metric_capable=bool(self.stage.engine is not None
                                          and self.stage.engine.metric_capable),
                      last_window=(record.window_index, record.stamp_ns))
        silent = self.watchdog.warnings.get("~/windows")
        state = self.stage.state()
        if not state.startswith("degraded: random") and values["windows"] == 0:
            state = "waiting: no window received yet" + (f" ({silent})" if silent else "")
        elif not state.startswith("degraded: random") and silent:
            state = f"degraded: {silent}"
        values["state"] = state
        return values

    def _status_msg(self) -> Any:
        v = self.status_values()
        record = self.stage.status(drops=v["drops"], latency_sec=v["latency"], fps=v["fps"],
                                   model_sec=v["model_sec"], state=v["state"])
        return status_msg(record, self.world_frame, convert.RCLPY)

    def _diagnostics_msg(self) -> Any:
        v = self.status_values()
        state = v["state"]
        level = diagnostics.OK if state == "ok" else (
            diagnostics.ERROR if state.startswith("error") else diagnostics.WARN)
        values = {k: v[k] for k in ("frames_in", "frames_out", "windows", "resets", "queued", "queued_mb",
                                    "latency", "model_sec", "fps", "pool_size", "metric", "scale")}
        values.update({f"dropped.{k}": n for k, n in v["drops"].items()})
        values["input_long_side"] = self.input_long_side
        values["depth"] = self.rig_source.depth[1]
        values["map_points"] = len(self.stage.map.cloud)
        status = diagnostics.diagnostic_status(f"{self.get_fully_qualified_name()}: reconstruction",
                                               level, state, values, hardware_id=self.base_frame)
        return diagnostics.diagnostic_array(self.get_clock().now().to_msg(), [status])

    # ---------------------------------------------------------------------------- teardown
    def destroy_node(self) -> None:
        stop_worker(self._stop, self._cond, self._worker, timeout=30.0)
        self.watchdog.destroy()
        super().destroy_node()


def batch_bytes(msg: Any) -> int:
    """Bytes of the images in a WindowBatch (raw and compressed)."""
    return sum(item_nbytes(m) for m in (*msg.images, *msg.compressed_images))


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run wint3r_ros fusion_node` and `python -m wint3r_ros.ros.fusion_node`."""
    from wint3r_ros.ros.runner import run_node

    return run_node(FusionNode, args, "fusion_node", __doc__.split("\n\n")[0], FUSION_PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
