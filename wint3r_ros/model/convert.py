"""`wint3r-ros convert-checkpoint IN OUT`: any accepted checkpoint -> safetensors with its config.

Convert the published `pytorch_model.bin` once; afterwards loading is a memory map with no
unpickling, and the file names its own architecture.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from wint3r_ros.errors import ConfigError
from wint3r_ros.model.config import WinT3RConfig

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="checkpoint to read (.bin, .pth, .pt, .safetensors)")
    parser.add_argument("output", type=Path, help="safetensors file to write")
    parser.add_argument("--preset", choices=("official", "tiny"), default=None,
                        help="architecture of a file that stores no config (default: official)")
    parser.add_argument("--config", type=Path, default=None,
                        help="JSON file with a WinT3RConfig (instead of --preset)")


def run(args: argparse.Namespace) -> int:
    from wint3r_ros.model.checkpoint import convert_checkpoint

    config = None
    if args.config is not None:
        try:
            config = WinT3RConfig.from_dict(json.loads(args.config.read_text()))
        except (OSError, ValueError) as err:
            raise ConfigError(f"--config {args.config}: {err}") from err
    elif args.preset is not None:
        config = WinT3RConfig.preset(args.preset)
    print(json.dumps(convert_checkpoint(args.input, args.output, config)))
    return 0
