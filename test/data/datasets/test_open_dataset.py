"""The KIND:PATH spec of every reader."""
from __future__ import annotations

import pytest

from wint3r_ros.data.datasets import DATASETS, parse_dataset_spec
from wint3r_ros.errors import ConfigError


def test_dataset_spec_names_the_known_kinds_when_wrong():
    assert parse_dataset_spec("kitti-depth:/data/x")[0] == "kitti-depth"
    for bad in ("tum", "tum:", "eth3d:/x"):
        with pytest.raises(ConfigError, match="one of tum, bonn, 7scenes, scannet, kitti, kitti-depth"):
            parse_dataset_spec(bad)
    assert set(DATASETS) == {"tum", "bonn", "7scenes", "scannet", "kitti", "kitti-depth"}
