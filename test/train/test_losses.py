"""Each loss term on a case with a known answer."""
from __future__ import annotations

import math

import pytest
import torch

from wint3r_ros.train import losses

H, W, FX = 16, 24, 20.0


def _k() -> torch.Tensor:
    return torch.tensor([[FX, 0.0, (W - 1) / 2], [0.0, FX, (H - 1) / 2], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)


def _plane_points(depth: float, batch: int = 1) -> torch.Tensor:
    """Points [B, H, W, 3] of a fronto-parallel plane at `depth` seen by camera _k()."""
    rays = losses.pixel_rays(_k(), H, W)
    return (rays * depth)[None].expand(batch, H, W, 3).clone()


def _ramp_image(shift_px: float = 0.0) -> torch.Tensor:
    """[1, 3, H, W] colours linear in u (exact under bilinear sampling), moved by shift_px."""
    u = torch.arange(W, dtype=torch.float64) + shift_px
    row = 0.2 + 0.01 * u
    rgb = torch.stack((row, 0.5 * row + 0.1, 0.9 - 0.5 * row))  # (3, W)
    return rgb[:, None, :].expand(3, H, W)[None].clone()


def _translation(x: float) -> torch.Tensor:
    t = torch.eye(4, dtype=torch.float64)[None]
    t[0, 0, 3] = x
    return t


def test_point_loss_is_zero_for_a_scaled_copy_with_unit_confidence():
    gt = torch.randn(2, H, W, 3, dtype=torch.float64) + torch.tensor([0, 0, 4.0], dtype=torch.float64)
    loss = losses.confidence_point_loss(3.7 * gt, torch.ones(2, H, W, dtype=torch.float64), gt)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_point_loss_has_the_known_value_for_a_known_offset_and_confidence():
    gt = _plane_points(2.0)
    pred = gt + torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)
    conf = torch.full((1, H, W), 2.0, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    loss = losses.confidence_point_loss(pred, conf, gt, alpha=0.2, pred_scale=one, gt_scale=one)
    assert loss.item() == pytest.approx(2.0 * 0.1 - 0.2 * math.log(2.0), rel=1e-9)


def test_point_loss_ignores_masked_pixels():
    gt = _plane_points(2.0)
    pred = gt.clone()
    pred[0, :, : W // 2] += 5.0  # wrong only where masked out
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, :, W // 2:] = True
    one = torch.tensor(1.0, dtype=torch.float64)
    loss = losses.confidence_point_loss(pred, torch.ones(1, H, W, dtype=torch.float64), gt, mask,
                                        pred_scale=one, gt_scale=one)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_norm_factor_is_the_mean_distance_of_the_points():
    pts = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert losses.norm_factor(pts).item() == pytest.approx(3.0)


def test_pose_loss_is_zero_for_the_truth_at_another_scale_and_sign_of_quaternion():
    gt = torch.tensor([[0.0, 0, 0, 0, 0, 0, 1], [0.4, -0.2, 1.0, 0.1, 0.2, 0.3, 0.927]],
                      dtype=torch.float64)
    pred = gt.clone()
    pred[:, :3] *= 2.5
    pred[1, 3:] *= -1.0  # q and -q are the same rotation
    loss, _ = losses.pose_loss(torch.stack((pred, pred)), gt, torch.tensor(2.5), torch.tensor(1.0))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_pose_loss_weighs_iterations_by_gamma():
    gt = torch.tensor([[0.0, 0, 0, 0, 0, 0, 1]], dtype=torch.float64)
    first = torch.tensor([[0.3, 0, 0, 0, 0, 0, 1]], dtype=torch.float64)  # 0.3 off
    last = torch.tensor([[0.0, 0.1, 0, 0, 0, 0, 1]], dtype=torch.float64)  # 0.1 off
    one = torch.tensor(1.0, dtype=torch.float64)
    loss, parts = losses.pose_loss(torch.stack((first, last)), gt, one, one, gamma=0.5)
    # weights 0.5 and 1, normalised: (0.5 * 0.3 + 1 * 0.1) / 1.5
    assert loss.item() == pytest.approx((0.5 * 0.3 + 0.1) / 1.5, rel=1e-9)
    assert parts["trans"].item() == pytest.approx(0.1)


def test_pose_loss_counts_a_known_rotation_error():
    gt = torch.tensor([[0.0, 0, 0, 0, 0, 0, 1]], dtype=torch.float64)
    half = math.radians(10.0)
    pred = torch.tensor([[0.0, 0, 0, 0, 0, math.sin(half), math.cos(half)]], dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    loss, _ = losses.pose_loss(pred[None], gt, one, one, rot_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * (math.sin(half) + 1 - math.cos(half)), rel=1e-9)


def test_pose_regularisation_is_zero_for_unit_quaternions_and_one_for_double_length():
    unit = torch.tensor([[1.0, 2, 3, 0.6, 0, 0, 0.8]])
    assert losses.pose_regularisation(unit).item() == pytest.approx(0.0, abs=1e-7)
    double = unit.clone()
    double[:, 3:] *= 2
    assert losses.pose_regularisation(double).item() == pytest.approx(1.0, rel=1e-6)


def test_ssim_of_an_image_with_itself_is_one():
    img = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(losses.ssim(img, img), torch.ones_like(img))


def test_photometric_loss_is_zero_for_true_depth_and_pose():
    # source camera 0.25 m to the right of the target, plane at 2 m: pixels move 2.5 px
    depth, baseline = 2.0, 0.25
    shift = FX * baseline / depth
    target = _ramp_image()
    source = _ramp_image(shift)  # the same plane seen from the source camera
    pts = _plane_points(depth)
    loss = losses.photometric_loss(target, source, pts, _translation(-baseline), _k())
    assert loss.item() == pytest.approx(0.0, abs=1e-9)


def test_photometric_loss_has_the_known_value_for_a_wrong_pose():
    depth, baseline = 2.0, 0.25
    shift = FX * baseline / depth
    target, source = _ramp_image(), _ramp_image(shift)
    pts = _plane_points(depth)
    # identity pose: every pixel reads the source at its own position, off by `shift` pixels;
    # colours change by 0.01, 0.005 and -0.005 per pixel -> mean |error| = 0.02 / 3 * shift
    loss = losses.photometric_loss(target, source, pts, _translation(0.0), _k(), ssim_weight=0.0)
    assert loss.item() == pytest.approx(0.02 / 3 * shift, rel=1e-9)


def test_warp_marks_pixels_that_leave_the_source_invalid():
    pts = _plane_points(2.0)
    _, valid = losses.warp_to_target(_ramp_image(), pts, _translation(-0.25), _k())
    # u_s = u - 2.5 must be >= 0: columns 0..2 fall outside
    assert not valid[0, :, :3].any() and valid[0, :, 3:].all()


def test_smoothness_is_zero_for_constant_depth():
    depth = torch.full((2, H, W), 3.0, dtype=torch.float64)
    image = torch.rand(2, 3, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert losses.smoothness_loss(depth, image).item() == pytest.approx(0.0, abs=1e-12)


def test_smoothness_has_the_known_value_for_a_disparity_ramp_on_a_flat_image():
    disp = 1.0 + 0.1 * torch.arange(W, dtype=torch.float64)
    depth = (1.0 / disp)[None, None, :].expand(1, H, W)
    image = torch.full((1, 3, H, W), 0.5, dtype=torch.float64)
    expected = 0.1 / disp.mean().item()  # |d_x disp*| everywhere, no image edges, no d_y
    assert losses.smoothness_loss(depth, image).item() == pytest.approx(expected, rel=1e-9)


def test_smoothness_is_weaker_across_image_edges():
    disp = 1.0 + 0.1 * torch.arange(W, dtype=torch.float64)
    depth = (1.0 / disp)[None, None, :].expand(1, H, W)
    flat = torch.full((1, 3, H, W), 0.5, dtype=torch.float64)
    stripes = flat.clone()
    stripes[..., ::2] = 0.0
    assert losses.smoothness_loss(depth, stripes) < 0.7 * losses.smoothness_loss(depth, flat)


def test_reprojection_is_zero_for_the_truth_and_known_for_a_translation_error():
    depth, baseline = 2.0, 0.25
    pts = _plane_points(depth)
    uv, _ = losses._project(pts, _k())
    true_uv = uv - torch.tensor([FX * baseline / depth, 0.0], dtype=torch.float64)
    valid = torch.ones(1, H, W, dtype=torch.bool)
    zero = losses.reprojection_loss(pts, _translation(-baseline), true_uv, valid, _k())
    assert zero.item() == pytest.approx(0.0, abs=1e-9)
    # pose off by 0.2 m at 2 m depth: 2 px everywhere; Huber(delta 1) of 2 = 1 * (2 - 0.5)
    off = losses.reprojection_loss(pts, _translation(-baseline + 0.2), true_uv, valid, _k())
    assert off.item() == pytest.approx(1.5, rel=1e-9)


def test_relative_transform_maps_target_camera_points_into_the_source_camera():
    tgt = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, math.sin(0.2), math.cos(0.2)]], dtype=torch.float64)
    src = torch.tensor([[0.5, -1.0, 2.0, math.sin(0.1), 0.0, 0.0, math.cos(0.1)]], dtype=torch.float64)
    rel = losses.relative_transform(tgt, src)
    from wint3r_ros.model.pose import world_from_cam_matrix

    expected = torch.linalg.inv(world_from_cam_matrix(src)) @ world_from_cam_matrix(tgt)
    assert torch.allclose(rel, expected, atol=1e-12)


def test_log_depth_loss_is_free_of_per_frame_scale_and_known_for_a_known_error():
    gt = torch.rand(2, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 1.0
    scaled = gt * torch.tensor([2.0, 0.3], dtype=torch.float64)[:, None, None]
    assert losses.log_depth_loss(scaled, gt).item() == pytest.approx(0.0, abs=1e-12)
    # a third of each frame 10 % too far: the median residual is 0, the error log 1.1 there
    pred = gt.clone()
    pred[:, :, : W // 3] *= 1.1
    expected = math.log(1.1) * (W // 3) / W
    assert losses.log_depth_loss(pred, gt).item() == pytest.approx(expected, rel=1e-9)


def _rig_pair_poses() -> tuple[torch.Tensor, torch.Tensor]:
    """Encodings [P, 7] of camera pairs (a, b) of one set: a somewhere, b 0.3 to its right."""
    from wint3r_ros.model.pose import mat_to_quat

    def enc(rot: torch.Tensor, t: list[float]) -> torch.Tensor:
        return torch.cat((torch.tensor(t, dtype=torch.float64), mat_to_quat(rot)))

    ra = _rot_y(0.3)
    a = torch.stack([enc(ra, [1.0, 0.2, -0.5]), enc(torch.eye(4, dtype=torch.float64)[:3, :3],
                                                     [0.0, 0.0, 0.0])])
    rb = ra @ _rot_y(0.8)
    centre_b = torch.tensor([1.0, 0.2, -0.5], dtype=torch.float64) + ra @ torch.tensor(
        [0.3, 0.0, 0.0], dtype=torch.float64)
    b = torch.stack([enc(rb, centre_b.tolist()), enc(_rot_y(-0.5), [0.3, 0.0, 0.1])])
    return a, b


def _rot_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def test_rig_pose_loss_is_zero_at_the_truth_up_to_a_global_scale():
    a, b = _rig_pair_poses()
    one = torch.tensor(1.0, dtype=torch.float64)
    loss, parts = losses.rig_pose_loss(a[None], b[None], a, b, one, one)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    # the prediction in other units (x 2.5 everywhere, s_pred too) is just as right
    scaled_a, scaled_b = a.clone(), b.clone()
    scaled_a[:, :3] *= 2.5
    scaled_b[:, :3] *= 2.5
    loss, _ = losses.rig_pose_loss(scaled_a[None], scaled_b[None], a, b, 2.5 * one, one)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_rig_pose_loss_grows_with_a_known_perturbation():
    from wint3r_ros.model.pose import mat_to_quat, quat_to_mat

    a, b = _rig_pair_poses()
    one = torch.tensor(1.0, dtype=torch.float64)
    # b turned by theta about its own y axis: rotation term sin(theta / 2), nothing else
    rows = []
    for theta in (0.05, 0.2, 0.6):
        bad = b.clone()
        bad[:, 3:7] = mat_to_quat(quat_to_mat(b[:, 3:7]) @ _rot_y(theta))
        _, parts = losses.rig_pose_loss(a[None], bad[None], a, b, one, one)
        assert float(parts["rot"]) == pytest.approx(math.sin(theta / 2), rel=1e-6)
        assert float(parts["dir"]) == pytest.approx(0.0, abs=1e-6)
        rows.append(float(parts["rot"]))
    assert rows == sorted(rows)
    # the baseline k times the truth: |k - 1| in both translation terms (the offset is off by
    # k - 1 of the baseline), bounded however short the predicted baseline gets
    for factor in (1.5, 1 / 1.5, 0.0):
        bad = b.clone()
        bad[:, :3] = a[:, :3] + factor * (b[:, :3] - a[:, :3])
        _, parts = losses.rig_pose_loss(a[None], bad[None], a, b, one, one)
        assert float(parts["baseline"]) == pytest.approx(abs(factor - 1), rel=1e-6)
        assert float(parts["dir"]) == pytest.approx(abs(factor - 1), rel=1e-6)
    # the direction turned by phi about a's y axis: |d - d*| = 2 sin(phi / 2)
    phi = 0.4
    bad = b.clone()
    ra = quat_to_mat(a[:, 3:7])
    offset = b[:, :3] - a[:, :3]
    local = (ra.transpose(-1, -2) @ offset[..., None]).squeeze(-1)
    bad[:, :3] = a[:, :3] + (ra @ (_rot_y(phi) @ local[..., None])).squeeze(-1)
    loss, parts = losses.rig_pose_loss(a[None], bad[None], a, b, one, one)
    assert float(parts["dir"]) == pytest.approx(2 * math.sin(phi / 2), rel=1e-6)
    assert float(loss) == pytest.approx(2 * math.sin(phi / 2), rel=1e-6)


def test_rig_pose_loss_gradients_stay_bounded_where_the_predicted_cameras_coincide():
    a, b = _rig_pair_poses()
    one = torch.tensor(1.0, dtype=torch.float64)
    pred_b = b.clone()
    pred_b[:, :3] = a[:, :3]  # b predicted on top of a: the shipped model's habit
    pred_b.requires_grad_(True)
    loss, parts = losses.rig_pose_loss(a[None], pred_b[None], a, b, one, one)
    loss.backward()
    assert float(parts["dir"]) == pytest.approx(1.0) and float(parts["baseline"]) == pytest.approx(1.0)
    assert torch.isfinite(pred_b.grad).all() and float(pred_b.grad.norm()) < 10.0
    # the rotation's own weight scales only the rotation term
    bad = b.clone()
    bad[:, 3:7] = torch.tensor([0.0, 0.2, 0.0, 1.0], dtype=torch.float64)
    plain, p1 = losses.rig_pose_loss(a[None], bad[None], a, b, one, one)
    heavy, p2 = losses.rig_pose_loss(a[None], bad[None], a, b, one, one, rot_weight=3.0)
    assert float(heavy - plain) == pytest.approx(2.0 * float(p1["rot"]), rel=1e-9)
    assert float(p2["rot"]) == pytest.approx(float(p1["rot"]))
