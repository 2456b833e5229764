"""Everything that imports rclpy: message conversions, TF publishing and the nodes. Nothing
outside this package imports it, except the CLI command that starts nodes."""
