"""The sync policies: unit cases and hypothesis properties (N 1..8, jitter, loss, duplicates,
local reordering), checked against a straightforward reference matcher."""
from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wint3r_ros.core.sync import DROP_REASONS, ApproximateTimePolicy, ExactTimePolicy, SyncedSet, ns_from_seconds
from wint3r_ros.errors import ConfigError, SyncError

MS = 1_000_000
PERIOD = 33_333_333  # 30 Hz in ns


def ms(x: float) -> int:
    return int(round(x * MS))


def feed(policy: ApproximateTimePolicy, arrivals) -> list[SyncedSet]:
    out: list[SyncedSet] = []
    for stream, stamp, item in arrivals:
        out.extend(policy.add(stream, stamp, item))
    return out


def rig_arrivals(n: int, frames: int, jitter=None, missing=frozenset(), offsets=None):
    """Frame k of stream i at k * PERIOD + offset_i + jitter(i, k) ns, item (i, k); in time
    order."""
    arr = []
    for k in range(frames):
        for i in range(n):
            if (i, k) in missing:
                continue
            t = k * PERIOD + (offsets[i] if offsets else 0) + (jitter(i, k) if jitter else 0)
            arr.append((i, t, (i, k)))
    arr.sort(key=lambda a: a[1])
    return arr


def assert_accounting(policy: ApproximateTimePolicy) -> None:
    for s in policy.stats.streams:
        assert s.received == s.matched + s.dropped_total + s.pending, s


def reference_sets(n: int, arrivals, slop: int, queue_size: int) -> list[tuple]:
    """A straightforward matcher with message_filters' Python ApproximateTimeSynchronizer rule
    (written for this test): each stream keeps {stamp: item} (a repeated stamp replaces the
    item, the oldest is dropped beyond queue_size); on every message, try the combinations of
    the other streams' messages within slop of it, closest first, and emit the first whose span
    is within slop. Nothing else is ever dropped, so a message arriving late still finds its
    set. Returns the items of each set."""
    queues: list[dict[int, object]] = [{} for _ in range(n)]
    out = []
    for stream, stamp, item in arrivals:
        q = queues[stream]
        q[stamp] = item
        while len(q) > queue_size:
            del q[min(q)]
        candidates = []
        for j in range(n):
            if j == stream:
                candidates.append([stamp])
                continue
            near = sorted((s for s in queues[j] if abs(s - stamp) <= slop),
                          key=lambda s: abs(s - stamp))
            if not near:
                break
            candidates.append(near)
        else:
            for combo in itertools.product(*candidates):
                if max(combo) - min(combo) <= slop:
                    out.append(tuple(queues[j].pop(s) for j, s in enumerate(combo)))
                    break
    return out


# ----------------------------------------------------------------------------- unit cases


def test_sync_pairs_messages_within_slop_in_stream_order():
    p = ApproximateTimePolicy(2, queue_size=5, slop=0.01)
    sets = feed(p, [(0, ms(1000), "a0"), (1, ms(1004), "b0"), (0, ms(1033), "a1"),
                    (1, ms(1036), "b1"), (0, ms(1066), "a2"), (1, ms(1070), "b2")])
    assert [tuple(s) for s in sets] == [("a0", "b0"), ("a1", "b1"), ("a2", "b2")]
    assert sets[0].stamps == (ms(1000), ms(1004)) and sets[0].stamp == ms(1000)
    assert all(type(t) is int for s in sets for t in s.stamps)
    assert [s.index for s in sets] == [0, 1, 2]
    assert sets[0].span_ns == ms(4)


def test_sync_keeps_stamps_exact_to_the_nanosecond():
    big = 1_700_000_000_123_456_789  # a 2023 epoch stamp: float seconds would lose the last digits
    p = ApproximateTimePolicy(2, slop=0.001)
    sets = feed(p, [(0, big, "a"), (1, big + 1, "b")]) + p.flush()
    assert sets[0].stamps == (big, big + 1) and sets[0].stamp == big


def test_sync_refuses_float_seconds():
    p = ApproximateTimePolicy(2)
    with pytest.raises(SyncError, match="integer nanoseconds"):
        p.add(0, 1.5, None)
    with pytest.raises(SyncError, match="integer nanoseconds"):
        p.add(0, float("nan"), None)


def test_sync_single_stream_passes_every_message_through():
    p = ApproximateTimePolicy(1, slop=0.0)
    assert [tuple(s) for s in feed(p, [(0, 0, 1), (0, ms(100), 2)])] == [(1,), (2,)]


def test_sync_chooses_the_closest_partner_not_the_first_in_slop():
    # left at 60 Hz, right at 30 Hz: right 17 ms is closer to left 16.7 ms than to left 0
    p = ApproximateTimePolicy(2, queue_size=10, slop=0.02, inter_message_lower_bound=0.0)
    sets = feed(p, [(0, 0, "L0"), (1, ms(17), "R0"), (0, ms(16.7), "L1"), (0, ms(33.3), "L2"),
                    (1, ms(50), "R1"), (0, ms(50), "L3")])
    assert [tuple(s) for s in sets][:2] == [("L1", "R0"), ("L3", "R1")]
    stats = p.stats.streams[0]
    assert stats.dropped["superseded"] == 2  # L0 and L2
    assert_accounting(p)


def test_sync_drops_stale_frames_with_no_partner():
    p = ApproximateTimePolicy(2, slop=0.005)
    sets = feed(p, [(0, 0, "a0"), (1, ms(20), "b0"), (0, ms(21), "a1")])
    assert sets == []  # stream 1 could still deliver an older message for a0 (interval unknown)
    sets += p.flush()
    assert [tuple(s) for s in sets] == [("a1", "b0")]
    assert p.stats.streams[0].dropped["no_match"] == 1
    assert_accounting(p)


def test_sync_without_reorder_window_drops_at_once():
    p = ApproximateTimePolicy(2, slop=0.005, reorder_window=0.0)
    feed(p, [(0, 0, "a0"), (1, ms(20), "b0")])
    assert p.stats.streams[0].dropped["no_match"] == 1


def test_sync_keeps_a_set_open_for_a_late_message_of_its_own_stream():
    # stream 1 delivers frame 3 before frame 2 (neighbours swapped in transport)
    arr = [(0, k * PERIOD, ("a", k)) for k in range(6)]
    arr += [(1, k * PERIOD + ms(1), ("b", k)) for k in range(6)]
    arr.sort(key=lambda a: a[1])
    i2 = arr.index((1, 2 * PERIOD + ms(1), ("b", 2)))
    late = arr.pop(i2)
    i3 = arr.index((1, 3 * PERIOD + ms(1), ("b", 3)))
    arr.insert(i3 + 1, late)
    p = ApproximateTimePolicy(2, slop=0.005)
    sets = feed(p, arr) + p.flush()
    assert [tuple(x[1] for x in s) for s in sets] == [(k, k) for k in range(6)]
    assert p.stats.streams[1].reordered == 1
    assert_accounting(p)
    # message_filters' C++ rule (no reorder window) loses frame 2 on both streams
    q = ApproximateTimePolicy(2, slop=0.005, reorder_window=0.0)
    sets = feed(q, arr) + q.flush()
    assert [s[0][1] for s in sets] == [0, 1, 3, 4, 5]
    assert q.stats.streams[0].dropped["no_match"] == 1 and q.stats.streams[1].dropped["late"] == 1


def test_sync_waits_at_most_the_reorder_window_for_a_lost_message():
    p = ApproximateTimePolicy(2, slop=0.005, reorder_window=0.05)
    arr = rig_arrivals(2, 8, missing={(1, 4)})
    emitted = {}
    for _idx, (stream, stamp, item) in enumerate(arr):
        for s in p.add(stream, stamp, item):
            emitted[s[0][1]] = stamp
    assert sorted(emitted) == [0, 1, 2, 3, 5, 6, 7]
    # frame 4 of stream 0 is given up once stream 1 is 50 ms past its 5 ms slop: at frame 6
    assert emitted[5] == 6 * PERIOD
    assert p.stats.streams[0].dropped["no_match"] == 1


def test_sync_auto_reorder_window_learns_deeper_lateness():
    p = ApproximateTimePolicy(2, slop=0.005)
    for k in range(4):
        p.add(0, k * PERIOD, k)
        p.add(1, k * PERIOD, k)
    st = p._streams[1]
    assert st.reorder_window() == PERIOD + PERIOD // 2
    p.add(1, 6 * PERIOD, 6)
    p.add(1, 5 * PERIOD, 5)
    p.add(1, 4 * PERIOD, 4)   # two frames late
    assert st.lateness == 2 * PERIOD and st.reorder_window() == 2 * PERIOD + PERIOD // 2


def test_sync_late_and_duplicate_messages_are_counted():
    p = ApproximateTimePolicy(2, slop=0.01, inter_message_lower_bound=0.01)
    feed(p, [(0, ms(1000), "a"), (1, ms(1000), "b")])          # emitted at once (span 0)
    assert p.add(0, ms(990), "late") == []                     # older than its stream's last set
    assert p.add(1, ms(1050), "b1") == []
    assert p.add(1, ms(1050), "b1 again") == []                # duplicate stamp
    s = p.stats.streams
    assert s[0].dropped["late"] == 1 and s[1].dropped["duplicate"] == 1
    assert_accounting(p)


def test_sync_out_of_order_arrival_is_used():
    p = ApproximateTimePolicy(2, slop=0.01, inter_message_lower_bound=0.0)
    sets = feed(p, [(0, ms(33), "a1"), (0, 0, "a0"), (1, ms(1), "b0"), (1, ms(34), "b1")])
    sets += p.flush()
    assert [tuple(s) for s in sets] == [("a0", "b0"), ("a1", "b1")]


def test_sync_queue_overflow_keeps_memory_bounded():
    p = ApproximateTimePolicy(2, queue_size=3, slop=0.01)
    feed(p, [(0, k * PERIOD, k) for k in range(10)])
    s = p.stats.streams[0]
    assert s.pending == 3 and s.dropped["queue_overflow"] == 7


def test_sync_offsets_align_stamps_before_matching_and_sets_keep_source_stamps():
    # camera 1 stamps 25 ms late: outside a 5 ms slop unless its offset is applied
    p = ApproximateTimePolicy(2, slop=0.005, reorder_window=0.0)
    arr = rig_arrivals(2, 5, offsets=[0, ms(25)])
    sets = []
    for stream, stamp, item in arr:
        sets += p.add(stream, stamp, item, offset_ns=-ms(25) if stream == 1 else 0)
    sets += p.flush()
    assert [tuple(x[1] for x in s) for s in sets] == [(k, k) for k in range(5)]
    assert sets[2].stamps == (2 * PERIOD, 2 * PERIOD + ms(25))
    assert sets[2].aligned == (2 * PERIOD, 2 * PERIOD)


def test_sync_time_jump_back_resets_and_reports():
    p = ApproximateTimePolicy(2, slop=0.01, jump_back_threshold=0.1)
    sets = feed(p, rig_arrivals(2, 10))
    assert len(sets) >= 8
    assert p.add(0, 10 * PERIOD, "pending") == []
    # the bag restarts: stream 0 jumps first, stream 1 still sends one old-timeline message
    assert p.add(0, 0, "A0") == []
    assert p.add(1, 11 * PERIOD, "old") == []
    sets = feed(p, [(1, ms(1), "B0"), (0, PERIOD, "A1"), (1, PERIOD + ms(1), "B1")]) + p.flush()
    assert [tuple(s) for s in sets] == [("A0", "B0"), ("A1", "B1")]
    events = p.events()
    assert [e.kind for e in events] == ["time_jump"]
    assert "jumped back" in events[0].detail and events[0].stream == 0
    stats = p.stats
    assert stats.resets == 1 and p.resets == 1
    assert stats.streams[1].dropped["pre_reset"] == 1
    assert stats.streams[0].dropped["reset"] == 1  # "pending"
    assert_accounting(p)


def test_sync_one_stream_clock_jumping_alone_does_not_kill_the_rig():
    p = ApproximateTimePolicy(3, slop=0.01, stream_timeout=0.3, jump_back_threshold=0.5,
                              allow_degraded=True, min_streams=2)
    base = 100 * 10**9
    feed(p, rig_arrivals(3, 5, offsets=[base] * 3))
    sets = []
    for k in range(5, 40):  # camera 2's driver restarts with its clock at 0; the others go on
        sets += feed(p, [(0, base + k * PERIOD, (0, k)), (1, base + k * PERIOD, (1, k)),
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
    assert feed(p, arr) == []
    assert p.stalled and p.silent_streams == ["stream2"]
    assert [e.kind for e in p.events()] == ["stream_silent", "stalled"]


def test_sync_degraded_rig_keeps_emitting_and_recovers():
    p = ApproximateTimePolicy(3, queue_size=100, slop=0.01, stream_timeout=0.2,
                              allow_degraded=True, min_streams=2)
    arr = [(i, k * PERIOD, (i, k)) for k in range(30) for i in range(3)
           if not (i == 2 and 5 <= k < 20)]
    sets = feed(p, arr) + p.flush()
    degraded = [s for s in sets if s.missing == (2,)]
    assert degraded and all(s[2] is None and s.stamps[2] is None for s in degraded)
    assert all(len({x[1] for x in s if x is not None}) == 1 for s in sets)  # same frame index
    full_after = [s for s in sets if not s.missing and s[0][1] >= 20]
    assert len(full_after) >= 9
    assert [e.kind for e in p.events()] == ["stream_silent", "stream_recovered"]
    assert p.stats.degraded_sets == len(degraded)
    assert [s.stamp for s in sets] == sorted({s.stamp for s in sets})
    assert_accounting(p)


def test_sync_advance_time_notices_silence_without_messages():
    p = ApproximateTimePolicy(2, slop=0.01, stream_timeout=0.5)
    p.add(0, 0, "a")
    p.add(0, ms(450), "b")
    assert p.silent_streams == []
    p.advance_time(ms(600))
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
    with pytest.raises(ConfigError, match="reorder_window"):
        ApproximateTimePolicy(2, reorder_window="never")
    with pytest.raises(ConfigError, match="stream_names"):
        ApproximateTimePolicy(2, stream_names=["a", "a"])
    with pytest.raises(ConfigError, match="no slop"):
        ExactTimePolicy(2, slop=0.01)
    p = ApproximateTimePolicy(2)
    with pytest.raises(SyncError, match="stream index 2"):
        p.add(2, 0, None)


def test_sync_stats_as_dict_is_plain_data():
    p = ApproximateTimePolicy(2, slop=0.01, stream_names=["left", "right"])
    feed(p, rig_arrivals(2, 3))
    d = p.stats.as_dict()
    assert d["streams"][0]["name"] == "left" and set(d["streams"][0]["dropped"]) == set(DROP_REASONS)
    assert d["sets"] == 3 and d["streams"][1]["matched"] == 3
    assert d["streams"][0]["newest_stamp"] == 2 * PERIOD and "clock" not in d


def test_sync_slop_is_set_in_seconds_and_kept_in_nanoseconds():
    p = ApproximateTimePolicy(2, slop=0.02)
    p.slop = 0.0125
    assert p._slop == 12_500_000 and p.slop == 0.0125
    assert ns_from_seconds(0.0333) == 33_300_000


def test_sync_with_auto_bound_emits_each_set_without_waiting_for_the_next_frame():
    p = ApproximateTimePolicy(3, slop=0.005)
    arr = rig_arrivals(3, 10, jitter=lambda i, k: ms(1) * ((i + k) % 3 - 1))
    emitted_at = []
    for idx, (stream, stamp, item) in enumerate(arr):
        for s in p.add(stream, stamp, item):
            emitted_at.append((s[0][1], idx))
    # after the first two frames (interval estimate), frame k is emitted by its own last message
    assert [k for k, _ in emitted_at] == list(range(10))
    for k, idx in emitted_at:
        if k >= 2:
            assert idx == 3 * k + 2


# --------------------------------------------------------------------------- exact policy


def test_exact_policy_matches_identical_stamps_only():
    p = ExactTimePolicy(3)
    arr = rig_arrivals(3, 6, missing={(2, 3)})
    arr.append((1, 6 * PERIOD + 1, (1, 6)))  # one nanosecond off: never an exact set
    arr += [(0, 6 * PERIOD, (0, 6)), (2, 6 * PERIOD, (2, 6))]
    arr += [(i, 7 * PERIOD, (i, 7)) for i in range(3)]
    sets = feed(p, arr) + p.flush()
    assert [s[0][1] for s in sets] == [0, 1, 2, 4, 5, 7]
    assert all(s.span_ns == 0 for s in sets)
    assert p.slop == 0.0
    assert_accounting(p)


def test_exact_policy_tolerates_reordering_inside_a_stream():
    arr = rig_arrivals(2, 5)
    a, b = arr.index((1, 2 * PERIOD, (1, 2))), arr.index((1, 3 * PERIOD, (1, 3)))
    arr[a], arr[b] = arr[b], arr[a]
    p = ExactTimePolicy(2)
    assert [s[0][1] for s in feed(p, arr) + p.flush()] == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------------------ properties


@st.composite
def scenarios(draw, n_max=8):
    n = draw(st.integers(1, n_max))
    frames = draw(st.integers(1, 40))
    jitter_max = draw(st.sampled_from([0, ms(1), ms(4)]))
    drop_p = draw(st.sampled_from([0.0, 0.1, 0.3]))
    reorder_p = draw(st.sampled_from([0.0, 0.1, 0.3]))
    dup_p = draw(st.sampled_from([0.0, 0.05]))
    seed = draw(st.integers(0, 2 ** 16))
    return n, frames, jitter_max, drop_p, reorder_p, dup_p, seed


def build(n, frames, jitter_max, drop_p, reorder_p, dup_p, seed, delay=0):
    """Arrivals (stream, stamp ns, (stream, frame, serial)) of a jittered, lossy rig whose
    neighbouring messages are swapped with probability reorder_p (a stream's frame t+1 may
    arrive before its frame t), that arrive after a random delay of up to `delay` ns, and are
    repeated with probability dup_p."""
    rng = random.Random(seed)
    missing = {(i, k) for i in range(n) for k in range(frames) if rng.random() < drop_p}
    jit = {(i, k): rng.randint(-jitter_max, jitter_max) for i in range(n) for k in range(frames)}
    arr = rig_arrivals(n, frames, jitter=lambda i, k: jit[i, k], missing=missing)
    arr = [(s, t, (s, k, c)) for c, (s, t, (_, k)) in enumerate(arr)]
    idx = 0
    while idx < len(arr) - 1:  # swap neighbours (each message moves at most one place)
        if rng.random() < reorder_p:
            arr[idx], arr[idx + 1] = arr[idx + 1], arr[idx]
            idx += 1
        idx += 1
    if delay:  # transport delay: arrival = stamp + uniform(0, delay)
        arr.sort(key=lambda a: a[1] + rng.randint(0, delay))
    out = []
    for a in arr:
        out.append(a)
        if rng.random() < dup_p:
            out.append((a[0], a[1], (a[2][0], a[2][1], -1 - a[2][2])))
    return out, missing


def check_invariants(p: ApproximateTimePolicy, sets: list[SyncedSet], n: int, slop: int) -> None:
    seen = set()
    last_per_stream = [float("-inf")] * n
    last_stamp = float("-inf")
    for s in sets:
        assert len(s) == n and not s.missing
        assert s.span_ns <= slop                                    # span within slop
        for i, (item, stamp) in enumerate(zip(s, s.stamps)):
            assert item[0] == i                                     # stream order
            assert item not in seen                                 # no item twice
            seen.add(item)
            assert stamp > last_per_stream[i]                       # time order per stream
            last_per_stream[i] = stamp
        assert s.stamp > last_stamp                                 # sets in time order
        last_stamp = s.stamp
    assert_accounting(p)                                            # every drop counted
    assert sum(x.matched for x in p.stats.streams) == n * len(sets)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from([0.005, 0.012, 0.02]), st.integers(2, 12),
       st.sampled_from(["auto", 0.0, 0.05]))
def test_sync_properties_hold_under_jitter_drops_reordering(scenario, slop, queue_size, reorder):
    arrivals, _ = build(*scenario)
    p = ApproximateTimePolicy(scenario[0], queue_size=queue_size, slop=slop,
                              reorder_window=reorder)
    sets = feed(p, arrivals) + p.flush()
    check_invariants(p, sets, scenario[0], ns_from_seconds(slop))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 8), st.integers(1, 40), st.sampled_from([0, ms(1), ms(3)]),
       st.sampled_from([0.0, 0.1]), st.sampled_from([0.0, 0.1, 0.3]),
       st.sampled_from([0.0, 0.05]), st.integers(0, 2 ** 16))
def test_sync_finds_every_set_the_reference_matcher_finds(n, frames, jitter_max, drop_p,
                                                          reorder_p, dup_p, seed):
    # slop = 2 jitter + margin < period - 2 jitter: a set within slop is one frame of each camera
    arrivals, missing = build(n, frames, jitter_max, drop_p, reorder_p, dup_p, seed)
    slop = 2 * jitter_max + ms(1)
    reference = reference_sets(n, arrivals, slop, queue_size=20)
    p = ApproximateTimePolicy(n, queue_size=20, slop=slop / 1e9)
    sets = feed(p, arrivals) + p.flush()
    check_invariants(p, sets, n, slop)
    ours = {s[0][1] for s in sets}
    for ref in reference:
        assert len({item[1] for item in ref}) == 1                  # the reference is right too
        assert ref[0][1] in ours, (ref, sorted(ours))
    complete = {k for k in range(frames) if all((i, k) not in missing for i in range(n))}
    assert ours == complete                                         # and nothing else


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 8), st.integers(1, 30), st.sampled_from([0, ms(2)]),
       st.sampled_from([0.0, 0.1]), st.sampled_from([PERIOD // 2, 2 * PERIOD, 3 * PERIOD]),
       st.integers(0, 2 ** 16))
def test_sync_loses_no_set_to_transport_delays_within_the_reorder_window(n, frames, jitter_max,
                                                                         drop_p, delay, seed):
    # every message arrives within `delay` of its stamp, so never more than `delay` after a
    # newer message of its stream: with reorder_window >= delay no set the reference finds is
    # lost, except a whole set overtaken by a later complete set (sets stay in time order: when
    # the later one is already out, every message of the older one is late)
    arrivals, missing = build(n, frames, jitter_max, drop_p, 0.0, 0.0, seed, delay=delay)
    slop = 2 * jitter_max + ms(1)
    p = ApproximateTimePolicy(n, queue_size=40, slop=slop / 1e9, reorder_window=delay / 1e9)
    sets = feed(p, arrivals) + p.flush()
    check_invariants(p, sets, n, slop)
    complete = {k for k in range(frames) if all((i, k) not in missing for i in range(n))}
    arrived = {}
    for idx, (_, _, (_, k, _)) in enumerate(arrivals):
        arrived.setdefault(k, []).append(idx)
    overtaken = {k for k in complete
                 if any(k2 > k and max(arrived[k2]) < min(arrived[k]) for k2 in complete)}
    ours = {s[0][1] for s in sets}
    assert {ref[0][1] for ref in reference_sets(n, arrivals, slop, queue_size=40)} - overtaken <= ours
    assert complete - overtaken <= ours <= complete


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 8), st.integers(1, 30), st.sampled_from([0.0, 0.2]),
       st.sampled_from([0.0, 0.1, 0.3]), st.sampled_from([0.0, 0.05]), st.integers(0, 2 ** 16))
def test_exact_policy_finds_every_complete_stamp_under_loss_swaps_and_duplicates(
        n, frames, drop_p, reorder_p, dup_p, seed):
    arrivals, missing = build(n, frames, 0, drop_p, reorder_p, dup_p, seed)
    p = ExactTimePolicy(n, queue_size=20)
    sets = feed(p, arrivals) + p.flush()
    check_invariants(p, sets, n, 0)
    reference = reference_sets(n, arrivals, 0, queue_size=20)
    ours = [s[0][1] for s in sets]
    assert {ref[0][1] for ref in reference} <= set(ours)
    assert ours == sorted(k for k in range(frames) if all((i, k) not in missing for i in range(n)))
