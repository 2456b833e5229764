"""Data in and out: synthetic rigs with exact ground truth, rosbag2 reading/writing (through the
``rosbags`` library, so no ROS install is needed), ROS messages for bags, and the rig calibration
file formats."""
