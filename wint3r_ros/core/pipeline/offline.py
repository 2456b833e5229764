"""Both halves in one process, for process-bag: images -> front end -> windows -> fusion stage.

`Pipeline.add(camera, stamp_ns, image)` feeds one decoded RGB image and returns the output
batches it completes; `Pipeline.finish()` ends the stream (the sync policy's last sets, the
epoch's last window, the frames held for the merge). The windows go to the fusion stage as the
same `WindowInput` fusion_node decodes from a WindowBatch (header stamp = the newest image of the
window's last step), so the live graph and process-bag differ only in transport.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wint3r_ros.core.pipeline.frontend import EpochWindow, SyncFrontEnd
from wint3r_ros.core.pipeline.fusion import FusionStage
from wint3r_ros.core.pipeline.records import CameraInfoRecord, OutputBatch, WindowInput

__all__ = ["Pipeline", "window_input"]


def window_input(ew: EpochWindow, overlap: int, frame_ids: Sequence[str],
                 camera_infos: Sequence[CameraInfoRecord | None] = ()) -> WindowInput:
    """The WindowInput of a front-end window whose items are (stamp_ns, RGB image) pairs."""
    window = ew.window
    n, L = len(window.camera_names), window.num_steps
    stamps: list[list[int | None]] = [[None] * n for _ in range(L)]
    images: list[list[Any]] = [[None] * n for _ in range(L)]
    for f in window.frames:
        stamps[f.step][f.camera_index], images[f.step][f.camera_index] = f.item
    newest = max(s for s in stamps[-1] if s is not None)
    infos = list(camera_infos) or [None] * n
    return WindowInput(ew.index, ew.epoch, overlap, list(window.camera_names), list(frame_ids),
                       stamps, images, infos, newest)


class Pipeline:
    """front: the `SyncFrontEnd` (its cameras in rig order); fusion: the `FusionStage`;
    frame_ids: optical frame per camera; camera_infos: per camera, sent with every window as
    sync_node sends the latest camera_info (None: none; without a rig they are the output's
    intrinsics)."""

    def __init__(self, front: SyncFrontEnd, fusion: FusionStage, frame_ids: Sequence[str]) -> None:
        self.front = front
        self.fusion = fusion
        self.frame_ids = list(frame_ids)
        self.camera_infos: list[CameraInfoRecord | None] = [None] * len(self.frame_ids)
        self.windows = 0

    @property
    def epoch(self) -> int:
        return self.front.epoch

    def add(self, camera: int, stamp_ns: int, image: Any) -> list[OutputBatch]:
        """Feed one image (RGB [H, W, 3] uint8) of camera index ``camera``."""
        return self._run(self.front.add(camera, stamp_ns, (int(stamp_ns), image)))

    def finish(self, drain: bool = True) -> list[OutputBatch]:
        """End of the stream: the last sets (``drain``: every set still possible) and windows,
        then every held frame."""
        out = self._run(self.front.flush(drain))
        out.append(self.fusion.flush())
        return out

    def _run(self, windows: list[EpochWindow]) -> list[OutputBatch]:
        out: list[OutputBatch] = []
        overlap = self.front.settings.window.overlap
        for ew in windows:
            self.windows += 1
            out += self.fusion.process(window_input(ew, overlap, self.frame_ids,
                                                    self.camera_infos))
        return out
