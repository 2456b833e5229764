"""The training forward pass computes what the online `model.step` computes, window by window."""
from __future__ import annotations

import torch

from wint3r_ros.model.config import WinT3RConfig
from wint3r_ros.model.network import WinT3R
from wint3r_ros.train.dataset import ClipDataset
from wint3r_ros.train.forward import forward_clip


def test_forward_clip_matches_streaming_steps(small_data):
    clip = ClipDataset(small_data, [1])[0]
    model = WinT3R(WinT3RConfig.tiny()).init_weights(0).eval()
    with torch.no_grad():
        out = forward_clip(model, clip.images, clip.windows)
    state = model.new_stream()
    row = 0
    for i, window in enumerate(clip.windows):
        step = model.step(state, clip.images[window], keys=window, last=i == len(clip.windows) - 1)
        n = len(window)
        assert torch.allclose(step.pts_local, out.pts_local[row:row + n], atol=1e-5)
        assert torch.allclose(step.conf, out.conf[row:row + n], atol=1e-5)
        assert torch.allclose(step.pose_enc_iters, out.pose_iters[:, row:row + n], atol=1e-4)
        row += n
    assert out.frame_index.tolist() == [0, 1, 2, 3, 2, 3, 4, 5]
    assert out.window_index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
