"""Where the rig's base frame sits: REP-103 (x forward, y left, z up) from camera 0's mounting.

The fit puts camera 0's optical frame (z forward, x right, y down) at the base. A robot wants a
base frame per REP-103, so ``odom -> base_link`` has z up. The user says where camera 0 is
mounted on the base, as a URDF joint would: the translation of camera 0 in the base frame
(metres) and the roll, pitch, yaw (degrees, fixed axes x, y, z as in URDF) of camera 0's body
frame, whose x axis is the optical axis, y left and z up. All zeros is a level rig with camera 0
looking forward at the base's origin (``--level``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from wint3r_ros.core.geometry import se3_inverse
from wint3r_ros.core.outputs import BASE_FROM_OPTICAL
from wint3r_ros.core.rig import Rig
from wint3r_ros.errors import CalibrationError

__all__ = ["base_from_cam0", "rebase"]


def _rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll), angles in radians (URDF's rpy)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def base_from_cam0(pose: Sequence[float]) -> np.ndarray:
    """T_base_cam0optical [4, 4] from camera 0's mounting ``(x, y, z, roll, pitch, yaw)``
    (metres, degrees; module docstring)."""
    values = [float(v) for v in pose]
    if len(values) != 6 or not all(math.isfinite(v) for v in values):
        raise CalibrationError(f"camera 0 mounting must be 6 finite numbers X Y Z ROLL PITCH "
                               f"YAW (metres, degrees), got {list(pose)!r}")
    T = np.eye(4)
    T[:3, :3] = _rpy(*(math.radians(a) for a in values[3:]))
    T[:3, 3] = values[:3]
    return T @ BASE_FROM_OPTICAL


def rebase(rig: Rig, T_base_cam0: np.ndarray, base_frame: str | None = None) -> Rig:
    """The same rig with every camera's pose re-expressed in a new base frame, given camera 0's
    pose ``T_base_cam0`` [4, 4] in it (the relative poses of the cameras do not change)."""
    T_new_old = T_base_cam0 @ se3_inverse(rig.cameras[0].T_base_camera)
    # replace() keeps every other field (camera_info_topic, time_offset, ...)
    cams = [replace(c, T_base_camera=T_new_old @ c.T_base_camera) for c in rig.cameras]
    return Rig(rig.name, base_frame or rig.base_frame, cams)
