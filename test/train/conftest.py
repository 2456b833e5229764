"""Small, fast settings shared by the training tests: a 64x48 model input, few scenes."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from wint3r_ros.train.dataset import DataConfig
from wint3r_ros.train.trainer import TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def small_data(tmp_path) -> DataConfig:
    """2 cameras, 6 sets per scene, windows of 2 sets overlapping by 1, 64x48 model input."""
    return DataConfig(num_cameras=2, width=64, height=48, frames_per_scene=6, window_size=2,
                      window_overlap=1, windows_per_clip=2, input_long_side=64, train_scenes=2,
                      val_scenes=1, cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def small_train(small_data) -> TrainConfig:
    return dataclasses.replace(TrainConfig(), steps=4, threads=1, device="cpu", log_every=1,
                               val_every=0, checkpoint_every=2, val_frames=4, data=small_data)
