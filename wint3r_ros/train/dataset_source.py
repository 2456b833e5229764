"""Evaluation sequences from published datasets (`wint3r_ros.data.datasets`) and their protocol.

`PROTOCOLS` holds, per dataset kind, which frames are scored (start, count, stride), how depth
is scaled (one median ratio per sequence for video depth, per frame otherwise), the depth cap,
and what the WinT3R paper reports there; docs/EVALUATION.md ("Real datasets") explains them.
`dataset_sequences` turns the chosen frames into `evaluate.Sequence`s (images, depth with NaN,
ground-truth poses with NaN rows where a frame has none, stamps in seconds) and
`write_tum_trajectory` exports a trajectory in the TUM format that evo reads.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from wint3r_ros.data.datasets import DatasetSequence, open_dataset, parse_dataset_spec
from wint3r_ros.data.map_files import tum_stamp, write_tum_trajectory
from wint3r_ros.train.evaluate import Sequence

__all__ = ["DatasetProtocol", "PROTOCOLS", "protocol_for", "dataset_sequences", "to_sequence",
           "write_tum_trajectory", "tum_stamp"]


@dataclass(frozen=True)
class DatasetProtocol:
    """Frames start, start + stride, ... (at most `frames`; None: all), depth scaling ("sequence":
    one median ratio over all frames; "frame": per frame), depth cap in metres, what the paper
    reports on the dataset and whether these settings are the paper's (else ours)."""

    start: int = 0
    frames: int | None = None
    stride: int = 1
    depth_scaling: str = "frame"
    max_depth: float = math.inf
    paper: str = ""
    from_paper: bool = False


PROTOCOLS: dict[str, DatasetProtocol] = {
    "tum": DatasetProtocol(frames=90, stride=3, depth_scaling="sequence", max_depth=10.0,
                           paper="camera pose: ATE 0.074 (Sim(3)-aligned)", from_paper=True),
    "scannet": DatasetProtocol(frames=90, stride=3, depth_scaling="sequence", max_depth=10.0,
                               paper="camera pose: ATE 0.062 (Sim(3)-aligned)", from_paper=True),
    "bonn": DatasetProtocol(start=30, frames=110, stride=1, depth_scaling="sequence",
                            max_depth=70.0, paper="video depth: Abs Rel 0.07", from_paper=True),
    "kitti-depth": DatasetProtocol(frames=110, stride=1, depth_scaling="sequence", max_depth=80.0,
                                   paper="video depth: delta < 1.25 of 94.9 %", from_paper=True),
    "7scenes": DatasetProtocol(frames=None, stride=1, depth_scaling="sequence", max_depth=10.0),
    "kitti": DatasetProtocol(frames=None, stride=1, depth_scaling="sequence", max_depth=80.0),
}


def protocol_for(kind: str, start: int | None = None, frames: int | None = None,
                 stride: int | None = None) -> DatasetProtocol:
    """The protocol of `kind` with the given overrides (None: keep)."""
    base = PROTOCOLS[kind]
    changes = {k: v for k, v in (("start", start), ("frames", frames), ("stride", stride)) if v is not None}
    return replace(base, **changes) if changes else base


def to_sequence(seq: DatasetSequence, protocol: DatasetProtocol) -> Sequence:
    """The frames of `protocol` read into memory as an evaluation `Sequence`."""
    sel = seq.select(protocol.start, protocol.frames, protocol.stride)
    n = len(sel.rig.cameras)
    images = np.stack([np.stack([sel.image(t, c) for c in range(n)]) for t in range(len(sel))])
    depth = None
    if sel.has_depth:
        depth = np.full(images.shape[:4], np.nan, dtype=np.float32)
        for t in range(len(sel)):
            for c in range(n):
                d = sel.depth(t, c)
                if d is not None:
                    depth[t, c] = d
    poses = None
    if sel.has_poses:
        poses = np.full((len(sel), n, 4, 4), np.nan)
        for t in range(len(sel)):
            for c in range(n):
                T = sel.world_from_cam(t, c)
                if T is not None:
                    poses[t, c] = T
    stamps_ns = np.array([f.stamp_ns for f in sel.frames], dtype=np.int64)
    return Sequence(f"{sel.kind}:{sel.name}", images, depth, poses, stamps_ns * 1e-9,
                    [c.name for c in sel.rig.cameras], sel.rig if n > 1 else None,
                    depth_scaling=protocol.depth_scaling, max_depth=protocol.max_depth,
                    stamps_ns=stamps_ns)


def dataset_sequences(spec: str, protocol: DatasetProtocol | None = None) -> Iterator[Sequence]:
    """Every sequence of ``KIND:PATH`` under its protocol (default: `PROTOCOLS[KIND]`)."""
    kind, _ = parse_dataset_spec(spec)
    protocol = protocol or PROTOCOLS[kind]
    for seq in open_dataset(spec):
        yield to_sequence(seq, protocol)
