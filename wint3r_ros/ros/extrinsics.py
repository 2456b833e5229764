"""Camera mountings from the robot's TF (``extrinsics_source: tf``): the URDF is the one truth.

With ``extrinsics_source: tf`` fusion_node reads ``base_frame -> <camera frame_id>`` from
/tf_static (robot_state_publisher publishes the URDF's fixed joints there) with the small
listener of `wint3r_ros.ros.tf`, instead of the rig file's ``T_base_camera``:

- the intrinsics still come from the rig file when one is given (its mountings are then only
  compared: a camera whose rig-file pose differs from TF by more than 5 mm or 0.5 deg is
  reported, once, naming it and both values), else from the camera_info in the windows;
- the wait for /tf_static is bounded (``tf_timeout`` seconds from the node's start): a frame
  still missing then is an error naming it (``base_link -> cam1_optical_frame``), counted in
  the status as ``tf_missing``; the node goes on without TF extrinsics (the rig file's, or the
  relative scale) and says so in its status;
- a transform that arrives later is used at the next reset (``~/reset``).

`TfExtrinsics` attaches to a node; `extrinsics_from_lookup`, `compare_extrinsics`, `rig_with_poses`
and `rig_from_camera_infos` are plain functions tested without one.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from wint3r_ros.core.geometry import rotation_angle
from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.errors import InputError

__all__ = ["EXTRINSICS_SOURCES", "metric_depth", "extrinsics_from_lookup", "compare_extrinsics", "rig_with_poses",
           "rig_from_camera_infos", "TfExtrinsics", "RigSource"]

EXTRINSICS_SOURCES = ("rig_file", "tf")
TOLERANCE_M = 0.005
TOLERANCE_DEG = 0.5


def metric_depth(rig: Rig | None, source: str = "rig_file", rig_file: str = "",
                 min_baseline_m: float = 0.02) -> tuple[bool, str]:
    """(will depth be metric, the sentence saying so and, if not, why) for the nodes' start-up
    line and status. ``rig``: the rig in use (None: none yet)."""
    if rig is None:
        if source == "tf":
            return False, ("depth metric once /tf_static gives the camera mountings "
                           "(extrinsics_source: tf); until then relative scale")
        return False, ("depth NOT metric (model's relative scale): no rig_file; give a "
                       "calibration (wint3r-ros calibrate) or extrinsics_source:=tf")
    where = "/tf_static" if source == "tf" else f"rig_file {rig_file}".rstrip()
    baselines = rig.baselines()
    if not baselines:
        return False, (f"depth NOT metric (model's relative scale): {where} has one camera, "
                       "no baseline to fit the scale to")
    longest = max(baselines.values())
    if longest < min_baseline_m:
        return False, (f"depth NOT metric (model's relative scale): the longest baseline in "
                       f"{where} is {longest * 1000:.1f} mm, under {min_baseline_m * 1000:.0f} mm")
    return True, (f"depth metric: {len(rig.cameras)} cameras from {where}, longest baseline "
                  f"{longest:.3f} m")


def extrinsics_from_lookup(lookup: Callable[[str, str], np.ndarray | None], base_frame: str,
                           frame_ids: Sequence[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """({frame_id: T_base_frame}, [frame_ids /tf_static does not connect to base_frame])."""
    found, missing = {}, []
    for fid in frame_ids:
        T = lookup(base_frame, fid)
        if T is None:
            missing.append(fid)
        else:
            found[fid] = np.asarray(T, np.float64)
    return found, missing


def compare_extrinsics(rig: Rig, poses: dict[str, np.ndarray], tol_m: float = TOLERANCE_M,
                       tol_deg: float = TOLERANCE_DEG) -> list[str]:
    """One line per camera whose rig-file mounting and TF's differ by more than the tolerances."""
    out = []
    for cam in rig.cameras:
        T = poses.get(cam.frame_id)
        if T is None:
            continue
        dt = float(np.linalg.norm(T[:3, 3] - cam.T_base_camera[:3, 3]))
        da = math.degrees(float(rotation_angle(cam.T_base_camera[:3, :3].T @ T[:3, :3])))
        if dt > tol_m or da > tol_deg:
            out.append(f"camera '{cam.name}' ({cam.frame_id}): the rig file's mounting and "
                       f"/tf_static's differ by {dt * 1000:.1f} mm and {da:.2f} deg (rig file "
                       f"t={np.round(cam.T_base_camera[:3, 3], 4).tolist()}, TF "
                       f"t={np.round(T[:3, 3], 4).tolist()}); using /tf_static's")
    return out


def rig_with_poses(rig: Rig, poses: dict[str, np.ndarray], base_frame: str) -> Rig:
    """The rig with every camera's T_base_camera from ``poses`` (by frame_id) in ``base_frame``."""
    cams = [replace(c, T_base_camera=poses[c.frame_id]) for c in rig.cameras]
    return Rig(rig.name, base_frame, cams)


def rig_from_camera_infos(names: Sequence[str], infos: Sequence[Any], frame_ids: Sequence[str],
                          poses: dict[str, np.ndarray], base_frame: str,
                          camera_of_info: Callable[..., Camera]) -> Rig:
    """A rig of the windows' cameras: intrinsics from their camera_info, mountings from TF.
    InputError naming the camera when its camera_info is missing or uncalibrated."""
    cams = []
    for name, info, fid in zip(names, infos, frame_ids):
        if info is None:
            raise InputError(f"camera '{name}': extrinsics_source is tf without a rig_file, so "
                             "the intrinsics come from camera_info, but its windows carry none")
        cams.append(camera_of_info(info, name=name, topic=f"/{name}", T_base_camera=poses[fid],
                                   frame_id=fid))
    return Rig("tf_rig", base_frame, cams)


class TfExtrinsics:
    """The /tf_static listener of a node and the bounded wait for its camera frames."""

    def __init__(self, node: Any, base_frame: str, timeout: float) -> None:
        from wint3r_ros.ros.tf import StaticTransformListener

        self.listener = StaticTransformListener(node)
        self.base_frame = base_frame
        self.timeout = float(timeout)
        self._start = time.monotonic()
        self.missing: list[str] = []

    def wait(self, frame_ids: Sequence[str], stop: Callable[[], bool] = lambda: False
             ) -> dict[str, np.ndarray] | None:
        """The mountings of ``frame_ids``, waiting (polling; the executor fills the listener)
        until ``timeout`` seconds after the node's start at most; None when a frame is still
        missing then (``missing`` names them)."""
        while True:
            found, missing = extrinsics_from_lookup(self.listener.lookup, self.base_frame,
                                                    frame_ids)
            self.missing = missing
            if not missing:
                return found
            if stop() or time.monotonic() - self._start >= self.timeout:
                return None
            time.sleep(0.05)

    def missing_text(self) -> str:
        pairs = ", ".join(f"{self.base_frame} -> {f}" for f in self.missing)
        return (f"/tf_static has no transform {pairs} after {self.timeout:g} s "
                f"({len(self.listener.tree)} static transform(s) received)")

    def rig_for(self, camera_names: Sequence[str], frame_ids: Sequence[str],
                camera_infos: Sequence[Any], rig: Rig | None,
                warn: Callable[[str], Any], stop: Callable[[], bool] = lambda: False
                ) -> Rig | None:
        """The rig with TF's mountings (waiting as `wait` does), or None when a frame is missing
        (``missing_text`` says which). ``rig``: the rig file's, whose intrinsics are kept and
        whose mountings are compared (each difference warned); None: the window's cameras with
        the intrinsics of their camera_info (InputError naming a camera without one)."""
        from wint3r_ros.data.messages import camera_from_camera_info

        if rig is not None:
            frame_ids = [c.frame_id for c in rig.cameras]
        poses = self.wait(frame_ids, stop)
        if poses is None:
            return None
        if rig is None:
            return rig_from_camera_infos(camera_names, camera_infos, frame_ids, poses,
                                         self.base_frame, camera_from_camera_info)
        for line in compare_extrinsics(rig, poses):
            warn(line)
        return rig_with_poses(rig, poses, self.base_frame)


class RigSource:
    """Where a fusion node's camera mountings come from (``extrinsics_source``) and what it says
    about depth: ``depth`` = (will it be metric, the sentence), logged at start and on every
    change, shown in /diagnostics. With ``tf``, ``pending`` asks the worker to call `resolve`
    with its next window; ``tf_missing`` counts the waits that ended with a frame missing."""

    def __init__(self, node: Any, params: dict[str, Any], rig: Rig | None,
                 base_frame: str) -> None:
        self.node, self.rig, self.rig_file = node, rig, params["rig_file"]
        self.tf = (TfExtrinsics(node, base_frame, params["tf_timeout"])
                   if params["extrinsics_source"] == "tf" else None)
        self.pending = self.tf is not None
        self.tf_missing = 0
        self.say(None if self.tf is not None else rig, params["extrinsics_source"])

    def say(self, rig: Rig | None, source: str, why: str = "") -> None:
        metric, text = metric_depth(rig, source, self.rig_file)
        self.depth = (metric, text + why)
        if metric:
            self.node.get_logger().info(self.depth[1])
        else:
            self.node.get_logger().warning(self.depth[1])

    def look_again(self) -> None:
        """After ~/reset: frames that were missing are looked up with the next window."""
        if self.tf is not None and self.tf.missing:
            self.pending = True

    def resolve(self, win: Any, stop: Callable[[], bool]) -> Rig | None:
        """The rig from /tf_static for a window (bounded wait), or None: a frame is missing (an
        error naming it, counted) or, without a rig file, a camera has no camera_info; the node
        then goes on with the rig file's mountings or in relative scale, and says so."""
        self.pending = False
        log = self.node.get_logger()
        frame_ids = [(f or "").lstrip("/") or f"{n}_optical_frame"
                     for n, f in zip(win.camera_names, win.frame_ids)]
        try:
            rig = self.tf.rig_for(win.camera_names, frame_ids, win.camera_infos, self.rig,
                                  log.warning, stop)
        except InputError as err:
            log.error(f"extrinsics_source tf: {err}; running without a rig")
            self.say(None, "rig_file", f"; {err}")
            return None
        if rig is None:
            self.tf_missing += 1
            fallback = ("using rig_file's mountings" if self.rig is not None else
                        "running without a rig: relative scale")
            log.error(f"{self.tf.missing_text()}; {fallback} (a later ~/reset looks again)")
            self.say(self.rig, "rig_file", f"; /tf_static lacks {', '.join(self.tf.missing)}")
            return None
        log.info(f"camera mountings from /tf_static: "
                 f"{', '.join(c.frame_id for c in rig.cameras)} in {rig.base_frame}")
        self.say(rig, "tf")
        return rig
