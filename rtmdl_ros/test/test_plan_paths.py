"""Release paths re-measured under the plan they certify (rtmdl calibrate --plan-rounds)."""
import dataclasses

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


def test_each_round_refits_the_segments_on_every_job_run_so_far(tmp_path, monkeypatch):
    import rtmdl_ros.trace_report as trace_report
    ts_file, prof = _files(tmp_path)
    monkeypatch.setattr(trace_report, 'record', _fake_record([]))
    calls = []
    plan_paths.settle_paths(ts_file, prof, 3, 20.0, 0.9, str(tmp_path), {}, windows=1,
                            refit=lambda traces: calls.append(len(traces)))
    # 'big', then 'small': each round adds its jobs (past each window's first second, start-up)
    assert len(calls) == 2 and calls[1] == 2 * calls[0] > 600, calls


def _infer_traces(variant, n, rng, seq0=0):
    out = []
    for k in range(n):
        st = dict.fromkeys(STAGES, 0.1)
        st.update(sensor=2.0, pre=1.0, infer=VARIANTS[variant]['infer_ms'] + rng.exponential(0.5), post=0.5,
                  publish=0.0)
        out.append(JobTrace('cam', seq0 + k, variant, 'met', (seq0 + k) * 0.03, tuple(st[s] for s in STAGES)))
    return out


def test_refitted_segments_tighten_with_the_rounds_jobs_and_keep_the_paths_and_draws(tmp_path):
    from rtmdl_ros.calibrate import refit_segments
    ts_file, prof = _files(tmp_path)
    pristine = yaml.safe_load(open(prof))
    held = yaml.safe_load(open(prof))
    held['tasks']['cam']['release_path_tail'] = {99.5: 9.5}
    held['tasks']['cam']['variants']['small'].update(job_ms=[7.0, 7.5], job_tail={99.5: 7.5}, job_top=100.0)
    prof_file = tmp_path / 'prof.yaml'
    prof_file.write_text('# Calibrated by a test\n' + yaml.safe_dump(held))
    base = load_taskset(ts_file)
    rng = np.random.default_rng(4)
    # A share of the windows each, and one stall (a GIL wait) among small's 60: its tail is that stall.
    cycling = _infer_traces('small', 60, rng) + _infer_traces('big', 60, rng, 60)
    st = list(cycling[7].stages_ms)
    st[STAGES.index('infer')] = 10.0
    cycling[7] = JobTrace('cam', 7, 'small', 'met', 0.21, tuple(st))
    rounds = _infer_traces('small', 1400, rng, 120)                                  # one variant, two windows

    def small_tail(traces):
        refit_segments(prof, pristine, traces, base, 0.9, 'a test')
        return yaml.safe_load(open(prof))['tasks']['cam']['variants']['small']['infer_tail'][99.5]
    alone, pooled = small_tail(cycling), small_tail(cycling + rounds)
    true_p995 = 4.0 + 0.5 * np.log(200.0)             # infer = 4 + Exp(mean 0.5)
    assert true_p995 <= pooled < alone, (true_p995, pooled, alone)
    out = yaml.safe_load(open(prof))
    cam = out['tasks']['cam']
    assert cam['release_path_tail'] == {99.5: 9.5} and cam['release_path_ms'] == [2.0, 2.5]
    assert cam['variants']['small']['job_tail'] == {99.5: 7.5} and 'job_ms' not in cam['variants']['big']
    text = open(prof).read()
    assert text.startswith('# Calibrated by a test\n') and '# Segments: a test' in text
    assert out['calibrated']['segments'] == 'a test'
    load_taskset(ts_file)                             # what it wrote loads


def test_a_round_without_a_plan_measures_the_refitted_fastest_variants_next(tmp_path, monkeypatch):
    """The profiled 'small' runs slow in the graph: once the rounds' jobs refit it, 'mid' is
    the fastest, and nothing passes with the long path measured under 'small'. The next round
    runs 'mid', whose own (short) path lets it pass."""
    import rtmdl_ros.trace_report as trace_report
    graph_infer, path = {'small': 16.0, 'mid': 8.0, 'big': 12.0}, {'small': 12.0, 'mid': 2.0, 'big': 12.0}
    variants = {'small': {**VARIANTS['small'], 'infer_ms': 4.0}, 'mid': {**VARIANTS['small'], 'infer_ms': 8.0},
                'big': VARIANTS['big']}
    prof = tmp_path / 'prof.yaml'
    prof.write_text(yaml.safe_dump({'tasks': {'cam': {'variants': variants, 'release_path_ms': [15.0, 15.5]}}}))
    ts_file = tmp_path / 'taskset.yaml'
    ts_file.write_text(yaml.safe_dump({'analysis': {'percentile': 99.5}, 'profiles': 'prof.yaml', 'tasks': {
        'cam': {'period_ms': 33.3, 'deadline_ms': 20.0, 'max_miss_rate': 0.05}}}))
    assert plan_with(load_taskset(str(ts_file)), 'rtmdl').plan is None
    measured = []

    def record(out_dir, plan_file, taskset_file, duration_s, judge=False, **kw):
        variant = load_plan(plan_file, load_taskset(taskset_file))['cam'].variant
        measured.append(variant)
        traces = []
        for k in range(700):
            st = dict.fromkeys(STAGES, 0.1)
            st.update(sensor=path[variant], pre=1.0, infer=graph_infer[variant], post=0.5, publish=0.0)
            traces.append(JobTrace('cam', k, variant, 'met', k * 0.03, tuple(st[s] for s in STAGES)))
        return 0, traces, {}

    def refit(traces):                      # what refit_segments finds: each variant that ran, as it ran
        raw = yaml.safe_load(prof.read_text())
        for v in {t.variant for t in traces}:
            raw['tasks']['cam']['variants'][v]['infer_ms'] = graph_infer[v]
        prof.write_text(yaml.safe_dump(raw))

    monkeypatch.setattr(trace_report, 'record', record)
    lines, settled = plan_paths.settle_paths(str(ts_file), str(prof), 3, 20.0, 0.9, str(tmp_path), {}, windows=1,
                                             refit=refit)
    assert measured == ['small', 'mid'], lines
    assert any('fastest variant of the refitted profile' in line for line in lines), lines
    assert settled is not None and load_plan(settled, load_taskset(str(ts_file)))['cam'].variant == 'mid', lines


def test_calibrate_runs_the_rounds_on_the_refitted_profile_and_keeps_its_report(tmp_path, monkeypatch):
    """rtmdl calibrate end to end on a faked graph: cycling windows (every variant), then the
    rounds; the report it prints is also written beside the windows."""
    import rtmdl_ros.trace_report as trace_report
    from rtmdl_ros.calibrate import calibrate
    ts_file, prof = _files(tmp_path)
    measured = []
    rounds = _fake_record(measured)

    def record(out_dir, plan_file, taskset_file, duration_s, *a, judge=False, executor_params=None, **kw):
        if not executor_params:                              # a round: the plan's variant
            return rounds(out_dir, plan_file, taskset_file, duration_s)
        rng = np.random.default_rng(len(out_dir))
        traces = []
        for k in range(700):                                 # cycling: every variant in turn
            variant = ('small', 'big')[(k // 50) % 2]
            st = dict.fromkeys(STAGES, 0.1)
            st.update(sensor=2.0 + rng.exponential(0.2), pre=1.0, infer=VARIANTS[variant]['infer_ms'], post=0.5,
                      publish=0.0)
            traces.append(JobTrace('cam', k, variant, 'met', 2.0 + k * 0.03, tuple(st[s] for s in STAGES)))
        return 0, traces, {}
    monkeypatch.setattr(trace_report, 'record', record)
    result = calibrate(ts_file, 20.0, out_dir=str(tmp_path / 'cal'), plan_rounds=3)
    assert measured == ['big', 'big', 'small', 'small'] and result.settled_plan, result.plan_paths   # 2 windows
    text = (tmp_path / 'cal' / 'report.txt').read_text()
    assert text == result.report() + '\n' and 'settled on cam=small@0' in text
    assert '# Segments: fitted on' in open(prof).read()


def test_a_window_unlike_the_others_lengthens_its_round_instead_of_deciding_it(tmp_path, monkeypatch):
    """Round 1's second window has a stall episode (12 jobs with a 40 ms path): it moves the
    task's tails by far more than the tolerance, so the round measures a third window before
    its paths go in; a round whose windows agree stops at two."""
    import rtmdl_ros.trace_report as trace_report
    ts_file, prof = _files(tmp_path)
    measured = []
    clean = _fake_record(measured)

    def record(out_dir, plan_file, taskset_file, duration_s, judge=False, **kw):
        rc, traces, extra = clean(out_dir, plan_file, taskset_file, duration_s)
        if len(measured) == 2:                               # round 1, window 2
            stalled = [dataclasses.replace(t, stages_ms=(40.0,) + t.stages_ms[1:]) for t in traces[300:312]]
            traces = traces[:300] + stalled + traces[312:]
        return rc, traces, extra
    monkeypatch.setattr(trace_report, 'record', record)
    lines, settled = plan_paths.settle_paths(ts_file, prof, 3, 20.0, 0.9, str(tmp_path), {}, windows=2,
                                             max_windows=4)
    assert measured == ['big', 'big', 'big', 'small', 'small'], lines
    assert "(3 windows: window 2 moved cam's tail by" in lines[0], lines
    # ... and which window was the slow one: its tail against the others'.
    per_window = lines[0].split("cam's release path p99.5 per window ")[1].split(' ms)')[0].split(', ')
    assert len(per_window) == 3 and float(per_window[1]) > 2 * max(float(per_window[0]), float(per_window[2])), lines
    # Nothing measured is dropped: 12 stalled jobs of 2,100 still set big's path tail (the
    # estimate is sound, the extra window only gives it more samples), so the lighter plan settles.
    assert 'cam p99.5 <= 40.' in lines[0], lines
    assert not any('windows:' in line for line in lines[1:]), lines
    assert settled and load_plan(settled, load_taskset(ts_file))['cam'].variant == 'small'


def test_without_max_windows_a_round_keeps_its_windows(tmp_path, monkeypatch):
    import rtmdl_ros.trace_report as trace_report
    ts_file, prof = _files(tmp_path)
    measured = []
    clean = _fake_record(measured)

    def record(out_dir, plan_file, taskset_file, duration_s, judge=False, **kw):
        rc, traces, extra = clean(out_dir, plan_file, taskset_file, duration_s)
        if len(measured) == 2:
            stalled = [dataclasses.replace(t, stages_ms=(40.0,) + t.stages_ms[1:]) for t in traces[300:312]]
            traces = traces[:300] + stalled + traces[312:]
        return rc, traces, extra
    monkeypatch.setattr(trace_report, 'record', record)
    plan_paths.settle_paths(ts_file, prof, 3, 20.0, 0.9, str(tmp_path), {}, windows=2)
    assert measured[:3] == ['big', 'big', 'small'], measured


def test_calibration_runs_more_windows_while_a_slow_task_has_too_few_jobs(tmp_path, monkeypatch):
    """A slow task ('mic', a job every 250 ms) gets few jobs a window: the cycling windows and
    the round's go on (up to max_windows) until it has jobs_needed, and where the windows run
    out the report says how many it had and how many more windows it would take."""
    import rtmdl_ros.trace_report as trace_report
    from rtmdl_ros.calibrate import calibrate
    from rtmdl_ros.core.calibration import jobs_needed
    prof = tmp_path / 'prof.yaml'
    prof.write_text(yaml.safe_dump({'tasks': {t: {'variants': VARIANTS, 'release_path_ms': [2.0, 2.5]}
                                              for t in ('cam', 'mic')}}))
    ts_file = tmp_path / 'taskset.yaml'
    ts_file.write_text(yaml.safe_dump({'analysis': {'percentile': [99.5, 99.0]}, 'profiles': 'prof.yaml', 'tasks': {
        'cam': {'period_ms': 33.3, 'deadline_ms': 30.0, 'max_miss_rate': 0.05},
        'mic': {'period_ms': 250.0, 'deadline_ms': 250.0, 'max_miss_rate': 0.1}}}))
    need = jobs_needed((99.5, 99.0), 0.9)

    def run(mic_jobs, **limits):
        calls = []

        def record(out_dir, plan_file, taskset_file, duration_s, *a, judge=False, executor_params=None, **kw):
            calls.append('cycling' if executor_params else 'round')
            rng = np.random.default_rng(len(calls))
            traces = []
            for task, n in (('cam', 700), ('mic', mic_jobs)):
                for k in range(n):
                    variant = ('small', 'big')[(k // 50) % 2]
                    st = dict.fromkeys(STAGES, 0.1)
                    st.update(sensor=2.0 + rng.exponential(0.2), pre=1.0, infer=VARIANTS[variant]['infer_ms'],
                              post=0.5, publish=0.0)
                    stamp = (2.0 if task == 'cam' else 3.0) + k * 15.0 / n      # mic's after the warm-up second
                    traces.append(JobTrace(task, k, variant, 'met', stamp, tuple(st[s] for s in STAGES)))
            return 0, traces, {}
        monkeypatch.setattr(trace_report, 'record', record)
        return calls, calibrate(str(ts_file), 20.0, out_dir=str(tmp_path / 'cal'), plan_rounds=1, **limits)

    assert need == 777                                      # p99.5, the highest level, below one stall
    calls, result = run(mic_jobs=2 * need, max_windows=4)   # enough in two windows: nothing more
    assert calls == ['cycling'] * 2 + ['round'] * 2 and not result.short, calls
    calls, result = run(mic_jobs=40, max_windows=4)         # 40 a window: 4 cycling windows, 4 in the round
    assert calls == ['cycling'] * 4 + ['round'] * 4, calls
    assert result.short == {'mic': (320, 40.0)}, result.short
    assert f'mic had 280 jobs, {need} needed)' in result.plan_paths[0], result.plan_paths      # after 3 windows
    assert f'mic: 320 jobs, {need} needed for its p99.5 bounds' in result.report()
    assert 'about 12 more window(s) of 20 s' in result.report()
    calls, result = run(mic_jobs=300, max_windows=4)        # 300 a window: 3 cycling windows are enough
    assert calls == ['cycling'] * 3 + ['round'] * 2 and not result.short, calls
    # By default 10 cycling windows; a round adds at most 4 (ROUND_WINDOWS), however short.
    calls, result = run(mic_jobs=40)
    assert calls == ['cycling'] * 10 + ['round'] * 4 and result.short == {'mic': (560, 40.0)}, calls
    calls, result = run(mic_jobs=70)                        # 700 in the cycling windows, 840 after 2 in the round
    assert calls == ['cycling'] * 10 + ['round'] * 2 and not result.short, calls


def test_a_round_reports_only_the_job_draws_bounded_at_its_percentile():
    # A slow task's draws may be bounded at p99 only: its line shows its path, not an empty '()'.
    fields = {'cam': {'release_path_tail': {99.5: 3.0}, 'jobs': {'big': {'job_tail': {99.5: 9.0, 99.0: 8.0}}}},
              'mic': {'release_path_tail': {99.5: 130.0}, 'jobs': {'big': {'job_tail': {99.0: 131.0}}}}}
    assert plan_paths._tails(fields, 99.5) == 'cam p99.5 <= 3.00 ms (own time of big 9.00 ms), mic p99.5 <= 130.00 ms'


def test_the_report_names_a_task_none_of_whose_jobs_ran():
    from rtmdl_ros.calibrate import Calibration
    text = Calibration('p.yaml', 4, 0, short={'mic': (0, 0.0)}, need=388, level=99.0, window_s=20.0).report()
    assert 'mic: 0 jobs, 388 needed' in text and 'is its sensor publishing?' in text
