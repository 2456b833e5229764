"""Clock offset and drift of each camera against the rig (core.clock)."""
from __future__ import annotations

import random

import pytest

from wint3r_ros.core.clock import ClockEstimator
from wint3r_ros.errors import ConfigError

PERIOD = 33_333_333
MS = 1_000_000


def feed(est: ClockEstimator, frames: int, offsets, drifts=None, jitter=0, seed=0, start=0):
    rng = random.Random(seed)
    n = len(offsets)
    for k in range(frames):
        t = start + k * PERIOD
        est.observe([None if offsets[i] is None else
                     t + offsets[i] + int((drifts[i] if drifts else 0.0) * (k * PERIOD))
                     + rng.randint(-jitter, jitter) for i in range(n)])


def test_clock_measures_a_constant_offset_against_the_rig_median():
    est = ClockEstimator(4)
    feed(est, 90, [0, 0, 7 * MS, 0])
    fits = [est.estimate(i) for i in range(4)]
    assert fits[2].offset_ns == 7 * MS and fits[0].offset_ns == 0
    assert fits[2].drift == pytest.approx(0.0, abs=1e-12)
    # one sample per 80 ms at most: every third set of a 30 Hz rig
    assert fits[2].samples == 30 and fits[2].span_s == pytest.approx(87 * PERIOD / 1e9)
    every = ClockEstimator(4, min_interval=0.0)
    feed(every, 90, [0, 0, 7 * MS, 0])
    assert every.estimate(2).samples == 90


def test_clock_two_cameras_share_their_difference():
    est = ClockEstimator(2)
    feed(est, 60, [0, 10 * MS])
    assert est.estimate(0).offset_ns == -5 * MS and est.estimate(1).offset_ns == 5 * MS


def test_clock_fits_drift_with_a_standard_error_under_jitter():
    est = ClockEstimator(3, window=10.0)
    feed(est, 300, [0, 0, 0], drifts=[0.0, 0.0, 0.002], jitter=MS, seed=3)
    fit = est.estimate(2)
    assert fit.drift == pytest.approx(0.002, rel=0.05)
    assert fit.detected and fit.drift_stderr < 0.0002
    # the offset at the newest sample: 2 ms/s since 0
    assert fit.offset_ns == pytest.approx(0.002 * fit.at_ns, abs=0.5 * MS)
    assert fit.offset_at(fit.at_ns + 10**9, 10**9) == pytest.approx(fit.offset_ns + 2 * MS, abs=0.2 * MS)
    assert fit.offset_at(fit.at_ns + 5 * 10**9, 10**9) == fit.offset_at(fit.at_ns + 10**9, 10**9)
    assert not est.estimate(0).detected and not est.estimate(1).detected


def test_clock_needs_enough_samples_and_forgets_old_ones():
    est = ClockEstimator(2, window=2.0, min_samples=20, min_span=1.0, min_interval=0.0)
    feed(est, 10, [0, 0])
    assert est.estimate(0).offset_ns is None and est.estimate(0).samples == 10
    assert est.estimate(0).offset_at(5, 10) == 0
    feed(est, 300, [0, 4 * MS], start=10 * PERIOD)
    assert 54 <= est.samples(1) <= 60  # 1.8-2 s of 30 Hz sets (the window drops 0.2 s blocks)
    est.reset()
    assert est.samples(0) == 0 and est.estimate(0).offset_ns is None


def test_clock_skips_sets_with_a_single_camera_and_absent_cameras():
    est = ClockEstimator(3, min_interval=0.0)
    feed(est, 60, [0, 2 * MS, None])
    assert est.samples(2) == 0 and est.estimate(0).offset_ns == -MS
    est.observe([5, None, None])
    assert est.samples(0) == 60


def test_clock_validates_its_settings():
    with pytest.raises(ConfigError, match="window=0"):
        ClockEstimator(2, window=0)
    with pytest.raises(ConfigError, match="min_samples=2"):
        ClockEstimator(2, min_samples=2)
