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

Samples are integer ns and the least-squares sums exact integers (relative to the first set), so
neither long runs nor epoch-sized stamps cost precision; a sample and a fit are O(1).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

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


def _shifted(block: list[int]) -> tuple[int, int, int, int, int, int]:
    """A block's sums (relative to its start c) moved to t = 0 (exact)."""
    c, n, sx, sy, sxx, sxy, syy = block
    return n, sx + n * c, sy, sxx + 2 * c * sx + n * c * c, sxy + c * sy, syy


class _Fit:
    """Least-squares sums of one camera's samples in blocks of stream time (exact integers,
    t relative to each block's start). A sample is appended to the open block's lists; a block
    is summed when it closes, and the window drops whole closed blocks, so nothing is ever
    subtracted and no rounding error builds up."""

    __slots__ = ("blocks", "closed", "start", "ts", "ds")

    def __init__(self) -> None:
        self.blocks: deque[list[int]] = deque()  # closed: [start, n, sx, sy, sxx, sxy, syy]
        self.closed = (0, 0, 0, 0, 0, 0)         # their sums at t = 0
        self.start: int | None = None            # the open block: start and samples
        self.ts: list[int] = []
        self.ds: list[int] = []

    @property
    def n(self) -> int:
        return sum(b[1] for b in self.blocks) + len(self.ts)

    def open_sums(self) -> list[int]:
        ts, ds = self.ts, self.ds
        return [self.start or 0, len(ts), sum(ts), sum(ds), sum(t * t for t in ts),
                sum(t * d for t, d in zip(ts, ds)), sum(d * d for d in ds)]

    def new_block(self, start: int, window: int) -> None:
        """Close the open block, open one at `start`, drop closed blocks older than `window`."""
        if self.ts:
            self.blocks.append(self.open_sums())
        self.start, self.ts, self.ds = start, [], []
        while self.blocks and start - self.blocks[0][0] >= window:
            self.blocks.popleft()
        sums = [0] * 6
        for block in self.blocks:
            for k, v in enumerate(_shifted(block)):
                sums[k] += v
        self.closed = tuple(sums)  # type: ignore[assignment]

    def estimate(self, min_samples: int, min_span: int) -> ClockEstimate:
        if not self.ts:
            return _NO_FIT
        at = self.start + self.ts[-1]  # type: ignore[operator]
        span = at - (self.blocks[0][0] if self.blocks else self.start)
        n, sx, sy, sxx, sxy, syy = (a + b for a, b in zip(self.closed, _shifted(self.open_sums())))
        if n < min_samples or span < min_span:
            return ClockEstimate(n, span / _NS, at, None, None, None)
        dxx = n * sxx - sx * sx      # n^2 var(t), exact
        dxy = n * sxy - sx * sy
        dyy = n * syy - sy * sy
        slope = dxy / dxx
        offset = (sy + slope * (n * at - sx)) / n  # the line at the newest sample
        ssr = max(dyy * dxx - dxy * dxy, 0) / (n * dxx)    # residual sum of squares, ns^2
        stderr = math.sqrt(ssr * n / (max(n - 2, 1) * dxx))
        return ClockEstimate(n, span / _NS, at, int(round(offset)), slope, stderr)


class ClockEstimator:
    """Per-camera offset and drift from synchronised sets (see the module docstring).

    num_streams: cameras; window: seconds of stream time kept per camera (in tenths: between
    0.9 and 1.0 of it); min_samples and min_span: how much data a fit needs (samples,
    seconds); min_interval: sets closer than this to the last sample are skipped (10 Hz by
    default: a 30 Hz rig is sampled every third set; plenty for a line over 10 s, and the
    cost per set stays small). O(1) per sample and per fit."""

    BLOCKS = 10

    def __init__(self, num_streams: int, window: float = 10.0, min_samples: int = 10,
                 min_span: float = 1.0, min_interval: float = 0.08) -> None:
        if not (isinstance(window, (int, float)) and window > 0):
            raise ConfigError(f"ClockEstimator: window={window!r} must be seconds > 0")
        if not (isinstance(min_samples, int) and min_samples >= 3):
            raise ConfigError(f"ClockEstimator: min_samples={min_samples!r} must be an integer >= 3")
        self.num_streams = num_streams
        self.window_ns = int(round(window * _NS))
        self.block_ns = max(self.window_ns // self.BLOCKS, 1)
        self.min_samples = min_samples
        self.min_span_ns = int(round(min_span * _NS))
        self.min_interval_ns = int(round(min_interval * _NS))
        self.reset()

    def reset(self) -> None:
        """Forget every sample (a new timeline after a time jump)."""
        self._fits = [_Fit() for _ in range(self.num_streams)]
        self._cache: list[ClockEstimate | None] = [_NO_FIT] * self.num_streams
        self._last: int | None = None

    def observe(self, stamps: Sequence[int | None]) -> None:
        """One synchronised set's stamps on the rig clock (None for an absent camera)."""
        first = stamps[0] if stamps[0] is not None else next(
            (s for s in stamps if s is not None), None)
        if first is None or (self._last is not None
                             and 0 <= first - self._last < self.min_interval_ns):
            return  # at most one sample per min_interval: the fit needs no more, sets cost less
        present = sorted(s for s in stamps if s is not None)
        m = len(present)
        if m < 2:
            return
        self._last = first
        rig = present[m // 2] if m % 2 else (present[m // 2 - 1] + present[m // 2]) // 2
        cache = self._cache
        for i, s in enumerate(stamps):
            if s is None:
                continue
            fit = self._fits[i]
            if fit.start is None or rig - fit.start >= self.block_ns:
                fit.new_block(rig, self.window_ns)
            fit.ts.append(rig - fit.start)  # type: ignore[operator]
            fit.ds.append(s - rig)
            cache[i] = None  # refit on demand

    def samples(self, stream: int) -> int:
        return self._fits[stream].n

    def estimate(self, stream: int) -> ClockEstimate:
        """The current fit for camera `stream` (cached until the next sample)."""
        fit = self._cache[stream]
        if fit is None:
            fit = self._cache[stream] = self._fits[stream].estimate(self.min_samples,
                                                                    self.min_span_ns)
        return fit
