"""Streaming inference: a `StreamState` per stream and `step`, one window at a time.

A window is S frames [S, 3, H, W]. `step` encodes the frames (reusing the encodings of frames
already seen in the previous window, by key), decodes them together with the recurrent state,
predicts a local point map per frame, appends the window's camera tokens to the pool and reads
the window's poses from the camera head run over the pool. The stream's first frame is the world
origin: poses are expressed relative to the first pool entry's pose (kept even if that entry is
later evicted).

The camera token pool holds one entry per frame per window. Unbounded by default (the authors'
behaviour); with `max_pool_tokens` it keeps the first window's entries (the anchor of the world
frame) and the newest entries, dropping the oldest others after each window. Callers may also
choose their own eviction with `StreamState.keep_pool(indices)`. An evicted entry is forgotten:
later windows no longer attend to it; the kept entries are not recomputed.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import torch

from wint3r_ros.errors import InputError
from wint3r_ros.model.camera_head import TrunkKVCache
from wint3r_ros.model.pose import relative_to_reference, world_from_cam_matrix
from wint3r_ros.model.runtime import autocast

# `model` below is a wint3r_ros.model.network.WinT3R (not imported: network imports this module)
Network = torch.nn.Module

__all__ = ["StreamState", "WindowOutput", "EncoderCache", "step", "check_images"]


@dataclass
class WindowOutput:
    """What one window gives, per frame of the window (S frames, H x W pixels).

    pts_local [S, H, W, 3]: points in each camera's frame (depth = pts_local[..., 2]);
    conf [S, H, W]: confidence as the model returns it (1 + exp(logit), >= 1);
    pose_enc [S, 7]: [tx, ty, tz, qx, qy, qz, qw] camera-to-world relative to the stream's first
    frame, last refinement iteration; cam_to_world [S, 4, 4] float32 from it;
    pose_enc_iters [iterations, S, 7] every iteration (relative), raw_pose_enc_iters the same
    before the change of reference (as the camera head outputs them);
    window_index: 0 for the stream's first window; keys: the frame keys passed in (or None).
    """

    pts_local: torch.Tensor
    conf: torch.Tensor
    pose_enc: torch.Tensor
    cam_to_world: torch.Tensor
    pose_enc_iters: torch.Tensor
    raw_pose_enc_iters: torch.Tensor
    window_index: int
    keys: list | None = None


class EncoderCache:
    """Decoder-width encodings of the frames of the last window, by frame key.

    Holds at most one window of frames: after each window only that window's keys are kept, so a
    frame is freed as soon as a window without it has been processed.
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, torch.Tensor] = {}
        self._grid: tuple[int, int] | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def lookup(self, key: Hashable, grid: tuple[int, int]) -> torch.Tensor | None:
        """Cached [P, C] tokens for `key` at this patch grid, else None."""
        if grid != self._grid:
            return None
        return self._items.get(key)

    def replace(self, items: dict[Hashable, torch.Tensor], grid: tuple[int, int]) -> None:
        """Keep exactly `items` (this window's frames) from now on."""
        self._items = items
        self._grid = grid

    def clear(self) -> None:
        self._items = {}
        self._grid = None

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._items.values())


@dataclass
class StreamState:
    """Everything one stream carries from window to window.

    state: recurrent state tokens [1, Ns, C] (None before the first window); the camera token
    pool (tokens, window index and frame key per entry) with its key/value cache; the reference
    (first) entry's raw poses; the encoder cache.
    """

    kv: TrunkKVCache
    max_pool_tokens: int | None = None
    window_size: int = 4
    state: torch.Tensor | None = None
    windows_done: int = 0
    finished: bool = False
    frames_seen: int = 0
    reference_pose_iters: torch.Tensor | None = None  # [iterations, 1, 7]
    encoder_cache: EncoderCache = field(default_factory=EncoderCache)
    _pool: torch.Tensor | None = None  # [capacity, 2C], first `pool_size()` rows in use
    _pool_windows: list[int] = field(default_factory=list)
    _pool_keys: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_pool_tokens is not None and self.max_pool_tokens < 2 * self.window_size:
            raise InputError(f"max_pool_tokens={self.max_pool_tokens} is too small: it must hold "
                             f"the first window and the newest one (>= {2 * self.window_size})")

    # ------------------------------------------------------------------------- pool access
    def pool_size(self) -> int:
        """Number of entries in the camera token pool (one per frame per window)."""
        return len(self._pool_windows)

    def pool_tokens(self) -> torch.Tensor:
        """[P, 2C] the pool's camera tokens, oldest first (a view; do not modify)."""
        if self._pool is None:
            return torch.zeros(0, 0)
        return self._pool[: self.pool_size()]

    def pool_windows(self) -> list[int]:
        """Window index of each pool entry (0 = the stream's first window)."""
        return list(self._pool_windows)

    def pool_keys(self) -> list:
        """Frame key of each pool entry (None where no keys were given)."""
        return list(self._pool_keys)

    @torch.inference_mode()
    def keep_pool(self, indices: Sequence[int]) -> None:
        """Keep only the pool entries at `indices` (positions into the current pool, any order
        is sorted oldest first). Later windows no longer attend to the others."""
        size = self.pool_size()
        idx = sorted(set(int(i) for i in indices))
        if idx and (idx[0] < 0 or idx[-1] >= size):
            raise InputError(f"keep_pool: indices must lie in [0, {size}), got {list(indices)[:8]}")
        index = torch.tensor(idx, dtype=torch.long)
        if self._pool is not None:
            kept = self._pool[: size].index_select(0, index.to(self._pool.device))
            self._pool[: len(idx)] = kept  # compact in place: capacity is kept
        self._pool_windows = [self._pool_windows[i] for i in idx]
        self._pool_keys = [self._pool_keys[i] for i in idx]
        self.kv.keep(index)

    def nbytes(self) -> int:
        """Bytes held by this stream's tensors (state, pool, key/value and encoder caches)."""
        total = self.kv.nbytes() + self.encoder_cache.nbytes()
        for t in (self.state, self._pool):
            if t is not None:
                total += t.numel() * t.element_size()
        return total

    # ---------------------------------------------------------------------------- internal
    def _append_pool(self, tokens: torch.Tensor, window: int, keys: list) -> None:
        n, s = self.pool_size(), tokens.shape[0]
        if self._pool is None or self._pool.shape[0] < n + s:
            capacity = max(n + s, 2 * n, 8)
            fresh = tokens.new_zeros(capacity, tokens.shape[1])
            if self._pool is not None and n:
                fresh[:n] = self._pool[:n]
            self._pool = fresh
        self._pool[n:n + s] = tokens
        self._pool_windows.extend([window] * s)
        self._pool_keys.extend(keys)

    def _anchor_size(self) -> int:
        """Entries of the stream's first window still in the pool (kept by the built-in bound)."""
        return sum(1 for w in self._pool_windows if w == 0)

    def _check_bound(self, frames: int) -> None:
        bound = self.max_pool_tokens
        if bound is not None and self._anchor_size() + frames > bound:
            raise InputError(f"max_pool_tokens={bound} cannot hold the first window's "
                             f"{self._anchor_size()} entries and this window's {frames}")

    def _evict_to_bound(self) -> None:
        bound = self.max_pool_tokens
        size = self.pool_size()
        if bound is None or size <= bound:
            return
        anchor = [i for i, w in enumerate(self._pool_windows) if w == 0]
        newest = list(range(max(len(anchor), size - (bound - len(anchor))), size))
        self.keep_pool(anchor + newest)


def check_images(images: torch.Tensor, patch_size: int = 16, where: str = "images") -> None:
    """Raise InputError unless images is a float [S, 3, H, W] with H, W multiples of the patch."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"{where}: expected a torch.Tensor [S, 3, H, W], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise InputError(f"{where}: expected shape [S>=1, 3, H, W], got {list(images.shape)}")
    h, w = images.shape[-2:]
    if h % patch_size or w % patch_size or h == 0 or w == 0:
        raise InputError(f"{where}: H and W must be positive multiples of {patch_size}, got {h}x{w}")
    if not images.is_floating_point():
        raise InputError(f"{where}: expected ImageNet-normalised floats, got dtype {images.dtype}")


def _embed_with_cache(model: Network, state: StreamState, images: torch.Tensor,
                      keys: Sequence[Hashable] | None) -> torch.Tensor:
    """[S, P, C] decoder-width tokens; frames whose key is cached are not encoded again."""
    grid = (images.shape[-2] // model.config.patch_size, images.shape[-1] // model.config.patch_size)
    if keys is None:
        state.encoder_cache.clear()
        return model.embed_frames(images)
    cache = state.encoder_cache
    found: dict[Hashable, torch.Tensor] = {}
    todo: list[int] = []  # positions of the first occurrence of each uncached key
    for i, key in enumerate(keys):
        if key in found or any(keys[j] == key for j in todo):
            continue
        hit = cache.lookup(key, grid)
        if hit is not None:
            found[key] = hit
            cache.hits += 1
        else:
            todo.append(i)
            cache.misses += 1
    if todo:
        fresh = model.embed_frames(images[todo])
        for row, i in enumerate(todo):
            found[keys[i]] = fresh[row]
    frames = torch.stack([found[k] for k in keys])  # (S, P, C): the window's one copy
    # the cache keeps views of this window's tensor only: one window of frames, no extra copy
    cache.replace({k: frames[keys.index(k)] for k in found}, grid)
    return frames


@torch.inference_mode()
def step(model: Network, state: StreamState, images: torch.Tensor,
         keys: Sequence[Hashable] | None = None, last: bool = False) -> WindowOutput:
    """Process one window of a stream.

    images: [S, 3, H, W] ImageNet-normalised, S >= 1, H and W multiples of 16, on the model's
    device (moved there otherwise). keys: one hashable per frame identifying it across windows
    (e.g. (camera, stamp)); frames whose key was in the previous window reuse its encoding.
    last=True: the stream ends here; work only a next window would use is skipped and the
    state can take no further window. Returns a WindowOutput for the S frames (inference
    tensors: clone before modifying them in place outside inference mode); updates `state`.
    """
    if state.finished:
        raise InputError("step: this stream was ended with last=True; start a new_stream()")
    device = next(model.parameters()).device
    check_images(images, model.config.patch_size)
    if keys is not None:
        keys = list(keys)
        if len(keys) != images.shape[0]:
            raise InputError(f"keys: {len(keys)} keys for {images.shape[0]} frames")
    images = images.to(device=device, dtype=torch.float32)
    s = images.shape[0]
    state._check_bound(s)
    grid = (images.shape[-2] // model.config.patch_size, images.shape[-1] // model.config.patch_size)
    with autocast(device, model.precision):
        frames = _embed_with_cache(model, state, images, keys)
        if state.state is None:
            state.state = model.init_state(device).float()
        window = model.decode_window(state.state, frames, grid, need_state=not last)
        pts_local, conf = model.point_maps(window, grid)
        with autocast(device, "fp32"):
            cam = model.camera_tokens(window)  # (S, 2C)
            raw = torch.stack(model.cam_head.forward_new(cam[None], state.kv))[:, 0]  # (I, S, 7)
    state.state = window.state
    state.finished = last
    index = state.windows_done
    state._append_pool(cam, index, keys if keys is not None else [None] * s)
    if state.reference_pose_iters is None:
        state.reference_pose_iters = raw[:, :1].clone()
    rel = relative_to_reference(raw, state.reference_pose_iters)
    state.windows_done += 1
    state.frames_seen += s
    state._evict_to_bound()
    return WindowOutput(
        pts_local=pts_local, conf=conf, pose_enc=rel[-1],
        cam_to_world=world_from_cam_matrix(rel[-1].float()), pose_enc_iters=rel,
        raw_pose_enc_iters=raw, window_index=index, keys=keys)
