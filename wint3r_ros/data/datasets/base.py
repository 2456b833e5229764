"""The one interface every dataset reader produces: a `DatasetSequence` of synchronised sets.

A sequence is a calibrated `Rig` (one camera for the RGB-D datasets, two for KITTI's colour
stereo pair) and a list of `FrameSet`s in time order: an integer-nanosecond stamp, one image
file per camera, one depth file per camera where the dataset has depth, and the ground-truth
pose of the rig's base frame where the dataset has one (``world_from_base``, camera-to-world
4x4 float64; a camera's pose is ``world_from_base @ rig.camera(c).T_base_camera``).

Files are read only when asked for (`image`, `depth`), so opening a sequence of thousands of
frames is cheap. Depth comes back in metres, float32, NaN where the sensor has no value, at
the camera's image size.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from wint3r_ros.core.rig import Camera, Rig
from wint3r_ros.errors import InputError

__all__ = ["FrameSet", "DatasetSequence", "read_rgb", "read_depth_png", "pinhole_camera",
           "read_numbers", "stamp_ns_from_text", "matrix_4x4", "frames_or_error", "NS_PER_S",
           "FRAME_RATE_HZ", "stamp_ns_of_frame", "read_pose_file", "sequence_folders"]

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class FrameSet:
    """One synchronised set: `index` in the sequence as published (before any selection),
    `stamp_ns`, per-camera image and depth files, and the ground-truth base pose or None."""

    index: int
    stamp_ns: int
    images: tuple[Path, ...]
    depths: tuple[Path | None, ...] = ()
    world_from_base: np.ndarray | None = None


# A depth decoder: path -> [H, W] float32 metres with NaN where the sensor has no value.
DepthReader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class DatasetSequence:
    """A published sequence: `kind` (the reader, e.g. ``tum``), `name`, `root` (its folder),
    the rig, the frame sets and how its depth files decode."""

    kind: str
    name: str
    root: Path
    rig: Rig
    frames: list[FrameSet]
    depth_reader: DepthReader | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_depth(self) -> bool:
        return self.depth_reader is not None and any(
            p is not None for f in self.frames for p in f.depths)

    @property
    def has_poses(self) -> bool:
        return any(f.world_from_base is not None for f in self.frames)

    def image(self, t: int, camera: int = 0) -> np.ndarray:
        """RGB uint8 [H, W, 3] of set `t`, camera `camera`, at the rig camera's size."""
        cam = self.rig.cameras[camera]
        return read_rgb(self.frames[t].images[camera], (cam.height, cam.width))

    def depth(self, t: int, camera: int = 0) -> np.ndarray | None:
        """Depth [H, W] float32 metres (NaN: no value) of set `t`, or None without depth."""
        depths = self.frames[t].depths
        if self.depth_reader is None or camera >= len(depths) or depths[camera] is None:
            return None
        d = self.depth_reader(depths[camera])
        cam = self.rig.cameras[camera]
        if d.shape != (cam.height, cam.width):
            raise InputError(f"{self.kind}:{self.root}: depth {depths[camera]} is "
                             f"{d.shape[1]}x{d.shape[0]}, camera '{cam.name}' is "
                             f"{cam.width}x{cam.height}")
        return d

    def world_from_cam(self, t: int, camera: int = 0) -> np.ndarray | None:
        """Ground-truth camera-to-world pose [4, 4] of set `t`, or None where there is none."""
        T = self.frames[t].world_from_base
        if T is None:
            return None
        return T @ self.rig.cameras[camera].T_base_camera

    def select(self, start: int = 0, count: int | None = None, stride: int = 1) -> DatasetSequence:
        """The sets start, start + stride, ... (at most `count` of them), as a new sequence."""
        if start < 0 or stride < 1 or (count is not None and count < 1):
            raise InputError(f"{self.kind}:{self.root}: bad selection start={start} "
                             f"count={count} stride={stride}")
        stop = len(self.frames) if count is None else start + count * stride
        frames = self.frames[start:stop:stride]
        if not frames:
            raise InputError(f"{self.kind}:{self.root}: no frames from {start} with stride "
                             f"{stride} (the sequence has {len(self.frames)})")
        return replace(self, frames=frames)


def pinhole_camera(name: str, width: int, height: int, fx: float, fy: float, cx: float,
                   cy: float, distortion: tuple[float, ...] | None = None,
                   T_base_camera: np.ndarray | None = None) -> Camera:
    """A dataset camera: topic ``/<name>/image_raw``, frame ``<name>_optical_frame``."""
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    model, coeffs = ("none", np.zeros(0)) if distortion is None else ("plumb_bob",
                                                                       np.asarray(distortion))
    return Camera(name=name, topic=f"/{name}/image_raw", frame_id=f"{name}_optical_frame",
                  width=int(width), height=int(height), K=K, distortion_model=model,
                  distortion_coefficients=coeffs,
                  T_base_camera=np.eye(4) if T_base_camera is None else T_base_camera,
                  camera_info_topic=f"/{name}/camera_info")


def _imread(path: Path, flags: int) -> np.ndarray:
    import cv2

    if not path.is_file():
        raise InputError(f"image file {path} does not exist")
    img = cv2.imread(str(path), flags)
    if img is None:
        raise InputError(f"image file {path}: not a readable image (PNG/JPEG expected)")
    return img


def read_rgb(path: Path, size_hw: tuple[int, int] | None = None) -> np.ndarray:
    """An 8-bit colour or grey image file as RGB uint8 [H, W, 3], resized (area) to `size_hw`
    when it differs (ScanNet's colour frames are larger than its depth frames)."""
    import cv2

    img = _imread(Path(path), cv2.IMREAD_COLOR)
    if img.dtype != np.uint8:
        raise InputError(f"image file {path}: {img.dtype} pixels, expected 8-bit")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size_hw is not None and img.shape[:2] != tuple(size_hw):
        img = cv2.resize(img, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
    return img


def read_depth_png(path: Path, units_per_metre: float, invalid: tuple[int, ...] = (0,)) -> np.ndarray:
    """A 16-bit single-channel depth PNG as float32 metres (value / units_per_metre), NaN where
    the value is one of `invalid`. An 8-bit or colour PNG is refused: it has lost the depth."""
    import cv2

    raw = _imread(Path(path), cv2.IMREAD_UNCHANGED)
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"depth file {path}: expected a 16-bit single-channel PNG, got "
                         f"{raw.dtype} with shape {raw.shape}")
    depth = raw.astype(np.float32) / np.float32(units_per_metre)
    depth[np.isin(raw, invalid)] = np.nan
    return depth


def read_numbers(path: Path, what: str, columns: int | None = None) -> list[list[float]]:
    """Rows of whitespace-separated numbers of a text file; ``#`` comment lines and empty lines
    skipped; every row must have `columns` numbers when given. Errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what}: file {path} does not exist")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            row = [float(v) for v in text.replace(",", " ").split()]
        except ValueError as err:
            raise InputError(f"{what}: {path} line {lineno}: not numbers: {text[:80]!r}") from err
        if columns is not None and len(row) != columns:
            raise InputError(f"{what}: {path} line {lineno}: {len(row)} numbers, expected {columns}")
        rows.append(row)
    return rows


def stamp_ns_from_text(text: str, where: str) -> int:
    """A decimal seconds stamp ('1305031102.175304') as integer ns, exactly (no float detour)."""
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > 9:
        raise InputError(f"{where}: {text!r} is not a time stamp in seconds (digits[.digits])")
    return int(whole) * NS_PER_S + int((frac + "000000000")[:9])


def matrix_4x4(values: list[float], where: str) -> np.ndarray:
    """12 (3x4 row-major) or 16 (4x4) numbers as a 4x4 float64 pose."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 12:
        a = np.vstack([a.reshape(3, 4), [0.0, 0.0, 0.0, 1.0]])
    elif a.size == 16:
        a = a.reshape(4, 4)
    else:
        raise InputError(f"{where}: expected 12 or 16 numbers for a pose, got {a.size}")
    return a


FRAME_RATE_HZ = 30


def stamp_ns_of_frame(k: int, rate_hz: int = FRAME_RATE_HZ) -> int:
    """Stamp of frame k at a fixed integer rate, integer ns (k * 1e9 / rate, rounded)."""
    return (k * 1_000_000_000 + rate_hz // 2) // rate_hz


def read_pose_file(path: Path) -> np.ndarray | None:
    """A 4x4 camera-to-world pose file; None when it holds non-finite values (ScanNet's -inf)."""
    rows = read_numbers(path, "pose")
    T = matrix_4x4([v for r in rows for v in r], f"pose file {path}")
    return T if np.isfinite(T).all() else None


def sequence_folders(path: Path, kind: str, is_sequence: Callable[[Path], bool]) -> list[Path]:
    """`path` if it is a sequence, else its sequence sub-folders, else theirs (sorted)."""
    path = Path(path)
    if is_sequence(path):
        return [path]
    if path.is_dir():
        for depth in (1, 2):
            found = sorted(p for p in path.glob("/".join(["*"] * depth)) if p.is_dir() and is_sequence(p))
            if found:
                return found
    raise InputError(f"{kind}:{path}: no {kind} sequence there (see docs/EVALUATION.md for the layout)")


def frames_or_error(frames: list[FrameSet], kind: str, root: Path) -> list[FrameSet]:
    if not frames:
        raise InputError(f"{kind}:{root}: no frames found")
    return frames
