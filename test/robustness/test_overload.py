"""Overload over real DDS: WindowBatches arrive much faster than fusion_node's model can run.
The node stays responsive (its parameter service answers while the model is busy), drops whole
windows oldest first and counts them (status topic), never holds more than queue_size windows,
and keeps working on recent windows (bounded latency) instead of an ever older backlog."""
from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed: run 'make test'")

import torch  # noqa: E402
from fixtures.cameras import write_rig  # noqa: E402
from fixtures.graph import fusion_overrides, random_tiny_model, window_batches  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from wint3r_ros.msg import ReconstructionStatus, WindowBatch  # noqa: E402
from wint3r_ros.ros import qos  # noqa: E402
from wint3r_ros.ros.fusion_node import FusionNode  # noqa: E402

torch.set_num_threads(1)
MODEL_SLEEP = 0.3   # seconds per window on top of the tiny model: ~3 windows/s at most
RATE = 20.0         # windows/s offered
WINDOWS = 80
QUEUE = 2


class SlowModel:
    """The tiny model, plus a fixed sleep per window (a model too slow for the stream)."""

    def __init__(self, model) -> None:
        self.model = model

    def parameters(self):
        return self.model.parameters()

    def new_stream(self):
        return self.model.new_stream()

    def step(self, state, images, keys=None):
        time.sleep(MODEL_SLEEP)
        return self.model.step(state, images, keys)


def _batches(n_windows: int) -> list:
    # window k is complete at set 2k + 3 (L = 4, O = 2); a set every 50 ms
    return window_batches(2 * n_windows + 2, 50_000_000)[:n_windows]


def test_fusion_node_under_overload_stays_responsive_and_drops_counted_whole_windows(
        rclpy_context, tmp_path):
    rig = write_rig(tmp_path / "rig.yaml")
    node = FusionNode(context=rclpy_context, model=SlowModel(random_tiny_model()),
                      parameter_overrides=fusion_overrides(rig, queue_size=QUEUE,
                                                           latency_budget=0.0))
    peer = rclpy.create_node("overload_peer", context=rclpy_context)
    pub = peer.create_publisher(WindowBatch, "/fusion_node/windows", qos.WINDOWS)
    statuses: list = []
    peer.create_subscription(ReconstructionStatus, "/fusion_node/status", statuses.append, 50)
    client = peer.create_client(GetParameters, "/fusion_node/get_parameters")
    executors = []
    for n in (node, peer):
        ex = SingleThreadedExecutor(context=rclpy_context)
        ex.add_node(n)
        threading.Thread(target=ex.spin, daemon=True).start()
        executors.append(ex)
    try:
        batches = _batches(WINDOWS)
        end = time.monotonic() + 20
        while time.monotonic() < end and not (pub.get_subscription_count()
                                              and client.service_is_ready()):
            time.sleep(0.05)
        assert pub.get_subscription_count() and client.service_is_ready()
        answers, queued = [], []
        pending = None
        start = time.monotonic()
        for i, b in enumerate(batches):
            wait = start + i / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            pub.publish(b)
            queued.append(node.status_values()["queued"])
            if i % 10 == 5:  # ask for a parameter while the model is busy
                if pending is not None:
                    answers.append(pending.done())
                pending = client.call_async(GetParameters.Request(names=["queue_size"]))
        # every parameter request is answered (the executor is never blocked by the model)
        end = time.monotonic() + 10
        while pending is not None and not pending.done() and time.monotonic() < end:
            time.sleep(0.05)
        answers.append(pending.done())
        assert all(answers), f"parameter service unanswered: {answers}"
        assert pending.result().values[0].integer_value == QUEUE
        # the worker drains the short queue and stops
        end = time.monotonic() + 30
        while time.monotonic() < end and node.status_values()["queued"]:
            time.sleep(0.1)
        time.sleep(MODEL_SLEEP + 1.0)
        v = node.status_values()
        processed, dropped = v["windows"], v["drops"]["queue_full"]
        # bounded queue; whole windows dropped and counted; a fraction processed
        assert max(queued) <= QUEUE
        assert processed + dropped <= WINDOWS
        assert dropped >= WINDOWS // 2, v["drops"]
        assert 2 <= processed < WINDOWS // 2
        assert v["drops"]["error"] == 0 and v["drops"]["bad_window"] == 0
        # the drops reach the status topic
        end = time.monotonic() + 5
        while time.monotonic() < end and not any(
                dict(zip(s.drop_reasons, s.drop_counts)).get("queue_full") == dropped
                for s in statuses):
            time.sleep(0.1)
        assert any(dict(zip(s.drop_reasons, s.drop_counts)).get("queue_full") == dropped
                   for s in statuses)
        # bounded latency: the last window worked on is one of the last offered (not a backlog),
        # and no window waited for more than the queue ahead of it
        last_index, _ = v["last_window"]
        assert last_index >= WINDOWS - 1 - (QUEUE + 2)
        worst_model = max(node._model_sec)
        assert max(node._latency) <= (QUEUE + 1) * (worst_model + 0.5) + 2.0
    finally:
        for ex in executors:
            ex.shutdown()
        peer.destroy_node()
        node.destroy_node()
