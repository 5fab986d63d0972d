"""`rtmdl evaluate`, short version (issue #5): the harness end to end on the
real runtime, with its table, plots and JSON; numbers come from the run."""
import json
import os

import pytest

from rtmdl_ros.evaluation import with_extra_cameras
from rtmdl_ros.report import comparisons

from test_cli import rtmdl


@pytest.fixture(scope='module')
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('evaluation')
    res = rtmdl('evaluate', '--out', out, '--loads', 0, 1, '--cameras', 0, 2, '--policies', 'rtmdl', 'dm-nmc',
                '--duration-s', 3, '--profile-samples', 5, '--time-limit-s', 5, '--quiet')
    assert res.returncode == 0, res.stderr
    return out, res.stdout


def test_writes_table_plots_and_results(short_run):
    out, stdout = short_run
    for name in ('table.md', 'results.json', 'dmr_per_policy.png', 'accuracy_vs_dmr.png', 'response_cdf.png'):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / 'results.json').read_text())
    assert sorted((r['load'], r['cameras'], r['policy']) for r in results['runs']) == sorted(
        (load, cams, policy) for load in (0.0, 1.0) for cams in (0, 2) for policy in ('rtmdl', 'dm-nmc'))
    assert 'DMR reduction' in (out / 'table.md').read_text()
    assert 'rtmdl vs dm-nmc' in stdout


def test_numbers_come_from_the_runs(short_run):
    out, _ = short_run
    results = json.loads((out / 'results.json').read_text())
    for r in results['runs']:
        jobs = sum(t['jobs'] for t in r['tasks'].values())
        # 3 s of releases at 30, 15 and 4 Hz: about 150 jobs, and 90 per extra camera.
        assert 100 + 90 * r['cameras'] <= jobs <= 170 + 90 * r['cameras'], jobs
        assert len(r['tasks']) == 3 + r['cameras']
        assert sum(t['model'] == 'traffic_light' for t in r['tasks'].values()) == 1 + r['cameras']
        assert r['dmr'] == pytest.approx(sum(t['missed'] for t in r['tasks'].values()) / jobs)
        for t in r['tasks'].values():
            assert len(t['responses']) <= t['jobs']
            assert t['jobs'] - t['missed'] <= len(t['responses'])    # every met job has a response
            if r['analysis_schedulable'] and t['bound_ms'] is not None and t['sim_max_ms'] is not None:
                assert t['sim_max_ms'] <= t['bound_ms'] * 1.0001 or t['miss_rate_bound'] > 0
        assert 0 < r['cpu_utilisation'] <= 1 and 0 < r['gpu_utilisation'] <= 1
    dm = {(r['load'], r['cameras']): r for r in results['runs'] if r['policy'] == 'dm-nmc'}
    assert all(t['variant'] == 'w100_d3' for t in dm[0.0, 2]['tasks'].values())  # dm-nmc = largest variants
    if results['cpus'] < 3:      # no GPU and 2 cores: one CPU worker beside the lane
        assert results['platform']['cpu_workers'] == 1 and 'no GPU' in results['platform_note']
    for c in comparisons(results):
        assert c['baseline'] == 'dm-nmc'


def test_bad_arguments_exit_2(tmp_path):
    res = rtmdl('evaluate', '--out', tmp_path, '--loads', -1, '--quiet')
    assert res.returncode == 2 and 'loads' in res.stderr
    res = rtmdl('evaluate', '--out', tmp_path, '--cameras', -2, '--quiet')
    assert res.returncode == 2 and 'cameras' in res.stderr


def test_extra_cameras_copy_the_traffic_light_requirements():
    base = {'tasks': {'traffic_light': {'period_ms': 33.3, 'deadline_ms': 33.3, 'max_miss_rate': 0.05},
                      'audio': {'period_ms': 250.0}}}
    cfg, models = with_extra_cameras(base, 2)
    assert list(cfg['tasks']) == ['traffic_light', 'audio', 'traffic_light_cam2', 'traffic_light_cam3']
    assert cfg['tasks']['traffic_light_cam3'] == {**base['tasks']['traffic_light'], 'model': 'traffic_light',
                                                  'input_topic': 'cam3/image_raw'}
    assert models == {'traffic_light': 'traffic_light', 'audio': 'audio',
                      'traffic_light_cam2': 'traffic_light', 'traffic_light_cam3': 'traffic_light'}
    cfg['tasks']['traffic_light_cam2']['period_ms'] = 1.0
    assert base['tasks']['traffic_light']['period_ms'] == 33.3          # copies, not aliases
    with pytest.raises(ValueError, match='zoo detector'):
        with_extra_cameras({'tasks': {'audio': {}}}, 1)


def test_side_by_side_puts_core_and_graph_runs_of_one_level_in_one_row():
    from rtmdl_ros.graph_evaluation import side_by_side
    run = lambda dmr, p99: {'load': 1.0, 'cameras': 2, 'policy': 'rtmdl', 'dmr': dmr, 'mean_accuracy': 0.95,  # noqa: E731
                            'tasks': {'traffic_light': {'p99_ms': p99, 'bound_ms': 20.0}}}
    text = side_by_side({'runs': [run(0.0, 12.0)]}, {'runs': [run(0.01, 25.0)]})
    row = text.splitlines()[2]
    assert row.startswith('| 1 cores + 2 cams | rtmdl | 0.0000 | 0.0100 |') and row.endswith('| none | traffic_light |')


def test_graph_grid_runs_the_plan_calibration_settled_on_for_rtmdl(tmp_path, monkeypatch):
    """Per level, calibration runs its plan rounds and RT-mDL runs the plan they settled on
    (as make demo does); the other policies plan on the calibrated profile."""
    import rtmdl_ros.backends as backends
    import rtmdl_ros.bringup as bringup_mod
    import rtmdl_ros.calibrate as calibrate_mod
    import rtmdl_ros.profiling as profiling
    from rtmdl_ros.core.plan import Assignment, load_plan, write_plan
    from rtmdl_ros.core.taskset import load_taskset
    from rtmdl_ros.graph_evaluation import evaluate_graph
    from rtmdl_ros.nodes.resources import default_taskset_file
    variants = {v: {'accuracy': acc, 'storage_mb': 0.1, 'pre_ms': 1.0, 'infer_ms': ms, 'post_ms': 0.5}
                for v, acc, ms in (('w025_d1', 0.8, 2.0), ('w050_d2', 0.95, 4.0))}
    monkeypatch.setattr(backends, 'create', lambda *a, **k: None)
    monkeypatch.setattr(profiling, 'measure', lambda models, *a, **k: {
        'platform': {'gpu_slowdown': {1: 1.0}}, 'probe': '', 'tasks': {m: {'variants': variants} for m in models}})
    rounds, ran = [], {}

    def calibrate(taskset_file, duration_s, *a, out_dir=None, plan_rounds=0, **k):
        rounds.append(plan_rounds)
        os.makedirs(out_dir, exist_ok=True)
        taskset = load_taskset(taskset_file)
        settled = os.path.join(out_dir, 'plan_settled.yaml')     # not what optimize would choose: the least accurate
        write_plan(settled, {n: Assignment('w025_d1', p) for p, n in enumerate(taskset.tasks)}, header='test')
        return calibrate_mod.Calibration(taskset_file, 2, 100, settled_plan=settled)

    def bringup(graph, plan_file, *a, **k):
        ran[os.path.basename(plan_file)] = {n: x.variant for n, x in load_plan(plan_file, load_taskset(a[5])).items()}
        return 0
    monkeypatch.setattr(calibrate_mod, 'calibrate', calibrate)
    monkeypatch.setattr(bringup_mod, 'bringup', bringup)
    results = evaluate_graph(default_taskset_file(), str(tmp_path), loads=(0.0,), cameras=(0,),
                             policies=('rtmdl', 'dm-nmc'), duration_s=1.0, plan_rounds=2)
    assert rounds == [2] and results['plan_rounds'] == 2
    assert set(ran['plan_rtmdl.yaml'].values()) == {'w025_d1'}        # the settled plan, not optimize's
    assert set(ran['plan_dm-nmc.yaml'].values()) == {'w050_d2'}         # no miss: the largest variants
    assert results['runs'][0]['note'] == 'the plan calibration settled on'
