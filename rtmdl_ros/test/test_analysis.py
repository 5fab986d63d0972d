"""Response-time and miss-rate bounds on sets small enough to check by hand."""
import math
from dataclasses import replace

import pytest

from rtmdl_ros.core.analysis import analyze, default_plan
from rtmdl_ros.core.plan import Assignment
from rtmdl_ros.core.taskset import taskset_from_dict


def task(period, pre, infer, post, deadline=None, miss=0.0, overrun='skip'):
    return {'period_ms': period, 'deadline_ms': deadline or period, 'max_miss_rate': miss, 'on_overrun': overrun,
            'variants': {'v': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': pre, 'infer_ms': infer, 'post_ms': post}}}


def bounds(tasks, cpu=1, lanes=1, slowdown=None, percentile=None):
    raw = {'platform': {'cpu_workers': cpu, 'gpu_lanes': lanes}, 'tasks': tasks}
    if slowdown:
        raw['platform']['gpu_slowdown'] = slowdown
    if percentile:
        raw['analysis'] = {'percentile': percentile}
    ts = taskset_from_dict(raw)
    return analyze(ts, default_plan(ts))


def test_hand_computed_two_tasks_one_worker_one_lane():
    # docs/analysis.md works this example out step by step.
    b = bounds({'A': task(20, 2, 5, 1), 'B': task(30, 3, 4, 2)})
    assert b['A'].response_bound_ms == pytest.approx(18.0)
    assert b['B'].response_bound_ms == pytest.approx(20.0)
    assert b['A'].miss_rate_bound == 0.0 and b['B'].miss_rate_bound == 0.0


def test_one_lower_job_blocks_a_job_once_per_segment_it_has():
    # B's jobs are 100 apart and dropped at 40: within A's 20 ms window at most one
    # B job can start its pre (3) and its post (2), so A's pre waits <= 3 and its
    # post <= 2 (per segment it would be 3 each: 18).
    b = bounds({'A': task(20, 2, 5, 1), 'B': task(100, 3, 4, 2, deadline=40)})
    assert b['A'].response_bound_ms == pytest.approx(2 + 3 + 4 + 5 + 2 + 1)
    # Jobs of B close enough together for two pre executions to land in A's window:
    b = bounds({'A': task(20, 2, 5, 1), 'B': task(30, 3, 4, 2)})
    assert b['A'].response_bound_ms == pytest.approx(18.0)


def test_job_level_blocking_never_charges_more_than_per_segment():
    from rtmdl_ros.core.analysis import job_blocking, segment_times
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1},
                            'tasks': {'A': task(20, 2, 5, 1), 'B': task(100, 3, 4, 2, deadline=40)}})
    a, b = ts.tasks['A'], ts.tasks['B']
    items = ((3.0, 100.0, 40.0, 3.0), (2.0, 100.0, 33.0, 2.0))
    assert job_blocking(a, segment_times(a, 'v', 100.0, ts.platform), items) == (3.0, 2.0)
    # An overrunning task's own superseded job counts once (T = inf).
    assert job_blocking(a, segment_times(a, 'v', 100.0, ts.platform), ((5.0, math.inf, 0.0, 5.0),)) == (5.0,)
    assert b.name == 'B'


def test_single_task_bound_is_its_own_work():
    assert bounds({'A': task(50, 2, 5, 1)})['A'].response_bound_ms == pytest.approx(8.0)


def test_second_cpu_worker_frees_the_urgent_task_after_the_shorter_blocker():
    # Two workers busy with B's pre (10) and C's pre (1): A's pre starts when C's ends.
    tasks = {'A': task(40, 2, 3, 1, deadline=20), 'B': task(100, 10, 1, 1), 'C': task(100, 1, 1, 1)}
    b = bounds(tasks, cpu=2)
    # pre: wait 1 (shorter blocker) + 2; infer: wait 1 (longest lp infer) + 3; post: wait 1 + 1.
    assert b['A'].response_bound_ms == pytest.approx(1 + 2 + 1 + 3 + 1 + 1)
    # The same set on one worker waits for the longest blocker each time.
    assert bounds(tasks, cpu=1)['A'].response_bound_ms == pytest.approx(10 + 2 + 1 + 3 + 10 + 1)


def test_busy_servers_wait_for_the_shorter_blocker_as_one_draw_and_a_free_one_costs_none():
    from rtmdl_ros.core.analysis import _wait
    # Both workers run lower segments bounded by 10 and 1: the wait passes 1 only if the
    # one bounded by 1 overran it (the other may overrun: a worker still frees at 1).
    assert _wait(2, (10.0, 1.0), (), 1e3) == (1.0, 1)
    # One lower segment for two workers: one is free, no wait whatever it runs, no draw.
    assert _wait(2, (10.0,), (), 1e3) == (0.0, 0)
    assert _wait(1, (10.0,), (), 1e3) == (10.0, 1)
    # With work above, every blocker can lengthen the wait: each stays a draw.
    assert _wait(2, (10.0, 1.0), ((2.0, 2.0, 50.0),), 1e3)[1] == 3


def test_gpu_packing_stretches_inference_by_the_slowdown_of_all_lanes():
    b = bounds({'A': task(50, 1, 10, 1)}, lanes=2, slowdown={2: 1.5})
    assert b['A'].response_bound_ms == pytest.approx(1 + 15 + 1)


def test_overload_gives_no_bound_and_a_miss_rate_of_one():
    # GPU demand 12 ms every 10 ms. Even the urgent task is blocked by the other's
    # non-preemptive segments: 1 + 1 (pre), 6 + 6 (infer), 1 + 1 (post).
    b = bounds({'A': task(10, 1, 6, 1), 'B': task(10, 1, 6, 1)})
    assert b['A'].response_bound_ms == pytest.approx(16.0)
    # A's overrunning jobs are dropped at their deadline, which caps its interference:
    # B still gets a (late) finite bound for the jobs that complete.
    assert 10.0 < b['B'].response_bound_ms < float('inf')
    assert b['A'].miss_rate_bound == 1.0 and b['B'].miss_rate_bound == 1.0 and not b['B'].meets_bound


def test_miss_rate_bound_from_the_percentile_union_bound():
    # 100 samples, one outlier: at p99 the job fits, at the worst sample it does not.
    infer = [5.0] * 99 + [50.0]
    b = bounds({'A': task(20, 1, infer, 1, miss=0.05)}, percentile=99)['A']
    assert b.response_bound_ms == pytest.approx(7.0)
    assert b.worst_response_bound_ms == pytest.approx(52.0)
    assert b.miss_rate_bound == pytest.approx(3 * 0.01)      # own three segments, no others
    assert b.meets_bound


def test_plan_priorities_not_the_default_order_are_respected():
    ts = taskset_from_dict({'platform': {}, 'tasks': {'A': task(20, 2, 5, 1), 'B': task(30, 3, 4, 2)}})
    swapped = analyze(ts, {'A': Assignment('v', 1), 'B': Assignment('v', 0)})
    assert swapped['B'].priority == 0
    assert swapped['B'].response_bound_ms < 20.0 < swapped['A'].response_bound_ms + 5


def _with_path(spec, path, origin='stamp', gap=None):
    spec = dict(spec, release_path_ms=path, deadline_from=origin)
    if gap is not None:
        spec['min_interarrival_ms'] = gap
    return spec


def test_release_path_offsets_the_response_and_its_spread_is_jitter():
    from rtmdl_ros.core.analysis import Analyzer
    from rtmdl_ros.core.taskset import taskset_from_dict
    # A alone above B on one worker + one lane; B's segments of 1 ms block each of A's once.
    tasks = {'A': _with_path(task(20, 1, 2, 1), [0.0, 4.0]), 'B': task(50, 1, 1, 1)}
    b = bounds(tasks)
    # path 4, then pre 4+1 (blocked) .. 6, infer 7 .. 9, post 10 .. 11: from the stamp.
    assert b['A'].response_bound_ms == pytest.approx(11.0)
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'tasks': tasks})
    an = Analyzer(ts)
    bound = an._bounds([('A', 'v'), ('B', 'v')], 100.0, frozenset())['A']
    # Latest starts 5, 7, 10 from the stamp; earliest 0, 1, 3 (best path 0): jitter 5, 6, 7.
    assert bound.interference(an.times('A', 'v', 100.0), 20.0) == [
        ('cpu', 1.0, 6.0, 20.0), ('gpu', 2.0, 8.0, 20.0), ('cpu', 1.0, 8.0, 20.0)]
    # A constant path shifts both latest and earliest starts: no extra jitter.
    tasks_c = {'A': _with_path(task(20, 1, 2, 1), 4.0), 'B': task(50, 1, 1, 1)}
    ts_c = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'tasks': tasks_c})
    an_c = Analyzer(ts_c)
    bound_c = an_c._bounds([('A', 'v'), ('B', 'v')], 100.0, frozenset())['A']
    assert bound_c.interference(an_c.times('A', 'v', 100.0), 20.0) == [
        ('cpu', 1.0, 2.0, 20.0), ('gpu', 2.0, 4.0, 20.0), ('cpu', 1.0, 4.0, 20.0)]


def test_deadline_from_release_leaves_the_path_out_of_the_response():
    tasks = {'A': _with_path(task(20, 1, 2, 1), [0.0, 4.0], origin='release'), 'B': task(50, 1, 1, 1)}
    assert bounds(tasks)['A'].response_bound_ms == pytest.approx(7.0)


def test_effective_deadline_is_the_next_possible_release():
    from rtmdl_ros.core.taskset import taskset_from_dict
    ts = taskset_from_dict({'tasks': {
        'cam': _with_path(task(33.3, 1, 1, 1), [2.0, 5.0], gap=30.0),
        'rel': _with_path(task(33.3, 1, 1, 1), [2.0, 5.0], origin='release', gap=30.0),
        'slow': _with_path(task(66.7, 1, 1, 1, deadline=50.0), [2.0, 5.0], gap=60.0)}})
    # The next stamp may come 30 ms later and reach the scheduler 2 ms after it.
    assert ts.tasks['cam'].effective_deadline_ms == pytest.approx(32.0)
    # From the release: the next one may come 30 - (5 - 2) ms after this one.
    assert ts.tasks['rel'].effective_deadline_ms == pytest.approx(27.0)
    assert ts.tasks['slow'].effective_deadline_ms == pytest.approx(50.0)


def test_min_interarrival_replaces_the_period_in_the_interference():
    # One worker. A's 3 ms pre may be blocked by B's 4 ms pre: latest start 4, span 3 + 4 = 7.
    a, b = task(10, 3, 0, 0), task(100, 4, 0, 0)
    # Period 10: over B's job window L, A's pres start floor((L + 7) / 10) + 1 times:
    # L = 4 + 2 * 3 = 10 (per segment it would be 16: the empty post waits 6 again).
    assert bounds({'A': a, 'B': b})['B'].response_bound_ms == pytest.approx(10.0)
    # Stamps 5 ms apart: floor((L + 7) / 5) + 1 -> 6 pres (18 ms): L = 4 + 18 = 22.
    assert bounds({'A': dict(a, min_interarrival_ms=5.0), 'B': b})['B'].response_bound_ms == pytest.approx(22.0)


def test_a_period_change_keeps_the_min_interarrival_ratio():
    from rtmdl_ros.core.taskset import taskset_from_dict, with_task_changes
    ts = taskset_from_dict({'tasks': {'cam': dict(task(40, 1, 1, 1), min_interarrival_ms=36.0)}})
    assert with_task_changes(ts, 'cam', period_ms=80.0).tasks['cam'].interarrival_ms == pytest.approx(72.0)
    assert with_task_changes(ts, 'cam', deadline_ms=20.0).tasks['cam'].interarrival_ms == pytest.approx(36.0)


def test_a_calibrated_top_turns_the_worst_case_into_a_union_term():
    from rtmdl_ros.core.analysis import SegmentBound, miss_rate_bound
    at_max = SegmentBound(response_ms=20.0, latest_start=(0, 0, 0), instances=10)
    at_p = SegmentBound(response_ms=15.0, latest_start=(0, 0, 0), instances=8)
    assert miss_rate_bound(at_p, at_max, 25.0, 99.5) == 0.0                      # profiled: the max is all there is
    assert miss_rate_bound(at_p, at_max, 25.0, 99.5, top=99.8) == pytest.approx(10 * 0.002)
    late = SegmentBound(response_ms=30.0, latest_start=(0, 0, 0), instances=10)
    assert miss_rate_bound(at_p, late, 25.0, 99.5, top=99.8) == pytest.approx(8 * 0.005)


def test_a_task_charged_others_at_their_worst_pays_only_its_own_draws_in_the_union():
    # B's own inference has a 1-in-100 outlier, so its worst-case bound misses; at p99 it
    # fits, but A's executions in its window count too: 9 draws x 1 % over B's 5 %.
    # Charging A's executions at their largest samples (the same: A's times are
    # constant) leaves B's own three draws at 1 % each in the union bound.
    from rtmdl_ros.core.analysis import Analyzer, SegmentBound, miss_rate_bound
    from rtmdl_ros.core.simulator import simulate
    tasks = {'A': task(10, 1, 2, 1), 'B': task(50, 1, [5.0] * 99 + [50.0], 1, deadline=20, miss=0.05)}
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'analysis': {'percentile': 99},
                            'tasks': tasks})
    order = [('A', 'v'), ('B', 'v')]
    at_p, at_max = Analyzer(ts).final_bounds(order)
    assert at_max['B'].response_ms > 20 >= at_p['B'].response_ms
    assert at_p['B'].instances * 0.01 > 0.05                   # the per-percentile union alone fails
    b = analyze(ts, default_plan(ts))['B']
    assert b.meets_bound and b.miss_rate_bound == pytest.approx(3 * 0.01)
    sim = simulate(ts, default_plan(ts), 200.0, seed=3).tasks['B']
    assert sim.jobs > 3000 and sim.missed / sim.jobs <= b.miss_rate_bound
    # A calibrated top charges the others at 1 - top each; a mixed bound past the deadline counts nothing.
    mixed = SegmentBound(response_ms=18.0, latest_start=(0, 0, 0), instances=9, own_draws=3)
    late = SegmentBound(response_ms=30.0, latest_start=(0, 0, 0), instances=9)
    assert miss_rate_bound(mixed, late, 20.0, 99.0, top=99.8, mixed=mixed) == pytest.approx(3 * 0.01 + 6 * 0.002)
    assert miss_rate_bound(mixed, late, 20.0, 99.0, mixed=replace(mixed, response_ms=21.0)) == pytest.approx(0.09)


def test_the_task_sets_top_is_the_lowest_of_its_times():
    raw = {'tasks': {'A': task(20, 2, 5, 1)}}
    raw['tasks']['A']['variants']['v'].update(pre_ms=[1.0, 2.0], pre_top=99.8)
    assert taskset_from_dict(raw).tail_top == 99.8
    raw['tasks']['A']['variants']['v']['pre_top'] = 101
    with pytest.raises(ValueError, match='pre_ms top'):
        taskset_from_dict(raw)


def test_the_terms_of_an_explained_bound_add_up_to_it_past_the_deadline():
    # A segment's latest start is capped where the job is dropped; the explanation
    # must still add up to the bound it reports (it once left out the post wait).
    from rtmdl_ros.core.analysis import Analyzer, bound_terms, explain_bound
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1},
                            'tasks': {'A': task(10, 3, 4, 3), 'B': task(40, 6, 1, 1, deadline=12)}})
    an = Analyzer(ts)
    order = [('A', 'v'), ('B', 'v')]
    at_p, _ = an.final_bounds(order)
    b = at_p['B']
    assert b.response_ms > 12 and max(b.latest_start) <= 12.0 + 1e-9     # capped, and over the deadline
    terms = bound_terms(an.times('B', 'v', 100.0), b)
    assert sum(ms for _, ms in terms) == pytest.approx(b.response_ms)
    text = explain_bound(an.times('B', 'v', 100.0), b, 12.0, 100.0)
    assert f'= {b.response_ms:.2f} ms' in text and 'post wait' in text, text


def test_one_job_draw_replaces_the_four_tails_added():
    # Path and segments each reach their p99 in 2 of 100 jobs, but not in the same jobs:
    # the job's own time measured as one sum (job_ms) is 14 at p99, the tails added 20.
    from rtmdl_ros.core.analysis import Analyzer, bound_terms, explain_bound
    spec = task(50, [1.0] * 98 + [3.0] * 2, [5.0] * 98 + [9.0] * 2, [1.0] * 98 + [2.0] * 2, deadline=15, miss=0.05)
    spec['release_path_ms'] = [2.0] * 98 + [6.0] * 2
    alone = bounds({'A': spec}, percentile=99)['A']
    assert alone.response_bound_ms == pytest.approx(20.0) and alone.miss_rate_bound == 1.0
    spec['variants']['v']['job_ms'] = [9.0] * 98 + [14.0, 30.0]
    drawn = bounds({'A': spec}, percentile=99)['A']
    # At the worst sample the four maxima added (20) are below the sum's (30): the lower is kept.
    assert drawn.response_bound_ms == pytest.approx(14.0) and drawn.worst_response_bound_ms == pytest.approx(20.0)
    assert drawn.miss_rate_bound == pytest.approx(0.01)          # one draw, not four
    # Below a lower-priority task, the waits come on top of the one draw, and the terms add up.
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'analysis': {'percentile': 99},
                            'tasks': {'A': spec, 'B': task(100, 2, 3, 1)}})
    an = Analyzer(ts)
    at_p, _ = an.final_bounds([('A', 'v'), ('B', 'v')])
    # B's pre blocks A's pre, its infer A's infer, and a next B pre (B's long jitter) A's post.
    assert at_p['A'].response_ms == pytest.approx(14.0 + 2 + 3 + 2)
    terms = bound_terms(an.times('A', 'v', 99.0), at_p['A'])
    assert sum(ms for _, ms in terms) == pytest.approx(at_p['A'].response_ms)
    assert 'one draw' in explain_bound(an.times('A', 'v', 99.0), at_p['A'], 15.0, 99.0)


def test_the_job_window_charges_higher_priority_work_once_per_job():
    # B's pre and post may each wait for a pre and a post of A (jitter from C's 8 ms
    # blocking), and per segment that counts A's jobs twice: 29. Over B's whole window
    # (job_window): own 3 + C blocking both CPU segments 16 + GPU 1, A's CPU work 4 and
    # GPU work 2 = 26. The simulator never exceeds it, and the terms add up to it.
    from rtmdl_ros.core.analysis import Analyzer, bound_terms
    from rtmdl_ros.core.simulator import simulate
    tasks = {'A': task(20, 1, 1, 1), 'B': task(100, 1, 1, 1, deadline=60), 'C': task(200, 8, 1, 1, deadline=150)}
    ts = taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'tasks': tasks})
    an = Analyzer(ts)
    at_p, _ = an.final_bounds([('A', 'v'), ('B', 'v'), ('C', 'v')])
    b = at_p['B']
    assert sum(b.waits) + 3.0 == pytest.approx(29.0)
    assert b.response_ms == pytest.approx(26.0)
    assert dict(b.terms)['higher priority on cpu'] == pytest.approx(4.0)
    assert sum(ms for _, ms in bound_terms(an.times('B', 'v', 100.0), b)) == pytest.approx(26.0)
    plan = {'A': Assignment('v', 0), 'B': Assignment('v', 1), 'C': Assignment('v', 2)}
    for seed in range(5):
        sim = simulate(ts, plan, duration_s=2.0, seed=seed, phase='random')
        assert max(sim.tasks['B'].responses) <= 26.0 + 1e-6
