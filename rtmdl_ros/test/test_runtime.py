"""The runtime scheduler on real threads (issue #4): the same rules as the
simulator, asserted through the order and outcome of jobs, not through timing."""
import contextlib
import threading
import time

import pytest

from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import TaskParams

from waiting import wait_for


class Recorder:
    """Segments that sleep a given time and log (task, segment, variant, lane, start, end)."""

    def __init__(self, pre_s=0.0, infer_s=0.0, post_s=0.0, fail_on=None):
        self.times = {'pre': pre_s, 'infer': infer_s, 'post': post_s}
        self.log = []
        self.started = []
        self.lock = threading.Lock()
        self.fail_on = fail_on

    def _run(self, task, seg, variant, lane, payload):
        t0 = time.monotonic()
        self.started.append((task, seg, payload))
        if self.fail_on is not None and self.fail_on(payload):
            raise ValueError(f'bad payload {payload!r}')
        time.sleep(self.times[seg])
        with self.lock:
            self.log.append((task, seg, variant, lane, t0, time.monotonic(), payload))

    def segments(self, task):
        def pre(payload, variant):
            self._run(task, 'pre', variant, None, payload)
            return payload

        def infer(variant, lane, x):
            self._run(task, 'infer', variant, lane, x)
            return x

        def post(y, payload, variant):
            self._run(task, 'post', variant, None, payload)
            return ('result', payload)
        return Segments(pre, infer, post)


@contextlib.contextmanager
def running(rt):
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture
def reports():
    out = []
    lock = threading.Lock()

    def sink(r):
        with lock:
            out.append(r)
    sink.items = out
    return sink


def test_jobs_complete_with_results_and_response_accounting(reports):
    rec = Recorder(0.002, 0.003, 0.001)
    rt = Runtime({'a': TaskParams(0, 1000.0, 'v1')}, {'a': rec.segments('a')}, 2, 1, on_result=reports)
    with running(rt):
        for k in range(5):
            assert rt.submit('a', k)
            assert wait_for(lambda: len(reports.items) == k + 1)
    assert [r.payload for r in reports.items] == list(range(5))
    assert all(r.result == ('result', r.payload) and r.deadline_met for r in reports.items)
    for r in reports.items:
        assert r.exec_ms >= 6.0 - 0.5 and r.response_ms >= r.exec_ms
    s = rt.stats('a')
    assert (s.jobs, s.missed, s.total_jobs) == (5, 0, 5) and s.p50_ms is not None


def test_a_finished_job_builds_no_new_task_log(reports, monkeypatch):
    # Each task log holds a 40,001-bin histogram: one per task, not one per job.
    from rtmdl_ros.core import runtime
    made = []
    original = runtime._TaskLog.__init__

    def counted(self):
        made.append(1)
        original(self)
    rec = Recorder(0.001, 0.001, 0.001)
    rt = Runtime({'a': TaskParams(0, 1000.0, 'v1')}, {'a': rec.segments('a')}, 1, 1, on_result=reports)
    monkeypatch.setattr(runtime._TaskLog, '__init__', counted)
    with running(rt):
        for k in range(3):
            assert rt.submit('a', k)
            assert wait_for(lambda: len(reports.items) == k + 1)
    assert made == [] and rt.stats('a').total_jobs == 3


def test_most_urgent_ready_segment_runs_first(reports):
    rec = Recorder(0.03, 0.001, 0.001)
    tasks = {'low': TaskParams(2, 5000.0, 'v'), 'mid': TaskParams(1, 5000.0, 'v'), 'high': TaskParams(0, 5000.0, 'v')}
    rt = Runtime(tasks, {t: rec.segments(t) for t in tasks}, 1, 1, on_result=reports)
    with running(rt):
        rt.submit('low', 'first')                       # occupies the only CPU worker
        assert wait_for(lambda: ('low', 'pre', 'first') in rec.started)
        rt.submit('mid', 'm')
        rt.submit('high', 'h')
        assert wait_for(lambda: len(reports.items) >= 3)
    pres = [e[6] for e in rec.log if e[1] == 'pre']
    # The running job finishes its segment (non-preemptive), then high before mid.
    assert pres[0] == 'first'
    assert pres.index('h') < pres.index('m')


def test_cpu_and_gpu_segments_of_different_jobs_overlap():
    rec = Recorder(0.02, 0.05, 0.02)
    tasks = {'a': TaskParams(0, 5000.0, 'v'), 'b': TaskParams(1, 5000.0, 'v')}
    rt = Runtime(tasks, {t: rec.segments(t) for t in tasks}, 1, 1)
    with running(rt):
        rt.submit('a', 1)
        rt.submit('b', 2)
        assert wait_for(lambda: sum(e[1] == 'post' for e in rec.log) == 2)
    infer_a = next(e for e in rec.log if e[0] == 'a' and e[1] == 'infer')
    pre_b = next(e for e in rec.log if e[0] == 'b' and e[1] == 'pre')
    assert pre_b[4] < infer_a[5] and infer_a[4] < pre_b[5]      # intervals intersect


def test_variant_and_priority_changes_apply_from_the_next_job(reports):
    rec = Recorder(0.03, 0.001, 0.001)
    rt = Runtime({'a': TaskParams(0, 5000.0, 'small')}, {'a': rec.segments('a')}, 1, 1, on_result=reports)
    with running(rt):
        rt.submit('a', 1)
        assert wait_for(lambda: ('a', 'pre', 1) in rec.started)
        rt.configure('a', TaskParams(3, 5000.0, 'large'))   # job 1 is in flight
        assert wait_for(lambda: len(reports.items) == 1)
        rt.submit('a', 2)
        assert wait_for(lambda: len(reports.items) == 2)
    assert [(r.variant, r.priority) for r in reports.items] == [('small', 0), ('large', 3)]
    assert {e[2] for e in rec.log if e[6] == 1} == {'small'}


def test_a_failing_segment_is_counted_and_the_workers_keep_going(reports):
    errors = []
    rec = Recorder(0.001, 0.001, 0.001, fail_on=lambda p: p == 'bad')
    rt = Runtime({'a': TaskParams(0, 5000.0, 'v')}, {'a': rec.segments('a')}, 1, 1, on_result=reports,
                 on_error=lambda task, seg, exc: errors.append((task, seg, str(exc))))
    with running(rt):
        rt.submit('a', 'bad')
        assert wait_for(lambda: errors)
        rt.submit('a', 'good')
        assert wait_for(lambda: reports.items)
    assert errors == [('a', 'pre', "bad payload 'bad'")]
    assert [r.payload for r in reports.items] == ['good']
    s = rt.stats('a')
    assert (s.failed, s.missed, s.jobs) == (1, 1, 2)


def test_late_jobs_are_dropped_at_the_next_segment_boundary(reports):
    rec = Recorder(0.05, 0.001, 0.001)
    rt = Runtime({'a': TaskParams(0, 20.0, 'v')}, {'a': rec.segments('a')}, 1, 1, on_result=reports)
    with running(rt):
        rt.submit('a', 1)
        assert wait_for(lambda: rt.stats('a').jobs == 1)
        time.sleep(0.05)
    assert reports.items == []                          # no result for a dropped job
    assert [e[1] for e in rec.log] == ['pre']           # inference never started
    assert rt.stats('a').dropped == 1


def test_replace_policy_supersedes_a_pending_job(reports):
    rec = Recorder(0.05, 0.001, 0.001)
    tasks = {'a': TaskParams(0, 5000.0, 'v'), 'b': TaskParams(1, 5000.0, 'v', on_overrun='replace')}
    rt = Runtime(tasks, {t: rec.segments(t) for t in tasks}, 1, 1, on_result=reports)
    with running(rt):
        rt.submit('a', 'busy')
        assert wait_for(lambda: ('a', 'pre', 'busy') in rec.started)
        rt.submit('b', 'old')
        rt.submit('b', 'new')                           # 'old' is still queued behind 'busy'
        assert wait_for(lambda: len(reports.items) == 2)
    assert sorted(r.payload for r in reports.items) == ['busy', 'new']
    assert rt.stats('b').dropped == 1


def test_unknown_task_is_rejected():
    rt = Runtime({'a': TaskParams(0, 10.0, 'v')}, {'a': Recorder().segments('a')}, 1, 1)
    with pytest.raises(KeyError):
        rt.submit('zzz', None)
