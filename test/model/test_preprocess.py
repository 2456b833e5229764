"""preprocess: the authors' resolutions, and the mapping from crop pixels back to the camera's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wint3r_ros.errors import InputError
from wint3r_ros.model.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PUBLISHED_RESOLUTIONS,
    choose_resolution,
    model_resolution,
    preprocess,
    resolutions_for,
)


def gradient_image(width: int, height: int) -> np.ndarray:
    """float RGB in [0, 1] whose red channel is x / width and green channel is y / height."""
    xs = (np.arange(width) / width)[None, :].repeat(height, 0)
    ys = (np.arange(height) / height)[:, None].repeat(width, 1)
    return np.stack([xs, ys, np.full_like(xs, 0.5)], axis=-1).astype(np.float32)


def test_landscape_640x480_becomes_512x384_and_portrait_becomes_384x512():
    x, mapping = preprocess(np.zeros((480, 640, 3), np.uint8))
    assert tuple(x.shape) == (1, 3, 384, 512)
    assert mapping.output_size == (512, 384) and mapping.scale == (0.8, 0.8)
    y, portrait = preprocess(np.zeros((640, 480, 3), np.uint8))
    assert tuple(y.shape) == (1, 3, 512, 384)
    assert portrait.output_size == (384, 512)
    assert (512, 384) in PUBLISHED_RESOLUTIONS


@pytest.mark.parametrize("size, expected", [
    ((640, 480), (512, 384)), ((640, 400), (512, 288)), ((1920, 1080), (512, 288)),
    ((1000, 500), (512, 256)), ((1200, 300), (512, 224)), ((500, 500), (512, 384)),
    ((400, 640), (288, 512)),
])
def test_resolution_is_the_first_published_one_wider_than_the_image(size, expected):
    assert model_resolution(size) == expected
    resized = tuple(int(round(s * 512 / max(size))) for s in size)
    assert choose_resolution(*resized) == expected


def test_smaller_long_side_keeps_multiples_of_16():
    for w, h in resolutions_for(128):
        assert w == 128 and h % 16 == 0 and h <= 128
    assert resolutions_for(512) == PUBLISHED_RESOLUTIONS
    with pytest.raises(InputError, match="multiple of 16"):
        resolutions_for(100)


def test_crop_pixel_maps_back_to_the_source_pixel_it_came_from():
    src = gradient_image(640, 400)  # resized to 512x320, centre crop 512x288 (16 rows off the top)
    x, mapping = preprocess(src, normalize=False)
    assert mapping.crop_offset == (0, 16) and tuple(x.shape) == (1, 3, 288, 512)
    for u, v in [(10, 5), (255, 143), (500, 280)]:
        sx, sy = mapping.crop_to_source(u, v)
        # the gradient is linear, so the resampled value equals the source value at (sx, sy)
        assert float(x[0, 0, v, u]) == pytest.approx(sx / 640, abs=2e-3)
        assert float(x[0, 1, v, u]) == pytest.approx(sy / 400, abs=2e-3)
        back = mapping.source_to_crop(sx, sy)
        assert np.allclose(back, (u, v))


def test_normalisation_uses_imagenet_statistics():
    x, _ = preprocess(np.full((48, 64, 3), 255, np.uint8), target_long_side=64)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(x[0, :, 10, 10], torch.tensor(expected), atol=1e-5)


def test_intrinsics_follow_the_resize_and_crop_and_invert():
    _, mapping = preprocess(np.zeros((400, 640, 3), np.uint8))
    k = np.array([[500.0, 0, 319.5], [0, 500.0, 199.5], [0, 0, 1]])
    km = mapping.intrinsics_for_model(k)
    assert km[0, 0] == pytest.approx(400.0) and km[1, 1] == pytest.approx(400.0)
    # the principal point at the image centre stays at the crop centre
    assert km[0, 2] == pytest.approx(255.5) and km[1, 2] == pytest.approx(143.5)
    assert np.allclose(mapping.intrinsics_for_source(km), k)
    # a 3-D point projects to corresponding pixels in both images
    p = np.array([0.3, -0.2, 2.0])
    uv_src = (k @ p)[:2] / p[2]
    uv_crop = (km @ p)[:2] / p[2]
    assert np.allclose(mapping.source_to_crop(*uv_src), uv_crop)


def test_depth_maps_back_to_source_resolution_with_nan_outside_the_crop():
    _, mapping = preprocess(np.zeros((400, 640, 3), np.uint8))
    depth = np.arange(288 * 512, dtype=np.float32).reshape(288, 512)
    back = mapping.depth_to_source(depth)
    assert back.shape == (400, 640)
    assert np.isnan(back[0]).all() and np.isnan(back[-1]).all()  # cropped-away rows
    u, v = np.rint(mapping.source_to_crop(320, 200)).astype(int)
    assert back[200, 320] == depth[v, u]
    t = mapping.depth_to_source(torch.from_numpy(depth))
    assert isinstance(t, torch.Tensor) and torch.equal(torch.isnan(t), torch.from_numpy(np.isnan(back)))
    with pytest.raises(InputError, match="expected"):
        mapping.depth_to_source(np.zeros((10, 10)))


def test_very_wide_image_is_padded_black_like_the_authors_crop():
    x, mapping = preprocess(np.full((300, 1200, 3), 255, np.uint8), normalize=False)
    assert tuple(x.shape) == (1, 3, 224, 512) and mapping.crop_offset[1] < 0
    assert float(x[0, :, 0].max()) == 0.0 and float(x[0, :, 112].min()) > 0.99


def test_batches_layouts_and_bad_input():
    frames = np.zeros((2, 96, 128, 3), np.uint8)
    x, _ = preprocess(frames, target_long_side=128)
    assert tuple(x.shape) == (2, 3, 96, 128)
    x2, _ = preprocess(torch.zeros(2, 3, 96, 128), target_long_side=128)
    assert tuple(x2.shape) == (2, 3, 96, 128)
    with pytest.raises(InputError, match="differ in size"):
        preprocess([np.zeros((10, 10, 3), np.uint8), np.zeros((12, 10, 3), np.uint8)])
    with pytest.raises(InputError, match="RGB"):
        preprocess(np.zeros((2, 4, 10, 10), np.uint8))
