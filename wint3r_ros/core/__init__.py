"""ROS-free streaming logic: sync policy, windows, token pool, engine, rig and camera types,
geometry, metrics. Imports numpy/torch only, never rclpy or data/, so it runs inside the nodes
and offline alike."""
