"""The one pipeline, ROS-free: front end -> windows -> engine -> output records.

    images (camera, stamp_ns, RGB)                         params.py: every setting, one table
      -> frontend.SyncFrontEnd   synchroniser + windows     per node; settings.py: the values
      -> records.WindowInput     (over DDS as a WindowBatch  turned into each stage's config
                                  in the live graph)
      -> fusion.FusionStage      engine + output stage
      -> records.OutputBatch     poses, depth, camera_info, cloud, path (integer-ns stamps)

sync_node runs the front end, fusion_node the fusion stage; process-bag runs both in one process
(`offline.Pipeline`). The message builder that turns records into ROS messages is
`wint3r_ros.data.builders` (rclpy or rosbags classes). The submodules are imported on use (no
eager imports here: `core.outputs` and the stages import each other's records).
"""
