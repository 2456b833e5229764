"""Ground truth that a user's bag carries: a TF, Odometry or PoseStamped topic.

``eval --bag BAG --gt-topic TOPIC --gt-frame FRAME`` scores a recording against whatever
measured the rig's motion: motion capture, a VIO, another SLAM's output. The topic gives the
pose of FRAME in some world frame (a ``tf2_msgs/TFMessage`` topic: the transforms whose child is
FRAME; ``nav_msgs/Odometry``: its child frame, which must be FRAME when given;
``geometry_msgs/PoseStamped`` / ``PoseWithCovarianceStamped``: the pose itself). FRAME is tied
to the cameras by the rig: it is the rig's base frame, one camera's optical frame, or a frame
that the bag's ``/tf_static`` connects to the base frame by one transform (a mocap marker).

Ground truth rarely shares the images' stamps, so each synchronised set takes the pose
interpolated at its stamp between the two neighbouring samples (linear in position, slerp in
rotation) when they are at most ``max_gap_ns`` apart; otherwise the set has no true pose (NaN)
and is left out of ATE.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import pose_from_translation_quat, se3_inverse
from wint3r_ros.core.rig import Rig, quaternion_xyzw_from_rotation, rotation_from_quaternion_xyzw
from wint3r_ros.errors import BagError, ConfigError

__all__ = ["GT_TYPES", "read_trajectory", "interpolate_poses", "frame_from_base",
           "camera_poses_from_bag"]

GT_TYPES = ("tf2_msgs/msg/TFMessage", "nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped",
            "geometry_msgs/msg/PoseWithCovarianceStamped")


def _pose_of(msg: Any) -> np.ndarray:
    pose = msg.pose.pose if hasattr(msg.pose, "pose") else msg.pose
    p, q = pose.position, pose.orientation
    return pose_from_translation_quat([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])


def read_trajectory(reader: Any, topic: str, frame: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(stamps_ns [K], world_from_frame [K, 4, 4], world frame name) of `frame` on `topic`, in
    stamp order. A TF topic needs `frame`; an Odometry topic checks it against child_frame_id."""
    from wint3r_ros.data.messages import stamp_ns_of, transforms_from_tf_message

    msgtype = reader.topics.get(topic)
    if msgtype is None:
        raise BagError(f"no ground-truth topic {topic} in the bag (it has {sorted(reader.topics)})")
    if msgtype not in GT_TYPES:
        raise ConfigError(f"--gt-topic {topic} is {msgtype}; expected one of {', '.join(GT_TYPES)}")
    if msgtype == GT_TYPES[0] and not frame:
        raise ConfigError(f"--gt-topic {topic} is a TF topic: name the frame with --gt-frame")
    samples: dict[int, np.ndarray] = {}
    parents: set[str] = set()
    children: set[str] = set()
    for m in reader.messages([topic]):
        if msgtype == GT_TYPES[0]:
            for parent, child, stamp, T in transforms_from_tf_message(m.msg):
                children.add(child)
                if child == frame:
                    parents.add(parent)
                    samples[stamp] = T
            continue
        if msgtype == GT_TYPES[1]:
            children.add(str(m.msg.child_frame_id))
            if frame and str(m.msg.child_frame_id) != frame:
                continue
        parents.add(str(m.msg.header.frame_id))
        samples[stamp_ns_of(m.msg)] = _pose_of(m.msg)
    if not samples:
        raise BagError(f"ground-truth topic {topic} has no pose of frame {frame!r} (child frames "
                       f"seen: {sorted(children)[:10]})")
    if len(parents) > 1:
        raise BagError(f"ground-truth topic {topic}: frame {frame!r} is given in several parent "
                       f"frames {sorted(parents)}; one world frame is needed")
    stamps = np.array(sorted(samples), dtype=np.int64)
    return stamps, np.stack([samples[s] for s in stamps.tolist()]), parents.pop()


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    d = float(q0 @ q1)
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(d)
    return (np.sin((1 - a) * theta) * q0 + np.sin(a * theta) * q1) / np.sin(theta)


def interpolate_poses(stamps_ns: np.ndarray, poses: np.ndarray, query_ns: Sequence[int],
                      max_gap_ns: int) -> np.ndarray:
    """Poses [Q, 4, 4] at `query_ns`: exact samples as they are, else linear position and slerp
    between the neighbours when they are at most max_gap_ns apart; NaN otherwise."""
    out = np.full((len(query_ns), 4, 4), np.nan)
    for i, q in enumerate(query_ns):
        j = int(np.searchsorted(stamps_ns, q, side="left"))
        if j < len(stamps_ns) and stamps_ns[j] == q:
            out[i] = poses[j]
            continue
        if j == 0 or j == len(stamps_ns) or stamps_ns[j] - stamps_ns[j - 1] > max_gap_ns:
            continue
        a = (q - stamps_ns[j - 1]) / (stamps_ns[j] - stamps_ns[j - 1])
        T0, T1 = poses[j - 1], poses[j]
        T = np.eye(4)
        T[:3, 3] = (1 - a) * T0[:3, 3] + a * T1[:3, 3]
        T[:3, :3] = rotation_from_quaternion_xyzw(_slerp(quaternion_xyzw_from_rotation(T0[:3, :3]),
                                                         quaternion_xyzw_from_rotation(T1[:3, :3]), a))
        out[i] = T
    return out


def frame_from_base(reader: Any, rig: Rig, frame: str) -> np.ndarray:
    """T_frame_base [4, 4]: identity for the base frame, from the rig for a camera's optical
    frame, else one /tf_static transform between `frame` and the base frame (either way)."""
    from wint3r_ros.data.messages import transforms_from_tf_message

    if frame == rig.base_frame:
        return np.eye(4)
    for cam in rig.cameras:
        if frame == cam.frame_id:
            return se3_inverse(cam.T_base_camera)
    if "/tf_static" in reader.topics:
        for m in reader.messages(["/tf_static"]):
            for parent, child, _stamp, T in transforms_from_tf_message(m.msg):
                if (parent, child) == (frame, rig.base_frame):
                    return T
                if (parent, child) == (rig.base_frame, frame):
                    return se3_inverse(T)
    raise ConfigError(f"--gt-frame {frame!r} is neither the rig's base frame {rig.base_frame!r}, "
                      f"a camera frame ({', '.join(c.frame_id for c in rig.cameras)}), nor tied to "
                      "the base frame by one /tf_static transform in the bag")


def camera_poses_from_bag(bag: str | Path, rig: Rig, topic: str, frame: str | None,
                          set_stamps_ns: Sequence[int], max_gap_ns: int = 100_000_000) -> np.ndarray:
    """world_from_cam [T, N, 4, 4] of every set (NaN where the ground truth has no pose)."""
    from wint3r_ros.data.bag import BagReader

    with BagReader(bag) as reader:
        stamps, world_from_frame, _world = read_trajectory(reader, topic, frame)
        if frame is None and reader.topics[topic] == GT_TYPES[1]:
            frame = next(str(m.msg.child_frame_id) for m in reader.messages([topic]))
        T_frame_base = frame_from_base(reader, rig, frame) if frame else np.eye(4)
    world_from_base = interpolate_poses(stamps, world_from_frame, set_stamps_ns, max_gap_ns) @ T_frame_base
    return np.stack([world_from_base @ cam.T_base_camera for cam in rig.cameras], axis=1)
