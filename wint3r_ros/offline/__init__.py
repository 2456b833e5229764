"""The applications on bags: process-bag (the shared pipeline, no DDS), replay and record (the
live graph <-> rosbag2), report (scores and plots) and make-bag (synthetic recordings)."""
