"""Bring up a WinT3R rig: sync_node (N cameras -> windows) and fusion_node (windows -> poses,
depth, clouds, odometry), optionally RViz.

    ros2 launch wint3r_ros rig.launch.py [rig_config:=...] [model_config:=...] [rig_file:=...] [checkpoint:=...]
        [extrinsics_source:=rig_file|tf] [device:=auto|cpu|cuda] [use_sim_time:=true] [rviz:=true] [namespace:=rig]
        [bag_mode:=true]
"""
from __future__ import annotations

import os

from ament_index_python.packages import PackageNotFoundError, get_package_prefix, get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchContext, LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("wint3r_ros")
    args = [
        DeclareLaunchArgument("rig_config", default_value=os.path.join(share, "config", "rig.yaml"),
                              description="sync_node parameters: cameras, topics, calibration, windows"),
        DeclareLaunchArgument("model_config", default_value=os.path.join(share, "config", "wint3r.yaml"),
                              description="fusion_node parameters: model, outputs, frames"),
        DeclareLaunchArgument("rig_file", default_value="",
                              description="rig calibration YAML (intrinsics, extrinsics), read by both "
                                          "nodes; empty: no calibration, depth in relative scale "
                                          "(both nodes say so at start and in their status)"),
        DeclareLaunchArgument("extrinsics_source", default_value="rig_file",
                              description="rig_file, or tf: camera mountings from /tf_static "
                                          "(robot_state_publisher and your URDF)"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="model weights; empty = the package's tiny default"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="true when playing a bag with --clock"),
        DeclareLaunchArgument("bag_mode", default_value="false",
                              description="lossless bag playback: reliable deep queues that wait "
                                          "instead of dropping (both nodes' bag_mode)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/wint3r.rviz"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of both nodes"),
    ]
    namespace = LaunchConfiguration("namespace")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    bag_mode = ParameterValue(LaunchConfiguration("bag_mode"), value_type=bool)
    sync_node = Node(
        package="wint3r_ros", executable="sync_node", name="sync_node", namespace=namespace,
        output="screen",
        parameters=[LaunchConfiguration("rig_config"),
                    {"use_sim_time": use_sim_time, "rig_file": LaunchConfiguration("rig_file"),
                     "bag_mode": bag_mode}],
    )
    fusion_node = Node(
        package="wint3r_ros", executable="fusion_node", name="fusion_node", namespace=namespace,
        output="screen",
        parameters=[
            LaunchConfiguration("model_config"),
            {"use_sim_time": use_sim_time, "bag_mode": bag_mode,
             "checkpoint": LaunchConfiguration("checkpoint"),
             "device": LaunchConfiguration("device"),
             "rig_file": LaunchConfiguration("rig_file"),
             "extrinsics_source": LaunchConfiguration("extrinsics_source")},
        ],
        # fusion_node reads the windows that sync_node publishes on ~/windows.
        remappings=[("~/windows", "sync_node/windows")],
    )
    def rviz(context: LaunchContext) -> list:
        """RViz when asked for, or one clear line when rviz2 is not installed (instead of an
        exception that stops the launch half-way and leaves the started nodes orphaned)."""
        if LaunchConfiguration("rviz").perform(context).lower() not in ("true", "1", "yes"):
            return []
        try:
            get_package_prefix("rviz2")
        except PackageNotFoundError:
            return [LogInfo(msg="rviz:=true but the rviz2 package is not installed "
                                "(apt install ros-$ROS_DISTRO-rviz2); running without RViz")]
        return [Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                     arguments=["-d", os.path.join(share, "config", "wint3r.rviz")],
                     parameters=[{"use_sim_time": use_sim_time}])]

    return LaunchDescription([*args, sync_node, fusion_node, OpaqueFunction(function=rviz)])
