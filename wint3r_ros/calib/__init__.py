"""Rig calibration from checkerboard views (OpenCV lives here, never in core/).

board: the target and corner detection; sources: image sets from folders or bags; detect:
corners per set; fit: intrinsics, extrinsics, joint refinement; validate: reprojection RMS
and coverage; pipeline: calibrate/check + report; command: the ``wint3r-ros calibrate`` CLI;
synthetic: rendered board views of a known rig.
"""
from __future__ import annotations

__all__ = ["board", "sources", "detect", "fit", "validate", "pipeline", "command", "synthetic"]
