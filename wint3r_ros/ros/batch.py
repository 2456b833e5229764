"""`wint3r_ros/msg/WindowBatch`: built from a window of Image messages (sync side), and read
back into the pipeline's `WindowInput` of RGB arrays (fusion side).

Layout (msg/WindowBatch.msg): L steps x N cameras, time-major (``images[t * N + c]``); a camera
missing from a degraded set is an empty Image (0 x 0, stamp 0). ``overlap`` is the window
schedule's overlap O (the fusion node's merge rule needs it from the first window on); which
leading steps a window really shares with the previous one is found from the stamps (the fusion
stage's `WindowAssembler`), so a dropped window or a reset is handled without trusting counters.
Transport ``raw`` carries the incoming Image messages untouched (no copy); ``jpeg`` carries
CompressedImages (for a fusion node on another machine).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wint3r_ros.core.pipeline.params import TRANSPORTS
from wint3r_ros.core.pipeline.records import CameraInfoRecord, WindowInput
from wint3r_ros.core.window import Window
from wint3r_ros.errors import InputError
from wint3r_ros.ros import convert

__all__ = ["TRANSPORTS", "build_window_batch", "decode_window_batch"]


def build_window_batch(window: Window, *, index: int, epoch: int, overlap: int, base_frame: str,
                       frame_ids: Sequence[str], camera_infos: Sequence[Any],
                       transport: str = "raw", jpeg_quality: int = 90,
                       jpeg_cache: dict[int, tuple[Any, Any]] | None = None) -> Any:
    """WindowBatch of a core Window whose items are sensor_msgs/Image messages (time-major).

    Header stamp: the newest image stamp of the window's last step; frame_id: ``base_frame``.
    ``jpeg_cache`` (id(image) -> (image, compressed)) lets overlapping windows encode each image
    once: entries found are reused, new ones added, and entries of images not in this window
    removed.
    """
    from sensor_msgs.msg import CompressedImage, Image

    from wint3r_ros.msg import WindowBatch

    if transport not in TRANSPORTS:
        raise InputError(f"transport {transport!r}: expected one of {TRANSPORTS}")
    n = len(window.camera_names)
    L = window.num_steps
    slots: list[Any] = [None] * (L * n)
    for f in window.frames:
        slots[f.step * n + f.camera_index] = f.item
    stamps = [m.header.stamp if m is not None else convert.stamp_from_ns(0) for m in slots]
    last = [m for m in slots[(L - 1) * n:] if m is not None]
    newest = max(last, key=lambda m: convert.ns_from_stamp(m.header.stamp)).header.stamp
    batch = WindowBatch(window_index=int(index), num_cameras=n, num_steps=L, overlap=int(overlap),
                        camera_names=list(window.camera_names), frame_ids=list(frame_ids),
                        image_stamps=stamps, camera_infos=list(camera_infos), epoch=int(epoch))
    batch.header.stamp = newest
    batch.header.frame_id = base_frame
    if transport == "raw":
        batch.images = [m if m is not None else Image() for m in slots]
    else:
        cache = {} if jpeg_cache is None else jpeg_cache
        packed = []
        for m in slots:
            if m is None:
                packed.append(CompressedImage())
                continue
            hit = cache.get(id(m))
            if hit is None or hit[0] is not m:
                hit = (m, convert.compressed_from_image(m, jpeg_quality))
                cache[id(m)] = hit
            packed.append(hit[1])
        keep = {id(m) for m in slots if m is not None}
        for key in [k for k in cache if k not in keep]:
            del cache[key]
        batch.compressed_images = packed
    return batch


def decode_window_batch(msg: Any, topic: str = "",
                        on_bad_info: Callable[[str, InputError], Any] | None = None
                        ) -> WindowInput:
    """Check a WindowBatch's consistency and decode its images; InputError says what is wrong.
    A camera_info with NaN or infinity is left out (None) and reported to
    ``on_bad_info(camera, error)``; its camera's depth then goes without camera_info."""
    where = f"WindowBatch {msg.window_index} on {topic or 'its topic'}"
    n, L = int(msg.num_cameras), int(msg.num_steps)
    names, frames = list(msg.camera_names), list(msg.frame_ids)
    if n < 1 or L < 1:
        raise InputError(f"{where}: num_cameras={n}, num_steps={L} must both be >= 1")
    if len(names) != n or len(frames) != n or len(set(names)) != n:
        raise InputError(f"{where}: {len(names)} camera_names / {len(frames)} frame_ids for "
                         f"num_cameras={n} (names must be unique)")
    if len(msg.camera_infos) not in (0, n):
        raise InputError(f"{where}: {len(msg.camera_infos)} camera_infos for {n} cameras")
    if not 0 <= int(msg.overlap) < L:
        raise InputError(f"{where}: overlap {msg.overlap} must lie in [0, {L})")
    raw, packed = list(msg.images), list(msg.compressed_images)
    if bool(raw) == bool(packed):
        raise InputError(f"{where}: exactly one of images ({len(raw)}) and compressed_images "
                         f"({len(packed)}) must be filled")
    imgs = raw or packed
    if len(imgs) != L * n or len(msg.image_stamps) != L * n:
        raise InputError(f"{where}: {len(imgs)} images and {len(msg.image_stamps)} stamps, "
                         f"expected num_steps x num_cameras = {L} x {n}")
    stamps: list[list[int | None]] = []
    images: list[list[np.ndarray | None]] = []
    for t in range(L):
        srow: list[int | None] = []
        irow: list[np.ndarray | None] = []
        for c in range(n):
            m = imgs[t * n + c]
            if len(m.data) == 0:
                srow.append(None)
                irow.append(None)
                continue
            label = f"{where}, camera '{names[c]}' step {t}"
            irow.append(convert.rgb_from_image(m, label) if raw else convert.rgb_from_compressed(m, label))
            srow.append(convert.ns_from_stamp(msg.image_stamps[t * n + c]))
        if all(s is None for s in srow):
            raise InputError(f"{where}: step {t} has no image")
        stamps.append(srow)
        images.append(irow)
    infos = [_info_record(info, name, on_bad_info)
             for name, info in zip(names, list(msg.camera_infos) or [None] * n)]
    return WindowInput(int(msg.window_index), int(msg.epoch), int(msg.overlap), names, frames,
                       stamps, images, infos, convert.ns_from_stamp(msg.header.stamp))


def _info_record(info: Any, camera: str, on_bad: Callable[[str, InputError], Any] | None
                 ) -> CameraInfoRecord | None:
    if info is None or int(info.width) == 0:
        return None
    try:
        return convert.camera_info_record(info)
    except InputError as err:
        if on_bad is not None:
            on_bad(camera, err)
        return None
