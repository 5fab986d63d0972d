"""Release paths re-measured under the plan they certify (rtmdl calibrate --plan-rounds)."""
import numpy as np
import yaml

from rtmdl_ros import plan_paths
from rtmdl_ros.core.plan import load_plan
from rtmdl_ros.core.policies import plan_with
from rtmdl_ros.core.taskset import load_taskset
from rtmdl_ros.core.trace import STAGES, JobTrace

VARIANTS = {'small': {'accuracy': 0.8, 'storage_mb': 1, 'pre_ms': 1.0, 'infer_ms': 4.0, 'post_ms': 0.5},
            'big': {'accuracy': 0.95, 'storage_mb': 1, 'pre_ms': 1.0, 'infer_ms': 12.0, 'post_ms': 0.5}}
PATH_MS = {'small': 2.0, 'big': 9.0}       # a heavier plan slows the path (the scheduler's threads take the cores)


def _files(tmp_path):
    prof = tmp_path / 'prof.yaml'
    # What calibration measured while every variant cycled: an average, too short for 'big'.
    prof.write_text(yaml.safe_dump({'tasks': {'cam': {'variants': VARIANTS, 'release_path_ms': [2.0, 2.5]}}}))
    ts = tmp_path / 'taskset.yaml'
    ts.write_text(yaml.safe_dump({'analysis': {'percentile': 99.5}, 'profiles': 'prof.yaml', 'tasks': {
        'cam': {'period_ms': 33.3, 'deadline_ms': 20.0, 'max_miss_rate': 0.05}}}))
    return str(ts), str(prof)


def _fake_record(measured):
    def record(out_dir, plan_file, taskset_file, duration_s, judge=False, **kw):
        variant = load_plan(plan_file, load_taskset(taskset_file))['cam'].variant
        measured.append(variant)
        rng = np.random.default_rng(len(measured))
        traces = []
        for k in range(700):
            st = dict.fromkeys(STAGES, 0.1)
            st['sensor'] = PATH_MS[variant] + rng.exponential(0.2)
            # The segments as profiled: the job draw (Variant.job) measured here agrees with them.
            st.update(pre=1.0, infer=VARIANTS[variant]['infer_ms'], post=0.5, publish=0.0)
            traces.append(JobTrace('cam', k, variant, 'met', k * 0.03, tuple(st[s] for s in STAGES)))
        return 0, traces, {}
    return record


def test_rounds_settle_on_a_plan_that_passes_with_paths_measured_under_itself(tmp_path, monkeypatch):
    import rtmdl_ros.trace_report as trace_report
    ts_file, prof = _files(tmp_path)
    assert plan_with(load_taskset(ts_file), 'rtmdl').plan['cam'].variant == 'big'    # with the cycling paths
    measured = []
    monkeypatch.setattr(trace_report, 'record', _fake_record(measured))
    lines, settled = plan_paths.settle_paths(ts_file, prof, 3, 20.0, 0.9, str(tmp_path), {}, windows=1)
    assert measured == ['big', 'small'], lines
    assert 'settled on cam=small@0' in lines[-1]
    assert load_plan(settled, load_taskset(ts_file))['cam'].variant == 'small'
    # The profile keeps the longest paths measured (under 'big'), and optimize returns the settled plan.
    taskset = load_taskset(ts_file)
    assert taskset.tasks['cam'].path.quantile(99.5) >= PATH_MS['big']
    assert plan_with(taskset, 'rtmdl').plan['cam'].variant == 'small'


def test_no_settled_plan_puts_the_cycling_paths_back(tmp_path, monkeypatch):
    import rtmdl_ros.trace_report as trace_report
    ts_file, prof = _files(tmp_path)
    monkeypatch.setattr(trace_report, 'record', _fake_record([]))
    lines, settled = plan_paths.settle_paths(ts_file, prof, 1, 20.0, 0.9, str(tmp_path), {}, windows=1)  # 1 round
    assert 'no plan passed' in lines[-1] and settled is None
    cam = yaml.safe_load(open(prof))['tasks']['cam']
    assert cam['release_path_ms'] == [2.0, 2.5] and 'release_path_tail' not in cam
