"""The fusion half of the pipeline: `WindowInput` -> engine -> output stage -> `OutputBatch`.

fusion_node feeds it the windows it decodes from sync_node's WindowBatch messages; process-bag
feeds it the windows of its own front end (`core.pipeline.offline`). Either way one
`FusionStage.process(window)` call:

1. starts a new reconstruction when the window's epoch changed or its stamp went back (the
   frames the old one held for the merge are published first: every frame out or counted);
2. builds the engine for the windows' cameras and shape (N, L, O) with the one
   `settings.engine_config` (a change of shape is a reset too);
3. numbers the window's sets from their stamps (`WindowAssembler`: a set seen in the previous
   window keeps its index) and runs the engine;
4. hands the engine's frames and their exact integer stamps to the output stage.

Seams for features: a new per-window check goes in `process` before the engine runs; a new
output goes in `core.outputs.OutputStage` (a record) and in the one message builder
(`data.messages.output_messages`); a run-time setting goes through `set_parameter`.
Not thread-safe: a node calls it from its one worker thread.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from wint3r_ros.core.engine import StreamingReconstructor
from wint3r_ros.core.outputs import OutputStage
from wint3r_ros.core.pipeline.records import OutputBatch, StatusRecord, WindowInput
from wint3r_ros.core.pipeline.settings import ModelSettings, engine_config, output_settings
from wint3r_ros.core.voxel_map import MapConfig, RunMap
from wint3r_ros.core.window import Frame, Window, WindowConfig
from wint3r_ros.errors import InputError

__all__ = ["FusionStage", "WindowAssembler", "FrameItem"]

_LIVE = ("confidence_threshold", "cloud_voxel_size", "cloud_max_points")


class FrameItem:
    """What a frame of the engine's Window carries: the RGB image and its exact stamp."""

    __slots__ = ("image", "stamp_ns")

    def __init__(self, image: Any, stamp_ns: int) -> None:
        self.image = image
        self.stamp_ns = stamp_ns


class WindowAssembler:
    """WindowInput -> core `Window` with stable set indices.

    A step is the same synchronised set as a step of the previous window when its stamps are
    equal; it then keeps that set's index, otherwise it gets the next one, so a dropped window
    or a reset needs no counters from the sender. ``order``: the engine's image order."""

    def __init__(self, order: str = "time") -> None:
        self.order = order
        self._prev: dict[tuple, int] = {}
        self._next_set = 0
        self._next_window = 0

    def reset(self) -> None:
        """Forget the previous window (after an engine reset); indices keep increasing."""
        self._prev = {}

    def assemble(self, win: WindowInput) -> Window:
        set_indices, first_new = [], 0
        for t, row in enumerate(win.stamps_ns):
            key = tuple(row)
            if key in self._prev:
                set_indices.append(self._prev[key])
                if first_new == t:
                    first_new = t + 1
            else:
                set_indices.append(self._next_set)
                self._next_set += 1
        self._prev = {tuple(row): s for row, s in zip(win.stamps_ns, set_indices)}
        n, L = len(win.camera_names), win.num_steps
        order = ([(t, c) for t in range(L) for c in range(n)] if self.order == "time"
                 else [(t, c) for c in range(n) for t in range(L)])
        frames = []
        for t, c in order:
            img, ns = win.images[t][c], win.stamps_ns[t][c]
            if img is not None and ns is not None:
                frames.append(Frame(t, win.camera_names[c], c, ns / 1e9, FrameItem(img, ns),
                                    set_indices[t]))
        window = Window(self._next_window, tuple(win.camera_names), self.order, tuple(frames),
                        tuple(tuple(None if s is None else s / 1e9 for s in row)
                              for row in win.stamps_ns),
                        tuple(set_indices), first_new)
        self._next_window += 1
        return window


class FusionStage:
    """See the module docstring.

    model: the network; values: checked FUSION_PARAMETERS values; model: the resolved
    `ModelSettings`; rig: the calibrated rig or None; base_frame: the resolved base frame;
    log: where warnings go (resets, pool size, one-off notes)."""

    def __init__(self, model: Any, values: Mapping[str, Any], model_settings: ModelSettings,
                 rig: Any = None, *, base_frame: str,
                 log: Callable[[str], Any] | None = None) -> None:
        self.model = model
        self.values = dict(values)
        self.model_settings = model_settings
        self.rig = rig
        self.log = log or (lambda text: None)
        self.outputs = OutputStage(output_settings(self.values, base_frame), rig)
        # the whole run's map and trajectory (odometry frame: it survives resets, odom continues)
        self.map = RunMap(MapConfig(self.values["map_voxel_size"],
                                    max(1, self.values["map_max_points"])),
                          self.values["map_max_poses"])
        self.assembler = WindowAssembler(self.values["image_order"])
        self.engine: StreamingReconstructor | None = None
        self._engine_key: tuple | None = None
        self._epoch: int | None = None
        self._last_stamp_ns: int | None = None
        self._stamps: dict[tuple[int, int], int] = {}
        self._frame_ids: list[str] = []
        self._infos: list[Any] = []
        self.counters = {"frames_in": 0, "frames_out": 0, "windows": 0, "resets": 0}
        self._sizes_seen: set[tuple[str, int, int]] = set()
        self.last_window_index = 0
        self.last_stamp_ns = 0

    # -------------------------------------------------------------------------- settings
    def set_parameter(self, name: str, value: Any) -> None:
        """Apply a run-time change (confidence_threshold, cloud_voxel_size, cloud_max_points)."""
        from dataclasses import replace

        if name not in _LIVE:
            return
        self.values[name] = value
        if name == "confidence_threshold":
            threshold = float(value) if value > 0 else self.model_settings.card_threshold
            self.model_settings = replace(self.model_settings, confidence_threshold=threshold)
            if self.engine is not None:
                self.engine.set_confidence_threshold(threshold)
        else:
            self.outputs.settings = replace(self.outputs.settings, **{name: value})

    @property
    def held_frames(self) -> int:
        """Frames the engine holds for the next window's merge (`flush` publishes them)."""
        return self.engine.held_frames if self.engine is not None else 0

    # --------------------------------------------------------------------------- windows
    def process(self, win: WindowInput) -> list[OutputBatch]:
        """Run one window; the batches to publish, oldest first. InputError for a window the
        engine cannot take (cameras not in the rig, sizes the model cannot batch)."""
        out: list[OutputBatch] = []
        if self._epoch is not None and win.epoch != self._epoch:
            out.append(self.reset(f"sync_node started epoch {win.epoch} (was {self._epoch}): "
                                  "its input stamps jumped back"))
        elif self._last_stamp_ns is not None and win.stamp_ns <= self._last_stamp_ns:
            out.append(self.reset(f"window stamps went back from {self._last_stamp_ns / 1e9:.3f} s "
                                  f"to {win.stamp_ns / 1e9:.3f} s"))
        self._epoch = win.epoch
        self._last_stamp_ns = win.stamp_ns
        self._ensure_engine(win, out)
        self._check_image_sizes(win)
        self._frame_ids = self._optical_frames(win)
        self._infos = list(win.camera_infos)
        window = self.assembler.assemble(win)
        for f in window.frames:
            self._stamps[f.key] = f.item.stamp_ns
        results = self.engine.process(window)  # type: ignore[union-attr]
        batch = self._batch(results)
        batch.window = win.index
        out.append(batch)
        self.counters["frames_in"] += len(window.new_frames)
        self.counters["windows"] += 1
        self.last_window_index, self.last_stamp_ns = win.index, win.stamp_ns
        if window.set_indices:
            oldest = min(window.set_indices) - 16
            self._stamps = {k: v for k, v in self._stamps.items() if k[1] >= oldest}
        return out

    def flush(self) -> OutputBatch:
        """Publish the frames held for a next window (end of a stream, stopped cameras)."""
        if self.engine is None:
            return OutputBatch()
        return self._batch(self.engine.flush())

    def reset(self, reason: str) -> OutputBatch:
        """Start a new reconstruction: the held frames are published, then forgotten state."""
        batch = self.flush()
        if self.engine is not None:
            self.engine.reset()
        self.outputs.reset()
        self.assembler.reset()
        self._stamps.clear()
        self._epoch = None
        self._last_stamp_ns = None
        self.counters["resets"] += 1
        self.log(f"reconstruction reset #{self.counters['resets']}: {reason}")
        return batch

    # ---------------------------------------------------------------------------- status
    def state(self) -> str:
        """ok, or degraded with the reason (random weights, no metric scale yet)."""
        if "meaningless" in self.model_settings.description:
            return "degraded: random model weights, outputs are meaningless"
        engine = self.engine
        if engine is not None and engine.metric_capable and not engine.metric:
            return "degraded: no metric scale yet (rig baselines not fitted)"
        return "ok"

    def status(self, *, drops: Mapping[str, int], latency_sec: float = 0.0, fps: float = 0.0,
               model_sec: float | None = None, state: str | None = None) -> StatusRecord:
        """The ReconstructionStatus record of the latest window; ``drops``: the shell's;
        model_sec: seconds per window (default: the latest window's)."""
        engine = self.engine
        st = engine.status() if engine is not None else None
        return StatusRecord(
            stamp_ns=self.last_stamp_ns, window_index=self.last_window_index,
            latency_sec=latency_sec,
            model_sec=model_sec if model_sec is not None else
            (engine.last_window_seconds or 0.0) if engine is not None else 0.0,
            fps=fps, frames_in=self.counters["frames_in"],
            frames_out=self.counters["frames_out"], drops=dict(drops),
            pool_size=int(st["pool"]["size"]) if st else 0,
            scale=float(st["metres_per_unit"] or 1.0) if st else 1.0,
            scale_is_metric=bool(st["metric"]) if st else False,
            resets=self.counters["resets"], state=state or self.state())

    # -------------------------------------------------------------------------- internal
    def set_rig(self, rig: Any) -> None:
        """Use another rig (camera mountings from TF): the next window builds a new engine."""
        self.rig = rig
        self._engine_key = None

    def _batch(self, results: list[Any]) -> OutputBatch:
        batch = self.outputs.window(results, self._stamps, self._frame_ids, self._infos)
        for pose in batch.poses:
            self.map.add_pose(pose.stamp_ns, pose.odom_from_base)
        if self.values["map_max_points"] > 0:
            have = [r.points for r in results if r.points is not None and len(r.points)]
            if have:
                cols = [r.colors for r in results if r.points is not None and len(r.points)]
                self.map.add_cloud(self.outputs.odom.points_in_odom(np.concatenate(have)),
                                   np.concatenate(cols))
        self.counters["frames_out"] += len(results)
        for r in results:
            self._stamps.pop((r.camera_index, r.set_index), None)
        for note in batch.notes:
            self.log(note)
        return batch

    def _check_image_sizes(self, win: WindowInput) -> None:
        """Images of another size than the rig's calibration: the same aspect ratio is a
        resized stream (intrinsics rescaled, with a warning once per camera and size); another
        aspect ratio cannot be rescaled (InputError naming the camera and both sizes)."""
        rig = self.outputs.rig
        if rig is None:
            return
        for c, name in enumerate(win.camera_names):
            image = next((row[c] for row in win.images if row[c] is not None), None)
            if image is None:
                continue
            h, w = image.shape[:2]
            cam = rig.camera(name)
            if (w, h) == (cam.width, cam.height) or (name, w, h) in self._sizes_seen:
                continue
            if abs(w * cam.height - h * cam.width) > 0.01 * h * cam.width:
                raise InputError(
                    f"camera '{name}': images are {w}x{h} but the rig calibration is for "
                    f"{cam.width}x{cam.height}, another aspect ratio: its intrinsics cannot be "
                    "rescaled; use the rig calibration of these images")
            self._sizes_seen.add((name, w, h))
            self.log(f"camera '{name}': images are {w}x{h}, the rig calibration is for "
                     f"{cam.width}x{cam.height} (same aspect ratio): intrinsics rescaled")

    def _optical_frames(self, win: WindowInput) -> list[str]:
        """Per camera: the rig's optical frame, else the window's (no leading '/'), else
        <name>_optical_frame."""
        rig = self.outputs.rig
        if rig is not None:
            return [c.frame_id for c in rig.cameras]
        return [(fid or "").lstrip("/") or f"{name}_optical_frame"
                for name, fid in zip(win.camera_names, win.frame_ids)]

    def _ensure_engine(self, win: WindowInput, out: list[OutputBatch]) -> None:
        names, L = list(win.camera_names), win.num_steps
        key = (tuple(names), L, win.overlap)
        old = self._engine_key
        if self.engine is not None and old is not None and old[0] == key[0] \
                and old[2] == win.overlap and L <= old[1]:
            return  # the same windows (a last, shorter one at the end of a stream included)
        rig = None
        if self.rig is not None:
            missing = [n for n in names if n not in self.rig.camera_names]
            if missing:
                raise InputError(f"cameras {missing} of the windows are not in rig_file "
                                 f"{self.values['rig_file']} (it has {self.rig.camera_names})")
            rig = self.rig.with_cameras([self.rig.camera(n) for n in names])
        if self.engine is not None:
            out.append(self.reset(f"the windows changed to cameras {names}, L={L}, "
                                  f"O={win.overlap}"))
        config = engine_config(self.values, self.model_settings, cameras=len(names),
                               window=WindowConfig(L, min(win.overlap, L - 1)), warn=self.log)
        self.engine = StreamingReconstructor(self.model, rig, config,
                                             camera_names=None if rig is not None else names,
                                             image_of=lambda item: item.image)
        self._engine_key = key
        self.outputs.rig = rig
