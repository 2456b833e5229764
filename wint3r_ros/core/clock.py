"""Online clock offset and drift of each camera against the rig, from synchronised sets.

For rigs without hardware sync, every camera stamps with its own clock. Each synchronised set
gives one sample per camera: its stamp minus the rig's time for that set, the median of the
set's stamps (so the rig is the majority of its cameras; with two cameras each carries half of
their difference). Per camera, a straight line fitted to the samples of the last `window`
seconds of stream time gives the offset now (intercept, ns: positive = the camera's stamps are
later than the rig's) and the drift rate (slope, seconds per second) with its standard error.

Cameras at different rates: sets come at the rate of the slowest camera, so each camera is
sampled at that common rate; a faster camera's offset is the phase of the frame the policy
matched (its nearest frame), so it is only defined modulo that camera's period and the estimate
is meaningful while the offset stays under half of it (the slop usually is smaller still, and
sets stop matching first). Without sets (offset beyond the slop) there are no samples: turn on
`auto_offset` (see `core.synchronizer`) before the offset reaches the slop, or set a static
offset.

Samples are integer ns; the fit runs in float seconds relative to the newest sample, so its
precision does not depend on the absolute stamps.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wint3r_ros.errors import ConfigError

__all__ = ["ClockEstimate", "ClockEstimator"]

_NS = 1e9


@dataclass(frozen=True)
class ClockEstimate:
    """One camera's clock against the rig. offset_ns: at `at_ns` (stream time of the newest
    sample), positive = stamps later than the rig; drift: seconds per second (+ = the offset
    grows), drift_stderr its standard error; None until `min_samples` samples over at least
    `min_span` seconds exist."""

    samples: int
    span_s: float
    at_ns: int | None
    offset_ns: int | None
    drift: float | None
    drift_stderr: float | None

    def offset_at(self, stamp_ns: int, max_extrapolation_ns: int) -> int:
        """The fitted offset at `stamp_ns` (extrapolated at most `max_extrapolation_ns` past
        the newest sample; 0 when there is no fit)."""
        if self.offset_ns is None or self.at_ns is None:
            return 0
        dt = min(stamp_ns - self.at_ns, max_extrapolation_ns)
        return self.offset_ns + int(round((self.drift or 0.0) * dt))

    @property
    def detected(self) -> bool:
        """Whether the drift is significantly non-zero (5 standard errors)."""
        return (self.drift is not None and self.drift_stderr is not None
                and abs(self.drift) > 5.0 * self.drift_stderr)


_NO_FIT = ClockEstimate(0, 0.0, None, None, None, None)


class ClockEstimator:
    """Per-camera offset and drift from synchronised sets (see the module docstring).

    num_streams: cameras; window: seconds of stream time kept per camera; min_samples and
    min_span: how much data a fit needs (samples, seconds)."""

    def __init__(self, num_streams: int, window: float = 10.0, min_samples: int = 20,
                 min_span: float = 1.0) -> None:
        if not (isinstance(window, (int, float)) and window > 0):
            raise ConfigError(f"ClockEstimator: window={window!r} must be seconds > 0")
        if not (isinstance(min_samples, int) and min_samples >= 3):
            raise ConfigError(f"ClockEstimator: min_samples={min_samples!r} must be an integer >= 3")
        self.num_streams = num_streams
        self.window_ns = int(round(window * _NS))
        self.min_samples = min_samples
        self.min_span_ns = int(round(min_span * _NS))
        self._samples: list[deque[tuple[int, int]]] = [deque() for _ in range(num_streams)]
        self._fits: list[ClockEstimate | None] = [_NO_FIT] * num_streams

    def reset(self) -> None:
        """Forget every sample (a new timeline after a time jump)."""
        for q in self._samples:
            q.clear()
        self._fits = [_NO_FIT] * self.num_streams

    def observe(self, stamps: Sequence[int | None]) -> None:
        """One synchronised set's stamps on the rig clock (None for an absent camera)."""
        present = sorted(s for s in stamps if s is not None)
        m = len(present)
        if m < 2:
            return
        rig = present[m // 2] if m % 2 else (present[m // 2 - 1] + present[m // 2]) // 2
        horizon = rig - self.window_ns
        for i, s in enumerate(stamps):
            if s is None:
                continue
            q = self._samples[i]
            q.append((rig, s - rig))
            while q and q[0][0] < horizon:
                q.popleft()
            self._fits[i] = None  # refit on demand

    def samples(self, stream: int) -> int:
        return len(self._samples[stream])

    def estimate(self, stream: int) -> ClockEstimate:
        """The current fit for camera `stream` (cached until the next sample)."""
        fit = self._fits[stream]
        if fit is None:
            fit = self._fits[stream] = self._fit(self._samples[stream])
        return fit

    def _fit(self, q: deque[tuple[int, int]]) -> ClockEstimate:
        n = len(q)
        if n == 0:
            return _NO_FIT
        at = q[-1][0]
        span = at - q[0][0]
        if n < self.min_samples or span < self.min_span_ns:
            return ClockEstimate(n, span / _NS, at, None, None, None)
        data = np.asarray(q, dtype=np.float64)
        t = (data[:, 0] - at) / _NS           # seconds, <= 0
        d = data[:, 1] / _NS                  # seconds
        tm = t.mean()
        tc = t - tm
        sxx = float(tc @ tc)
        slope = float(tc @ (d - d.mean())) / sxx
        offset = float(d.mean()) - slope * tm  # the line's value at t = 0 (the newest sample)
        resid = d - (offset + slope * t)
        stderr = float(np.sqrt(float(resid @ resid) / max(n - 2, 1) / sxx))
        return ClockEstimate(n, span / _NS, at, int(round(offset * _NS)), slope, stderr)
