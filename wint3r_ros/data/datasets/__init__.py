"""Readers of published datasets in their own on-disk formats, behind one interface.

``open_dataset("tum:PATH")`` -> a list of `DatasetSequence` (see `base`): TUM RGB-D, Bonn RGB-D
Dynamic, 7-Scenes, ScanNet (exported), KITTI odometry and KITTI depth. PATH is one sequence or
a folder of them. Each reader is a module of this package with one ``open_*(path)`` function.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from wint3r_ros.data.datasets.base import DatasetSequence, FrameSet
from wint3r_ros.errors import ConfigError

__all__ = ["DATASETS", "DatasetSequence", "FrameSet", "parse_dataset_spec", "open_dataset"]

# kind -> (module, function, what PATH is)
DATASETS: dict[str, tuple[str, str, str]] = {
    "tum": ("tum", "open_tum",
            "a TUM RGB-D sequence folder (rgb.txt, depth.txt, groundtruth.txt) or a folder of them"),
    "bonn": ("tum", "open_bonn", "a Bonn RGB-D Dynamic sequence folder (TUM layout) or a folder of them"),
    "7scenes": ("seven_scenes", "open_seven_scenes", "a 7-Scenes seq-NN folder, a scene folder or the root"),
    "scannet": ("scannet", "open_scannet",
                "an exported ScanNet scene (color/ depth/ pose/ intrinsic/) or a folder of them"),
    "kitti": ("kitti", "open_kitti_odometry", "a KITTI odometry sequences/NN folder, sequences/ or dataset/"),
    "kitti-depth": ("kitti", "open_kitti_depth", "KITTI depth_selection/val_selection_cropped"),
}


def parse_dataset_spec(spec: str) -> tuple[str, Path]:
    """``KIND:PATH`` -> (kind, path); an unknown kind or an empty path is a ConfigError."""
    kind, sep, path = str(spec).partition(":")
    if not sep or kind not in DATASETS or not path:
        raise ConfigError(f"dataset {spec!r}: expected KIND:PATH with KIND one of "
                          f"{', '.join(DATASETS)}")
    return kind, Path(path).expanduser()


def open_dataset(spec: str) -> list[DatasetSequence]:
    """Every sequence of ``KIND:PATH``, sorted by folder."""
    kind, path = parse_dataset_spec(spec)
    module, function, _ = DATASETS[kind]
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)(path)
