"""Runs of consecutive jobs as one draw (Variant.runs, `work2_ms`, `work3_ms`, ...).

A higher-priority task's n jobs in a lower one's window are charged as runs of
consecutive jobs, each run's measured work one draw, instead of n draws of one
job's work: the tails of successive jobs do not all come at once. Calibration
measures the runs on the graph's traces; its confidence comes from disjoint runs.
"""
import math
from dataclasses import replace

import numpy as np
import pytest

from rtmdl_ros.core.analysis import RUN_JOBS, Analyzer, analyze, closed_runs, run_work
from rtmdl_ros.core.calibration import JOB_KEYS, job_fields, run_fields, work_stretches
from rtmdl_ros.core.plan import Assignment
from rtmdl_ros.core.simulator import simulate
from rtmdl_ros.core.synthetic import random_taskset, random_taskset_dict
from rtmdl_ros.core.taskset import TasksetError, taskset_from_dict
from rtmdl_ros.core.trace import STAGES, JobTrace

from test_optimizer import feasible_agrees_with_the_analysis, optimizer_is_exact

SPIKY = [1.0] * 98 + [3.0] * 2          # p99: 3 ms per segment, 9 ms for the three added


def _pair(**runs):
    spec = {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': SPIKY, 'infer_ms': SPIKY, 'post_ms': SPIKY,
            'work_ms': [3.0] * 97 + [5.0] * 3, **runs}
    tasks = {'A': {'period_ms': 20, 'deadline_ms': 20, 'max_miss_rate': 0.05, 'variants': {'v': spec}},
             'B': {'period_ms': 100, 'deadline_ms': 40, 'max_miss_rate': 0.05,
                   'variants': {'v': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': 2.0, 'infer_ms': 2.0,
                                      'post_ms': 2.0}}}}
    return taskset_from_dict({'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'analysis': {'percentile': 99.0},
                              'tasks': tasks})


def test_runs_parse_in_order_and_need_one_jobs_work_beside_them():
    ts = _pair(work2_ms=[6.0] * 97 + [7.0] * 3, work2_tail={99.0: 7.5}, work3_ms=[9.0])
    runs = ts.tasks['A'].variants['v'].runs
    assert [r.quantile(99.0) for r in runs] == [7.5, 9.0]
    with pytest.raises(TasksetError, match=r'work3_ms.*work2_ms is missing'):
        _pair(work3_ms=[9.0])
    raw = {'platform': {}, 'tasks': {'A': {'period_ms': 20, 'max_miss_rate': 0.05, 'variants': {'v': {
        'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': 1, 'infer_ms': 1, 'post_ms': 1, 'work2_ms': [4.0]}}}}}
    with pytest.raises(TasksetError, match=r'tasks.A.variants.v.work2_ms: .*work_ms'):
        taskset_from_dict(raw)


def test_a_run_is_one_draw_where_it_beats_its_splits():
    runs = closed_runs([5.0, 12.0, math.inf, 15.0])
    # two jobs: 10 as two draws beats 12; three: split; four: its own draw beats 5 + 10
    assert runs == ((5.0, 1), (10.0, 2), (15.0, 3), (15.0, 1))
    assert closed_runs([5.0, 10.0])[1] == (10.0, 1)           # a tie goes to fewer draws
    assert len(closed_runs([5.0])) == RUN_JOBS and closed_runs([5.0])[-1] == (5.0 * RUN_JOBS, RUN_JOBS)
    assert run_work(9, runs) == (2 * 15.0 + 5.0, 3)           # 4 + 4 + 1 jobs


def test_the_window_charges_runs_of_jobs_above_as_one_draw_each():
    order = [('A', 'v'), ('B', 'v')]
    runs = Analyzer(_pair(work2_ms=[6.0] * 97 + [7.0] * 3)).final_bounds(order)[0]['B']
    single = Analyzer(_pair()).final_bounds(order)[0]['B']
    charged = dict(runs.terms)['higher priority on cpu and gpu']
    n = round(dict(single.terms)['higher priority on cpu and gpu'] / 5.0)      # A's jobs in B's window
    assert n >= 2 and charged == pytest.approx(7.0 * (n // 2) + 5.0 * (n % 2))
    assert runs.response_ms < single.response_ms - 2.9 and runs.instances < single.instances
    # a run measured above its jobs' draws added changes nothing
    high = Analyzer(_pair(work2_ms=[20.0] * 100)).final_bounds(order)[0]['B']
    assert high.response_ms == pytest.approx(single.response_ms) and high.instances == single.instances


def _with_runs(seed, n, v, util):
    return random_taskset(seed, n, v, utilisation=util, cpu_workers=1, samples=20, work=True, runs=3)


CASES = [(seed, n, v) for seed in range(16) for n, v in [(2, 4), (3, 3)]]


@pytest.mark.parametrize('seed,n,v', CASES)
def test_the_optimizer_stays_exact_with_run_draws(seed, n, v):
    rng = np.random.default_rng(seed)
    util = float(rng.uniform(0.5, 1.3))
    ts = _spiky_runs(seed, n, v, 0.25 * util) if seed % 2 else _with_runs(seed, n, v, util)
    optimizer_is_exact(ts)


@pytest.mark.parametrize('seed', range(6))
def test_the_branch_and_bounds_charge_from_above_is_never_more_than_any_variants(seed):
    # What the search prunes with: per task above, the least charge over its live variants.
    from rtmdl_ros.core.analysis import _charge
    from rtmdl_ros.core.optimizer import _Search
    ts = _spiky_runs(seed, 3, 4) if seed % 2 else _with_runs(seed, 3, 4, 0.8)
    search = _Search(ts, 10.0)
    block = search._blocking([])
    names = list(ts.tasks)
    lower = search._hp_lower_bound(names, search.variants, block)
    for pct in search.pcts:
        for u, group in zip(names, lower[pct]['jobs']):
            period = ts.tasks[u].interarrival_ms
            for v in search.variants[u]:
                spans = search._spans(u, v, pct, block[pct])
                own = tuple((c, span, period) for c, span in spans if c > 0)
                exact = (own, search._job_item(u, v, pct, spans, period))
                for x in np.linspace(0.0, 6 * period, 25):
                    assert _charge(x, group)[0] <= _charge(x, exact)[0] + 1e-9, (u, v, pct, x)


def test_early_exit_feasibility_agrees_with_the_full_analysis_with_run_draws():
    seen = set()
    for seed in range(10):
        rng = np.random.default_rng(seed)
        ts = random_taskset(seed, int(rng.integers(2, 6)), 5, utilisation=float(rng.uniform(0.2, 0.7)), samples=30,
                            cpu_workers=1, work=True, runs=RUN_JOBS)
        seen |= feasible_agrees_with_the_analysis(ts, rng, 30)
    assert seen == {True, False}


def _no_runs(ts):
    return replace(ts, tasks={t: replace(task, variants={k: replace(var, runs=()) for k, var in task.variants.items()})
                              for t, task in ts.tasks.items()})


def test_runs_lower_bounds_on_a_share_of_random_sets_and_never_raise_one():
    lower = 0
    for seed, n, v in CASES[::2]:
        rng = np.random.default_rng(seed)
        a = _with_runs(seed, n + 1, v, float(rng.uniform(0.5, 1.3)))
        plan = {t: Assignment(sorted(a.tasks[t].variants)[0], k) for k, t in enumerate(a.tasks)}
        ra, rb = analyze(a, plan), analyze(_no_runs(a), plan)
        assert all(ra[t].response_bound_ms <= rb[t].response_bound_ms + 1e-9 for t in ra)
        lower += any(ra[t].response_bound_ms < rb[t].response_bound_ms - 1e-9 for t in ra)
    assert lower >= 3


def _spiky_runs(seed, n, v=2, util=0.4):
    """Segments spike to 3x in 15 % of jobs, analysed at p90, and periods double from task
    to task (10, 20, 40 ms: a lower task's window holds runs of an upper one's jobs).
    Runs (sums of independent draws of 2 .. RUN_JOBS jobs, as the simulator draws
    them) decide the bounds."""
    rng = np.random.default_rng(seed)
    raw = random_taskset_dict(rng, n, v, utilisation=util, cpu_workers=1, samples=40)
    raw['analysis'] = {'percentile': 90.0}
    for k, task in enumerate(raw['tasks'].values()):
        scale = 10.0 * 2 ** k / task['period_ms']             # the same utilisation at the new period
        task['period_ms'], task['deadline_ms'] = 10.0 * 2 ** k, round(task['deadline_ms'] * scale, 3)
        task['max_miss_rate'] = 0.3
        for spec in task['variants'].values():
            for key in ('pre_ms', 'infer_ms', 'post_ms'):
                mean = float(np.mean(spec[key])) * scale
                spec[key] = [round(mean * (3.0 if rng.random() < 0.15 else 1.0), 4) for _ in range(40)]
            for j in range(1, RUN_JOBS + 1):
                sums = sum(rng.choice(spec[s], size=(400, j)).sum(axis=1) for s in ('pre_ms', 'infer_ms', 'post_ms'))
                spec['work_ms' if j == 1 else f'work{j}_ms'] = [round(float(x), 4) for x in sums]
    return taskset_from_dict(raw)


def _sim_case(seed):
    rng = np.random.default_rng(500 + seed)
    ts = replace(_spiky_runs(seed, 3 + seed % 2, util=float(rng.uniform(0.15, 0.25))), percentile=97.0)
    plan = {t: Assignment(str(rng.choice(sorted(ts.tasks[t].variants))), k) for k, t in enumerate(ts.tasks)}
    return ts, plan, [(t, plan[t].variant) for t in ts.tasks]


def test_the_simulated_sets_are_ones_where_runs_lower_bounds():
    lowered = 0
    for seed in range(6):
        ts, _, order = _sim_case(seed)
        with_runs, without = Analyzer(ts).final_bounds(order)[0], Analyzer(_no_runs(ts)).final_bounds(order)[0]
        lowered += any(with_runs[t].response_ms < without[t].response_ms - 1e-9 for t in ts.tasks)
    assert lowered >= 3


@pytest.mark.parametrize('seed', range(6))
def test_simulated_responses_pass_the_percentile_bound_no_more_often_than_the_union_allows(seed):
    # Statistical, not worst case: the draws are percentiles of sampled sums, so a rarer sum
    # may exceed them, as the union bound allows (each counted draw over its percentile).
    ts, plan, order = _sim_case(seed)
    at_p, _ = Analyzer(ts).final_bounds(order)
    sim = simulate(ts, plan, duration_s=10.0, seed=seed, phase='random')
    for name, stats in sim.tasks.items():
        bound = at_p[name].response_ms
        assert math.isfinite(bound) and stats.responses
        over = sum(r > bound + 1e-6 for r in stats.responses) / len(stats.responses)
        assert over <= at_p[name].instances * 0.03 + 0.01, (name, over, at_p[name].instances)


def _trace(task, stamp_s, variant, work, outcome='met'):
    stages = [0.0] * len(STAGES)
    stages[STAGES.index('pre')] = work if outcome == 'met' else math.nan
    return JobTrace(task, 0, variant, outcome, stamp_s, tuple(stages))


def test_stretches_end_at_a_missing_job_a_gap_or_another_variant():
    stamps = [0.0, 0.03, 0.06, 0.09, 0.15, 0.18, 0.21, 0.24, 0.27]       # a frame missing after 0.09
    traces = [_trace('cam', s, 'a' if k < 7 else 'b', 1.0 + k) for k, s in enumerate(stamps)]
    traces[2] = _trace('cam', 0.06, 'a', 0.0, outcome='dropped')
    stretches = work_stretches(traces + [_trace('mic', 0.0, 'a', 5.0)], 'cam')
    assert [s.tolist() for s in stretches['a']] == [[1.0, 2.0], [4.0], [5.0, 6.0, 7.0]]
    assert [s.tolist() for s in stretches['b']] == [[8.0, 9.0]]


def test_pairs_that_never_spike_together_are_charged_below_two_spikes():
    # Every other job spikes: any two successive jobs add up to 10 ms, where two
    # tails of one job's work would be 18 ms.
    n = 2 * 1200
    traces = [_trace('cam', 0.03 * k, 'a', 9.0 if k % 2 else 1.0) for k in range(n)]
    fields = run_fields(traces, 'cam', 99.5, 0.9, RUN_JOBS)['a']
    assert fields['work2_tail'][99.5] == pytest.approx(10.0) and max(fields['work2_ms']) == pytest.approx(10.0)
    assert fields['work4_tail'][99.5] == pytest.approx(20.0)
    drawn = job_fields(traces, 'cam', 99.5, 0.9)['a']
    assert drawn['work_tail'][99.5] == pytest.approx(9.0) and set(drawn) <= set(JOB_KEYS)
    # Disjoint runs decide the confidence: 2 x 460 jobs bound pairs, not triples.
    few = run_fields(traces[:930], 'cam', 99.5, 0.9, RUN_JOBS)['a']
    assert 'work2_tail' in few and 'work3_tail' not in few
    assert run_fields(traces[:900], 'cam', 99.5, 0.9, RUN_JOBS) == {}


def test_the_runs_go_into_the_task_set_and_lower_the_bound_below():
    traces = [_trace('A', 0.02 * k, 'v', 9.0 if k % 2 else 1.0) for k in range(2400)]
    drawn = job_fields(traces, 'A', 99.0, 0.9)['v']
    spec = {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': [1.0, 9.0], 'infer_ms': 0.0, 'post_ms': 0.0, **drawn}
    base = {'platform': {'cpu_workers': 1, 'gpu_lanes': 1}, 'analysis': {'percentile': 99.0}, 'tasks': {
        'A': {'period_ms': 20, 'max_miss_rate': 0.05, 'variants': {'v': spec}},
        'B': {'period_ms': 200, 'deadline_ms': 120, 'max_miss_rate': 0.05,
              'variants': {'v': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': 20.0, 'infer_ms': 1.0, 'post_ms': 1.0}}}}}
    ts = taskset_from_dict(base)
    order = [('A', 'v'), ('B', 'v')]
    with_runs, without = Analyzer(ts).final_bounds(order)[0]['B'], Analyzer(_no_runs(ts)).final_bounds(order)[0]['B']
    # Without runs A's jobs in B's window are charged 9 ms each (three: carried_work cuts the
    # jobs at its edges to their overlap, where four were charged whole before); with them,
    # as draws of pairs of 10 ms.
    assert with_runs.response_ms < without.response_ms - 5.0


def test_the_round_report_names_each_draw():
    from rtmdl_ros.plan_paths import _draws
    traces = [_trace('cam', 0.03 * k, 'a', 9.0 if k % 2 else 1.0) for k in range(2400)]
    line = _draws('a', job_fields(traces, 'cam', 99.5, 0.9)['a'], 99.5)
    assert line == 'own time of a 9.00 ms; work of 1 job 9.00, 2 jobs 10.00, 3 jobs 19.00, 4 jobs 20.00 ms', line
