"""Simulated online windows from the synthetic rig, split by scene seed, renders cached on disk.

A scene (one seed of `data.synthetic`) is rendered once per rig configuration: F synchronised
sets of N cameras (RGB, exact z-depth, exact camera-to-world poses) saved as one .npz under
`cache_dir`, so later epochs only read files. A training sample is a clip: `windows_per_clip`
consecutive online windows starting at a set that is a multiple of the window stride, formed by
`core.window.WindowBuilder` exactly as the online engine forms them (L sets x N cameras,
time-major, each window repeating the last O sets of the previous one).

The fixed split (by scene seed, never mixed):
    train  seeds    0 ..  199
    val    seeds 1000 .. 1019
    test   seeds 2000 .. 2019

Rigs: `rig_family: fixed` renders every scene with the one rig of the config (num_cameras on the
demo layout); `rig_family: random` draws each scene's rig from `data.synthetic.RigFamily` by its
seed (1 to 4 cameras, baselines, yaw spreads, stereo pairs, the demo rig as one member); test
seeds also draw rigs from a band of yaw spreads that train and val never use.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wint3r_ros.core.window import WindowBuilder, WindowConfig
from wint3r_ros.errors import ConfigError, InputError, reject_unknown_fields
from wint3r_ros.model.pose import pose_enc_from_world_from_cam
from wint3r_ros.model.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess

__all__ = ["SPLITS", "DATA_KINDS", "split_seeds", "DataConfig", "SceneData", "SceneCache", "Clip",
           "clip_windows", "ClipDataset", "epoch_order", "parse_data_spec"]

# split name -> (first seed, number of seeds); documented in docs/EVALUATION.md
SPLITS: dict[str, tuple[int, int]] = {"train": (0, 200), "val": (1000, 20), "test": (2000, 20)}
_RENDER_VERSION = 1  # bump when the renderer's output for a seed changes
_FAMILY_VERSION = 1  # bump when data.synthetic.RigFamily draws other rigs


def split_seeds(split: str, count: int | None = None) -> list[int]:
    """The scene seeds of `split` (train / val / test), the first `count` of them if given."""
    if split not in SPLITS:
        raise ConfigError(f"unknown data split {split!r}; expected one of {sorted(SPLITS)}")
    first, size = SPLITS[split]
    if count is not None:
        if count < 1 or count > size:
            raise ConfigError(f"split {split!r} has {size} scenes; asked for {count}")
        size = count
    return list(range(first, first + size))


# --data kinds -> the rig family they render with
DATA_KINDS: dict[str, str] = {"synthetic": "fixed", "synthetic-rig": "random"}
RIG_FAMILIES = ("fixed", "random")


def parse_data_spec(spec: str) -> tuple[str, str]:
    """'synthetic:test' -> ('synthetic', 'test'), 'synthetic-rig:test' -> ('synthetic-rig',
    'test'); anything else is a ConfigError."""
    kind, _, split = spec.partition(":")
    if kind not in DATA_KINDS or split not in SPLITS:
        raise ConfigError(f"--data {spec!r}: expected <kind>:<split> with kind one of "
                          f"{sorted(DATA_KINDS)} and split one of {sorted(SPLITS)}")
    return kind, split


def held_out_seed(seed: int) -> bool:
    """True for the test split's seeds (their rigs may use the held-out geometry band)."""
    first, size = SPLITS["test"]
    return first <= seed < first + size


@dataclass(frozen=True)
class DataConfig:
    """The simulated rig and the online windows cut from it.

    num_cameras, width, height, fov_deg, rate_hz, speed: the synthetic rig (data.synthetic);
    frames_per_scene: synchronised sets rendered per scene; window_size L, window_overlap O:
    as the online engine (sync_node window_length / window_overlap); windows_per_clip: windows
    per training sample; input_long_side: the model input's long side (preprocess);
    train_scenes / val_scenes: how many seeds of those splits to use; cache_dir: renders;
    rig_family: fixed (num_cameras on the demo layout) or random (a rig per scene seed, up to
    max_cameras cameras, `data.synthetic.RigFamily`).
    """

    num_cameras: int = 1
    width: int = 128
    height: int = 96
    fov_deg: float = 80.0
    rate_hz: float = 10.0
    speed: float = 0.5
    frames_per_scene: int = 24
    window_size: int = 4
    window_overlap: int = 2
    windows_per_clip: int = 2
    input_long_side: int = 128
    train_scenes: int = 200
    val_scenes: int = 4
    cache_dir: str = "~/.cache/wint3r_ros/synthetic"
    rig_family: str = "fixed"
    max_cameras: int = 4

    def __post_init__(self) -> None:
        WindowConfig(self.window_size, self.window_overlap)  # validates L and O
        if self.rig_family not in RIG_FAMILIES:
            raise ConfigError(f"data.rig_family={self.rig_family!r}: expected one of {RIG_FAMILIES}")
        if not 1 <= self.max_cameras <= 8:
            raise ConfigError(f"data.max_cameras={self.max_cameras} must be in 1..8")
        if self.windows_per_clip < 1:
            raise ConfigError(f"data.windows_per_clip={self.windows_per_clip} must be >= 1")
        if self.clip_sets > self.frames_per_scene:
            raise ConfigError(f"data.frames_per_scene={self.frames_per_scene} is shorter than a "
                              f"clip ({self.clip_sets} sets)")
        if self.input_long_side % 16 or self.input_long_side < 16:
            raise ConfigError(f"data.input_long_side={self.input_long_side} must be a positive "
                              "multiple of 16")

    @property
    def stride(self) -> int:
        return self.window_size - self.window_overlap

    @property
    def clip_sets(self) -> int:
        """Synchronised sets in one clip."""
        return self.window_size + (self.windows_per_clip - 1) * self.stride

    def rig_config(self, seed: int | None = None) -> Any:
        """The synthetic rig of scene `seed` (the same for every seed with the fixed family)."""
        from wint3r_ros.data.synthetic import RigConfig, RigFamily

        base = RigConfig(num_cameras=self.num_cameras, width=self.width, height=self.height,
                         fov_deg=self.fov_deg, rate_hz=self.rate_hz, speed=self.speed)
        if self.rig_family == "fixed":
            return base
        if seed is None:
            raise ConfigError("data.rig_family=random draws a rig per scene: a seed is needed")
        return RigFamily(max_cameras=self.max_cameras).member(int(seed), base,
                                                              held_out=held_out_seed(int(seed)))

    def render_key(self) -> str:
        """Short hash of everything that changes the renders (not the windowing)."""
        fields: dict[str, Any] = {k: getattr(self, k) for k in (
            "num_cameras", "width", "height", "fov_deg", "rate_hz", "speed", "frames_per_scene")}
        if self.rig_family != "fixed":  # (fixed-rig keys stay those of earlier caches)
            fields.update(rig_family=self.rig_family, max_cameras=self.max_cameras,
                          family_version=_FAMILY_VERSION)
        fields["version"] = _RENDER_VERSION
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataConfig:
        reject_unknown_fields(cls, data, "data")
        return cls(**dict(data))


@dataclass
class SceneData:
    """One rendered scene: images [F, N, H, W, 3] uint8, depth [F, N, H, W] float32 (metres),
    world_from_cam [F, N, 4, 4] float64, K [N, 3, 3] float64, camera_names (N)."""

    seed: int
    images: np.ndarray
    depth: np.ndarray
    world_from_cam: np.ndarray
    K: np.ndarray
    camera_names: list[str]


class SceneCache:
    """Renders scenes of a DataConfig once and keeps them as .npz files under its cache_dir."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        self.root = Path(config.cache_dir).expanduser() / f"rig-{config.render_key()}"

    def path(self, seed: int) -> Path:
        return self.root / f"seed_{seed:05d}.npz"

    def render(self, seed: int) -> SceneData:
        """Render scene `seed` (no cache)."""
        from wint3r_ros.data.synthetic import SceneConfig, SyntheticRig

        rig = SyntheticRig(SceneConfig(seed=int(seed)), self.config.rig_config(seed))
        images, depth, poses = [], [], []
        for frames in rig.frames(self.config.frames_per_scene):
            images.append(np.stack([f.image for f in frames]))
            depth.append(np.stack([f.depth for f in frames]))
            poses.append(np.stack([f.T_world_cam for f in frames]))
        return SceneData(int(seed), np.stack(images), np.stack(depth), np.stack(poses),
                         np.stack([c.K for c in rig.rig.cameras]),
                         [c.name for c in rig.rig.cameras])

    def load(self, seed: int) -> SceneData:
        """Scene `seed` from the cache, rendered and stored first if missing."""
        path = self.path(seed)
        if path.exists():
            try:
                with np.load(path) as z:
                    return SceneData(int(seed), z["images"], z["depth"], z["world_from_cam"],
                                     z["K"], [str(n) for n in z["camera_names"]])
            except (OSError, KeyError, ValueError):
                path.unlink(missing_ok=True)  # a damaged cache file is rendered again
        scene = self.render(seed)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".partial.npz")
        np.savez(tmp, images=scene.images, depth=scene.depth, world_from_cam=scene.world_from_cam,
                 K=scene.K, camera_names=np.array(scene.camera_names))
        tmp.replace(path)
        return scene

    def prepare(self, seeds: list[int]) -> None:
        """Make sure every seed is cached (renders the missing ones)."""
        for seed in seeds:
            if not self.path(seed).exists():
                self.load(seed)


def clip_windows(num_sets: int, num_cameras: int, window: WindowConfig) -> list[list[int]]:
    """The online windows over `num_sets` sets of N cameras, as indices of the frames ordered
    set by set (frame index = set * N + camera). Built by the engine's own WindowBuilder."""
    builder = WindowBuilder([f"cam{i}" for i in range(num_cameras)], window)
    out = []
    for s in range(num_sets):
        w = builder.push([(s, c) for c in range(num_cameras)], stamps=[float(s)] * num_cameras,
                         set_index=s)
        if w is not None:
            out.append([item[0] * num_cameras + item[1] for item in w.items])
    return out


@dataclass
class Clip:
    """One training sample: F = sets x N frames (set-major) and their windows.

    images [F, 3, H, W] ImageNet-normalised; rgb [F, 3, H, W] in [0, 1]; gt_points
    [F, H, W, 3] local points (metres); gt_pose [F, 7] camera-to-world relative to frame 0;
    depth [F, H, W]; K [F, 3, 3] model-input intrinsics; camera [F], step [F] (set within
    the clip); windows: frame indices per window; seed, start: where it came from.
    """

    images: torch.Tensor
    rgb: torch.Tensor
    gt_points: torch.Tensor
    gt_pose: torch.Tensor
    depth: torch.Tensor
    K: torch.Tensor
    camera: torch.Tensor
    step: torch.Tensor
    windows: list[list[int]]
    seed: int
    start: int

    def to(self, device: torch.device | str) -> Clip:
        return dataclasses.replace(self, **{f.name: getattr(self, f.name).to(device)
                                            for f in dataclasses.fields(self)
                                            if isinstance(getattr(self, f.name), torch.Tensor)})


def _depth_to_model(depth: np.ndarray, mapping: Any) -> np.ndarray:
    """Depth [N, H, W] on the source pixels -> [N, Hc, Wc] on the model's crop (nearest)."""
    wc, hc = mapping.output_size
    x, _ = mapping.crop_to_source(np.arange(wc), 0)
    _, y = mapping.crop_to_source(0, np.arange(hc))
    h, w = depth.shape[-2:]
    cols = np.clip(np.rint(x).astype(np.int64), 0, w - 1)
    rows = np.clip(np.rint(y).astype(np.int64), 0, h - 1)
    return depth[..., rows[:, None], cols[None, :]]


def scene_to_model(scene: SceneData, sets: slice, long_side: int
                   ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Sets of a scene as model input: (images [F, 3, Hc, Wc] normalised, rgb [F, 3, Hc, Wc],
    depth [F, Hc, Wc], K [F, 3, 3] for the crop), F = sets x N set-major."""
    imgs = scene.images[sets]  # (T, N, H, W, 3)
    t, n = imgs.shape[:2]
    x, mapping = preprocess(imgs.reshape(t * n, *imgs.shape[2:]), long_side, normalize=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    depth = _depth_to_model(scene.depth[sets].reshape(t * n, *scene.depth.shape[2:]), mapping)
    k = np.stack([mapping.intrinsics_for_model(scene.K[c]) for c in range(n)])
    return (x - mean) / std, x, depth, np.tile(k, (t, 1, 1))


def _points(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """depth [F, H, W], K [F, 3, 3] -> local points [F, H, W, 3] (cam_from_img)."""
    f, h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    pix = np.stack((u, v, np.ones_like(u)), -1)  # (H, W, 3)
    rays = np.einsum("fij,hwj->fhwi", np.linalg.inv(k), pix)
    return rays * depth[..., None]


class ClipDataset:
    """The clips of a split: for each seed, every start set that is a multiple of the window
    stride and leaves room for a whole clip. Deterministic; `order(epoch)` shuffles by seed.

    `clip(i, max_cameras)` keeps only the first cameras of the scene's rig (the curriculum from
    1 to N cameras); the windows are those WindowBuilder makes for that many cameras.
    """

    def __init__(self, config: DataConfig, seeds: list[int], cache: SceneCache | None = None) -> None:
        self.config = config
        self.seeds = list(seeds)
        self.cache = cache or SceneCache(config)
        self.window = WindowConfig(config.window_size, config.window_overlap)
        self._windows: dict[int, list[list[int]]] = {}
        last = config.frames_per_scene - config.clip_sets
        self.index = [(seed, start) for seed in self.seeds
                      for start in range(0, last + 1, config.stride)]
        self._scene: SceneData | None = None

    def __len__(self) -> int:
        return len(self.index)

    def windows(self, num_cameras: int) -> list[list[int]]:
        """The windows of a clip of `num_cameras` cameras (frame indices, set-major)."""
        if num_cameras not in self._windows:
            self._windows[num_cameras] = clip_windows(self.config.clip_sets, num_cameras,
                                                      self.window)
        return self._windows[num_cameras]

    def _load(self, seed: int) -> SceneData:
        if self._scene is None or self._scene.seed != seed:
            self._scene = self.cache.load(seed)
        return self._scene

    def __getitem__(self, i: int) -> Clip:
        return self.clip(i)

    def clip(self, i: int, max_cameras: int | None = None) -> Clip:
        """Clip `i` with at most `max_cameras` cameras (all of the scene's rig when None)."""
        if not 0 <= i < len(self.index):
            raise InputError(f"clip {i} out of range (dataset of {len(self.index)})")
        seed, start = self.index[i]
        scene = self._load(seed)
        n = scene.images.shape[1] if max_cameras is None else min(max_cameras, scene.images.shape[1])
        if n < scene.images.shape[1]:
            scene = dataclasses.replace(scene, images=scene.images[:, :n], depth=scene.depth[:, :n],
                                        world_from_cam=scene.world_from_cam[:, :n], K=scene.K[:n],
                                        camera_names=scene.camera_names[:n])
        cfg = self.config
        sets = slice(start, start + cfg.clip_sets)
        images, rgb, depth, k = scene_to_model(scene, sets, cfg.input_long_side)
        poses = scene.world_from_cam[sets].reshape(-1, 4, 4)  # (F, 4, 4) set-major
        rel = np.linalg.inv(poses[0]) @ poses
        f = poses.shape[0]
        return Clip(
            images=images.float(), rgb=rgb.float(),
            gt_points=torch.from_numpy(_points(depth.astype(np.float64), k)).float(),
            gt_pose=pose_enc_from_world_from_cam(torch.from_numpy(rel)).float(),
            depth=torch.from_numpy(np.ascontiguousarray(depth)).float(),
            K=torch.from_numpy(k).float(),
            camera=torch.arange(f) % n, step=torch.arange(f) // n,
            windows=[list(w) for w in self.windows(n)], seed=seed, start=start)


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The sample order of an epoch: a permutation fixed by (seed, epoch)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0x7EA1]))
    return [int(i) for i in rng.permutation(size)]
