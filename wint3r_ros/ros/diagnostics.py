"""Status reporting shared by the nodes: rate-limited logs, /diagnostics messages, and the
ReconstructionStatus message from plain counters.

Nothing is dropped silently: every drop has a reason and a counter, and the counters reach the
status topic and /diagnostics (`diagnostic_msgs/DiagnosticArray`, read by rqt_robot_monitor and
the diagnostic aggregator). Logs about bad input are rate-limited per key so a camera sending
a wrong encoding at 30 Hz gives one line every few seconds (with the running count), not 30.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["RateLimitedLog", "OK", "WARN", "ERROR", "STALE", "diagnostic_status",
           "diagnostic_array", "reconstruction_status", "RateMeter"]

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels


class RateLimitedLog:
    """Logs through ``log(text)`` at most once per ``period`` seconds (wall time) per key; the
    message says how many were suppressed since the last one."""

    def __init__(self, log: Callable[[str], Any], period: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.period = float(period)
        self._clock = clock
        self._last: dict[Any, float] = {}
        self._suppressed: dict[Any, int] = {}

    def __call__(self, key: Any, text: str) -> bool:
        """Log ``text`` unless ``key`` was logged within the period; True if it was logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        n = self._suppressed.pop(key, 0)
        self._last[key] = now
        self._log(text + (f" ({n} more like this since the last message)" if n else ""))
        return True


class RateMeter:
    """Events per second over a sliding window of wall time (e.g. frames out)."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = float(window)
        self._clock = clock
        self._events: list[tuple[float, int]] = []

    def add(self, count: int = 1) -> None:
        self._events.append((self._clock(), int(count)))
        self._trim()

    def rate(self) -> float:
        self._trim()
        if len(self._events) < 2:
            return 0.0
        span = self._events[-1][0] - self._events[0][0]
        return sum(c for _, c in self._events[1:]) / span if span > 0 else 0.0

    def _trim(self) -> None:
        cutoff = self._clock() - self.window
        while self._events and self._events[0][0] < cutoff:
            self._events.pop(0)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def diagnostic_status(name: str, level: int, message: str, values: Mapping[str, Any],
                      hardware_id: str = "") -> Any:
    """diagnostic_msgs/DiagnosticStatus with key/value pairs (values turned into text)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                            hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=_text(v)) for k, v in values.items()])


def diagnostic_array(stamp: Any, statuses: list[Any]) -> Any:
    """diagnostic_msgs/DiagnosticArray of statuses."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Header

    return DiagnosticArray(header=Header(stamp=stamp), status=statuses)


def reconstruction_status(*, stamp: Any, frame_id: str, window_index: int = 0,
                          latency_sec: float = 0.0, model_sec: float = 0.0, fps: float = 0.0,
                          frames_in: int = 0, frames_out: int = 0,
                          drops: Mapping[str, int] | None = None, pool_size: int = 0,
                          scale: float = 1.0, scale_is_metric: bool = False, resets: int = 0,
                          state: str = "ok") -> Any:
    """wint3r_ros/msg/ReconstructionStatus from plain values; drops: reason -> count."""
    from std_msgs.msg import Header

    from wint3r_ros.msg import ReconstructionStatus

    drops = dict(drops or {})
    return ReconstructionStatus(
        header=Header(stamp=stamp, frame_id=frame_id), window_index=int(window_index),
        latency_sec=float(latency_sec), model_sec=float(model_sec), fps=float(fps),
        frames_in=int(frames_in), frames_out=int(frames_out),
        drop_reasons=list(drops.keys()), drop_counts=[int(v) for v in drops.values()],
        pool_size=int(pool_size), scale=float(scale), scale_is_metric=bool(scale_is_metric),
        resets=int(resets), state=state)
