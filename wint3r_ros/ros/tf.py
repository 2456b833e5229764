"""TF publishing without tf2_ros: broadcasters that attach to a node and publish
``tf2_msgs/msg/TFMessage`` the way tf2_ros does.

- `TransformBroadcaster(node)`: dynamic transforms on ``/tf`` (reliable, keep last 100).
- `StaticTransformBroadcaster(node)`: static transforms on ``/tf_static`` (reliable, transient
  local, depth 1, so late joiners such as RViz or a bag recorder still get them). Like tf2_ros it
  accumulates: every send republishes all static transforms known so far, the newest per child
  frame, in one message.

- `StaticTransformListener(node)`: the small /tf_static listener of the PyPI route (no tf2_ros
  wheel): subscribes like tf2_ros (reliable, transient local, depth 100, so every latched
  publisher's transforms arrive) and keeps them in a `StaticTransformTree`, which composes a chain
  of static transforms (``lookup(target, source)``) the way tf2's buffer does for static frames.

The checks, the accumulation (`check_frame_id`, `StaticTransforms`) and `StaticTransformTree`
work without a node.
Frame names follow tf2: non-empty, no leading slash, no whitespace, child differs from parent
(REP-105 frames: ``map`` -> ``odom`` -> ``base_link`` -> sensor frames).
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from wint3r_ros.errors import InputError
from wint3r_ros.ros import qos

__all__ = ["check_frame_id", "check_transform", "StaticTransforms", "TransformBroadcaster",
           "StaticTransformBroadcaster", "StaticTransformTree", "StaticTransformListener"]


def check_frame_id(name: Any, what: str = "frame_id") -> str:
    """``name`` if it is a usable tf2 frame id, else InputError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what}: a TF frame id must be a non-empty string, got {name!r}")
    if name.startswith("/"):
        raise InputError(f"{what}: TF frame id {name!r} must not start with '/' (tf2 rejects it); "
                         f"use {name.lstrip('/')!r}")
    if any(c.isspace() for c in name):
        raise InputError(f"{what}: TF frame id {name!r} contains whitespace")
    return name


def check_transform(t: Any) -> Any:
    """Raise InputError for a TransformStamped tf2 would reject (bad frame ids, parent == child,
    non-finite numbers, zero quaternion); returns it unchanged."""
    parent = check_frame_id(t.header.frame_id, "transform parent frame")
    child = check_frame_id(t.child_frame_id, "transform child frame")
    if parent == child:
        raise InputError(f"transform: parent and child frame are both {parent!r}")
    tr, q = t.transform.translation, t.transform.rotation
    values = [tr.x, tr.y, tr.z, q.x, q.y, q.z, q.w]
    if not all(v == v and abs(v) != float("inf") for v in values):
        raise InputError(f"transform {parent} -> {child}: non-finite values {values}")
    if q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w < 1e-12:
        raise InputError(f"transform {parent} -> {child}: zero quaternion")
    return t


class StaticTransforms:
    """The latest static transform per child frame, in first-seen order."""

    def __init__(self) -> None:
        self._by_child: dict[str, Any] = {}

    def update(self, transforms: Iterable[Any]) -> list[Any]:
        """Add or replace transforms (checked); returns every transform now known."""
        for t in transforms:
            check_transform(t)
            self._by_child[t.child_frame_id] = t
        return list(self._by_child.values())

    def __len__(self) -> int:
        return len(self._by_child)

    @property
    def transforms(self) -> list[Any]:
        return list(self._by_child.values())


def _as_list(transforms: Any) -> list[Any]:
    if hasattr(transforms, "child_frame_id"):
        return [transforms]
    return list(transforms)


class TransformBroadcaster:
    """Publishes TransformStamped messages on /tf (see the module docstring)."""

    def __init__(self, node: Any, topic: str = "/tf") -> None:
        from tf2_msgs.msg import TFMessage

        self._msg = TFMessage
        self.publisher = node.create_publisher(TFMessage, topic, qos.TF)

    def send(self, transforms: Any) -> None:
        """Publish one TransformStamped or a list of them (checked) as one TFMessage."""
        items = [check_transform(t) for t in _as_list(transforms)]
        if items:
            self.publisher.publish(self._msg(transforms=items))


class StaticTransformBroadcaster:
    """Publishes static transforms on /tf_static, latched and accumulated (see the module
    docstring)."""

    def __init__(self, node: Any, topic: str = "/tf_static") -> None:
        from tf2_msgs.msg import TFMessage

        self._msg = TFMessage
        self._static = StaticTransforms()
        self.publisher = node.create_publisher(TFMessage, topic, qos.TF_STATIC)

    def send(self, transforms: Any) -> None:
        """Add transforms and republish all static transforms known so far."""
        items = self._static.update(_as_list(transforms))
        if items:
            self.publisher.publish(self._msg(transforms=items))

    @property
    def transforms(self) -> list[Any]:
        return self._static.transforms


class StaticTransformTree:
    """Static transforms by child frame (the newest wins) and lookups through their chains."""

    MAX_DEPTH = 64   # a longer chain is a loop in the tree

    def __init__(self) -> None:
        self._parent: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, parent: str, child: str, T_parent_child: np.ndarray) -> None:
        self._parent[child] = (parent, np.asarray(T_parent_child, np.float64))

    def __len__(self) -> int:
        return len(self._parent)

    @property
    def frames(self) -> set[str]:
        return set(self._parent) | {p for p, _ in self._parent.values()}

    def _chain(self, frame: str) -> dict[str, np.ndarray]:
        """{ancestor: T_ancestor_frame} from the frame itself up to its root."""
        out, T = {frame: np.eye(4)}, np.eye(4)
        while frame in self._parent and len(out) <= self.MAX_DEPTH:
            frame, T_p = self._parent[frame][0], self._parent[frame][1] @ T
            if frame in out:
                break   # a loop: stop at the first repeat
            out[frame] = T = T_p
        return out

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source [4, 4] (maps points in ``source`` into ``target``), or None when the
        two frames are not connected by the static transforms known."""
        up_source, up_target = self._chain(source), self._chain(target)
        for ancestor, T_a_target in up_target.items():
            if ancestor in up_source:
                return np.linalg.inv(T_a_target) @ up_source[ancestor]
        return None


class StaticTransformListener:
    """Reads /tf_static into a `StaticTransformTree` (module docstring); transforms tf2 would
    reject are counted in ``rejected`` and the newest reason kept in ``last_error``."""

    def __init__(self, node: Any, topic: str = "/tf_static") -> None:
        from tf2_msgs.msg import TFMessage

        self.tree = StaticTransformTree()
        self._lock = threading.Lock()
        self.rejected = 0
        self.last_error = ""
        self.messages = 0
        self.subscription = node.create_subscription(TFMessage, topic, self._on_message,
                                                     qos.TF_STATIC_LISTENER)

    def _on_message(self, msg: Any) -> None:
        from wint3r_ros.ros.convert import transforms_from_tf_message

        good = []
        for t in msg.transforms:
            try:
                check_transform(t)
                good.append(t)
            except InputError as err:
                with self._lock:
                    self.rejected += 1
                    self.last_error = str(err)
        if not good:
            return
        items = transforms_from_tf_message(type(msg)(transforms=good))
        with self._lock:
            self.messages += 1
            for parent, child, _, T in items:
                self.tree.add(parent, child, T)

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source from the static transforms received so far, or None."""
        with self._lock:
            return self.tree.lookup(target, source)
