"""`wint3r-ros bench ros`: latency of the ROS graph over real DDS, in one process.

N synthetic cameras publish W x H rgb8 images (a rendered room) at ``rate`` Hz; sync_node (and with ``--fusion``,
fusion_node with the tiny model) run on their own executor threads, as they would in their own
processes, and a receiver records when outputs arrive. Reported per window (milliseconds):

- ``sync_internal``: sync_node's own time from the arrival of the image that completes a window
  to its WindowBatch being published (what the node reports in ~/status);
- ``image_bytes_per_batch``: image payload of one WindowBatch (raw or JPEG);
- ``sync_end_to_end``: from publishing the last image of a window's newest set to receiving the
  WindowBatch (DDS in and out included);
- with ``--fusion``: ``fusion_internal`` (batch arrival -> outputs published), ``model`` (the
  engine's time per window) and ``set_to_depth`` (publishing a set's last image -> receiving
  its first depth image; includes the window wait, so at least (L - O) frame periods) and
  ``set_to_tf`` (publishing a set's last image -> receiving the /tf transform stamped with it).
  ``fusion_params`` overrides fusion_node parameters (checkpoint, model_preset, device, ...).

The numbers include Python's GIL shared by all nodes of the process; separate processes do not
share it. Output: one JSON document with machine, versions and settings.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["configure", "run", "bench_ros"]


def _stats(ms: list[float]) -> dict[str, float] | None:
    if not ms:
        return None
    a = np.asarray(ms)
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}


def _rendered(cameras: int, width: int, height: int) -> list[np.ndarray]:
    """One rendered view per camera of a synthetic room (realistic JPEG sizes and timings);
    frames are these shifted sideways a little more each set."""
    from wint3r_ros.data.synthetic import RigConfig, SceneConfig, SyntheticRig

    rig = SyntheticRig(SceneConfig(seed=0), RigConfig(num_cameras=cameras, width=width, height=height))
    return [f.image for f in rig.render(0)]


def bench_ros(cameras: int = 3, width: int = 640, height: int = 480, rate: float = 15.0,
              sets: int = 60, transport: str = "raw", fusion: bool = False,
              input_long_side: int = 128, threads: int = 1,
              fusion_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the graph on a synthetic stream; returns the timings (see the module docstring)."""
    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from wint3r_ros.core import geometry as g
    from wint3r_ros.core.rig import Camera, Rig
    from wint3r_ros.data.rig_files import save_rig
    from wint3r_ros.msg import WindowBatch
    from wint3r_ros.ros import convert
    from wint3r_ros.ros.sync_node import SyncNode

    torch.set_num_threads(max(1, threads))
    names = [f"cam{i}" for i in range(cameras)]
    K = np.array([[0.8 * width, 0, width / 2 - 0.5], [0, 0.8 * width, height / 2 - 0.5], [0, 0, 1]])
    rig = Rig("bench", "base_link", [
        Camera(n, f"/bench/{n}/image_raw", f"{n}_optical_frame", width, height, K, "none",
               np.zeros(0), g.se3(t=[0.1 * i, 0.0, 0.0])) for i, n in enumerate(names)])
    tmp = Path(tempfile.mkdtemp(prefix="wint3r_bench_"))
    save_rig(rig, tmp / "rig.yaml")
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes: list[Any] = []
    executors: list[Any] = []
    try:
        sync = SyncNode(context=context, parameter_overrides=[
            Parameter("rig_file", value=str(tmp / "rig.yaml")), Parameter("input_qos", value="reliable"),
            Parameter("transport", value=transport), Parameter("slop", value=0.2 / rate)])
        nodes.append(sync)
        fus = None
        if fusion:
            from wint3r_ros.ros.fusion_node import FusionNode

            fus = FusionNode(context=context, cli_args=["--ros-args", "-r", "~/windows:=/sync_node/windows"],
                             parameter_overrides=[
                                 Parameter("rig_file", value=str(tmp / "rig.yaml")),
                                 Parameter("input_long_side", value=input_long_side),
                                 Parameter("latency_budget", value=0.0), Parameter("queue_size", value=4),
                                 Parameter("torch_threads", value=threads)]
                             + [Parameter(k, value=v) for k, v in (fusion_params or {}).items()])
            nodes.append(fus)
        pub_node = rclpy.create_node("bench_cameras", context=context)
        recv = rclpy.create_node("bench_receiver", context=context)
        nodes += [pub_node, recv]
        profile = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        pubs = [pub_node.create_publisher(Image, c.topic, profile) for c in rig.cameras]
        sent: dict[int, float] = {}      # newest stamp of a set -> wall time its last image left
        batch_arrival: list[tuple[int, float]] = []
        depth_arrival: dict[int, float] = {}
        tf_arrival: dict[int, float] = {}
        lock = threading.Lock()

        batch_bytes: list[int] = []

        def on_batch(msg: Any) -> None:
            now = time.monotonic()
            size = sum(len(m.data) for m in msg.images) + sum(len(m.data) for m in msg.compressed_images)
            with lock:
                batch_arrival.append((convert.ns_from_stamp(msg.header.stamp), now))
                batch_bytes.append(size)

        def on_depth(msg: Any) -> None:
            with lock:
                depth_arrival.setdefault(convert.ns_from_stamp(msg.header.stamp), time.monotonic())

        def on_tf(msg: Any) -> None:
            now = time.monotonic()
            with lock:
                for t in msg.transforms:
                    tf_arrival.setdefault(convert.ns_from_stamp(t.header.stamp), now)

        recv.create_subscription(WindowBatch, "/sync_node/windows", on_batch, 10)
        if fusion:
            from tf2_msgs.msg import TFMessage

            recv.create_subscription(Image, f"/fusion_node/{names[0]}/depth", on_depth, 50)
            recv.create_subscription(TFMessage, "/tf", on_tf, 100)
        for n in [sync] + ([fus] if fus else []) + [recv]:
            ex = SingleThreadedExecutor(context=context)
            ex.add_node(n)
            threading.Thread(target=ex.spin, daemon=True).start()
            executors.append(ex)
        end = time.monotonic() + 20
        while time.monotonic() < end and not all(p.get_subscription_count() for p in pubs):
            time.sleep(0.02)
        rng = np.random.default_rng(0)
        frames = _rendered(cameras, width, height)
        t0 = 1_000_000_000_000
        start = time.monotonic()
        set_stamp: dict[int, tuple[int, float]] = {}  # set -> (camera 0 stamp, sent time)
        set_stamps: dict[int, list[int]] = {}  # set -> every camera's stamp
        for k in range(sets):
            stamps = [t0 + int(k * 1e9 / rate) + int(rng.integers(-1_000_000, 1_000_000)) for _ in names]
            msgs = [convert.image_from_array(np.roll(frames[c], 4 * k, axis=1), "rgb8", s,
                                             rig.cameras[c].frame_id) for c, s in enumerate(stamps)]
            wait = start + k / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            for p, m in zip(pubs, msgs):
                p.publish(m)
            with lock:
                sent[max(stamps)] = time.monotonic()
                set_stamp[k] = (stamps[0], sent[max(stamps)])
                set_stamps[k] = stamps
        end = time.monotonic() + (30 if fusion else 5)
        while time.monotonic() < end:
            time.sleep(0.1)
            if not fusion:
                break
            if fus.status_values()["windows"] >= len(batch_arrival) and batch_arrival:
                break
        time.sleep(0.5)
        with lock:
            e2e = [(t - sent[s]) * 1e3 for s, t in batch_arrival if s in sent]
            depth = [(depth_arrival[s0] - t) * 1e3 for s0, t in set_stamp.values()
                     if s0 in depth_arrival]
            to_tf = [(min(tf_arrival[x] for x in set_stamps[k] if x in tf_arrival) - t) * 1e3
                     for k, (_, t) in set_stamp.items()
                     if any(x in tf_arrival for x in set_stamps[k])]
        sv = sync.status_values()
        result: dict[str, Any] = {
            "windows": len(batch_arrival), "sets_published": sets,
            "sync_internal_ms": _stats([x * 1e3 for x in sync._latency]),
            "sync_end_to_end_ms": _stats(e2e),
            "sync_drops": sv["drops"],
            "image_bytes_per_batch": int(np.mean(batch_bytes)) if batch_bytes else None,
        }
        if fusion and fus is not None:
            fv = fus.status_values()
            result.update({"fusion_windows": fv["windows"],
                           "fusion_internal_ms": _stats([x * 1e3 for x in fus._latency]),
                           "model_ms": _stats([x * 1e3 for x in fus._model_sec]),
                           "set_to_depth_ms": _stats(depth), "set_to_tf_ms": _stats(to_tf),
                           "fusion_drops": fv["drops"],
                           "fusion_frames_out": fv["frames_out"]})
        return result
    finally:
        for ex in executors:
            ex.shutdown()
        for n in nodes:
            n.destroy_node()
        context.try_shutdown()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate, Hz")
    parser.add_argument("--sets", type=int, default=60, help="synchronised sets to publish")
    parser.add_argument("--transport", choices=("raw", "jpeg"), default="raw")
    parser.add_argument("--fusion", action="store_true", help="also run fusion_node (tiny model)")
    parser.add_argument("--input-long-side", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.bench.core import machine_info

    settings = {k: getattr(args, k) for k in ("cameras", "width", "height", "rate", "sets",
                                               "transport", "fusion", "input_long_side", "threads")}
    doc = {"benchmark": "ros", "machine": machine_info(), "settings": settings,
           "results": bench_ros(**settings)}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
