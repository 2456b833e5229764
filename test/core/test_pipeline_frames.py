"""A calibrated rig re-based with ``calibrate --base-frame base_link --level`` (calib.frames):
through the pipeline (FusionStage, what fusion_node and process-bag run), ``odom -> base_link``
has z up for a level rig, as REP-103 wants; the rig as the fit leaves it (base = camera 0's
optical frame, z forward) does not."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
from fixtures.models import CountingPoolState

from wint3r_ros.calib.frames import base_from_cam0, rebase
from wint3r_ros.core import geometry as g
from wint3r_ros.core.pipeline.fusion import FusionStage
from wint3r_ros.core.pipeline.params import FUSION_PARAMETERS, check_params
from wint3r_ros.core.pipeline.records import WindowInput
from wint3r_ros.core.pipeline.settings import model_settings
from wint3r_ros.data.synthetic import RigConfig, SyntheticRig

UNITS = 3.0   # model units per metre
SETS = 20
SYNTH = SyntheticRig(rig=RigConfig(width=64, height=48, pitch_deg=0.0))   # a level rig


class TruthModel:
    """The model's streaming interface answering with the true camera poses (relative to the
    stream's first camera-0 image, in model units) and a plane at 2 m."""

    def new_stream(self):
        return CountingPoolState()

    def step(self, state, images, keys=None):
        s, _, h, w = images.shape
        state.n += s
        first = g.se3_inverse(SYNTH.T_world_base(0) @ SYNTH.rig.cameras[0].T_base_camera)
        poses = []
        for cam, k in keys:
            T = first @ SYNTH.T_world_base(k) @ SYNTH.rig.cameras[cam].T_base_camera
            T[:3, 3] *= UNITS
            poses.append(torch.from_numpy(T).float())
        pts = torch.zeros(s, h, w, 3)
        pts[..., 2] = 2.0 * UNITS
        return SimpleNamespace(pts_local=pts, conf=torch.full((s, h, w), 5.0),
                               cam_to_world=torch.stack(poses))


def _odom_from_base(rig) -> list[np.ndarray]:
    values = check_params({"input_long_side": 64, "confidence_threshold": 1.0,
                           "map_max_points": 0, "publish_cloud": False}, FUSION_PARAMETERS, "test")
    stage = FusionStage(TruthModel(), values, model_settings(values, None), rig,
                        base_frame=rig.base_frame)
    names = rig.camera_names
    image = np.zeros((48, 64, 3), np.uint8)
    poses = []
    for index, start in enumerate(range(0, SETS - 2, 2)):          # L = 4, O = 2
        steps = range(start, start + 4)
        stamps = [[SYNTH.stamp_ns(k)] * len(names) for k in steps]
        win = WindowInput(index, 0, 2, names, [c.frame_id for c in rig.cameras], stamps,
                          [[image] * len(names) for _ in steps], [None] * len(names),
                          stamps[-1][0])
        for batch in stage.process(win):
            poses += [p.odom_from_base for p in batch.poses]
    poses += [p.odom_from_base for p in stage.flush().poses]
    assert len(poses) == SETS
    return poses


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip(a @ b, -1.0, 1.0))))


def test_a_level_rig_rebased_with_base_frame_gives_odom_to_base_link_with_z_up():
    truth = [g.se3_inverse(SYNTH.T_world_base(0)) @ SYNTH.T_world_base(k) for k in range(SETS)]
    # what calibrate's fit writes: the base is camera 0's optical frame
    fitted = rebase(SYNTH.rig, np.eye(4), "cam0_optical_base")
    # calibrate --base-frame base_link --cam0-pose 0.12 0 0 0 0 0 (--level, camera 0 12 cm ahead)
    level = rebase(fitted, base_from_cam0([0.12, 0, 0, 0, 0, 0]), "base_link")
    est = _odom_from_base(level)
    up = np.array([0.0, 0.0, 1.0])
    for T, T_true in zip(est, truth):
        np.testing.assert_allclose(T, T_true, atol=1e-4)      # the base's true motion, metres
        # base_link's z is up (the path rolls and pitches by a few degrees, nothing more)
        assert _angle_deg(T[:3, :3] @ up, up) < 6.0
    assert max(abs(T[2, 3]) for T in est) < 0.2                 # motion in odom's x-y plane
    yaw = math.degrees(math.atan2(est[-1][1, 0], est[-1][0, 0]))
    assert abs(yaw) > 15.0                                       # the rig turned meanwhile

    # the fitted rig as it is: odom -> base is camera 0's optical frame, its z tilts with every
    # turn of the robot (REP-103 broken), so the same check fails
    optical = _odom_from_base(fitted)
    assert max(_angle_deg(T[:3, :3] @ up, up) for T in optical) > 15.0
