"""Data in and out: synthetic rigs with exact ground truth, and rosbag2 reading/writing
(through the ``rosbags`` library, so no ROS install is needed)."""
