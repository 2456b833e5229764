"""Calibrate a rig from detections, or check a stored rig against new ones, and build the report.

`calibrate` splits the sets into fit and held-out (seeded), fits on the first, evaluates on
both and collects warnings; `check` evaluates a stored rig on new views. Both return a
`Result` whose ``report`` is JSON-ready (docs/CALIBRATION.md explains every field).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wint3r_ros import __version__
from wint3r_ros.calib.board import AMBIGUOUS_ORDER, PARTIAL_BOARD, Board
from wint3r_ros.calib.detect import Detections
from wint3r_ros.calib.fit import FitOptions, RigFit, fit_rig, orient_to_rig
from wint3r_ros.calib.validate import Thresholds, coverage, evaluate, quality_warnings, split_sets
from wint3r_ros.core.rig import Rig
from wint3r_ros.data.rig_files import save_camera_info_yaml, save_rig
from wint3r_ros.errors import CalibrationError

__all__ = ["CalibrateConfig", "Result", "calibrate", "check", "write_outputs", "EXIT_QUALITY"]

EXIT_QUALITY = 3   # exit code under --strict when a quality threshold is missed


@dataclass(frozen=True)
class CalibrateConfig:
    """Everything `calibrate` and `check` need besides the detections."""

    board: Board
    holdout: float = 0.2
    seed: int = 0
    strict: bool = False
    thresholds: Thresholds = Thresholds()
    fit: FitOptions = FitOptions()


@dataclass
class Result:
    """The rig (fitted or checked), the JSON report, and whether every threshold was met."""

    rig: Rig
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    passed: bool = True
    fit: RigFit | None = None

    def exit_code(self, strict: bool) -> int:
        return EXIT_QUALITY if strict and not self.passed else 0


def _check_boards(det: Detections, strict: bool) -> list[str]:
    """Errors for a camera without any board (always) or an image without one (strict)."""
    for c, name in enumerate(det.camera_names):
        if not det.views(c):
            missing = [src for cam, src in det.no_board if cam == c]
            example = f" (e.g. {missing[0]})" if missing else ""
            raise CalibrationError(
                f"camera {name}: no board found in any of its {det.images_seen[c]} image(s)"
                f"{example}; check that --board counts INNER corners (COLSxROWS) and that the "
                f"whole board is visible")
    notes = []
    explain = {AMBIGUOUS_ORDER: "their corner order was ambiguous (the squares' colours did "
                                "not say which end is corner 0)",
               PARTIAL_BOARD: "only part of the ChArUco board was found"}
    for kind, text in explain.items():
        dropped = [src for _, src, why in det.dropped if why.startswith(kind)]
        if dropped:
            notes.append(f"{len(dropped)} board view(s) dropped, {text}: {_shown(dropped)}")
    if not det.no_board:
        return notes
    images = [src for _, src in det.no_board]
    if strict:
        raise CalibrationError(f"no board found in image {images[0]} ({len(images)} image(s) "
                               f"without a board: {_shown(images)}); remove them or run without "
                               f"--strict")
    return notes + [f"no board found in {len(images)} image(s), skipped: {_shown(images)}"]


def _shown(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")


def _camera_report(rig: Rig, det: Detections, c: int) -> dict[str, Any]:
    cam = rig.cameras[c]
    return {
        "image_size": [cam.width, cam.height],
        "K": cam.K.tolist(),
        "distortion_model": cam.distortion_model,
        "distortion_coefficients": cam.distortion_coefficients.tolist(),
        "T_base_camera": cam.T_base_camera.tolist(),
        "images_read": det.images_seen[c],
    }


def _warn_missing_holdout(det: Detections, holdout: list[int]) -> list[str]:
    out = []
    if not holdout:
        out.append("no held-out sets (--holdout 0): thresholds were checked on the fit set, "
                   "which flatters the calibration")
        return out
    for c, name in enumerate(det.camera_names):
        if not det.views(c, holdout):
            out.append(f"camera {name}: no held-out views; its held-out RMS is unknown")
    return out


def calibrate(det: Detections, config: CalibrateConfig) -> Result:
    """Fit a rig on a seeded split of ``det`` and validate it on both parts."""
    notes = _check_boards(det, config.strict)
    fit_sets, held_sets = split_sets(len(det.keys), config.holdout, config.seed)
    fit = fit_rig(det, config.board, fit_sets, config.fit)
    rig = fit.rig
    # The fit split as fitted (half turns applied, left-out views gone); held-out views are
    # only oriented to the rig on a symmetric board, never dropped.
    held_det, held_turned = orient_to_rig(det, rig, config.board, held_sets)
    ev_fit = evaluate(rig, fit.detections or det, config.board, fit_sets, "fit")
    ev_held = evaluate(rig, held_det, config.board, held_sets, "holdout")
    cover = {name: coverage(det, c, fit_sets) for c, name in enumerate(det.camera_names)}
    judged = ev_held if held_sets else ev_fit
    quality = quality_warnings(judged, cover, config.thresholds)
    notes += _warn_missing_holdout(det, held_sets)
    if fit.left_out:
        notes.append(f"{len(fit.left_out)} view(s) left out of the fit as outliers: "
                     + _shown([f"{det.source(f, c)} ({stage}: {why})"
                               for f, c, stage, why in fit.left_out], 3))
    names = det.camera_names
    cameras = {}
    for c, name in enumerate(names):
        entry = _camera_report(rig, det, c)
        entry.update({
            "views_fit": fit.views[c], "views_holdout": len(det.views(c, held_sets)),
            "intrinsics_rms_px": fit.intrinsics_rms[c],
            "fit": ev_fit.summary()["cameras"][name],
            "holdout": ev_held.summary()["cameras"][name],
            **cover[name],
        })
        cameras[name] = entry
    baselines = rig.baselines()
    pairs = {}
    for (a, b), n_common in fit.common_views.items():
        key = f"{a}-{b}"
        stereo = fit.stereo_rms.get((a, b), fit.stereo_rms.get((b, a)))
        pairs[key] = {
            "baseline_m": baselines[(a, b)],
            "common_views_fit": n_common,
            "common_views_holdout": len(det.common_views(names.index(a), names.index(b),
                                                         held_sets)),
            "stereo_init_rms_px": stereo,
            "fit": ev_fit.summary()["pairs"][key],
            "holdout": ev_held.summary()["pairs"][key],
        }
    report = _report_head("calibrate", config, det)
    report.update({
        "split": {"seed": config.seed, "holdout_fraction": config.holdout,
                  "fit_sets": [det.keys[f] for f in fit_sets],
                  "holdout_sets": [det.keys[f] for f in held_sets]},
        "cameras": cameras,
        "pairs": pairs,
        "extrinsics": {"reference": names[0], "chained_from": fit.parent,
                       "joint_refinement": fit.joint},
        "base": {"frame": rig.base_frame, "cam0_mount_xyz_rpy_deg": config.fit.cam0_mount,
                 "convention": "REP-103 (x forward, y left, z up)" if config.fit.cam0_mount
                 is not None else "camera 0's optical frame (z forward, x right, y down)"},
        "views_left_out": [{"set": det.keys[f], "camera": names[c], "image": det.source(f, c),
                            "stage": stage, "reason": why} for f, c, stage, why in fit.left_out],
        "views_half_turned": [{"set": det.keys[f], "camera": names[c],
                               "image": det.source(f, c)}
                              for f, c in sorted(fit.half_turned + held_turned)],
        "images": ev_fit.rows + ev_held.rows,
        "warnings": notes + quality,
        "passed": not quality,
    })
    return Result(rig, report, notes + quality, not quality, fit)


def check(rig: Rig, det: Detections, config: CalibrateConfig) -> Result:
    """Reprojection RMS of a stored rig on new views (no fitting at all)."""
    notes = _check_boards(det, config.strict)
    sets = list(range(len(det.keys)))
    det, _ = orient_to_rig(det, rig, config.board, sets)
    ev = evaluate(rig, det, config.board, sets, "check")
    cover = {name: coverage(det, c, sets) for c, name in enumerate(det.camera_names)}
    quality = quality_warnings(ev, cover, config.thresholds)
    summary = ev.summary()
    cameras = {}
    for c, name in enumerate(det.camera_names):
        entry = _camera_report(rig, det, c)
        entry.update({"check": summary["cameras"][name], **cover[name]})
        cameras[name] = entry
    baselines = rig.baselines()
    pairs = {f"{a}-{b}": {"baseline_m": baselines[(a, b)], "check": summary["pairs"][f"{a}-{b}"]}
             for (a, b) in baselines}
    report = _report_head("check", config, det)
    report.update({"cameras": cameras, "pairs": pairs, "images": ev.rows,
                   "warnings": notes + quality, "passed": not quality})
    return Result(rig, report, notes + quality, not quality)


def _report_head(mode: str, config: CalibrateConfig, det: Detections) -> dict[str, Any]:
    b = config.board
    return {
        "tool": f"wint3r-ros calibrate ({mode})",
        "version": __version__,
        "mode": mode,
        "board": {"cols": b.cols, "rows": b.rows, "square_m": b.square,
                  **({"charuco": b.charuco, "marker_m": b.marker} if b.charuco else {})},
        "thresholds": {"max_rms_px": config.thresholds.max_rms_px,
                       "min_coverage": config.thresholds.min_coverage,
                       "min_board_area": config.thresholds.min_board_area},
        "sets": len(det.keys),
        "images_without_board": [src for _, src in det.no_board],
        "views_dropped": [{"camera": det.camera_names[c], "image": src, "reason": why}
                          for c, src, why in det.dropped],
    }


def write_outputs(result: Result, out: str | Path | None, report_path: str | Path,
                  camera_info_dir: str | Path | None = None) -> list[Path]:
    """Write the rig YAML (``out``), the JSON report and optional camera_info YAMLs."""
    import json

    written = []
    if out is not None:
        judged = "held-out" if result.report.get("split", {}).get("holdout_sets") else "fit"
        worst = max((v.get("holdout" if judged == "held-out" else "fit", {}).get("mono_rms_px")
                     or 0.0) for v in result.report["cameras"].values())
        save_rig(result.rig, out, comment=(
            f"Written by wint3r-ros calibrate {__version__}; worst {judged} mono RMS "
            f"{worst:.3f} px; report: {Path(report_path).name}"))
        written.append(Path(out))
    if camera_info_dir is not None:
        for cam in result.rig.cameras:
            path = Path(camera_info_dir) / f"{cam.name}.yaml"
            save_camera_info_yaml(cam, path)
            written.append(path)
    report_path = Path(report_path)
    try:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(_jsonable(result.report), indent=2) + "\n")
    except OSError as err:
        raise CalibrationError(f"{report_path}: cannot write report: {err}") from err
    written.append(report_path)
    return written


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
