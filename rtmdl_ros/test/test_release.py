"""Release on arrival: the gate by source stamp, and the stage trace of the runtime."""
import math
import time
import numpy as np

import pytest

from rtmdl_ros.core.release import ADMIT, STALE, TOO_SOON, ReleaseGate
from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import TaskParams
from rtmdl_ros.core.trace import STAGES, stage_durations

import waiting


def test_gate_decimates_a_faster_sensor_by_stamp():
    gate = ReleaseGate(60.0)                       # sign at 15 Hz from a 30 fps camera
    frames = [k * 1000.0 / 30 for k in range(12)]
    admitted = [t for t in frames if gate.admit(t)]
    assert admitted == frames[::2]
    assert gate.counts == {ADMIT: 6, TOO_SOON: 6, STALE: 0}


def test_gate_tolerates_stamp_jitter_under_the_gap_and_refuses_repeats():
    gate = ReleaseGate(30.0)                       # traffic light, 30 fps camera, 10 % tolerance
    stamps = [0.0, 31.5, 65.0, 96.0, 96.0, 90.0, 100.0, 129.0]
    verdicts = [gate.check(t) for t in stamps]
    assert verdicts == [ADMIT, ADMIT, ADMIT, ADMIT, STALE, STALE, TOO_SOON, ADMIT]
    assert gate.held_back == 3


def test_gate_starts_over_when_the_source_restarts():
    gate = ReleaseGate(30.0, restart_after_ms=1000.0)
    assert gate.admit(50_000.0)
    assert not gate.admit(49_500.0)                # a little back: out of order
    assert gate.admit(100.0)                       # far back: a looped bag or restarted driver
    assert not gate.admit(110.0)


def test_gate_rejects_a_non_positive_gap():
    with pytest.raises(ValueError, match='min_gap_ms'):
        ReleaseGate(0.0)


def test_stage_durations_are_consecutive_differences():
    marks = [0.0, 0.002, 0.0025, 0.004, 0.005, 0.007, 0.007, 0.010, 0.011, 0.0115, 0.012]
    d = stage_durations(marks)
    assert len(d) == len(STAGES)
    assert sum(d) == pytest.approx(12.0)
    assert d[0] == pytest.approx(2.0) and d[-1] == pytest.approx(0.5)
    partial = stage_durations(marks[:6] + [None] * 5)
    assert math.isnan(partial[5]) and not math.isnan(partial[4])


def _sleep_segments(pre_s=0.002, infer_s=0.003, post_s=0.001):
    return Segments(pre=lambda p, v: time.sleep(pre_s) or p, infer=lambda v, lane, x: time.sleep(infer_s) or x,
                    post=lambda y, raw, v: time.sleep(post_s) or y)


def test_trace_stages_add_up_to_the_response_from_the_stamp():
    published = []

    def publish(report):
        time.sleep(0.001)                          # the publish is inside the job's post segment
        published.append(report)
    rt = Runtime({'a': TaskParams(0, 1000.0, 'v')}, {'a': _sleep_segments()}, 1, 1, on_result=publish,
                 keep_traces=100)
    rt.start()
    try:
        now = time.monotonic()
        stamp, node_rx, node_tx = now - 0.020, now - 0.015, now - 0.012
        assert rt.submit('a', 'x', origin_s=stamp, path_marks=[stamp, node_rx, node_tx])
        assert waiting.wait_for(lambda: rt.stats('a').total_jobs == 1)
    finally:
        rt.stop()
    (trace,) = rt.drain_traces()
    assert trace.outcome == 'met'
    stages = dict(zip(STAGES, trace.stages_ms))
    assert stages['sensor'] == pytest.approx(5.0, abs=0.01) and stages['node'] == pytest.approx(3.0, abs=0.01)
    assert stages['pre'] >= 2.0 and stages['infer'] >= 3.0 and stages['post'] >= 1.0 and stages['publish'] >= 1.0
    assert all(x >= 0 for x in trace.stages_ms)
    st = rt.stats('a')
    # The window's response counts from the stamp to the end of the publish: the sum of the stages.
    assert st.p50_ms == pytest.approx(trace.response_ms, abs=1e-6)
    assert trace.response_ms >= 20.0 + 7.0 and published[0].origin_s == pytest.approx(stamp)
    assert st.stage_p99_ms[STAGES.index('sensor')] == pytest.approx(5.0, abs=0.01)


def test_deadline_counts_from_the_stamp():
    rt = Runtime({'a': TaskParams(0, 10.0, 'v')}, {'a': _sleep_segments()}, 1, 1, keep_traces=10)
    rt.start()
    try:
        old = time.monotonic() - 0.050             # a frame 50 ms old: past its 10 ms deadline on arrival
        rt.submit('a', 'x', origin_s=old)
        assert waiting.wait_for(lambda: rt.stats('a').total_jobs == 1)
    finally:
        rt.stop()
    assert rt.stats('a').total_missed == 1
    (trace,) = rt.drain_traces()
    assert trace.outcome == 'dropped' and math.isnan(trace.response_ms)
    assert trace.stages_ms[STAGES.index('transport')] == pytest.approx(50.0, abs=5.0)


def test_late_filled_path_marks_reach_the_trace():
    rt = Runtime({'a': TaskParams(0, 1000.0, 'v')}, {'a': _sleep_segments(0.02)}, 1, 1, keep_traces=10)
    rt.start()
    try:
        now = time.monotonic()
        marks = [now - 0.010, None, None]          # the task node's timing arrives after the job
        rt.submit('a', 'x', origin_s=marks[0], path_marks=marks)
        marks[1], marks[2] = now - 0.006, now - 0.004
        assert waiting.wait_for(lambda: rt.stats('a').total_jobs == 1)
    finally:
        rt.stop()
    (trace,) = rt.drain_traces()
    assert trace.stages_ms[0] == pytest.approx(4.0, abs=0.01) and trace.stages_ms[1] == pytest.approx(2.0, abs=0.01)


def _fifo_allowed() -> bool:
    import os
    import threading
    result = []

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            result.append(True)
        except (AttributeError, PermissionError, OSError):
            result.append(False)
    t = threading.Thread(target=probe)
    t.start()
    t.join()
    return result[0]


@pytest.mark.skipif(not _fifo_allowed(), reason='SCHED_FIFO needs CAP_SYS_NICE or an rtprio limit')
def test_watchdog_demotes_a_runaway_segment_and_restores_the_thread():
    import os
    import threading

    from rtmdl_ros.core.realtime import RealtimeConfig
    errors, policies = [], []

    def spin_pre(payload, variant):                 # a stuck model: 0.3 s of busy CPU
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        policies.append(os.sched_getscheduler(threading.get_native_id()))
        return payload
    seg = Segments(pre=spin_pre, infer=lambda v, lane, x: x, post=lambda y, raw, v: y)
    rt = Runtime({'a': TaskParams(0, 20.0, 'v')}, {'a': seg}, 1, 1, realtime=RealtimeConfig(priority=10),
                 on_error=lambda task, segment, exc: errors.append((task, segment, str(exc))))
    rt.start()
    try:
        rt.submit('a', 'x')
        assert waiting.wait_for(lambda: rt.stats('a').total_jobs == 1, 5.0)
        assert waiting.wait_for(lambda: rt.watchdog.demotions == 1, 1.0)
    finally:
        rt.stop()
    assert errors and errors[0][:2] == ('a', 'pre') and 'runaway' in errors[0][2]
    assert policies == [os.SCHED_OTHER]             # it finished its segment at normal priority
    assert not rt.realtime.problems


def test_whole_run_percentile_is_a_bin_edge_at_or_above_the_true_one():
    from rtmdl_ros.core.runtime import _ResponseHistogram
    h = _ResponseHistogram()
    values = np.random.default_rng(0).uniform(5.0, 30.0, 5000)
    for v in values:
        h.add(float(v))
    exact = float(np.percentile(values, 99, method='higher'))
    assert exact <= h.percentile(99) <= exact + h.BIN_MS + 1e-9
    h.add(5000.0)                                     # beyond the bins: the worst is kept
    assert h.percentile(100) == 5000.0 and _ResponseHistogram().percentile(99) is None
