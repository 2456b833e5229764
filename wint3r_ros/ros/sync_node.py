"""sync_node: N camera topics -> approximate-time sets -> lockstep windows -> `WindowBatch`.

    ros2 run wint3r_ros sync_node --ros-args --params-file config/rig.yaml
    python -m wint3r_ros.ros.sync_node --ros-args -p camera_names:=[a,b] -p image_topics:=[/a,/b]

Subscribes to every camera's image topic (and optionally its camera_info), refuses images of
an unsupported encoding or a malformed layout (rate-limited log naming the topic and encoding;
counted), matches stamps with the core approximate-time policy, cuts lockstep windows of L sets
advancing by L - O, and publishes each window on ``~/windows`` (raw images, or JPEG with
``transport:=jpeg``). A stamp jump backwards (a bag loop) starts a new epoch, which tells the
fusion node to start a new reconstruction. Status (received / matched / dropped / rejected per
camera) goes to ``~/status`` (ReconstructionStatus) and ``/diagnostics``; a camera topic that
stays silent gets a warning saying why it probably is (QoS mismatch, no publisher, no /clock).

Callbacks never block: they match stamps under a lock and hand complete windows to a publisher
thread, which builds the batches (JPEG-encodes them) and publishes them in window order; if it
falls behind, the oldest waiting window is dropped and counted (``windows/outbox_full``). The
images held (sync queues, the window being built, the outbox) stay within ``buffer_budget_mb``
(see core/pipeline/frontend.py; the outbox keeps at least one window). The node works under
single- and multi-threaded executors alike.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node

from wint3r_ros.core.pipeline.frontend import SyncFrontEnd
from wint3r_ros.core.pipeline.params import SYNC_PARAMETERS, compressed_topic, cross_check, names_rule
from wint3r_ros.core.pipeline.settings import resolve_base_frame, sync_settings
from wint3r_ros.core.sync import item_nbytes
from wint3r_ros.data.messages import large_image_warning
from wint3r_ros.errors import ConfigError, InputError
from wint3r_ros.ros import convert, diagnostics, qos, sync_status
from wint3r_ros.ros.batch import build_window_batch
from wint3r_ros.ros.params import declare_parameters, load_rig_file, set_parameters_callback, validate
from wint3r_ros.ros.tf import check_frame_id
from wint3r_ros.ros.worker import stop_worker

__all__ = ["SYNC_PARAMETERS", "SyncNode", "main"]

_OUTBOX_SIZE = 4  # complete windows waiting for the publisher thread


class SyncNode(Node):
    """The sync node (see the module docstring). Keyword arguments go to rclpy's Node
    (context, parameter_overrides, cli_args, namespace)."""

    def __init__(self, node_name: str = "sync_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.p = p = declare_parameters(self, SYNC_PARAMETERS)
        problem = cross_check(p)
        if problem:
            raise ConfigError(f"node '{self.get_name()}': {problem}")
        self._configure_cameras(p)
        self.front = SyncFrontEnd(self.camera_names, sync_settings(
            p, [c.time_offset if c is not None else 0.0 for c in self.rig_cameras]))
        self._lock = threading.Lock()           # the front end, the outbox and the counters
        self._outbox_ready = threading.Condition(self._lock)
        self._outbox: deque = deque()           # complete windows for the publisher thread
        self._outbox_bytes = 0                  # bytes of their new images (window_bytes)
        self._size_checked: set[int] = set()    # cameras whose image size was looked at
        self._outbox_dropped = 0
        self._last_image: float | None = None  # wall time of the last image taken in
        self._stop = threading.Event()
        self._jpeg_cache: dict = {}             # overlapping windows encode each image once
        self._infos: list[Any] = [None] * len(self.camera_names)
        self._infos_rejected = [0] * len(self.camera_names)
        self._header_frames: list[str] = [""] * len(self.camera_names)
        self._newest_ns = 0
        self._latency = deque(maxlen=50)
        self._rate = diagnostics.RateMeter()
        self._ratelog = diagnostics.RateLimitedLog(self.get_logger().warning, 5.0)
        self.published = 0

        self.windows_pub = self.create_publisher(_window_batch_type(), "~/windows",
                                                 qos.windows_qos(p["bag_mode"]))
        self.status_pub = self.create_publisher(_status_type(), "~/status", qos.OUTPUT)
        self.diag_pub = self.create_publisher(_diag_type(), "/diagnostics", qos.OUTPUT)
        self.watchdog = qos.TopicWatchdog(self, timeout=p["silence_timeout"],
                                          clock_seen=lambda: self.get_clock().now().nanoseconds != 0)
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        in_qos = qos.input_qos("reliable", qos.BAG_MODE_DEPTH) if p["bag_mode"] else \
            qos.input_qos(p["input_qos"])
        for i, topic in enumerate(self.image_topics):
            compressed = self.image_transports[i] == "compressed"
            kind, callback = (CompressedImage, self._on_compressed) if compressed else \
                (Image, self._on_image)
            self.watchdog.watch(topic, f"sensor_msgs/msg/{kind.__name__}", in_qos)
            self.create_subscription(
                kind, topic, lambda m, i=i, cb=callback: cb(i, m), in_qos,
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=self.watchdog.incompatible_qos_callback(topic)))
        for i, topic in enumerate(self.camera_info_topics):
            self.create_subscription(CameraInfo, topic, lambda m, i=i: self._on_info(i, m), in_qos)
        self._status_timer = self.create_timer(p["status_period"], self.publish_status,
                                               clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._hold_timer = self.create_timer(0.25, self._flush_if_idle,
                                             clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(set_parameters_callback(
            SYNC_PARAMETERS, cross_check, lambda: dict(self.p)))
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._publisher = threading.Thread(target=self._publish_loop, name="wint3r_sync_publish",
                                           daemon=True)
        self._publisher.start()
        self.get_logger().info(
            f"{len(self.camera_names)} cameras {self.camera_names} on {self.image_topics} "
            f"({p['input_qos']} QoS); windows of L={p['window_length']}, O={p['window_overlap']}, "
            f"slop {p['slop'] * 1e3:.1f} ms -> {self.windows_pub.topic_name} ({p['transport']})")
        depth = f"{self._depth[1]} (fusion_node decides: with extrinsics_source tf the mountings " \
                "come from /tf_static)"
        if self._depth[0]:
            self.get_logger().info(depth)
        else:
            self.get_logger().warning(depth)

    # ------------------------------------------------------------------------ configuration
    def _configure_cameras(self, p: dict[str, Any]) -> None:
        rig = load_rig_file(p["rig_file"])
        names = p["camera_names"] or (rig.camera_names if rig else [])
        if not names:
            raise ConfigError("set camera_names and image_topics (or rig_file): no cameras "
                              "configured")
        problem = names_rule(names)
        if problem:
            raise ConfigError(f"rig_file {p['rig_file']}: {problem}")
        if rig is not None:
            missing = [n for n in names if n not in rig.camera_names]
            if missing:
                raise ConfigError(f"camera_names {missing} are not in rig_file {p['rig_file']} "
                                  f"(it has {rig.camera_names})")
        cams = [rig.camera(n) for n in names] if rig else [None] * len(names)
        from wint3r_ros.ros.extrinsics import metric_depth

        self._depth = metric_depth(rig.with_cameras(cams) if rig else None, "rig_file",
                                   p["rig_file"])
        topics = p["image_topics"] or [c.topic if c else f"/{n}/image_raw" for n, c in zip(names, cams)]
        infos = p["camera_info_topics"] or [c.camera_info_topic for c in cams if c and c.camera_info_topic]
        if len(topics) != len(names):
            raise ConfigError(f"image_topics has {len(topics)} entries for {len(names)} "
                              f"camera_names {names}")
        if infos and len(infos) != len(names):
            raise ConfigError(f"camera_info_topics has {len(infos)} entries for {len(names)} "
                              f"cameras (give one per camera, or none)")
        if len(set(topics)) != len(topics):
            raise ConfigError(f"image_topics {topics} must be distinct")
        if p["min_cameras"] > len(names):
            raise ConfigError(f"min_cameras={p['min_cameras']} exceeds the {len(names)} cameras")
        base = resolve_base_frame(p["base_frame"], rig, self.get_logger().warning)
        try:
            check_frame_id(base, "base_frame")
        except InputError as err:
            raise ConfigError(str(err)) from err
        transports = p["image_transports"] or ["raw"] * len(names)
        if len(transports) != len(names):
            raise ConfigError(f"image_transports has {len(transports)} entries for "
                              f"{len(names)} cameras")
        self.image_transports = list(transports)
        self.rig_cameras = cams
        self.camera_names = list(names)
        self.image_topics = [compressed_topic(t) if k == "compressed" else t
                             for t, k in zip(topics, transports)]
        self.camera_info_topics = list(infos)
        self.base_frame = base

    def _apply_parameters(self, params: list) -> None:
        with self._lock:
            for prm in params:
                if prm.name not in self.p:
                    continue
                spec = next(s for s in SYNC_PARAMETERS if s.name == prm.name)
                value, _ = validate(spec, prm.value)
                self.p[prm.name] = value
                if prm.name == "slop":
                    self.front.set_slop(value)
                elif prm.name == "queue_size":
                    self.front.set_queue_size(value)
                elif prm.name == "stream_timeout":
                    self.front.set_stream_timeout(value)
                self.get_logger().info(f"parameter {prm.name} set to {value!r}")

    # ---------------------------------------------------------------------------- inputs
    def _on_info(self, cam: int, msg: Any) -> None:
        try:
            convert.check_camera_info(msg, self.camera_info_topics[cam])
        except InputError as err:
            with self._lock:
                self._infos_rejected[cam] += 1
                count = self._infos_rejected[cam]
            self._ratelog((cam, "bad_camera_info"), f"{err}; camera_info ignored (bad_camera_info "
                                                    f"#{count} on camera '{self.camera_names[cam]}'; "
                                                    "the last good one, else the rig's, is used)")
            return
        with self._lock:
            self._infos[cam] = msg

    def _on_compressed(self, cam: int, msg: Any) -> None:
        """A CompressedImage (JPEG/PNG): decoded to an rgb8 Image, then taken as one."""
        topic = self.image_topics[cam]
        try:
            rgb = convert.rgb_from_compressed(msg, topic)
        except InputError as err:
            self.watchdog.mark(topic)
            with self._lock:
                self.front.reject(cam, "bad_image")
                count = self.front.rejected[cam]["bad_image"]
            self._ratelog((cam, "bad_image"), f"{err}; image dropped (bad_image #{count} on "
                                              f"camera '{self.camera_names[cam]}')")
            return
        self._on_image(cam, convert.image_from_array(rgb, "rgb8", msg.header.stamp,
                                                     msg.header.frame_id, topic))

    def _on_image(self, cam: int, msg: Any) -> None:
        arrival = time.monotonic()
        topic = self.image_topics[cam]
        self.watchdog.mark(topic)
        try:
            convert.check_image(msg, topic)
        except InputError as err:
            reason = "bad_image" if msg.encoding in convert.INPUT_ENCODINGS else "bad_encoding"
            with self._lock:
                self.front.reject(cam, reason)
                count = self.front.rejected[cam][reason]
            self._ratelog((cam, reason), f"{err}; image dropped ({reason} #{count} on camera "
                                         f"'{self.camera_names[cam]}')")
            return
        if cam not in self._size_checked:   # the first image of this camera: warn once
            self._size_checked.add(cam)
            note = large_image_warning(msg, topic, self.p["queue_size"] + self.p["window_length"]
                                       * (1 + _OUTBOX_SIZE), len(self.camera_names),
                                       self.front.settings.buffer_bytes,
                                       self.p["window_length"] * len(self.camera_names))
            if note:
                self.get_logger().warning(note)
        stamp_ns = convert.ns_from_stamp(msg.header.stamp)
        if stamp_ns == 0:
            with self._lock:
                self.front.reject(cam, "zero_stamp")
                count = self.front.rejected[cam]["zero_stamp"]
            self._ratelog((cam, "zero_stamp"), f"topic {topic}: image stamp is 0 (the driver does not "
                                               f"stamp its images; sync needs capture stamps); image "
                                               f"dropped (zero_stamp #{count} on camera "
                                               f"'{self.camera_names[cam]}')")
            return
        with self._lock:
            if not self._header_frames[cam]:
                self._header_frames[cam] = msg.header.frame_id
            self._newest_ns = max(self._newest_ns, stamp_ns)
            self._last_image = arrival
            try:
                windows = self.front.add(cam, stamp_ns, msg, self._outbox_bytes)
            except Exception as err:  # a SyncError must not take the node down
                windows = []
                self._ratelog(("sync", cam), f"{topic}: {err}")
            events = self.front.events()
            self._to_outbox(windows, arrival)
        self._log_events(events)

    def _to_outbox(self, windows: list[Any], arrival: float) -> None:
        """Queue complete windows for the publisher thread (the lock is held). Full (in windows,
        or in bytes with the front end's images): the oldest is dropped (counted), or in bag
        mode the callback waits for the thread."""
        for w in windows:
            size = window_bytes(w.window)
            while self.p["bag_mode"] and self._outbox_full(size) and not self._stop.is_set():
                self._outbox_ready.notify()
                self._outbox_ready.wait(0.05)
            while self._outbox_full(size):
                self._outbox_bytes -= self._outbox.popleft()[-1]
                self._outbox_dropped += 1
            self._outbox.append((w, self._camera_infos(w.window), self._frame_ids(),
                                 arrival, self.p["transport"], self.p["jpeg_quality"], size))
            self._outbox_bytes += size
        if windows:
            self._outbox_ready.notify()

    def _outbox_full(self, size: int) -> bool:
        """No room for a window of ``size`` bytes: OUTBOX_SIZE windows, or (with at least one
        waiting) the budget taken by the front end's images and the waiting windows."""
        if len(self._outbox) >= _OUTBOX_SIZE:
            return True
        budget = self.front.settings.buffer_bytes
        return bool(budget and self._outbox and
                    self.front.held_bytes() + self._outbox_bytes + size > budget)

    def _flush_if_idle(self) -> None:
        """No image for hold_timeout (wall) seconds: send the sets still waiting for a window
        (the end of a bag, stopped cameras), as process-bag does at the end of its input."""
        timeout = self.p["hold_timeout"]
        now = time.monotonic()
        with self._lock:
            if not timeout or self._last_image is None or now - self._last_image <= timeout:
                return
            self._last_image = None  # once per silence
            windows = self.front.flush()
            events = self.front.events()
            self._to_outbox(windows, now)
        if windows:
            self.get_logger().info(f"sent {len(windows)} last window(s): no image for {timeout} s")
        self._log_events(events)

    def _log_events(self, events: list[Any]) -> None:
        for e in events:
            if e.kind in ("time_jump", "stalled", "stream_silent", "clock_warning"):
                self.get_logger().warning(f"sync: {e.kind}: {e.detail}")
            else:
                self.get_logger().info(f"sync: {e.kind}: {e.detail}")

    def _camera_infos(self, window: Any) -> list[Any]:
        """Per camera: its latest camera_info, else the rig's at the image size, else empty."""
        from sensor_msgs.msg import CameraInfo

        out = []
        for c in range(len(self.camera_names)):
            info = self._infos[c]
            if info is not None and info.width > 0:
                out.append(info)
                continue
            cam = self.rig_cameras[c]
            frames = window.camera_frames(c)
            if cam is not None and frames:
                img = frames[-1].item
                sized = cam if (cam.width, cam.height) == (img.width, img.height) else \
                    cam.scaled(int(img.width), int(img.height))
                out.append(convert.camera_info_from_camera(sized, img.header.stamp,
                                                           self._frame_ids()[c]))
            else:
                out.append(CameraInfo())
        return out

    def _frame_ids(self) -> list[str]:
        """Optical frame per camera: the rig's, else the images' header frame, else a default."""
        out = []
        for c, name in enumerate(self.camera_names):
            cam = self.rig_cameras[c]
            out.append(cam.frame_id if cam is not None else
                       (self._header_frames[c] or f"{name}_optical_frame"))
        return out

    def _publish_loop(self) -> None:
        """The publisher thread: build and publish waiting windows in order (no lock held)."""
        while True:
            with self._outbox_ready:
                while not self._outbox and not self._stop.is_set():
                    self._outbox_ready.wait(0.5)
                if self._stop.is_set():
                    return
                w, infos, frame_ids, arrival, transport, quality, size = self._outbox.popleft()
                self._outbox_bytes -= size
            try:
                batch = build_window_batch(
                    w.window, index=w.index, epoch=w.epoch,
                    overlap=self.front.settings.window.overlap, base_frame=self.base_frame,
                    frame_ids=frame_ids, camera_infos=infos, transport=transport,
                    jpeg_quality=quality, jpeg_cache=self._jpeg_cache)
                self.windows_pub.publish(batch)
            except InputError as err:
                self._ratelog("batch", f"window {w.index} not published: {err}")
                continue
            except Exception as err:  # keep publishing; a shutdown ends the loop quietly
                if self._stop.is_set() or not self.context.ok():
                    return
                self._ratelog("batch", f"window {w.index} not published: {type(err).__name__}: {err}")
                continue
            done = time.monotonic()
            with self._lock:
                self.published += 1
                self._latency.append(done - arrival)
                self._rate.add(len(w.window.new_frames))

    # ---------------------------------------------------------------------------- status
    def status_values(self) -> dict[str, Any]:
        """Counters for the status topic and /diagnostics (also used by tests)."""
        with self._lock:
            stats = self.front.stats()
            latency = sum(self._latency) / len(self._latency) if self._latency else 0.0
            rate = self._rate.rate()
            newest = self._newest_ns
            published = self.published
            epoch_windows = self.front.windows_in_epoch
            outbox_dropped = self._outbox_dropped
            held = stats["held_bytes"] + self._outbox_bytes
            infos_rejected = list(self._infos_rejected)
        drops = sync_status.drops(stats, infos_rejected, outbox_dropped)
        state, off_clock = sync_status.state(stats, self.p["slop"])
        return {"stats": stats, "drops": drops, "latency": latency, "rate": rate,
                "newest_ns": newest, "published": published, "state": state,
                "off_clock": off_clock, "buffered_mb": held / 2**20,
                "window_index": max(epoch_windows - 1, 0)}

    def publish_status(self) -> None:
        v = self.status_values()
        stats = v["stats"]
        msg = diagnostics.reconstruction_status(
            stamp=convert.stamp_from_ns(v["newest_ns"]), frame_id=self.base_frame,
            window_index=v["window_index"], latency_sec=v["latency"], fps=v["rate"],
            frames_in=sum(c["received"] for c in stats["cameras"]),
            frames_out=sum(c["matched"] for c in stats["cameras"]), drops=v["drops"],
            resets=stats["epoch"], state=v["state"])
        self.status_pub.publish(msg)
        me = self.get_fully_qualified_name()
        statuses = []
        level = diagnostics.OK if v["state"] == "ok" else diagnostics.WARN
        statuses.append(diagnostics.diagnostic_status(
            f"{me}: sync", level, v["state"],
            {"windows_published": v["published"], "sets": stats["sets"],
             "degraded_sets": stats["degraded_sets"], "epoch": stats["epoch"],
             "latency_sec": v["latency"], "frames_per_sec": v["rate"],
             "slop": self.p["slop"], "window_length": self.p["window_length"],
             "window_overlap": self.p["window_overlap"], "transport": self.p["transport"],
             "buffered_mb": round(v["buffered_mb"], 1),
             "buffer_budget_mb": self.p["buffer_budget_mb"], "depth": self._depth[1]},
            hardware_id=self.base_frame))
        for c, cam in enumerate(stats["cameras"]):
            topic = self.image_topics[c]
            lvl, text, values = sync_status.camera(cam, topic, self.watchdog, v["off_clock"],
                                                   self.p["slop"])
            statuses.append(diagnostics.diagnostic_status(f"{me}: camera {cam['name']}", lvl,
                                                          text, values, hardware_id=topic))
        self.diag_pub.publish(diagnostics.diagnostic_array(self.get_clock().now().to_msg(),
                                                           statuses))

    def destroy_node(self) -> None:
        stop_worker(self._stop, self._outbox_ready, self._publisher, timeout=10.0)
        self.watchdog.destroy()
        super().destroy_node()


def window_bytes(window: Any) -> int:
    """Bytes of a window's new images (its overlap is counted with the window before it)."""
    return sum(item_nbytes(f.item) for f in window.new_frames)


def _window_batch_type() -> Any:
    from wint3r_ros.msg import WindowBatch
    return WindowBatch


def _status_type() -> Any:
    from wint3r_ros.msg import ReconstructionStatus
    return ReconstructionStatus


def _diag_type() -> Any:
    from diagnostic_msgs.msg import DiagnosticArray
    return DiagnosticArray


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of `ros2 run wint3r_ros sync_node` and `python -m wint3r_ros.ros.sync_node`."""
    from wint3r_ros.ros.runner import run_node

    return run_node(SyncNode, args, "sync_node", __doc__.split("\n\n")[0], SYNC_PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
