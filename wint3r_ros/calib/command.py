"""``wint3r-ros calibrate``: checkerboard calibration of an N-camera rig, or a check of one.

    wint3r-ros calibrate --images CAM0_DIR CAM1_DIR ... --board 9x6 --square 0.04 --out rig.yaml
    wint3r-ros calibrate --bag BAG --topics /cam0/image_raw /cam1/image_raw ... --out rig.yaml
    wint3r-ros calibrate --check rig.yaml --images CAM0_DIR CAM1_DIR ... --board 9x6 --square 0.04

Writes the rig YAML, a JSON report beside it (``<out stem>.report.json``; ``--check`` writes
``<rig stem>.check.json``) and optionally camera_info YAMLs. Exit codes: 0 done, 1 error
(message on stderr), 3 a quality threshold missed under ``--strict``. See docs/CALIBRATION.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wint3r_ros.calib.board import parse_board
from wint3r_ros.calib.detect import detect_frames
from wint3r_ros.calib.fit import FitOptions
from wint3r_ros.calib.pipeline import CalibrateConfig, Result, calibrate, check, write_outputs
from wint3r_ros.calib.sources import iter_bag, iter_image_dirs
from wint3r_ros.calib.validate import Thresholds
from wint3r_ros.data.rig_files import load_rig
from wint3r_ros.errors import CalibrationError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the calibrate arguments."""
    src = parser.add_argument_group("input (one of)")
    src.add_argument("--images", nargs="+", metavar="DIR",
                     help="one directory per camera, camera 0 first; images are paired across "
                          "cameras by file name without extension")
    src.add_argument("--bag", metavar="BAG", help="rosbag2 directory or file (mcap, sqlite3)")
    src.add_argument("--topics", nargs="+", metavar="TOPIC",
                     help="image topics in the bag, camera 0 first (default with --check: the "
                          "rig's topics); paired by header stamp")
    src.add_argument("--slop", type=float, default=0.005,
                     help="bag pairing: max stamp difference in seconds (default 0.005)")
    src.add_argument("--stride", type=int, default=1,
                     help="bag: use every k-th synchronised set (default 1)")
    parser.add_argument("--board", required=True, metavar="COLSxROWS",
                        help="checkerboard INNER corners, e.g. 9x6 for a board of 10x7 squares")
    parser.add_argument("--square", required=True, type=float, metavar="METRES",
                        help="side of one square in metres (sets the metric scale)")
    parser.add_argument("--charuco", metavar="DICT",
                        help="the board is a ChArUco board (cv2.aruco.CharucoBoard) with markers "
                             "from this OpenCV dictionary, e.g. DICT_5X5_100; --board still "
                             "counts inner corners (squares - 1). Views of part of the board "
                             "count (8 corners or more)")
    parser.add_argument("--marker", type=float, metavar="METRES",
                        help="ChArUco: side of one printed marker in metres")
    parser.add_argument("--out", metavar="RIG_YAML", help="rig YAML to write (calibration)")
    parser.add_argument("--check", metavar="RIG_YAML",
                        help="validate this rig on the given images instead of calibrating")
    parser.add_argument("--report", metavar="JSON", help="report path (default: beside the YAML)")
    parser.add_argument("--camera-info-dir", metavar="DIR",
                        help="also write one ROS camera_info YAML per camera here")
    parser.add_argument("--holdout", type=float, default=0.2,
                        help="fraction of sets held out from fitting for validation (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    parser.add_argument("--strict", action="store_true",
                        help="fail on images without a board, and exit 3 when a quality "
                             "threshold is missed")
    parser.add_argument("--max-rms", type=float, default=0.5,
                        help="warn above this held-out reprojection RMS in pixels (default 0.5)")
    parser.add_argument("--min-coverage", type=float, default=0.5,
                        help="warn when the board covered less than this fraction of an image "
                             "over all views (default 0.5)")
    parser.add_argument("--names", nargs="+", metavar="NAME",
                        help="camera names (default cam0 cam1 ...)")
    parser.add_argument("--rig-name", default="rig", help="rig name in the YAML (default rig)")
    parser.add_argument("--base-frame", default="rig_base",
                        help="TF frame of the rig (default rig_base); without --level or "
                             "--cam0-pose it coincides with camera 0's optical frame")
    mount = parser.add_mutually_exclusive_group()
    mount.add_argument("--cam0-pose", nargs=6, type=float,
                       metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
                       help="where camera 0 sits on the base, as a URDF joint: its position in "
                            "the base frame (metres) and the roll/pitch/yaw (degrees) of its body "
                            "frame (x along the optical axis, y left, z up); the base frame "
                            "then follows REP-103 (x forward, y left, z up)")
    mount.add_argument("--level", action="store_true",
                       help="the rig is level with camera 0 looking forward: same as "
                            "--cam0-pose 0 0 0 0 0 0 (base at camera 0, x forward, z up)")
    parser.add_argument("--k-coefficients", type=int, choices=(2, 3), default=2,
                        help="radial distortion terms to fit (2: k3 fixed at 0, like ROS "
                             "camera_calibration; 3: also k3, for wide lenses)")
    parser.add_argument("--min-views", type=int, default=5,
                        help="fewest board views per camera in the fit set (default 5)")
    parser.add_argument("--sb", action="store_true",
                        help="fall back to cv2.findChessboardCornersSB when the classic "
                             "detector fails (slower)")
    parser.add_argument("--show-images", type=int, default=15, metavar="N",
                        help="print the N worst images (default 15; the report has all)")


def _frames(args: argparse.Namespace, topics: list[str] | None):
    if bool(args.images) == bool(args.bag):
        raise CalibrationError("give exactly one of --images DIR ... or --bag BAG --topics ...")
    if args.images:
        return iter_image_dirs(args.images), len(args.images)
    if not topics:
        raise CalibrationError("--bag needs --topics (one image topic per camera)")
    return iter_bag(args.bag, topics, slop=args.slop, stride=args.stride), len(topics)


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _print_images(result: Result, limit: int) -> None:
    rows = sorted(result.report["images"], key=lambda r: -(r["mono_rms_px"] or 0.0))
    if not rows or limit <= 0:
        return
    print(f"\nworst images by mono RMS ({min(limit, len(rows))} of {len(rows)}; "
          f"all in the report):")
    print(f"  {'split':8} {'camera':10} {'mono RMS':>9} {'max':>7} {'rig RMS':>8}  image")
    for r in rows[:limit]:
        print(f"  {r['split']:8} {r['camera']:10} {_fmt(r['mono_rms_px']):>9} "
              f"{_fmt(r['mono_max_px'], '.2f'):>7} {_fmt(r['rig_rms_px']):>8}  {r['image']}")


def _print_calibration(result: Result) -> None:
    rep = result.report
    split = rep["split"]
    print(f"calibrated {len(rep['cameras'])} camera(s) from {rep['sets']} sets "
          f"({len(split['fit_sets'])} fit, {len(split['holdout_sets'])} held out, "
          f"seed {split['seed']}); board {rep['board']['cols']}x{rep['board']['rows']}, "
          f"{rep['board']['square_m']:g} m squares")
    print(f"\n  {'camera':10} {'size':>9} {'views':>7} {'fx':>9} {'fy':>9} {'cx':>8} {'cy':>8} "
          f"{'fit':>6} {'held':>6} {'rig':>6} {'cover':>6}")
    for name, c in rep["cameras"].items():
        K = c["K"]
        print(f"  {name:10} {c['image_size'][0]:>4}x{c['image_size'][1]:<4} "
              f"{c['views_fit']:>3}/{c['views_holdout']:<3} {K[0][0]:9.2f} {K[1][1]:9.2f} "
              f"{K[0][2]:8.2f} {K[1][2]:8.2f} {_fmt(c['fit']['mono_rms_px'], '.3f'):>6} "
              f"{_fmt(c['holdout']['mono_rms_px'], '.3f'):>6} "
              f"{_fmt(c['holdout']['rig_rms_px'], '.3f'):>6} {c['coverage']:6.0%}")
    if rep["pairs"]:
        print(f"\n  {'pair':21} {'baseline':>10} {'common':>7} {'stereo':>7} {'fit':>6} "
              f"{'held':>6}")
        for key, p in rep["pairs"].items():
            print(f"  {key:21} {p['baseline_m']:8.4f} m {p['common_views_fit']:>3}/"
                  f"{p['common_views_holdout']:<3} {_fmt(p['stereo_init_rms_px']):>7} "
                  f"{_fmt(p['fit']['rms_px']):>6} {_fmt(p['holdout']['rms_px']):>6}")
        j = rep["extrinsics"]["joint_refinement"]
        chain = ", ".join(f"{c}<-{p}" for c, p in rep["extrinsics"]["chained_from"].items())
        print(f"\n  joint refinement over {int(j['sets'])} sets: RMS {j['rms_before']:.3f} -> "
              f"{j['rms_after']:.3f} px in {int(j['iterations'])} iterations; chain: {chain}")
    print("  (RMS in pixels: fit = fit set, held = held-out set; mono = intrinsics only, "
          "rig = through the extrinsics)")


def _print_check(result: Result) -> None:
    rep = result.report
    print(f"checked {len(rep['cameras'])} camera(s) on {rep['sets']} sets")
    print(f"\n  {'camera':10} {'images':>6} {'mono RMS':>9} {'rig RMS':>8} {'cover':>6}")
    for name, c in rep["cameras"].items():
        ch = c["check"]
        print(f"  {name:10} {ch['images']:>6} {_fmt(ch['mono_rms_px']):>9} "
              f"{_fmt(ch['rig_rms_px']):>8} {c['coverage']:6.0%}")
    for key, p in rep["pairs"].items():
        print(f"  pair {key}: baseline {p['baseline_m']:.4f} m, {p['check']['sets']} sets, "
              f"RMS {_fmt(p['check']['rms_px'])} px")


def run(args: argparse.Namespace) -> int:
    """Calibrate (or check) and print the summary; returns the exit code."""
    board = parse_board(args.board, args.square, args.charuco, args.marker)
    thresholds = Thresholds(max_rms_px=args.max_rms, min_coverage=args.min_coverage)
    if args.check:
        if args.level or args.cam0_pose:
            raise CalibrationError("--level and --cam0-pose set the base frame of a new "
                                   "calibration; --check uses the rig file's own")
        if args.out:
            raise CalibrationError("--check validates an existing rig; it takes no --out")
        rig = load_rig(args.check)
        topics = args.topics or ([c.topic for c in rig.cameras] if args.bag else None)
        frames, n = _frames(args, topics)
        if n != len(rig.cameras):
            raise CalibrationError(f"{args.check} has {len(rig.cameras)} cameras "
                                   f"({', '.join(rig.camera_names)}) but {n} image sources "
                                   f"were given")
        det = detect_frames(frames, board, rig.camera_names, use_sb=args.sb,
                            expected_sizes=[(c.width, c.height) for c in rig.cameras],
                            size_origin=f"{args.check}")
        config = CalibrateConfig(board, 0.0, args.seed, args.strict, thresholds)
        result = check(rig, det, config)
        report = args.report or Path(args.check).with_suffix(".check.json")
        written = write_outputs(result, None, report, args.camera_info_dir)
        _print_check(result)
    else:
        if not args.out:
            raise CalibrationError("give --out RIG_YAML (or --check RIG_YAML to validate one)")
        frames, n = _frames(args, args.topics)
        names = args.names or [f"cam{i}" for i in range(n)]
        if len(names) != n:
            raise CalibrationError(f"--names gives {len(names)} names for {n} cameras")
        topics = tuple(args.topics) if args.bag else None
        det = detect_frames(frames, board, names, use_sb=args.sb)
        mount = (0.0,) * 6 if args.level else (tuple(args.cam0_pose) if args.cam0_pose
                                                 else None)
        fit = FitOptions(rig_name=args.rig_name, base_frame=args.base_frame, topics=topics,
                         k_coefficients=args.k_coefficients, min_views=args.min_views,
                         cam0_mount=mount)
        config = CalibrateConfig(board, args.holdout, args.seed, args.strict, thresholds, fit)
        result = calibrate(det, config)
        report = args.report or Path(args.out).with_suffix(".report.json")
        written = write_outputs(result, args.out, report, args.camera_info_dir)
        _print_calibration(result)
    _print_images(result, args.show_images)
    if result.warnings:
        print("\nwarnings:")
        for w in result.warnings:
            print(f"  - {w}")
    print(f"\n{'PASSED' if result.passed else 'FAILED'} quality thresholds "
          f"(RMS <= {thresholds.max_rms_px:g} px, coverage >= {thresholds.min_coverage:.0%})")
    print("wrote " + ", ".join(str(p) for p in written))
    return result.exit_code(args.strict)
