"""wint3r_ros: WinT3R streaming 3-D reconstruction for N-camera rigs, as a ROS 2 package.

Rooms: ``core`` (ROS-free streaming logic), ``model`` (the network), ``data`` (synthetic rigs,
rosbag2 IO), ``train`` (losses, training, evaluation), ``ros`` (everything that imports rclpy).
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
