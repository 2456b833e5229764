"""Synchronised image sets for calibration: from one folder per camera, or from a rosbag2 file.

Pairing rules (the images of one *set* were taken at the same instant):

* Folders: images are paired by file name without extension (``cam0/0007.png`` with
  ``cam1/0007.jpg``). A name missing from some folders gives a set in which those cameras have
  no image. Two files with the same name in one folder are an error.
* Bags: every message on the first topic starts a set; each other topic contributes its message
  whose header stamp is nearest, if within ``slop`` seconds (each message used once). Sets that
  miss a camera are skipped. ``stride`` keeps every k-th set (calibration bags are recorded at
  frame rate; neighbouring frames add little).

Images are decoded to 8-bit grayscale. Bags are read with ``rosbags`` (sensor_msgs/Image in
mono8/mono16/bgr8/rgb8/bgra8/rgba8/bayer encodings, or sensor_msgs/CompressedImage).
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wint3r_ros.calib.board import to_gray
from wint3r_ros.errors import BagError, CalibrationError

__all__ = ["Frame", "IMAGE_EXTENSIONS", "pair_image_dirs", "iter_image_dirs", "iter_bag",
           "decode_image_msg"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")


@dataclass
class Frame:
    """One synchronised set: a key (file name or stamp) and one image per camera (or None)."""

    key: str
    images: list[np.ndarray | None]   # per camera: uint8 [H, W] grayscale, or None
    sources: list[str | None]         # per camera: where the image came from


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def pair_image_dirs(dirs: Sequence[str | Path]) -> list[tuple[str, list[Path | None]]]:
    """(name, [path per camera or None]) for every file name found, in natural order."""
    per_dir: list[dict[str, Path]] = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise CalibrationError(f"--images {d}: not a directory")
        files: dict[str, Path] = {}
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in IMAGE_EXTENSIONS or not p.is_file():
                continue
            if p.stem in files:
                raise CalibrationError(f"--images {d}: two images named {p.stem!r} "
                                       f"({files[p.stem].name}, {p.name}); images are paired "
                                       f"across cameras by file name, so names must be unique")
            files[p.stem] = p
        if not files:
            raise CalibrationError(f"--images {d}: no images "
                                   f"({', '.join(IMAGE_EXTENSIONS)}) in this directory")
        per_dir.append(files)
    if len(per_dir) > 1:
        for i, files in enumerate(per_dir):
            others = set().union(*(per_dir[j] for j in range(len(per_dir)) if j != i))
            if not set(files) & others:
                raise CalibrationError(
                    f"--images {dirs[i]}: no file name in common with the other cameras' "
                    f"directories (e.g. {next(iter(files))!r} here, {sorted(others)[0]!r} "
                    f"there); images are paired across cameras by file name")
    names = sorted(set().union(*per_dir), key=_natural_key)
    return [(n, [files.get(n) for files in per_dir]) for n in names]


MAX_IMAGE_PIXELS = 50_000_000   # calibration images larger than this are refused unread


def _check_image_size(path: Path) -> None:
    """Refuse an image above MAX_IMAGE_PIXELS from its header, before decoding it (a
    20000x20000 PNG cost 2.8 GB and 88 s before "no board found")."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                size = f"{width}x{height}" if width * height > MAX_IMAGE_PIXELS else ""
    except Image.DecompressionBombError as err:   # far above the limit: PIL refused it too
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found.group(1)) / 1e6:.0f}-megapixel" if found else "huge"
    except Exception:   # not an image PIL knows: cv2 reads it or says it cannot
        return
    if size:
        raise CalibrationError(f"{path}: a {size} image is larger than calibrate reads "
                               f"({MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); scale it down")


def _read_gray(path: Path) -> np.ndarray:
    _check_image_size(path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise CalibrationError(f"{path}: cannot read this image (corrupt or unsupported format)")
    return to_gray(img, str(path))


def iter_image_dirs(dirs: Sequence[str | Path]) -> Iterator[Frame]:
    """Sets of images from one directory per camera, paired by file name."""
    for name, paths in pair_image_dirs(dirs):
        yield Frame(key=name, images=[None if p is None else _read_gray(p) for p in paths],
                    sources=[None if p is None else str(p) for p in paths])


# --------------------------------------------------------------------------------------------
# rosbag2

_BAYER = {
    "bayer_rggb8": cv2.COLOR_BayerBG2GRAY, "bayer_bggr8": cv2.COLOR_BayerRG2GRAY,
    "bayer_gbrg8": cv2.COLOR_BayerGR2GRAY, "bayer_grbg8": cv2.COLOR_BayerGB2GRAY,
}
_CHANNELS = {"mono8": 1, "8UC1": 1, "bgr8": 3, "rgb8": 3, "8UC3": 3, "bgra8": 4, "rgba8": 4,
             "8UC4": 4, "mono16": 1, "16UC1": 1}


def decode_image_msg(msg: object, msgtype: str, where: str) -> np.ndarray:
    """uint8 grayscale [H, W] from a sensor_msgs/Image or CompressedImage message."""
    if msgtype.endswith("CompressedImage"):
        buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
        if img is None:
            raise CalibrationError(f"{where}: cannot decode CompressedImage "
                                   f"(format {msg.format!r})")
        return img
    enc, h, w, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if enc in _BAYER:
        ch, depth = 1, 1
    elif enc in _CHANNELS:
        ch, depth = _CHANNELS[enc], 2 if "16" in enc else 1
    else:
        raise CalibrationError(f"{where}: unsupported image encoding {enc!r} "
                               f"(supported: {', '.join(sorted([*_CHANNELS, *_BAYER]))})")
    if h <= 0 or w <= 0 or step < w * ch * depth or data.size < step * h:
        raise CalibrationError(f"{where}: Image {w}x{h} {enc} with step {step} does not match "
                               f"its {data.size} data bytes")
    rows = data[:step * h].reshape(h, step)[:, :w * ch * depth]
    if depth == 2:
        dt = ">u2" if msg.is_bigendian else "<u2"
        img = rows.copy().view(dt).reshape(h, w).astype(np.uint16)
        return (img >> 8).astype(np.uint8)
    img = rows.reshape(h, w, ch) if ch > 1 else rows.reshape(h, w)
    if enc in _BAYER:
        return cv2.cvtColor(np.ascontiguousarray(img), _BAYER[enc])
    if enc.startswith("rgb"):
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY if ch == 3
                            else cv2.COLOR_RGBA2GRAY)
    return to_gray(np.ascontiguousarray(img), where)


def _stamp_ns(msg: object) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def _pair_stamps(stamps: list[list[int]], slop_ns: int) -> list[list[int]]:
    """Sets of message indices, one per topic: nearest stamp to the first topic's, within slop."""
    orders = [np.argsort(np.asarray(s, dtype=np.int64), kind="stable") for s in stamps]
    sorted_stamps = [np.asarray(s, dtype=np.int64)[o] for s, o in zip(stamps, orders)]
    used = [np.zeros(len(s), dtype=bool) for s in stamps]
    sets = []
    for i0 in orders[0]:
        t = stamps[0][i0]
        chosen = [int(i0)]
        for k in range(1, len(stamps)):
            arr = sorted_stamps[k]
            pos = int(np.searchsorted(arr, t))
            best = None
            for cand in (pos - 1, pos, pos + 1):
                if 0 <= cand < arr.size and not used[k][cand] and abs(arr[cand] - t) <= slop_ns:
                    if best is None or abs(arr[cand] - t) < abs(arr[best] - t):
                        best = cand
            if best is None:
                break
            chosen.append(best)
        else:
            for k in range(1, len(stamps)):
                used[k][chosen[k]] = True
            sets.append([chosen[0]] + [int(orders[k][chosen[k]]) for k in range(1, len(stamps))])
    return sets


def iter_bag(bag: str | Path, topics: Sequence[str], *, slop: float = 0.005,
             stride: int = 1) -> Iterator[Frame]:
    """Sets of images from a rosbag2 file, paired by header stamp (module docstring)."""
    try:
        from rosbags.highlevel import AnyReader
    except ImportError as err:  # pragma: no cover - rosbags is a hard dependency
        raise BagError("reading bags needs the 'rosbags' package (pip install rosbags)") from err
    if stride < 1:
        raise CalibrationError(f"--stride must be >= 1, got {stride}")
    if len(set(topics)) != len(topics):
        raise CalibrationError(f"--topics: each camera needs its own topic, got {list(topics)}")
    path = Path(bag)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = AnyReader([path])
        reader.open()
    except Exception as err:  # rosbags raises several types for unreadable bags
        raise BagError(f"{path}: cannot open bag: {err}") from err
    try:
        conns = {}
        image_topics = sorted({c.topic for c in reader.connections
                               if c.msgtype.endswith(("/Image", "/CompressedImage"))})
        for t in topics:
            found = [c for c in reader.connections if c.topic == t]
            if not found:
                raise BagError(f"{path}: no topic {t!r} (image topics in the bag: "
                               f"{', '.join(image_topics) or 'none'})")
            if not found[0].msgtype.endswith(("/Image", "/CompressedImage")):
                raise BagError(f"{path}: topic {t!r} has type {found[0].msgtype}, not "
                               f"sensor_msgs/Image or CompressedImage")
            conns[t] = found
        index = {t: k for k, t in enumerate(topics)}
        all_conns = [c for cs in conns.values() for c in cs]
        # Pass 1: header stamps only.
        stamps: list[list[int]] = [[] for _ in topics]
        for conn, _, raw in reader.messages(connections=all_conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamps[index[conn.topic]].append(_stamp_ns(msg))
        sets = _pair_stamps(stamps, int(round(slop * 1e9)))[::stride]
        wanted = {(k, s[k]): j for j, s in enumerate(sets) for k in range(len(topics))}
        images: dict[tuple[int, int], tuple[np.ndarray, str]] = {}
        counters = [0] * len(topics)
        # Pass 2: decode only the images of the chosen sets.
        for conn, _, raw in reader.messages(connections=all_conns):
            k = index[conn.topic]
            n = counters[k]
            counters[k] += 1
            if (k, n) not in wanted:
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            st = _stamp_ns(msg)
            where = f"{path}:{conn.topic}@{st // 1_000_000_000}.{st % 1_000_000_000:09d}"
            images[(wanted[(k, n)], k)] = (decode_image_msg(msg, conn.msgtype, where), where)
    finally:
        reader.close()
    for j, s in enumerate(sets):
        st = stamps[0][s[0]]
        key = f"{st // 1_000_000_000}.{st % 1_000_000_000:09d}"
        yield Frame(key=key, images=[images[(j, k)][0] for k in range(len(topics))],
                    sources=[images[(j, k)][1] for k in range(len(topics))])
