"""fusion_node's services and its accumulated map topic, attached to the node (tf2_ros style).

- ``~/reset`` (std_srvs/Trigger): the next window starts a new stream, as after a clock jump:
  the frames held for the merge are published first, the camera token pool is cleared, the
  odometry frame continues where the last pose left it (no jump), the map is kept (it is in
  that odometry frame). With ``extrinsics_source: tf`` and frames that were missing, /tf_static
  is read again.
- ``~/save_map`` (wint3r_ros/SaveMap): the map folder of `wint3r_ros.data.map_files` (PLY, PCD,
  TUM trajectory, rig YAML, settings) written into the request's directory; success false with
  the reason when it cannot be written.
- ``~/map_cloud`` (sensor_msgs/PointCloud2, x y z rgb in world_frame, reliable + transient
  local so RViz or a recorder joining late gets the latest): the map of the whole run, one
  point per ``map_voxel_size`` voxel, at most ``map_max_points``; published every
  ``map_period`` seconds (wall time) when it changed.

The map itself lives in the pipeline (`core.voxel_map.RunMap`, fed by `FusionStage`); this
helper only takes snapshots of it, so process-bag and the node share one implementation.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wint3r_ros.errors import Wint3rError
from wint3r_ros.ros import qos

__all__ = ["MapServices"]


class MapServices:
    """Services and ``~/map_cloud`` of a fusion node (module docstring).

    request_reset: called by ``~/reset`` with the reason (the node's worker applies it);
    settings: the settings written next to a saved map; rig: the rig in use (or None)."""

    def __init__(self, node: Any, stage: Any, params: dict[str, Any],
                 request_reset: Callable[[str], None], settings: Callable[[], dict[str, Any]],
                 rig: Callable[[], Any]) -> None:
        from rclpy.clock import Clock, ClockType
        from sensor_msgs.msg import PointCloud2
        from std_srvs.srv import Trigger

        from wint3r_ros.srv import SaveMap

        self.node, self.stage = node, stage
        self._request_reset, self._settings, self._rig = request_reset, settings, rig
        self._frame = params["world_frame"]
        self._published_version = -1
        self.saves = 0
        self.reset_service = node.create_service(Trigger, "~/reset", self._on_reset)
        self.save_service = node.create_service(SaveMap, "~/save_map", self._on_save_map)
        self.map_pub = None
        if params["publish_map"] and params["map_max_points"] > 0:
            self.map_pub = node.create_publisher(PointCloud2, "~/map_cloud", qos.LATCHED)
            self._timer = node.create_timer(params["map_period"], self.publish_map,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_reset(self, request: Any, response: Any) -> Any:
        self._request_reset("~/reset was called")
        response.success = True
        response.message = ("reset: the next window starts a new stream (token pool cleared, "
                            "odometry continues, map kept)")
        return response

    def _on_save_map(self, request: Any, response: Any) -> Any:
        from wint3r_ros.data.map_files import save_map

        points, colors, stamps, poses, stats = self.stage.map.snapshot()
        settings = {**self._settings(), "map": stats}
        try:
            files = save_map(request.directory, points, colors, stamps, poses, self._rig(),
                             settings)
        except Wint3rError as err:
            response.success, response.message, response.files = False, str(err), []
            self.node.get_logger().error(f"~/save_map: {err}")
            return response
        self.saves += 1
        response.success, response.files = True, files
        response.message = (f"saved {len(points)} map points and {len(stamps)} poses "
                            f"({self._frame}) into {request.directory}")
        self.node.get_logger().info(response.message)
        return response

    def publish_map(self) -> None:
        """Publish the map when it changed since the last message."""
        if self.map_pub is None or self.stage.map.version == self._published_version:
            return
        from wint3r_ros.ros import convert

        version = self.stage.map.version
        points, colors, stamps, _, _ = self.stage.map.snapshot()
        stamp = convert.stamp_from_ns(stamps[-1]) if stamps else self.node.get_clock().now().to_msg()
        self.map_pub.publish(convert.pointcloud2_from_points(points, stamp, self._frame, colors))
        self._published_version = version
