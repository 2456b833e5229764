"""An evaluation sequence from a rosbag2 recording (e.g. `wint3r-ros make-bag`) and its rig.

Images come from the rig's camera topics, synchronised with the project's approximate-time
policy (as sync_node does). Ground truth is used when the bag has it, on make-bag's topics:
`/ground_truth/<camera>/depth` (32FC1 metres) and `/ground_truth/tf` (world -> base frame);
camera poses are then world_from_base x the rig's base_from_camera. Without ground truth the
sequence still runs (frames/s only).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.sync import ApproximateTimePolicy
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.errors import BagError, InputError
from wint3r_ros.train.evaluate import Sequence

__all__ = ["bag_sequence", "GROUND_TRUTH_TF_TOPIC", "ground_truth_depth_topic"]

GROUND_TRUTH_TF_TOPIC = "/ground_truth/tf"


def ground_truth_depth_topic(camera: str) -> str:
    return f"/ground_truth/{camera}/depth"


def bag_sequence(bag: str | Path, rig_path: str | Path, frames: int | None = None,
                 slop: float = 0.02, gt_topic: str | None = None, gt_frame: str | None = None,
                 gt_max_gap_ns: int = 100_000_000) -> Sequence:
    """Read up to `frames` synchronised sets of the rig's cameras (all when None). With
    `gt_topic`, camera poses come from that TF / Odometry / PoseStamped topic instead
    (train/ground_truth.py), interpolated at the sets' stamps."""
    rig = load_rig(rig_path)
    names = list(rig.camera_names)
    sets, depth, base, truth = _read_sets(bag, rig, rig_path, frames, slop)
    images = _images(bag, sets, len(names))
    stamps_ns = [min(item[0] for item in s) for s in sets]
    gt_depth = _depth(sets, depth, images.shape) if truth["depth"] else None
    poses = None
    if gt_topic is not None:
        from wint3r_ros.train.ground_truth import camera_poses_from_bag

        poses = camera_poses_from_bag(bag, rig, gt_topic, gt_frame, stamps_ns, gt_max_gap_ns)
    elif truth["tf"] and all(t in base for t in stamps_ns):
        poses = np.stack([[base[t] @ rig.camera(n).T_base_camera for n in names]
                          for t in stamps_ns])
    return Sequence(f"bag:{Path(bag).name}", images, gt_depth, poses,
                    np.array(stamps_ns) * 1e-9, names, rig if len(names) > 1 else None)


def _read_sets(bag: str | Path, rig: Any, rig_path: str | Path, frames: int | None,
               slop: float) -> tuple[list, dict, dict, dict[str, bool]]:
    """The complete synchronised sets of (stamp_ns, RGB) items (at most `frames`), the
    ground-truth depth per (camera, stamp) and base pose per stamp, and which truth there is."""
    from wint3r_ros.data.bag import BagReader
    from wint3r_ros.data.messages import array_from_image, rgb_from_image, transforms_from_tf_message

    names = list(rig.camera_names)
    image_topics = [rig.camera(n).topic for n in names]
    with BagReader(bag) as reader:
        available = reader.topics
        missing = [t for t in image_topics if t not in available]
        if missing:
            raise BagError(f"bag {bag}: no image topic(s) {missing} of rig {rig_path} "
                           f"(the bag has {sorted(available)})")
        depth_topics = {ground_truth_depth_topic(n): i for i, n in enumerate(names)
                        if ground_truth_depth_topic(n) in available}
        has_tf = GROUND_TRUTH_TF_TOPIC in available
        topics = image_topics + list(depth_topics) + ([GROUND_TRUTH_TF_TOPIC] if has_tf else [])
        policy = ApproximateTimePolicy(len(names), slop=slop)
        sets: list = []
        depth: dict = {}
        base: dict = {}
        for m in reader.messages_by_stamp(topics):
            if m.topic in depth_topics:
                depth[(depth_topics[m.topic], m.stamp_ns)] = array_from_image(m.msg, m.topic).astype(np.float32)
            elif m.topic == GROUND_TRUTH_TF_TOPIC:
                base.update((stamp, T) for _parent, child, stamp, T in transforms_from_tf_message(m.msg)
                            if child == rig.base_frame)
            else:
                cam = image_topics.index(m.topic)
                sets.extend(policy.add(cam, m.stamp_ns, (m.stamp_ns, rgb_from_image(m.msg, m.topic))))
            if frames is not None and len(sets) >= frames:
                break
        if frames is None or len(sets) < frames:
            sets.extend(policy.flush())
    sets = [s for s in sets if all(item is not None for item in s)]
    return (sets if frames is None else sets[:frames]), depth, base, \
        {"depth": bool(depth_topics), "tf": has_tf}


def _images(bag: str | Path, sets: list, cameras: int) -> np.ndarray:
    """[T, N, H, W, 3] of the sets; InputError without a set or with cameras of other sizes."""
    if not sets:
        raise InputError(f"bag {bag}: no synchronised set of all {cameras} cameras")
    sizes = {item[1].shape for s in sets for item in s}
    if len(sizes) != 1:
        raise InputError(f"bag {bag}: cameras give different image sizes {sorted(sizes)}")
    return np.stack([np.stack([item[1] for item in s]) for s in sets])


def _depth(sets: list, depth: dict, shape: tuple) -> np.ndarray:
    """[T, N, H, W] ground-truth depth of the sets' images (NaN where there is none)."""
    out = np.full(shape[:4], np.nan, dtype=np.float32)
    for t, s in enumerate(sets):
        for c, item in enumerate(s):
            d = depth.get((c, item[0]))
            if d is not None and d.shape == shape[2:4]:
                out[t, c] = d
    return out
