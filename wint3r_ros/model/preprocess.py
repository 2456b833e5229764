"""Input preprocessing as the authors do it, with the mapping back to the camera's own pixels.

The image is resized so that its long side is `target_long_side` (512 as published), then
centre-cropped to the first resolution of the authors' set whose aspect ratio is wider than the
image's (512x384, 512x336, 512x288, 512x256, 512x224; transposed for portrait images), and
normalised with the ImageNet mean and std. The returned `CropMapping` takes crop pixels back to
source pixels, and moves intrinsics and depth maps between the two.

Pixel coordinates follow OpenCV: the centre of pixel (column i, row j) is at (i, j). Resizing
maps source x to (x + 0.5) * scale - 0.5, the crop subtracts its offset.

The authors resize with PIL (Lanczos down, bicubic up); we use torch's antialiased bicubic,
which is close but not bit-identical.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wint3r_ros.errors import InputError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PUBLISHED_RESOLUTIONS", "CropMapping",
           "resolutions_for", "choose_resolution", "preprocess", "model_resolution"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (width, height) for landscape images at long side 512
PUBLISHED_RESOLUTIONS = ((512, 384), (512, 336), (512, 288), (512, 256), (512, 224))


def resolutions_for(long_side: int) -> tuple[tuple[int, int], ...]:
    """The aspect-ratio set at another long side: short sides scaled and rounded to multiples
    of 16 (duplicates dropped). At 512 this is exactly the published set."""
    if long_side < 16 or long_side % 16:
        raise InputError(f"target_long_side={long_side}: must be a positive multiple of 16")
    out: list[tuple[int, int]] = []
    for w, h in PUBLISHED_RESOLUTIONS:
        short = max(16, 16 * int(round(long_side * h / w / 16)))
        if (long_side, short) not in out:
            out.append((long_side, short))
    return tuple(out)


def choose_resolution(width: int, height: int, long_side: int = 512) -> tuple[int, int]:
    """(crop width, crop height) for a resized image of width x height (the authors' rule)."""
    portrait = width < height
    aspect = height / width if portrait else width / height
    choice = None
    for res_w, res_h in resolutions_for(long_side):
        choice = (res_w, res_h)
        if res_w / res_h > aspect - 0.001:
            break
    assert choice is not None
    return (choice[1], choice[0]) if portrait else choice


@dataclass(frozen=True)
class CropMapping:
    """How a source image of `source_size` (W, H) became the model's `output_size` input.

    resized_size: (W', H') after the resize; crop_offset: (x0, y0), the crop's top-left corner
    in resized pixels (negative or beyond the image where the crop was padded with black).
    """

    source_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_offset: tuple[int, int]
    output_size: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): resized pixels per source pixel."""
        return (self.resized_size[0] / self.source_size[0], self.resized_size[1] / self.source_size[1])

    def crop_to_source(self, u, v):
        """Crop pixel coordinates (u, v) (scalars or arrays) -> source pixel coordinates (x, y)."""
        sx, sy = self.scale
        x0, y0 = self.crop_offset
        return (np.asarray(u, dtype=np.float64) + x0 + 0.5) / sx - 0.5, \
            (np.asarray(v, dtype=np.float64) + y0 + 0.5) / sy - 0.5

    def source_to_crop(self, x, y):
        """Source pixel coordinates (x, y) -> crop pixel coordinates (u, v)."""
        sx, sy = self.scale
        x0, y0 = self.crop_offset
        return (np.asarray(x, dtype=np.float64) + 0.5) * sx - 0.5 - x0, \
            (np.asarray(y, dtype=np.float64) + 0.5) * sy - 0.5 - y0

    def intrinsics_for_model(self, k: np.ndarray) -> np.ndarray:
        """The source camera's 3x3 K -> K of the model's input image (crop)."""
        sx, sy = self.scale
        x0, y0 = self.crop_offset
        out = np.array(k, dtype=np.float64, copy=True)
        out[0, :] *= sx
        out[1, :] *= sy
        out[0, 2] = (k[0][2] + 0.5) * sx - 0.5 - x0
        out[1, 2] = (k[1][2] + 0.5) * sy - 0.5 - y0
        return out

    def intrinsics_for_source(self, k_model: np.ndarray) -> np.ndarray:
        """Inverse of `intrinsics_for_model`."""
        sx, sy = self.scale
        x0, y0 = self.crop_offset
        out = np.array(k_model, dtype=np.float64, copy=True)
        out[0, :] /= sx
        out[1, :] /= sy
        out[0, 2] = (k_model[0][2] + 0.5 + x0) / sx - 0.5
        out[1, 2] = (k_model[1][2] + 0.5 + y0) / sy - 0.5
        return out

    def depth_to_source(self, depth):
        """A map [..., Hc, Wc] on the crop (depth, confidence) -> [..., H, W] on the source image.

        Nearest neighbour (no blending across depth edges); NaN where the source pixel lies
        outside the crop. Depth values need no change: resizing does not change z.
        Accepts numpy or torch; returns the same kind (float).
        """
        is_numpy = isinstance(depth, np.ndarray)
        d = torch.as_tensor(depth)
        if d.shape[-2:] != (self.output_size[1], self.output_size[0]):
            raise InputError(f"depth_to_source: map is {tuple(d.shape[-2:])} (H, W), expected "
                             f"{(self.output_size[1], self.output_size[0])}")
        if not d.is_floating_point():
            d = d.float()
        w, h = self.source_size
        u, _ = self.source_to_crop(np.arange(w), 0)
        _, v = self.source_to_crop(0, np.arange(h))
        ui, vi = np.rint(u).astype(np.int64), np.rint(v).astype(np.int64)
        ok_u = (ui >= 0) & (ui < self.output_size[0])
        ok_v = (vi >= 0) & (vi < self.output_size[1])
        cols = torch.as_tensor(np.clip(ui, 0, self.output_size[0] - 1), device=d.device)
        rows = torch.as_tensor(np.clip(vi, 0, self.output_size[1] - 1), device=d.device)
        out = d.index_select(-2, rows).index_select(-1, cols)   # a new tensor: filled in place
        if not ok_u.all():   # rows and columns outside the crop (no full-size mask: at 48 MP
            out[..., torch.as_tensor(~ok_u, device=d.device)] = float("nan")   # it was 0.6 GB)
        if not ok_v.all():
            out[..., torch.as_tensor(~ok_v, device=d.device), :] = float("nan")
        return out.cpu().numpy() if is_numpy else out

    def to_dict(self) -> dict:
        return {"source_size": list(self.source_size), "resized_size": list(self.resized_size),
                "crop_offset": list(self.crop_offset), "output_size": list(self.output_size)}


def _image_tensors(images) -> list[torch.Tensor]:
    """Images in any accepted layout -> [1, 3, H, W] tensors, one per image, in their own dtype
    (checked; views where possible), so each is made float on its own."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("preprocess: no images")
        parts = [t for im in images for t in _image_tensors(im)]
        if len({p.shape[-2:] for p in parts}) != 1:
            raise InputError(f"preprocess: images differ in size {[tuple(p.shape[-2:]) for p in parts]}; "
                             "preprocess each camera separately")
        return parts
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(t, torch.Tensor):
        raise InputError(f"preprocess: expected numpy arrays or tensors, got {type(images).__name__}")
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise InputError(f"preprocess: expected [H, W, 3], [S, H, W, 3] or [S, 3, H, W], got {list(t.shape)}")
    if t.shape[-1] == 3 and t.shape[1] != 3:
        t = t.permute(0, 3, 1, 2)  # (S, 3, H, W)
    elif t.shape[1] != 3:
        raise InputError(f"preprocess: no 3-channel (RGB) axis in shape {list(t.shape)}")
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise InputError(f"preprocess: expected uint8 or float images, got {t.dtype}")
    return list(t.split(1))


def _as_float(t: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1]; float -> float32."""
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()   # one full-size copy


def preprocess(images, target_long_side: int = 512, normalize: bool = True,
               device: str | torch.device | None = None) -> tuple[torch.Tensor, CropMapping]:
    """RGB images -> (model input [S, 3, Hc, Wc], CropMapping).

    images: uint8 or float-in-[0, 1] RGB, as [H, W, 3], [S, H, W, 3], [S, 3, H, W] (numpy or
    torch) or a list of such, all of one size. target_long_side: 512 for the published model,
    a smaller multiple of 16 (e.g. 128) for the tiny one. normalize: ImageNet mean/std.
    Each image is made float and resized on its own: a window of 8000x6000 images costs one
    full-size float image at a time (576 MB), not one per image.
    """
    parts = _image_tensors(images)
    h, w = parts[0].shape[-2:]
    if h < 1 or w < 1:
        raise InputError(f"preprocess: empty image {w}x{h}")
    long_side = max(w, h)
    new_w, new_h = (int(round(s * target_long_side / long_side)) for s in (w, h))
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    resized = []
    for part in parts:
        x = _as_float(part.to(device) if device is not None else part)
        if (new_w, new_h) != (w, h):
            x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False,
                              antialias=True).clamp_(0.0, 1.0)
        resized.append(x)
    x = torch.cat(resized)
    crop_w, crop_h = choose_resolution(new_w, new_h, target_long_side)
    x0, y0 = new_w // 2 - crop_w // 2, new_h // 2 - crop_h // 2
    pad = (max(0, -x0), max(0, x0 + crop_w - new_w), max(0, -y0), max(0, y0 + crop_h - new_h))
    if any(pad):
        x = F.pad(x, pad, value=0.0)  # black outside the image, as PIL's crop does
    top, left = y0 + pad[2], x0 + pad[0]
    x = x[..., top:top + crop_h, left:left + crop_w]
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    mapping = CropMapping(source_size=(int(w), int(h)), resized_size=(new_w, new_h),
                          crop_offset=(x0, y0), output_size=(crop_w, crop_h))
    return x.contiguous(), mapping


def model_resolution(source_size: Sequence[int], target_long_side: int = 512) -> tuple[int, int]:
    """(width, height) of the model input for a source image of (width, height), without pixels."""
    w, h = source_size
    long_side = max(w, h)
    new_w, new_h = (max(1, int(round(s * target_long_side / long_side))) for s in (w, h))
    return choose_resolution(new_w, new_h, target_long_side)
