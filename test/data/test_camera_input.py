"""Camera input beyond rgb8: Bayer mosaics (4 patterns, 8 and 16 bit), YUV 4:2:2 (UYVY, YUYV)
and CompressedImage (JPEG, PNG) convert to the RGB of the original image; bad input is an
InputError naming the topic."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from wint3r_ros.data import messages as m
from wint3r_ros.errors import InputError

H, W = 48, 64
_y, _x = np.mgrid[0:H, 0:W]
# smooth, strongly coloured: a swapped R/B or a wrong Bayer phase shows as a large error
RGB = np.stack([128 + 100 * np.sin(_x / 9), 128 + 100 * np.cos(_y / 7),
                128 + 80 * np.sin((_x + _y) / 11)], -1).astype(np.uint8)


def _image(data: np.ndarray, encoding: str) -> SimpleNamespace:
    row = data.shape[1] * (data.shape[2] if data.ndim == 3 else 1) * data.itemsize
    return SimpleNamespace(encoding=encoding, height=data.shape[0], width=data.shape[1], step=row,
                           data=np.ascontiguousarray(data).tobytes(), is_bigendian=0)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
    return out


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_mosaics_demosaic_to_the_original_colours(pattern):
    rgb = m.rgb_from_image(_image(_mosaic(RGB, pattern), f"bayer_{pattern}8"), "/cam/image_raw")
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb[2:-2, 2:-2].astype(int) - RGB[2:-2, 2:-2]).mean() < 1.0


def test_16_bit_bayer_keeps_its_high_byte():
    deep = RGB.astype(np.uint16) << 8
    rgb = m.rgb_from_image(_image(_mosaic(deep, "grbg"), "bayer_grbg16"))
    assert np.abs(rgb[2:-2, 2:-2].astype(int) - RGB[2:-2, 2:-2]).mean() < 1.0


def _yuv422(rgb: np.ndarray, order: str) -> np.ndarray:
    """BT.601 video range, chroma averaged over pixel pairs; order 'uyvy' or 'yuyv'."""
    r, g, b = (rgb[..., i].astype(float) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    chroma = np.empty_like(y)
    chroma[:, 0::2] = (u[:, 0::2] + u[:, 1::2]) / 2
    chroma[:, 1::2] = (v[:, 0::2] + v[:, 1::2]) / 2
    planes = (chroma, y) if order == "uyvy" else (y, chroma)
    return np.clip(np.round(np.stack(planes, -1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("encoding", "order"), [("yuv422", "uyvy"), ("yuv422_yuy2", "yuyv")])
def test_yuv422_converts_to_the_original_colours(encoding, order):
    rgb = m.rgb_from_image(_image(_yuv422(RGB, order), encoding))
    assert np.abs(rgb.astype(int) - RGB).mean() < 3.0


def test_yuv422_of_odd_width_is_refused_naming_the_topic():
    odd = _image(np.zeros((4, 5, 2), np.uint8), "yuv422")
    with pytest.raises(InputError, match="topic /cam/image_raw: yuv422 needs an even width"):
        m.rgb_from_image(odd, "/cam/image_raw")


def _compressed(kind: str, rgb: np.ndarray = RGB, fmt: str | None = None) -> SimpleNamespace:
    ok, buf = cv2.imencode(".png" if kind == "png" else ".jpg", rgb[..., ::-1])
    assert ok
    return SimpleNamespace(format=kind if fmt is None else fmt, data=buf.reshape(-1).tobytes())


def test_png_is_lossless_and_jpeg_close():
    assert np.array_equal(m.rgb_from_camera_message(_compressed("png")), RGB)
    jpeg = m.rgb_from_camera_message(_compressed("jpeg", fmt="rgb8; jpeg compressed bgr8"))
    assert np.abs(jpeg.astype(int) - RGB).mean() < 3.0


def test_compressed_format_comes_from_the_format_string_or_the_magic_bytes():
    assert m.compressed_format(_compressed("png", fmt="bgr8; png compressed bgr8")) == "png"
    assert m.compressed_format(_compressed("jpeg", fmt="")) == "jpeg"
    assert m.compressed_format(_compressed("png", fmt="")) == "png"
    assert m.compressed_format(SimpleNamespace(format="theora", data=b"abc")) == ""


def test_bad_compressed_input_is_an_input_error_naming_the_topic():
    with pytest.raises(InputError, match="topic /c/compressed: compressed image format 'theora'"):
        m.rgb_from_compressed(SimpleNamespace(format="theora", data=b"abc"), "/c/compressed")
    broken = SimpleNamespace(format="jpeg", data=b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="could not be decoded as jpeg"):
        m.rgb_from_compressed(broken, "/c/compressed")
