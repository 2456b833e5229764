"""The approximate-time policy: unit cases and hypothesis properties (N 1..6, jitter, drops,
reordering, duplicates)."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wint3r_ros.core.sync import DROP_REASONS, ApproximateTimePolicy, SyncedSet
from wint3r_ros.errors import ConfigError, SyncError

PERIOD = 1 / 30


def feed(policy: ApproximateTimePolicy, arrivals) -> list[SyncedSet]:
    out: list[SyncedSet] = []
    for stream, stamp, item in arrivals:
        out.extend(policy.add(stream, stamp, item))
    return out


def rig_arrivals(n: int, frames: int, jitter=None, missing=frozenset(), offsets=None):
    """Frame k of stream i at k * PERIOD + offset_i + jitter(i, k), item (i, k); in time order."""
    arr = []
    for k in range(frames):
        for i in range(n):
            if (i, k) in missing:
                continue
            t = k * PERIOD + (offsets[i] if offsets else 0.0) + (jitter(i, k) if jitter else 0.0)
            arr.append((i, t, (i, k)))
    arr.sort(key=lambda a: a[1])
    return arr


def assert_accounting(policy: ApproximateTimePolicy) -> None:
    for s in policy.stats.streams:
        assert s.received == s.matched + s.dropped_total + s.pending, s


# ----------------------------------------------------------------------------- unit cases


def test_sync_pairs_messages_within_slop_in_stream_order():
    p = ApproximateTimePolicy(2, queue_size=5, slop=0.01)
    sets = feed(p, [(0, 1.000, "a0"), (1, 1.004, "b0"), (0, 1.033, "a1"), (1, 1.036, "b1"),
                    (0, 1.066, "a2"), (1, 1.070, "b2")])
    assert [tuple(s) for s in sets] == [("a0", "b0"), ("a1", "b1"), ("a2", "b2")]
    assert sets[0].stamps == (1.000, 1.004) and sets[0].stamp == 1.000
    assert [s.index for s in sets] == [0, 1, 2]
    assert sets[0].span == pytest.approx(0.004)


def test_sync_single_stream_passes_every_message_through():
    p = ApproximateTimePolicy(1, slop=0.0)
    assert [tuple(s) for s in feed(p, [(0, 0.0, 1), (0, 0.1, 2)])] == [(1,), (2,)]


def test_sync_chooses_the_closest_partner_not_the_first_in_slop():
    # left at 60 Hz, right at 30 Hz: right 0.017 is closer to left 0.0167 than to left 0.0
    p = ApproximateTimePolicy(2, queue_size=10, slop=0.02, inter_message_lower_bound=0.0)
    sets = feed(p, [(0, 0.0, "L0"), (1, 0.017, "R0"), (0, 0.0167, "L1"), (0, 0.0333, "L2"),
                    (1, 0.050, "R1"), (0, 0.050, "L3")])
    assert [tuple(s) for s in sets][:2] == [("L1", "R0"), ("L3", "R1")]
    stats = p.stats.streams[0]
    assert stats.dropped["superseded"] == 2  # L0 and L2
    assert_accounting(p)


def test_sync_drops_stale_frames_with_no_partner():
    p = ApproximateTimePolicy(2, slop=0.005)
    sets = feed(p, [(0, 0.0, "a0"), (1, 0.020, "b0"), (0, 0.021, "a1")])
    assert sets == []  # a later stream-1 message could pair better with a1: wait (no interval yet)
    sets += p.flush()
    assert [tuple(s) for s in sets] == [("a1", "b0")]
    assert p.stats.streams[0].dropped["no_match"] == 1
    assert_accounting(p)


def test_sync_late_and_duplicate_messages_are_counted():
    p = ApproximateTimePolicy(2, slop=0.01, inter_message_lower_bound=0.01)
    feed(p, [(0, 1.0, "a"), (1, 1.0, "b")])                 # emitted at once (span 0)
    assert p.add(0, 0.99, "late") == []                    # older than its stream's last set
    assert p.add(1, 1.05, "b1") == []
    assert p.add(1, 1.05, "b1 again") == []                # duplicate stamp
    s = p.stats.streams
    assert s[0].dropped["late"] == 1 and s[1].dropped["duplicate"] == 1
    assert_accounting(p)


def test_sync_out_of_order_arrival_is_used():
    p = ApproximateTimePolicy(2, slop=0.01, inter_message_lower_bound=0.0)
    sets = feed(p, [(0, 0.033, "a1"), (0, 0.0, "a0"), (1, 0.001, "b0"), (1, 0.034, "b1")])
    sets += p.flush()
    assert [tuple(s) for s in sets] == [("a0", "b0"), ("a1", "b1")]


def test_sync_queue_overflow_keeps_memory_bounded():
    p = ApproximateTimePolicy(2, queue_size=3, slop=0.01)
    feed(p, [(0, k * PERIOD, k) for k in range(10)])
    s = p.stats.streams[0]
    assert s.pending == 3 and s.dropped["queue_overflow"] == 7


def test_sync_time_jump_back_resets_and_reports():
    p = ApproximateTimePolicy(2, slop=0.01, jump_back_threshold=0.1)
    arr = rig_arrivals(2, 10)
    sets = feed(p, arr)
    n_before = len(sets)
    assert n_before >= 8
    assert p.add(0, 10 * PERIOD, "pending") == []
    # the bag restarts: stream 0 jumps first, stream 1 still sends one old-timeline message
    assert p.add(0, 0.0, "A0") == []
    assert p.add(1, 11 * PERIOD, "old") == []
    sets = feed(p, [(1, 0.001, "B0"), (0, PERIOD, "A1"), (1, PERIOD + 0.001, "B1")]) + p.flush()
    assert [tuple(s) for s in sets] == [("A0", "B0"), ("A1", "B1")]
    events = p.events()
    assert [e.kind for e in events] == ["time_jump"]
    assert "jumped back" in events[0].detail and events[0].stream == 0
    stats = p.stats
    assert stats.resets == 1
    assert stats.streams[1].dropped["pre_reset"] == 1
    assert stats.streams[0].dropped["reset"] == 1  # "pending" 
    assert_accounting(p)


def test_sync_one_stream_clock_jumping_alone_does_not_kill_the_rig():
    p = ApproximateTimePolicy(3, slop=0.01, stream_timeout=0.3, jump_back_threshold=0.5,
                              allow_degraded=True, min_streams=2)
    feed(p, rig_arrivals(3, 5, offsets=[100.0] * 3))
    sets = []
    for k in range(5, 40):  # camera 2's driver restarts with its clock at 0; the others go on
        sets += feed(p, [(0, 100 + k * PERIOD, (0, k)), (1, 100 + k * PERIOD, (1, k)),
                         (2, (k - 5) * PERIOD, (2, k))])
    events = [(e.kind, e.stream) for e in p.events()]
    assert events == [("time_jump", 2), ("time_jump", 0), ("stream_silent", 2), ("time_jump", 1)]
    assert p.silent_streams == ["stream2"]
    assert sets and all(s.missing == (2,) for s in sets)
    assert [s[0][1] for s in sets][-1] == 39            # cameras 0 and 1 keep flowing
    assert p.stats.streams[0].dropped["pre_reset"] > 0
    assert_accounting(p)


def test_sync_silent_stream_stalls_without_degraded_mode_and_reports():
    p = ApproximateTimePolicy(3, queue_size=100, slop=0.01, stream_timeout=0.2)
    arr = [(i, k * PERIOD, (i, k)) for k in range(20) for i in (0, 1)]  # stream 2 never speaks
    sets = feed(p, arr)
    assert sets == []
    assert p.stalled and p.silent_streams == ["stream2"]
    kinds = [e.kind for e in p.events()]
    assert kinds == ["stream_silent", "stalled"]


def test_sync_degraded_rig_keeps_emitting_and_recovers():
    p = ApproximateTimePolicy(3, queue_size=100, slop=0.01, stream_timeout=0.2,
                              allow_degraded=True, min_streams=2)
    arr = [(i, k * PERIOD, (i, k)) for k in range(30) for i in range(3) if not (i == 2 and 5 <= k < 20)]
    sets = feed(p, arr) + p.flush()
    degraded = [s for s in sets if s.missing == (2,)]
    assert degraded and all(s[2] is None and s.stamps[2] is None for s in degraded)
    assert all(len({x[1] for x in s if x is not None}) == 1 for s in sets)  # same frame index
    full_after = [s for s in sets if not s.missing and s[0][1] >= 20]
    assert len(full_after) >= 9
    kinds = [e.kind for e in p.events()]
    assert kinds == ["stream_silent", "stream_recovered"]
    assert p.stats.degraded_sets == len(degraded)
    assert [s.stamp for s in sets] == sorted({s.stamp for s in sets})
    assert_accounting(p)


def test_sync_advance_time_notices_silence_without_messages():
    p = ApproximateTimePolicy(2, slop=0.01, stream_timeout=0.5)
    p.add(0, 0.0, "a")
    p.add(0, 0.45, "b")
    assert p.silent_streams == []
    p.advance_time(0.6)
    assert p.silent_streams == ["stream1"]


def test_sync_validates_configuration_and_input():
    with pytest.raises(ConfigError, match="num_streams=0"):
        ApproximateTimePolicy(0)
    with pytest.raises(ConfigError, match="slop=-0.1"):
        ApproximateTimePolicy(2, slop=-0.1)
    with pytest.raises(ConfigError, match="min_streams=3"):
        ApproximateTimePolicy(2, min_streams=3)
    with pytest.raises(ConfigError, match="inter_message_lower_bound"):
        ApproximateTimePolicy(2, inter_message_lower_bound=[0.1])
    with pytest.raises(ConfigError, match="stream_names"):
        ApproximateTimePolicy(2, stream_names=["a", "a"])
    p = ApproximateTimePolicy(2)
    with pytest.raises(SyncError, match="stream index 2"):
        p.add(2, 0.0, None)
    with pytest.raises(SyncError, match="not finite"):
        p.add(0, float("nan"), None)


def test_sync_stats_as_dict_is_plain_data():
    p = ApproximateTimePolicy(2, slop=0.01, stream_names=["left", "right"])
    feed(p, rig_arrivals(2, 3))
    d = p.stats.as_dict()
    assert d["streams"][0]["name"] == "left" and set(d["streams"][0]["dropped"]) == set(DROP_REASONS)
    assert d["sets"] == 3 and d["streams"][1]["matched"] == 3


# ------------------------------------------------------------------------------ properties


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 6))
    frames = draw(st.integers(1, 40))
    jitter_max = draw(st.sampled_from([0.0, 0.001, 0.004]))
    drop_p = draw(st.sampled_from([0.0, 0.1, 0.3]))
    reorder_p = draw(st.sampled_from([0.0, 0.1, 0.3]))
    dup_p = draw(st.sampled_from([0.0, 0.05]))
    seed = draw(st.integers(0, 2 ** 16))
    return n, frames, jitter_max, drop_p, reorder_p, dup_p, seed


def build(n, frames, jitter_max, drop_p, reorder_p, dup_p, seed):
    rng = random.Random(seed)
    missing = {(i, k) for i in range(n) for k in range(frames) if rng.random() < drop_p}
    jit = {(i, k): rng.uniform(-jitter_max, jitter_max) for i in range(n) for k in range(frames)}
    arr = rig_arrivals(n, frames, jitter=lambda i, k: jit[i, k], missing=missing)
    arr = [(s, t, (s, k, c)) for c, (s, t, (_, k)) in enumerate(arr)]
    for idx in range(len(arr) - 1):  # swap neighbours: out-of-order delivery
        if rng.random() < reorder_p:
            arr[idx], arr[idx + 1] = arr[idx + 1], arr[idx]
    out = []
    for a in arr:
        out.append(a)
        if rng.random() < dup_p:
            out.append((a[0], a[1], (a[2][0], a[2][1], -1 - a[2][2])))
    return out, missing


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from([0.005, 0.012]), st.integers(2, 12))
def test_sync_properties_hold_under_jitter_drops_reordering(scenario, slop, queue_size):
    arrivals, _ = build(*scenario)
    p = ApproximateTimePolicy(scenario[0], queue_size=queue_size, slop=slop)
    sets = feed(p, arrivals) + p.flush()
    seen = set()
    last_per_stream = [float("-inf")] * scenario[0]
    last_stamp = float("-inf")
    for s in sets:
        assert len(s) == scenario[0] and not s.missing
        assert max(s.stamps) - min(s.stamps) <= slop + 1e-12       # span within slop
        for i, (item, stamp) in enumerate(zip(s, s.stamps)):
            assert item[0] == i                                     # stream order
            assert item not in seen                                 # no item twice
            seen.add(item)
            assert stamp > last_per_stream[i]                       # time order per stream
            last_per_stream[i] = stamp
        assert s.stamp > last_stamp                                 # sets in time order
        last_stamp = s.stamp
    assert_accounting(p)                                            # every drop counted
    stats = p.stats
    assert sum(x.matched for x in stats.streams) == scenario[0] * len(sets)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 40), st.sampled_from([0.0, 0.002, 0.008]),
       st.sampled_from([0.0, 0.2]), st.integers(0, 2 ** 16))
def test_sync_pairs_the_same_frame_and_loses_no_complete_frame(n, frames, jitter_max, drop_p, seed):
    # slop = 2 jitter + margin < period - 2 jitter: only true sets are valid and they are tightest
    arrivals, missing = build(n, frames, jitter_max, drop_p, 0.0, 0.0, seed)
    p = ApproximateTimePolicy(n, queue_size=8, slop=2 * jitter_max + 0.001)
    sets = feed(p, arrivals) + p.flush()
    for s in sets:
        assert len({item[1] for item in s}) == 1, s                 # same frame on every stream
    complete = [k for k in range(frames) if all((i, k) not in missing for i in range(n))]
    assert [s[0][1] for s in sets] == complete                      # every complete frame, once
    assert_accounting(p)


def test_sync_with_auto_bound_emits_each_set_without_waiting_for_the_next_frame():
    p = ApproximateTimePolicy(3, slop=0.005)
    arr = rig_arrivals(3, 10, jitter=lambda i, k: 0.001 * ((i + k) % 3 - 1))
    emitted_at = []
    for idx, (stream, stamp, item) in enumerate(arr):
        for s in p.add(stream, stamp, item):
            emitted_at.append((s[0][1], idx))
    # after the first two frames (interval estimate), frame k is emitted by its own last message
    for k, idx in emitted_at:
        if k >= 2:
            assert idx == 3 * k + 2
