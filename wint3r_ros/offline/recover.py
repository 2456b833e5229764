"""``wint3r-ros recover-bag BAG OUT``: save what an interrupted writer left in a rosbag2.

A recording or process-bag output that was killed (SIGKILL, the OOM killer, a power cut, a
full disk) has no metadata.yaml and, for mcap, no summary, so readers refuse it. Writers of this
package put data on disk at least once a second (complete mcap chunks, committed sqlite3 rows);
this command copies every message that reached the disk into a new, complete bag (see
`wint3r_ros.data.bag_recovery.recover_bag`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wint3r_ros.data.bag_recovery import recover_bag

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="the interrupted bag (directory or storage file)")
    parser.add_argument("out", type=Path, help="new bag directory to write (must not exist)")


def run(args: argparse.Namespace) -> int:
    stats = recover_bag(args.bag, args.out,
                        log=lambda text: print(text, file=sys.stderr, flush=True))
    span = ""
    if stats["messages"]:
        span = f", log times {stats['start_ns'] / 1e9:.3f} .. {stats['end_ns'] / 1e9:.3f} s"
    print(f"recovered {stats['messages']} messages on {len(stats['topics'])} topic(s){span} "
          f"from {args.bag} into {args.out}")
    for topic, n in sorted(stats["topics"].items()):
        print(f"  {topic}: {n}")
    return 0
