"""Scoring process-bag's outputs against the ground truth make-bag writes into its bags."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from wint3r_ros.core.pipeline.records import full_size

__all__ = ["GroundTruthScorer"]

_NS = 1_000_000_000


class GroundTruthScorer:
    """Ground truth of a make-bag bag (base poses on ``/ground_truth/tf``, depth per camera on
    ``/ground_truth/<camera>/depth``) against the output records of the pipeline: `take` keeps
    the ground truth as it is read (bounded: 30 s of stream), `score` adds a batch's poses and
    depth to the metrics (`offline.report.MetricsAccumulator`)."""

    def __init__(self, names: list[str], available: Mapping[str, str], base_frame: str) -> None:
        from wint3r_ros.offline.make_bag import GROUND_TRUTH_TF_TOPIC, ground_truth_depth_topic
        from wint3r_ros.offline.report import MetricsAccumulator

        self.tf_topic = GROUND_TRUTH_TF_TOPIC
        self.depth_topics = {ground_truth_depth_topic(n): i for i, n in enumerate(names)
                             if ground_truth_depth_topic(n) in available}
        self.topics = list(self.depth_topics) + ([self.tf_topic] if self.tf_topic in available
                                                 else [])
        self.base_frame = base_frame
        self.acc = MetricsAccumulator()
        self.depth: dict[tuple[int, int], np.ndarray] = {}
        self.base: dict[int, np.ndarray] = {}
        self.limit = 64 * len(names)

    @property
    def active(self) -> bool:
        return bool(self.topics)

    def take(self, msg: Any) -> bool:
        """Keep a ground-truth message; False for any other topic."""
        from wint3r_ros.data.messages import array_from_image, transforms_from_tf_message

        if msg.topic in self.depth_topics:
            self.depth[(self.depth_topics[msg.topic], msg.stamp_ns)] = \
                array_from_image(msg.msg, msg.topic).astype(np.float32)
        elif msg.topic == self.tf_topic:
            for _parent, child, stamp, T in transforms_from_tf_message(msg.msg):
                if child == self.base_frame:
                    self.base[stamp] = T
        else:
            return False
        if len(self.depth) > self.limit:   # results come at most a window (+ slop) late
            horizon = msg.stamp_ns - 30 * _NS
            self.depth = {k: v for k, v in self.depth.items() if k[1] >= horizon}
            self.base = {k: v for k, v in self.base.items() if k >= horizon}
        return True

    def score(self, batch: Any) -> None:
        for p in batch.poses:
            gt = self.base.get(p.stamp_ns)
            if gt is not None:
                self.acc.add_pose(p.stamp_ns, p.odom_from_base, gt)
        for f in batch.frames:
            gt = self.depth.pop((f.camera_index, f.stamp_ns), None)
            if gt is not None and gt.shape == f.depth.shape:
                self.acc.add_depth(full_size(f.depth), gt, f.metric)
