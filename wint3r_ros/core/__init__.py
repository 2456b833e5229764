"""ROS-free streaming logic: sync policy, windows, token pool, engine, calibration, geometry,
metrics. Imports numpy/torch only, never rclpy, so it runs inside the nodes and offline alike."""
