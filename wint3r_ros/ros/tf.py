"""TF publishing without tf2_ros: broadcasters that attach to a node and publish
``tf2_msgs/msg/TFMessage`` the way tf2_ros does.

- `TransformBroadcaster(node)`: dynamic transforms on ``/tf`` (reliable, keep last 100).
- `StaticTransformBroadcaster(node)`: static transforms on ``/tf_static`` (reliable, transient
  local, depth 1, so late joiners such as RViz or a bag recorder still get them). Like tf2_ros it
  accumulates: every send republishes all static transforms known so far, the newest per child
  frame, in one message.

The checks and the accumulation (`check_frame_id`, `StaticTransforms`) work without a node.
Frame names follow tf2: non-empty, no leading slash, no whitespace, child differs from parent
(REP-105 frames: ``map`` -> ``odom`` -> ``base_link`` -> sensor frames).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wint3r_ros.errors import InputError
from wint3r_ros.ros import qos

__all__ = ["check_frame_id", "check_transform", "StaticTransforms", "TransformBroadcaster",
           "StaticTransformBroadcaster"]


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
