"""The `rtmdl` command-line contract (README and issue #2)."""
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import EXAMPLE_TASKSET


def rtmdl(*args):
    exe = shutil.which('rtmdl')
    cmd = [exe] if exe else [sys.executable, '-m', 'rtmdl_ros.cli']
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize('policy', ['rtmdl', 'dm-nmc', 'dm-mc', 'um-nmc'])
def test_optimize_writes_a_plan_the_other_commands_accept(tmp_path, policy):
    plan = tmp_path / 'plan.yaml'
    res = rtmdl('optimize', EXAMPLE_TASKSET, '--policy', policy, '--out', plan)
    assert res.returncode == 0, res.stderr
    tasks = yaml.safe_load(plan.read_text())['rtmdl_executor']['ros__parameters']['tasks']
    assert set(tasks) == {'traffic_light', 'sign', 'audio'}
    assert sorted(t['priority'] for t in tasks.values()) == [0, 1, 2]

    res = rtmdl('analyze', EXAMPLE_TASKSET, '--plan', plan, '--json')
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert isinstance(out['schedulable'], bool)
    for name, t in out['tasks'].items():
        assert t['variant'] == tasks[name]['variant'] and t['priority'] == tasks[name]['priority']
        assert set(t) >= {'variant', 'priority', 'deadline_ms', 'response_bound_ms', 'miss_rate_bound'}
    if policy == 'rtmdl':
        assert out['schedulable']

    res = rtmdl('simulate', EXAMPLE_TASKSET, '--plan', plan, '--duration-s', 3, '--seed', 4, '--json')
    assert res.returncode == 0, res.stderr
    sim = json.loads(res.stdout)['tasks']
    assert sim['traffic_light']['jobs'] == pytest.approx(3000 / 33.3, abs=2)
    for t in sim.values():
        assert set(t) >= {'jobs', 'missed', 'miss_rate', 'p99_response_ms', 'max_response_ms'}


def test_bounds_without_measured_release_paths_are_labelled_uncalibrated(tmp_path):
    plan = tmp_path / 'plan.yaml'
    res = rtmdl('optimize', EXAMPLE_TASKSET, '--out', plan)
    assert res.returncode == 0 and 'UNCALIBRATED' in res.stderr and 'rtmdl calibrate' in res.stderr
    assert '# UNCALIBRATED: the release paths of traffic_light, sign, audio' in plan.read_text()
    res = rtmdl('analyze', EXAMPLE_TASKSET)
    assert 'UNCALIBRATED' in res.stdout and 'leave out the graph' in res.stderr
    assert json.loads(rtmdl('analyze', EXAMPLE_TASKSET, '--json').stdout)['uncalibrated_tasks'] == \
        ['traffic_light', 'sign', 'audio']
    raw = yaml.safe_load(open(EXAMPLE_TASKSET))
    for task in raw['tasks'].values():
        task['release_path_ms'] = [1.5, 2.0, 2.5]             # as `rtmdl calibrate` writes them
    calibrated = tmp_path / 'calibrated.yaml'
    calibrated.write_text(yaml.safe_dump(raw))
    res = rtmdl('optimize', calibrated, '--out', tmp_path / 'p2.yaml')
    assert res.returncode == 0 and 'UNCALIBRATED' not in res.stderr + (tmp_path / 'p2.yaml').read_text()
    assert json.loads(rtmdl('analyze', calibrated, '--json').stdout)['uncalibrated_tasks'] == []


def test_baseline_that_misses_bounds_is_written_with_a_warning(tmp_path):
    res = rtmdl('optimize', EXAMPLE_TASKSET, '--policy', 'dm-nmc', '--out', tmp_path / 'p.yaml')
    assert res.returncode == 0 and 'does not meet the bounds' in res.stderr


def test_defaults_are_largest_variants_deadline_monotonic():
    out = json.loads(rtmdl('analyze', EXAMPLE_TASKSET, '--json').stdout)['tasks']
    assert [out[n]['priority'] for n in ('traffic_light', 'sign', 'audio')] == [0, 1, 2]
    assert {t['variant'] for t in out.values()} == {'w100_d3'}


def test_simulation_is_reproducible_by_seed():
    a = rtmdl('simulate', EXAMPLE_TASKSET, '--duration-s', 2, '--seed', 9, '--json').stdout
    b = rtmdl('simulate', EXAMPLE_TASKSET, '--duration-s', 2, '--seed', 9, '--json').stdout
    assert a == b


def test_infeasible_task_set_exits_1_naming_the_task(tmp_path):
    raw = yaml.safe_load(EXAMPLE_TASKSET.read_text())
    raw['tasks']['sign']['deadline_ms'] = 1.0
    path = tmp_path / 'tight.yaml'
    path.write_text(yaml.safe_dump(raw))
    res = rtmdl('optimize', path, '--out', tmp_path / 'plan.yaml')
    assert res.returncode == 1
    assert "'sign'" in res.stderr
    assert not (tmp_path / 'plan.yaml').exists()


def _write(tmp_path, mutate):
    raw = yaml.safe_load(EXAMPLE_TASKSET.read_text())
    mutate(raw)
    path = tmp_path / 'set.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize('mutate', [
    lambda r: r['tasks']['sign'].pop('period_ms'),
    lambda r: r['tasks']['sign'].update(period_ms=-3),
    lambda r: r['tasks']['sign'].update(deadline_ms=500),
    lambda r: r.update(tasks='none'),
])
def test_bad_task_sets_exit_2_with_one_line(tmp_path, mutate):
    path = _write(tmp_path, mutate)
    for args in (('analyze', path), ('simulate', path, '--duration-s', 1), ('optimize', path, '--out', tmp_path / 'o.yaml')):
        res = rtmdl(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.count('\n') == 1 and 'Traceback' not in res.stderr
        assert res.stderr.startswith('rtmdl: error:')


def test_unknown_variant_in_plan_exits_2(tmp_path):
    plan = tmp_path / 'plan.yaml'
    plan.write_text(yaml.safe_dump({'rtmdl_executor': {'ros__parameters': {'tasks': {
        'traffic_light': {'variant': 'w999', 'priority': 0}, 'sign': {'variant': 'w100_d3', 'priority': 1},
        'audio': {'variant': 'w100_d3', 'priority': 2}}}}}))
    res = rtmdl('analyze', EXAMPLE_TASKSET, '--plan', plan)
    assert res.returncode == 2 and "no variant 'w999'" in res.stderr and 'Traceback' not in res.stderr


@pytest.mark.parametrize('args', [('simulate', EXAMPLE_TASKSET, '--duration-s', 'soon'),
                                  ('simulate', EXAMPLE_TASKSET, '--duration-s', '-1'),
                                  ('optimize', EXAMPLE_TASKSET, '--policy', 'edf-magic', '--out', 'x.yaml'),
                                  ('optimize', EXAMPLE_TASKSET, '--time-limit-s', '0', '--out', 'x.yaml'),
                                  ('frobnicate',)])
def test_bad_arguments_exit_2(args):
    res = rtmdl(*args)
    assert res.returncode == 2 and 'Traceback' not in res.stderr and res.stderr.count('\n') == 1


def test_optimize_a_twenty_task_set_returns_in_its_budget_with_the_gap(tmp_path):
    import numpy as np

    from rtmdl_ros.core.synthetic import random_taskset_dict
    path = tmp_path / 'car20.yaml'
    path.write_text(yaml.safe_dump(random_taskset_dict(np.random.default_rng(4), 20, 12, utilisation=0.6,
                                                       samples=20, cpu_workers=2)))
    res = rtmdl('optimize', path, '--out', tmp_path / 'plan.yaml', '--time-limit-s', 3)
    assert res.returncode == 0, res.stderr
    assert 'search: local search, best found within the time limit, at most' in res.stdout
    header = (tmp_path / 'plan.yaml').read_text()
    assert 'search: local search' in header and 'lower bound' in header
    assert 'time limit reached' in res.stderr and 'Traceback' not in res.stderr


def test_optimize_with_a_step_limit_writes_the_same_plan_twice_and_how_to_get_it_again(tmp_path):
    import numpy as np

    from rtmdl_ros.core.synthetic import random_taskset_dict
    path = tmp_path / 'car12.yaml'
    path.write_text(yaml.safe_dump(random_taskset_dict(np.random.default_rng(7), 12, 8, utilisation=0.6,
                                                       samples=20, cpu_workers=2)))
    plans = []
    for k in range(2):
        res = rtmdl('optimize', path, '--out', tmp_path / f'plan{k}.yaml', '--seed', 5, '--max-steps', 80,
                    '--time-limit-s', 100, '--quiet')
        assert res.returncode == 0, res.stderr
        assert 'stopped at its step limit (80 steps' in res.stdout and 'time limit reached' not in res.stderr
        text = (tmp_path / f'plan{k}.yaml').read_text()
        assert '--seed 5 --max-steps 80' in text
        plans.append(yaml.safe_load(text))
    assert plans[0] == plans[1]
    bad = rtmdl('optimize', path, '--out', tmp_path / 'bad.yaml', '--max-steps', 0)
    assert bad.returncode == 2 and '--max-steps must be >= 1' in bad.stderr
    assert not (tmp_path / 'bad.yaml').exists()


def test_optimize_front_writes_loss_per_margin_and_a_plot(tmp_path):
    res = rtmdl('optimize', EXAMPLE_TASKSET, '--out', tmp_path / 'plan.yaml', '--front', '--front-margins', 1, 1.2, 3,
                '--time-limit-s', 6)
    assert res.returncode == 0, res.stderr
    front = yaml.safe_load((tmp_path / 'plan_front.yaml').read_text())['front']
    assert [p['margin'] for p in front] == [1.0, 1.2, 3.0]
    assert front[0]['objective'] is not None and front[0]['plan']
    assert front[2]['objective'] is None and 'margin +200%: no plan meets the bounds' in res.stdout
    assert (tmp_path / 'plan_front.png').stat().st_size > 1000


def test_optimize_without_a_plan_writes_nothing_or_with_fallback_the_fastest_plan_marked_uncertified(tmp_path):
    raw = yaml.safe_load(open(EXAMPLE_TASKSET))
    for t in raw['tasks'].values():                  # deadlines no variant can meet
        t['period_ms'] = t['deadline_ms'] = 5.0
        t.pop('min_interarrival_ms', None)
    ts = tmp_path / 'tight.yaml'
    ts.write_text(yaml.safe_dump(raw))
    plan = tmp_path / 'plan.yaml'
    res = rtmdl('optimize', ts, '--out', plan, '--quiet')
    assert res.returncode == 1 and 'no plan meets the bounds' in res.stderr and not plan.exists()
    res = rtmdl('optimize', ts, '--out', plan, '--quiet', '--fallback', 'fastest')
    assert res.returncode == 1, res.stderr                    # still: no plan meets the bounds
    assert 'NOT CERTIFIED' in plan.read_text() and 'not guaranteed' in res.stderr
    tasks = yaml.safe_load(plan.read_text())['rtmdl_executor']['ros__parameters']['tasks']
    for name, spec in raw['tasks'].items():
        fastest = min(spec['variants'], key=lambda v: sum(
            sum(spec['variants'][v][s]) / len(spec['variants'][v][s]) for s in ('pre_ms', 'infer_ms', 'post_ms')))
        assert tasks[name]['variant'] == fastest
    assert sorted(t['priority'] for t in tasks.values()) == [0, 1, 2]
    assert rtmdl('analyze', ts, '--plan', plan).returncode == 0   # a valid plan file for the other commands


def _traces_csv(path, jobs=90):
    """A recorded run's traces.csv: three tasks, one job in ten of traffic_light late."""
    from rtmdl_ros.core.trace import STAGES, JobTrace
    from rtmdl_ros.trace_report import write_csv
    traces = []
    for k in range(jobs):
        task = ('traffic_light', 'sign', 'audio')[k % 3]
        late = task == 'traffic_light' and k % 10 == 0
        stages = [2.0, 0.1, 0.1, 1.0, 1.5, 0.5, 8.0 if not late else 30.0, 0.2, 0.5, 0.2]
        traces.append(JobTrace(task, k, 'w100_d3', 'late' if late else 'met', 100.0 + 0.033 * k,
                               tuple(stages[:len(STAGES)])))
    write_csv(traces, path)
    return traces


def test_trace_from_a_recorded_csv_draws_the_stages_and_the_schedule(tmp_path):
    csv_path = tmp_path / 'traces.csv'
    _traces_csv(csv_path)
    res = rtmdl('trace', '--from', csv_path, '--out', tmp_path / 'pics')
    assert res.returncode == 0, res.stderr
    for name in ('stages.png', 'schedule.png'):
        assert (tmp_path / 'pics' / name).stat().st_size > 10_000
    assert 'traffic_light' in res.stdout and 'missed' in res.stdout
    bad = tmp_path / 'bad.csv'
    bad.write_text('not,a,trace\n1,2,3\n')
    res = rtmdl('trace', '--from', bad, '--out', tmp_path / 'pics2')
    assert res.returncode != 0 and 'not a traces.csv' in res.stderr and 'Traceback' not in res.stderr


def test_the_schedule_window_is_the_one_with_the_most_misses(tmp_path):
    from rtmdl_ros.trace_report import busiest_window, read_csv
    _traces_csv(tmp_path / 't.csv', 300)
    traces = read_csv(tmp_path / 't.csv')
    late = [t.stamp_s for t in traces if t.outcome != 'met']
    start = busiest_window(traces, 1.0)
    assert sum(start <= s <= start + 1.0 for s in late) == max(
        sum(a <= s <= a + 1.0 for s in late) for a in late)


def test_traces_csv_keeps_the_longest_steps_so_a_calibration_can_be_fitted_again(tmp_path):
    """The steps a segment ran in (what calibrate fits its `_chunk` tails on) survive the CSV;
    a file written before the step columns reads with none."""
    import math
    from rtmdl_ros.core.calibration import step_samples
    from rtmdl_ros.core.trace import STAGES, JobTrace
    from rtmdl_ros.trace_report import read_csv, write_csv
    stages = tuple(1.0 for _ in STAGES)
    traces = [JobTrace('audio', 1, 'w050_d2', 'met', 1.5, stages, (0.75, math.nan, math.nan)),
              JobTrace('sign', 2, 'w050_d2', 'met', 1.6, stages)]
    write_csv(traces, tmp_path / 't.csv')
    back = read_csv(tmp_path / 't.csv')
    assert back[0].steps_ms[0] == 0.75 and math.isnan(back[0].steps_ms[1]) and back[1].steps_ms == ()
    assert step_samples(back, 'audio', 'pre')['w050_d2'].tolist() == [0.75]
    old = tmp_path / 'old.csv'
    lines = (tmp_path / 't.csv').read_text().splitlines()
    old.write_text('\n'.join(','.join(line.split(',')[:6 + len(STAGES)]) for line in lines) + '\n')
    assert [t.steps_ms for t in read_csv(old)] == [(), ()]


def test_calibrate_defaults_are_calibrations_own():
    # The CLI does not import calibrate (numpy, the trace reader) to print its help: its
    # literal default and the round cap it names must stay those of calibrate.py.
    from rtmdl_ros.calibrate import MAX_WINDOWS, ROUND_WINDOWS
    from rtmdl_ros.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.choices and 'calibrate' in a.choices).choices['calibrate']
    action = next(a for a in sub._actions if a.dest == 'max_windows')
    assert action.default == MAX_WINDOWS and f'up to {ROUND_WINDOWS} or this many' in action.help
