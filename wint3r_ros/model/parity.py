"""Parity check against numbers produced by the authors' code.

    python -m wint3r_ros.model.parity FIXTURE.pt

A fixture (see ../shared/wint3r/README.md) holds the authors' constructor arguments, random
weights under their parameter names, normalised images and their outputs. We build our model
from the config, load the weights strictly, run the fixture's mode and print one JSON line of
max absolute errors. Exit code 0 when every error is <= 1e-3 (the aim is 1e-4), else 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from wint3r_ros.errors import CheckpointError, Wint3rError

__all__ = ["run_fixture", "main", "TOLERANCE"]

TOLERANCE = 1e-3


def run_fixture(path: str | Path) -> dict[str, Any]:
    """Errors of our model on the fixture at `path`: {name: max abs error, ...}."""
    from wint3r_ros.model.checkpoint import load_state_dict_into
    from wint3r_ros.model.config import WinT3RConfig
    from wint3r_ros.model.network import WinT3R

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"parity fixture {path} not found")
    try:
        fx = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure is a bad fixture
        raise CheckpointError(f"parity fixture {path}: cannot be read safely ({err})") from err
    config = WinT3RConfig.from_authors_kwargs(fx["config"])
    model = WinT3R(config)
    load_state_dict_into(model, fx["state_dict"], source=str(path))
    model.eval()
    images = fx["images"].float()
    mode = fx.get("mode", "online")
    if mode == "online":
        out = model.online_inference(images)
    elif mode == "offline":
        out = model.offline_inference(images)
    else:
        raise CheckpointError(f"parity fixture {path}: unknown mode {mode!r}")

    def err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
        theirs = theirs.reshape(ours.shape).to(ours.dtype)
        return float((ours - theirs).abs().max())

    errors = {
        "pts_local": err(out.pts_local, fx["pts_local"][0]),
        "conf": err(out.conf, fx["conf"][0]),
        "pose_enc": err(out.pose_enc, fx["pose_enc_iters"][-1, 0]),
        "pose_enc_iters": err(out.pose_enc_iters, fx["pose_enc_iters"][:, 0]),
        "extrinsics_cam_to_world": err(out.cam_to_world[:, :3, :], fx["extrinsics_cam_to_world"][0]),
        "pts3d_world": err(out.pts3d_world, fx["pts3d_world"][0]),
    }
    return {"fixture": str(path), "mode": mode, "frames": int(images.shape[0]),
            "max_abs_error": errors, "max": max(errors.values()),
            "ok": max(errors.values()) <= TOLERANCE}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wint3r_ros.model.parity",
                                     description="compare our WinT3R with the authors' numbers")
    parser.add_argument("fixture", help="a parity fixture .pt (see ../shared/wint3r/README.md)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    try:
        result = run_fixture(args.fixture)
    except Wint3rError as error:
        print(json.dumps({"fixture": args.fixture, "error": str(error)}))
        return 1
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
