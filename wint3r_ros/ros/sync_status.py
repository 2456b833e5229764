"""sync_node's status from the front end's counters: the drops per camera and reason, the state
line, and each camera's diagnostics (received, matched, dropped, rejected, its clock)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wint3r_ros.ros import diagnostics

__all__ = ["drops", "state", "camera"]


def drops(stats: Mapping[str, Any], infos_rejected: Sequence[int], outbox_dropped: int
          ) -> dict[str, int]:
    """{"<camera>/<reason>": count} of every drop and refusal (non-zero only), and
    ``windows/outbox_full``."""
    out: dict[str, int] = {}
    for cam, bad_infos in zip(stats["cameras"], infos_rejected):
        for reason, n in {**cam["dropped"], **cam["rejected"],
                          "bad_camera_info": bad_infos}.items():
            if n:
                out[f"{cam['name']}/{reason}"] = n
    if outbox_dropped:
        out["windows/outbox_full"] = outbox_dropped
    return out


def state(stats: Mapping[str, Any], slop: float) -> tuple[str, list[str]]:
    """(the state line, the cameras whose clock is near or beyond the slop)."""
    cams = stats["cameras"]
    silent = [c["name"] for c in cams if c["silent"]]
    off_clock = [c["name"] for c in cams
                 if c["clock"]["state"] in ("near_slop", "no_sets")
                 and (c["clock"]["phase_offset_s"] is None
                      or abs(c["clock"]["phase_offset_s"]) >= 0.5 * slop)]
    if not any(c["received"] for c in cams):
        line = "waiting: no image received yet"
    elif stats["stalled"]:
        line = f"degraded: no sets, silent camera(s) {', '.join(silent)}"
    elif silent:
        line = f"degraded: silent camera(s) {', '.join(silent)}"
    elif off_clock:
        line = f"warning: clock offset near or beyond the slop: {', '.join(off_clock)}"
    else:
        line = "ok"
    return line, off_clock


def camera(cam: Mapping[str, Any], topic: str, watchdog: Any, off_clock: Sequence[str],
           slop: float) -> tuple[Any, str, dict[str, Any]]:
    """(level, text, values) of one camera's diagnostics."""
    rejected = sum(cam["rejected"].values())
    silent_topics = watchdog.warnings
    if topic in silent_topics:   # stopped after delivering (a bag ended): WARN
        level = diagnostics.WARN if topic in watchdog.stopped else diagnostics.ERROR
        text = silent_topics[topic]
    elif cam["silent"]:
        level, text = diagnostics.WARN, "silent (stream time)"
    elif cam["name"] in off_clock:
        level, text = diagnostics.WARN, _clock_text(cam["clock"], slop)
    elif rejected:
        level, text = diagnostics.WARN, f"{rejected} image(s) rejected"
    else:
        level, text = diagnostics.OK, "ok"
    values = {"topic": topic, "received": cam["received"], "matched": cam["matched"],
              "dropped": sum(cam["dropped"].values()), "rejected": rejected,
              "pending": cam["pending"], **_clock_values(cam["clock"])}
    values.update({f"dropped.{r}": n for r, n in cam["dropped"].items() if n})
    values.update({f"rejected.{r}": n for r, n in cam["rejected"].items() if n})
    return level, text, values


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.3f}"


def _clock_values(clock: dict[str, Any]) -> dict[str, Any]:
    """A camera's clock report (core.synchronizer) as diagnostics values (ms, ppm; empty
    while unknown)."""
    return {"clock_state": clock["state"], "clock_offset_ms": _ms(clock["offset_s"]),
            "clock_drift_ppm": "" if clock["drift_ppm"] is None else f"{clock['drift_ppm']:.1f}",
            "clock_correction_ms": _ms(clock["correction_s"]),
            "clock_phase_offset_ms": _ms(clock["phase_offset_s"]),
            "time_offset_s": clock["time_offset_s"]}


def _clock_text(clock: dict[str, Any], slop: float) -> str:
    if clock["phase_offset_s"] is not None:
        return (f"in no set: stamps {clock['phase_offset_s'] * 1e3:+.1f} ms off the rig (slop "
                f"{slop * 1e3:.1f} ms); set time_offsets or check its clock")
    drift = clock["drift_ppm"] or 0.0
    return (f"clock offset {(clock['offset_s'] or 0.0) * 1e3:+.2f} ms, drift {drift:+.0f} ppm, "
            f"near the {slop * 1e3:.1f} ms slop; set time_offsets or auto_offset")
