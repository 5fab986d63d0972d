"""The job life-cycle rules shared by the simulator and the runtime."""
from rtmdl_ros.core.scheduling import DROPPED, LATE, MET, REPLACED, SKIPPED, Scheduler, TaskParams


def make(**tasks):
    events = []
    sched = Scheduler(tasks, lambda task, outcome, job, now: events.append((task, outcome, now)))
    return sched, events


def run_segment(sched, resource, now):
    job = sched.pop_ready(resource, now)
    assert job is not None
    return job


def test_ready_queue_orders_by_priority_then_release():
    sched, _ = make(a=TaskParams(1, 50, 'v'), b=TaskParams(0, 50, 'v'), c=TaskParams(1, 50, 'v'))
    sched.release('a', 0.0)
    sched.release('c', 1.0)
    sched.release('b', 2.0)
    assert [sched.pop_ready('cpu', 3.0).task for _ in range(3)] == ['b', 'a', 'c']


def test_job_walks_pre_infer_post_and_meets_deadline():
    sched, events = make(a=TaskParams(0, 10, 'v'))
    job = sched.release('a', 0.0)
    assert run_segment(sched, 'cpu', 0.0) is job
    assert sched.finish_segment(job, 1.0) == 'ready' and job.resource == 'gpu'
    assert run_segment(sched, 'gpu', 1.0) is job
    sched.finish_segment(job, 5.0)
    assert run_segment(sched, 'cpu', 5.0) is job
    assert sched.finish_segment(job, 10.0) == 'done'
    assert events == [('a', MET, 10.0)]


def test_late_job_is_dropped_at_the_next_boundary():
    sched, events = make(a=TaskParams(0, 10, 'v'))
    job = sched.release('a', 0.0)
    run_segment(sched, 'cpu', 0.0)
    assert sched.finish_segment(job, 11.0) == 'dropped'      # pre ran past the deadline
    assert sched.pop_ready('gpu', 11.0) is None
    assert events == [('a', DROPPED, 11.0)]


def test_last_segment_ending_late_completes_as_late():
    sched, events = make(a=TaskParams(0, 10, 'v'))
    job = sched.release('a', 0.0)
    for resource, end in (('cpu', 1.0), ('gpu', 2.0), ('cpu', 12.0)):
        run_segment(sched, resource, job.segment_start or 0.0)
        sched.finish_segment(job, end)
    assert events == [('a', LATE, 12.0)]


def test_queued_job_past_deadline_is_dropped_not_started():
    sched, events = make(a=TaskParams(0, 10, 'v'), b=TaskParams(1, 5, 'v'))
    sched.release('b', 0.0)
    assert sched.pop_ready('cpu', 6.0) is None
    assert events == [('b', DROPPED, 6.0)]


def test_replace_supersedes_a_running_job_after_its_segment():
    sched, events = make(a=TaskParams(0, 10, 'v', on_overrun='replace'))
    old = sched.release('a', 0.0)
    run_segment(sched, 'cpu', 0.0)
    new = sched.release('a', 10.0)
    assert new is not None and events == [('a', REPLACED, 10.0)]
    assert sched.finish_segment(old, 12.0) == 'dropped'      # discarded, not counted twice
    assert sched.pop_ready('gpu', 12.0) is None
    assert run_segment(sched, 'cpu', 12.0) is new
    assert len(events) == 1


def test_replace_removes_a_queued_job():
    sched, events = make(a=TaskParams(0, 10, 'v'), hog=TaskParams(1, 100, 'v'))
    sched.release('a', 0.0)
    sched.release('a', 10.0)         # deadline 10 not yet passed: pending -> replaced
    assert events == [('a', REPLACED, 10.0)]
    assert sched.pop_ready('cpu', 10.0).release == 10.0
    assert sched.pop_ready('cpu', 10.0) is None


def test_skip_keeps_the_old_job_and_counts_the_skip():
    sched, events = make(a=TaskParams(0, 10, 'v', on_overrun='skip'))
    old = sched.release('a', 0.0)
    run_segment(sched, 'cpu', 0.0)
    assert sched.release('a', 10.0) is None
    assert events == [('a', SKIPPED, 10.0)]
    assert sched.active_job('a') is old


def test_parameter_change_applies_to_the_next_job_only():
    sched, _ = make(a=TaskParams(5, 10, 'small'), b=TaskParams(3, 10, 'v'))
    first = sched.release('a', 0.0)
    sched.configure('a', TaskParams(0, 20, 'large'))
    assert (first.priority, first.variant, first.deadline) == (5, 'small', 10.0)
    run_segment(sched, 'cpu', 0.0)
    sched.finish_segment(first, 1.0)
    second = sched.release('a', 30.0)
    assert (second.priority, second.variant, second.deadline) == (0, 'large', 50.0)
