"""The synchroniser: policy choice, static time offsets, clock drift detection and auto_offset
(core.synchronizer), all configured by SyncConfig."""
from __future__ import annotations

import dataclasses
import random

import pytest

from wint3r_ros.core.sync import ExactTimePolicy
from wint3r_ros.core.synchronizer import SyncConfig, Synchronizer
from wint3r_ros.errors import ConfigError, SyncError

MS = 1_000_000
PERIOD = 33_333_333
BASE = 1_700_000_000 * 10**9  # epoch stamps: exact integer ns all the way


def rig(n: int, seconds: float, *, drift_cam: int | None = None, drift: float = 0.0,
        offsets=None, jitter: int = MS, seed: int = 0):
    """Arrivals of an n-camera 30 Hz rig (in stamp order): camera `drift_cam` stamps drift
    by `drift` s/s from 0; offsets: constant ns per camera."""
    rng = random.Random(seed)
    arr = []
    for k in range(int(seconds * 30)):
        t = k * PERIOD
        for i in range(n):
            s = BASE + t + rng.randint(-jitter, jitter) + (offsets[i] if offsets else 0)
            if i == drift_cam:
                s += int(drift * t)
            arr.append((i, s, (i, k)))
    arr.sort(key=lambda a: a[1])
    return arr


def run(sync: Synchronizer, arrivals, watch: int | None = None):
    """Feed everything; return the sets and, per emitted set, (seconds since the start,
    clock report of camera `watch`)."""
    sets, reports = [], []
    for cam, stamp, item in arrivals:
        out = sync.add(cam, stamp, item)
        sets += out
        if watch is not None:
            for s in out:
                reports.append(((s.aligned_stamp - BASE) / 1e9, sync.clock_report(watch)))
    return sets + sync.flush(), reports


def frames_of(sets):
    out = []
    for s in sets:
        ks = {item[1] for item in s}
        assert len(ks) == 1, s  # one frame of every camera
        out.append(ks.pop())
    return out


def test_synchronizer_drift_is_detected_within_10_s_and_auto_offset_keeps_every_set():
    # camera 2 drifts +2 ms per second for 60 s at 30 Hz; slop 10 ms, jitter +-1 ms
    arrivals = rig(4, 60, drift_cam=2, drift=0.002)
    fixed = Synchronizer([f"cam{i}" for i in range(4)], SyncConfig(slop=0.01))
    sets, reports = run(fixed, arrivals, watch=2)
    correct = [s for s in sets if len({item[1] for item in s}) == 1]
    assert len(correct) < 300   # the fixed slop loses the true sets after ~4 s (later it pairs
    #                             camera 2's frame k - 1, k - 2, ... with the others' frame k)
    detected = [t for t, r in reports if r["state"] in ("drifting", "near_slop")]
    assert detected and detected[0] < 10.0
    warnings = [e for e in fixed.events() if e.kind == "clock_warning"]
    assert warnings[0].stream == 2 and "cam2" in warnings[0].detail
    assert warnings[0].stamp_ns < correct[-1].aligned_stamp  # warned before the sets stopped

    auto = Synchronizer([f"cam{i}" for i in range(4)], SyncConfig(slop=0.01, auto_offset=True))
    sets, reports = run(auto, arrivals, watch=2)
    assert frames_of(sets) == list(range(1800))  # every set, to the end
    detected = [t for t, r in reports if r["state"] == "drifting"]
    assert detected and detected[0] < 10.0
    after = [r for t, r in reports if t >= 10.0]
    assert all(r["drift"] == pytest.approx(0.002, rel=0.10) for r in after)
    last = auto.clock_report(2)
    assert last["offset_s"] == pytest.approx(0.002 * 60, abs=0.002)
    assert last["correction_s"] == pytest.approx(0.12, abs=0.002)
    assert not [e for e in auto.events() if e.kind == "clock_warning"]
    for cam in (0, 1, 3):                    # steady cameras are never reported drifting
        assert auto.clock_report(cam)["state"] == "ok"
    stats = auto.stats.as_dict()
    assert stats["clock"][2]["drift_ppm"] == pytest.approx(2000, rel=0.1)


def test_synchronizer_static_offsets_align_cameras_and_outputs_keep_source_stamps():
    arrivals = rig(3, 2, offsets=[0, 30 * MS, -25 * MS], jitter=0)
    names = ["a", "b", "c"]
    plain = Synchronizer(names, SyncConfig(slop=0.005))
    assert run(plain, arrivals)[0] == []
    # Kalibr's timeshift_cam_imu: t_rig = t_cam + shift
    shifted = Synchronizer(names, SyncConfig(slop=0.005, time_offsets=(0.0, -0.03, 0.025)))
    sets, _ = run(shifted, arrivals)
    assert frames_of(sets) == list(range(60))
    assert sets[5].stamps == (BASE + 5 * PERIOD, BASE + 5 * PERIOD + 30 * MS,
                              BASE + 5 * PERIOD - 25 * MS)
    assert len(set(sets[5].aligned)) == 1
    report = shifted.stats.clock
    assert [r["time_offset_s"] for r in report] == [0.0, -0.03, 0.025]
    assert all(r["offset_s"] == 0.0 and r["state"] == "ok" for r in report)


def test_synchronizer_reports_a_constant_offset_near_the_slop():
    arrivals = rig(3, 3, offsets=[0, 0, 8 * MS], jitter=0)
    sync = Synchronizer(["a", "b", "c"], SyncConfig(slop=0.01))
    sets, _ = run(sync, arrivals)
    assert len(sets) == 90
    report = sync.clock_report(2)
    assert report["offset_s"] == pytest.approx(0.008) and report["state"] == "near_slop"
    events = sync.events()
    assert [(e.kind, e.stream) for e in events] == [("clock_warning", 2)]
    assert "+8.00 ms" in events[0].detail
    assert sync.stats.events["clock_warning"] == 1
    sync.policy.slop = 0.03  # a live change of the slop (ros2 param set) moves the warning level
    run(sync, [(c, s + 3 * 10**9, it) for c, s, it in arrivals])
    assert sync.clock_report(2)["state"] == "ok"
    assert [e.kind for e in sync.events()] == ["clock_ok"]


def test_synchronizer_exact_policy_for_triggered_rigs():
    sync = Synchronizer(["a", "b"], SyncConfig(sync_policy="exact"))
    assert isinstance(sync.policy, ExactTimePolicy)
    sets, _ = run(sync, rig(2, 1, jitter=0))
    assert frames_of(sets) == list(range(30))
    jittered = Synchronizer(["a", "b"], SyncConfig(sync_policy="exact"))
    assert run(jittered, rig(2, 1, jitter=MS, seed=1))[0] == []


def test_synchronizer_forgets_clock_samples_after_a_time_jump():
    sync = Synchronizer(["a", "b"], SyncConfig(slop=0.01))
    run(sync, rig(2, 3, offsets=[0, 4 * MS], jitter=0))
    assert sync.clock_report(1)["offset_s"] == pytest.approx(0.002)
    sync.add(0, BASE - 10 * 10**9, "restart")
    assert sync.clock_report(1)["samples"] == 0 and sync.clock_report(1)["state"] == "unknown"


def test_sync_config_refuses_bad_values_by_name():
    for bad, match in [({"sync_policy": "nearest"}, "sync_policy"), ({"slop": -1.0}, "slop"),
                       ({"queue_size": 0}, "queue_size"), ({"reorder_window": -0.1}, "reorder_window"),
                       ({"time_offsets": [0.0]}, "time_offsets"), ({"min_cameras": -1}, "min_cameras"),
                       ({"offset_warn_fraction": 0.0}, "offset_warn_fraction"),
                       ({"sync_policy": "exact", "auto_offset": True}, "auto_offset")]:
        with pytest.raises(ConfigError, match=match):
            SyncConfig(**bad)
    with pytest.raises(ConfigError, match="time_offsets has 1 values for 2 cameras"):
        Synchronizer(["a", "b"], SyncConfig(time_offsets=(0.0,)))
    with pytest.raises(ConfigError, match="min_cameras=3"):
        Synchronizer(["a", "b"], SyncConfig(min_cameras=3))
    assert dataclasses.replace(SyncConfig(), slop=0.03).slop == 0.03
    sync = Synchronizer(["a", "b"], SyncConfig(auto_offset=True))
    with pytest.raises(SyncError, match="stream index 2"):
        sync.add(2, 0, None)
    with pytest.raises(SyncError, match="stream index 'a'"):
        sync.add("a", 0, None)
    with pytest.raises(SyncError, match="integer nanoseconds"):
        sync.add(0, 0.5, None)


def test_synchronizer_names_the_offset_of_a_camera_beyond_the_slop():
    # camera 2 stamps 15 ms late: no set ever matches, so the set-based fit has nothing; the
    # phase of its stamps against the others' says what offset would fix it
    names = ["a", "b", "c"]
    sync = Synchronizer(names, SyncConfig(slop=0.01))
    sets, _ = run(sync, rig(3, 4, offsets=[0, 0, 15 * MS]))
    assert sets == []
    report = sync.clock_report(2)
    assert report["state"] == "no_sets" and report["offset_s"] is None
    assert report["phase_offset_s"] == pytest.approx(0.015, abs=0.002)
    assert sync.clock_report(0)["phase_offset_s"] == pytest.approx(0.0, abs=0.002)  # the rig
    warnings = [e for e in sync.events() if e.kind == "clock_warning"]
    assert [e.stream for e in warnings] == [2] and "add -0.01" in warnings[0].detail
    fixed = Synchronizer(names, SyncConfig(slop=0.01, time_offsets=(0.0, 0.0, -0.015)))
    assert frames_of(run(fixed, rig(3, 4, offsets=[0, 0, 15 * MS]))[0]) == list(range(120))
    assert fixed.clock_report(2)["phase_offset_s"] is None


def test_synchronizer_phase_probe_names_only_the_camera_out_of_phase():
    names = ["a", "b", "c", "d"]
    sync = Synchronizer(names, SyncConfig(slop=0.01))
    assert run(sync, rig(4, 4, offsets=[0, -15 * MS, 0, 0], jitter=0))[0] == []
    reports = [sync.clock_report(i) for i in range(4)]
    assert [r["state"] for r in reports] == ["no_sets"] * 4
    assert reports[1]["phase_offset_s"] == pytest.approx(-0.015, abs=0.001)
    assert all(abs(reports[i]["phase_offset_s"]) < 0.001 for i in (0, 2, 3))
    assert [(e.kind, e.stream) for e in sync.events()] == [("clock_warning", 1)]


def test_synchronizer_degraded_rig_leaves_a_camera_out_of_phase_out_and_takes_it_back():
    # camera 1's clock jumps 15 ms (beyond the 10 ms slop) for frames 60..209, then returns
    arr = []
    for k in range(300):
        for i in range(4):
            shift = -15 * MS if i == 1 and 60 <= k < 210 else 0
            arr.append((i, BASE + k * PERIOD + shift, (i, k)))
    arr.sort(key=lambda a: a[1])
    sync = Synchronizer(["a", "b", "c", "d"], SyncConfig(slop=0.01, min_cameras=3))
    sets, _ = run(sync, arr)
    assert all(len({x[1] for x in s if x is not None}) == 1 for s in sets)  # right frames only
    degraded = [s[0][1] for s in sets if s.missing == (1,)]
    full = [s[0][1] for s in sets if not s.missing]
    assert degraded and 60 < degraded[0] < 130        # within ~2.5 s of the jump
    assert full[:60] == list(range(60)) and full[-1] == 299 and full[60] < 240
    kinds = [(e.kind, e.stream) for e in sync.events()]
    assert ("stream_silent", 1) in kinds and ("stream_recovered", 1) in kinds
    assert kinds.count(("clock_warning", 1)) == 1 and kinds.count(("clock_ok", 1)) == 1
    assert [k for k in kinds if k[0].startswith("clock")] == [("clock_warning", 1), ("clock_ok", 1)]
    stats = sync.stats
    assert stats.streams[1].dropped["out_of_phase"] > 0 and sync.policy.excluded_streams == []
    # without min_cameras the rig waits for the camera instead (no sets while it is off)
    strict = Synchronizer(["a", "b", "c", "d"], SyncConfig(slop=0.01))
    frames = frames_of(run(strict, arr)[0])
    assert frames == list(range(60)) + list(range(210, 300))


def test_synchronizer_cameras_at_different_rates_match_at_the_slowest_and_keep_their_clocks():
    # cam0 at 30 Hz, cam1 and cam2 at 15 Hz (every other frame); cam2 drifts +1 ms/s
    rng = random.Random(4)
    arr = []
    for k in range(30 * 20):
        t = k * PERIOD
        for i in range(3):
            if i and k % 2:
                continue
            s = BASE + t + rng.randint(-MS // 2, MS // 2) + (int(0.001 * t) if i == 2 else 0)
            arr.append((i, s, (i, k)))
    arr.sort(key=lambda a: a[1])
    sync = Synchronizer(["fast", "slow", "drifting"], SyncConfig(slop=0.01, auto_offset=True))
    sets, _ = run(sync, arr)
    assert frames_of(sets) == list(range(0, 600, 2))        # 15 Hz: the slowest camera's rate
    assert sync.stats.streams[0].dropped["no_match"] == 299  # the fast camera's odd frames
    fast, slow, drifting = (sync.clock_report(i) for i in range(3))
    assert drifting["drift"] == pytest.approx(0.001, rel=0.1) and drifting["state"] == "drifting"
    assert fast["state"] == slow["state"] == "ok"
