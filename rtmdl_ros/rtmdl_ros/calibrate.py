"""`rtmdl calibrate`: measure what the analysis needs on the graph's real path.

`rtmdl profile` times each variant alone, in one process. The running graph
adds what that cannot see: the path from the sensor's stamp to the scheduler's
release, and segments that run slower beside the ROS threads and the sensors.
This runs the graph (as launched) in windows; in each, the executor moves every
task through all its variants (`cycle_variants_s`), so every variant runs in
the graph. From the traces (core/calibration.py) it writes into the task set's
profiles file:

  * tasks.<t>.release_path_ms: every measured stamp -> release sample, and
    release_path_tail: an upper confidence bound on its percentile (core/tails.py);
  * per variant, pre/infer/post as the fitted interference model gives them
    (QUANTILE_POINTS quantiles) and <segment>_tail: the model at its residuals'
    upper confidence bound; for a segment that runs in steps, <segment>_chunk_ms
    the same way from the longest step of each job in the graph.

Windows repeat (up to max_windows) while one more window still moves any task's
release-path tail by more than `tolerance`, or while a task has too few jobs for
its highest percentile's bound to leave out its largest sample (a slow task: audio
gets about 76 jobs a window, and p99.5 needs 777): a noisy window or one stall
lengthens the calibration instead of deciding the plan alone.
The uncalibrated profile is kept beside it (.uncalibrated) and every run starts
from it, so calibrating twice never stretches twice.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field

import numpy as np
import yaml

from .core.analysis import default_plan
from .core.calibration import (TOLERANCE, WARMUP_S, SegmentModel, after_warmup, calibrated_variant, fit_segment,
                               held_path_fields, jobs_needed, jobs_short, levels_of, path_fields, put_path_fields,
                               segment_samples, settled, step_samples)
from .core.files import atomic_write
from .core.plan import write_plan
from .core.taskset import SEGMENTS, TasksetError, load_taskset, read_yaml
from .core.tails import TailEstimate
from .core.trace import JobTrace

CONFIDENCE = 0.9           # of every tail bound


# Cycling windows at most: a 4 Hz task gets about 76 jobs in a 20 s window, so 10 windows and
# one round under a plan reach the 777 that bound p99.5 below one stall (jobs_needed).
MAX_WINDOWS = 10
# A round under a plan adds to the cycling windows' jobs: it runs at most this many windows.
ROUND_WINDOWS = 4


@dataclass
class Calibration:
    profiles_file: str
    windows: int
    jobs: int
    paths: dict[str, TailEstimate] = field(default_factory=dict)
    models: dict[tuple[str, str], SegmentModel] = field(default_factory=dict)
    shifts: list[dict] = field(default_factory=list)
    converged: bool = True
    plan_paths: list[str] = field(default_factory=list)   # rounds of paths under the plan
    settled_plan: str | None = None                        # a plan that passes with its own paths
    # Tasks with fewer jobs than `need` (calibration.jobs_needed, at the highest percentile
    # `level`) in all the windows their segments were fitted on: (jobs, jobs a window).
    short: dict[str, tuple[int, float]] = field(default_factory=dict)
    need: int = 0
    level: float = 0.0
    window_s: float = 0.0

    def report(self) -> str:
        lines = [f'{self.jobs} jobs in {self.windows} window(s); '
                 + ('stable' if self.converged else 'NOT stable within the windows allowed: '
                    'the bounds below carry that window-to-window spread; run it again on a quieter machine')]
        for task, (n, rate) in self.short.items():
            more = (f'about {math.ceil((self.need - n) / rate)} more window(s) of {self.window_s:g} s (--max-windows)'
                    if rate > 0 else 'none of its jobs ran in the cycling windows: is its sensor publishing?')
            lines.append(f'  {task}: {n} jobs, {self.need} needed for its p{self.level:g} bounds to leave out its '
                         f'largest sample (one stall would set them); {more}')
        for task, est in self.paths.items():
            lines.append(f'  {task} release path: {est.describe()}')
        for model in self.models.values():
            tail = model.tail.describe().replace(' ms', '')
            lines.append(f'  {model.describe()}; residual {tail}')
        return '\n'.join(lines + self.plan_paths)


def apply_calibration(profiles: dict, traces: list[JobTrace], taskset, percentile,
                      confidence: float = CONFIDENCE) -> tuple[dict, dict, dict]:
    """The profiles dict with measured release paths and modelled segment times; the path
    estimates and segment models it used. percentile: one, or the task set's percentiles
    (the reported one first), each given its bound in every tail written."""
    levels = levels_of(percentile)
    percentile = levels[0]                                   # the models' reports
    out = yaml.safe_load(yaml.safe_dump(profiles))           # deep copy
    paths, models = {}, {}
    for task, entry in out.get('tasks', {}).items():
        if task not in taskset.tasks:
            continue
        fields, est = path_fields(traces, task, levels, confidence)
        if fields:
            put_path_fields(entry, fields)
            paths[task] = est
        variants = taskset.tasks[task].variants
        for seg in SEGMENTS:
            profiled = {v: float(np.median(variants[v].time(seg).samples)) for v in variants}
            model = fit_segment(task, seg, segment_samples(traces, task, seg), profiled, percentile, confidence)
            if model is None:
                continue
            models[(task, seg)] = model
            for v, spec in entry.get('variants', {}).items():
                if v in model.medians:
                    spec[f'{seg}_ms'], spec[f'{seg}_tail'], spec[f'{seg}_top'] = \
                        calibrated_variant(model, v, levels, confidence)
        for seg in SEGMENTS:
            profiled = {v: float(np.median(var.chunks[seg].samples)) for v, var in variants.items() if seg in var.chunks}
            if not profiled:
                continue
            model = fit_segment(task, f'{seg}_chunk', step_samples(traces, task, seg), profiled, percentile,
                                confidence)
            for v, spec in entry.get('variants', {}).items():
                keys = [f'{seg}_chunk_ms', f'{seg}_chunk_tail', f'{seg}_chunk_top']
                if model is not None and v in model.medians:
                    values = calibrated_variant(model, v, levels, confidence)
                    spec.update(zip(keys, values))
                else:      # steps not seen in the graph: the segment counts whole (never shorter than it ran)
                    for key in keys:
                        spec.pop(key, None)
            if model is not None:
                models[(task, f'{seg}_chunk')] = model
    return out, paths, models


def calibrate(taskset_file: str, duration_s: float = 20.0, backend: str = 'onnxruntime', device: str = 'cpu',
              zoo_dir: str | None = None, out_dir: str | None = None, quiet: bool = True,
              camera_params: dict | None = None, min_windows: int = 2, max_windows: int = MAX_WINDOWS,
              tolerance: float = TOLERANCE, confidence: float = CONFIDENCE, plan_rounds: int = 0) -> Calibration:
    """Run the graph in windows of duration_s with every variant in turn, then rewrite the profiles file;
    then up to plan_rounds rounds of release paths measured under the plan (plan_paths.py)."""
    from .trace_report import record
    raw = read_yaml(taskset_file, 'task set')
    if not raw.get('profiles'):
        raise TasksetError(f'task set {taskset_file}: has no profiles file to calibrate (make it with rtmdl profile)')
    prof_path = raw['profiles'] if os.path.isabs(raw['profiles']) else \
        os.path.join(os.path.dirname(os.path.abspath(taskset_file)), raw['profiles'])
    # Calibrate from the profile as measured: a second run must not stretch twice.
    pristine = prof_path + '.uncalibrated'
    current = read_yaml(prof_path, 'profiles file')
    if not isinstance(current, dict):
        raise TasksetError(f'profiles file {prof_path}: expected a mapping')
    if not current.get('calibrated'):                # fresh from rtmdl profile
        atomic_write(pristine, lambda f: yaml.safe_dump(current, f, sort_keys=False, width=160,
                                                         default_flow_style=None))
    profiles = read_yaml(pristine, 'profiles file')
    base_file = os.path.abspath(_with_profiles(taskset_file, raw, pristine))
    base = load_taskset(base_file)
    out_dir = out_dir or os.path.join(os.path.dirname(os.path.abspath(taskset_file)), 'calibration')
    os.makedirs(out_dir, exist_ok=True)
    clear_windows(out_dir)
    plan_file = os.path.join(out_dir, 'plan_largest.yaml')
    write_plan(plan_file, default_plan(base), header='rtmdl calibrate: largest variants first, then every '
                                                     'variant in turn (cycle_variants_s)')
    most = max(len(t.variants) for t in base.tasks.values())
    cycle = {'cycle_variants_s': round(max(0.5, duration_s / most), 3)}     # every variant once per window
    runs: list[list[JobTrace]] = []
    shifts: list[dict] = []
    converged = False
    need = jobs_needed(base.percentiles, confidence)
    while len(runs) < max_windows:
        windows = len(runs)
        rc, got, _ = record(os.path.join(out_dir, f'window{windows + 1}'), plan_file, base_file, duration_s,
                            backend, device, zoo_dir, quiet, judge=False, camera_params=camera_params,
                            executor_params=cycle)
        if not got:
            raise TasksetError(f'calibration window {windows + 1} failed (exit {rc}, no job traced); logs above')
        if rc != 0:
            print(f'calibration window {windows + 1}: the graph exited with {rc} after its window; '
                  f'its {len(got)} traced jobs are kept')
        got, early = after_warmup(got)
        if early:
            worst = max((t.path_ms for t in early if np.isfinite(t.path_ms)), default=float('nan'))
            print(f'calibration window {windows + 1}: {len(early)} jobs of its first {WARMUP_S:g} s left out '
                  f'(start-up; longest release path {worst:.1f} ms)')
        runs.append(got)
        converged, shift = settled(runs, base.tasks, base.percentile, confidence, tolerance, min_windows)
        if shift:
            shifts.append(shift)
        if converged and not jobs_short([t for w in runs for t in w], base.tasks, need):
            break
    traces, windows = [t for w in runs for t in w], len(runs)
    calibrated, paths, models = apply_calibration(profiles, traces, base, base.percentiles, confidence)
    per_window = {t: sum(1 for j in traces if j.task == t) / windows for t in base.tasks}

    def short_of(jobs: list[JobTrace]) -> dict:
        return {t: (n, per_window[t]) for t, n in jobs_short(jobs, base.tasks, need).items()}
    result = Calibration(prof_path, windows, len(traces), paths, models, shifts, converged, short=short_of(traces),
                         need=need, level=max(base.percentiles), window_s=duration_s)
    calibrated['calibrated'] = {
        'windows': windows, 'window_s': duration_s, 'jobs': len(traces), 'confidence': confidence,
        'converged': converged}
    header = ('Calibrated by `rtmdl calibrate` on the running graph, every variant in turn:\n'
              + result.report() + f'\nUncalibrated profile: {os.path.basename(pristine)}')

    def write(f):
        f.write(''.join(f'# {line}\n' for line in header.splitlines()))
        yaml.safe_dump(calibrated, f, sort_keys=False, width=160, default_flow_style=None)
    atomic_write(prof_path, write)
    load_taskset(taskset_file)                   # what we wrote must load
    if plan_rounds:
        from .plan_paths import settle_paths

        def refit(rounds: list[JobTrace]) -> None:
            refit_segments(prof_path, profiles, traces + rounds, base, confidence,
                           f'fitted on {windows} cycling window(s) and {len(rounds)} jobs run under plans')
            result.short = short_of(traces + rounds)
        result.plan_paths, result.settled_plan = settle_paths(
            taskset_file, prof_path, plan_rounds, duration_s, confidence, out_dir,
            {'backend': backend, 'device': device, 'zoo_dir': zoo_dir, 'quiet': quiet, 'camera_params': camera_params},
            refit=refit, max_windows=min(max_windows, ROUND_WINDOWS), tolerance=tolerance, need=need, before=traces)
    # What `rtmdl calibrate` prints, kept beside the windows (benches and evaluate run it quietly).
    atomic_write(os.path.join(out_dir, 'report.txt'), lambda f: f.write(result.report() + '\n'))
    return result


def clear_windows(out_dir: str) -> None:
    """Remove the windows an earlier calibration recorded into out_dir (window<n>/, round<k>_window<n>/):
    a run that needs fewer windows would otherwise leave the last one's beside its own, and
    whoever fits the folder again (or reads it in a bug report) would take both as one run."""
    for name in os.listdir(out_dir):
        if re.fullmatch(r'(round\d+_)?window\d+', name) and os.path.isdir(os.path.join(out_dir, name)):
            shutil.rmtree(os.path.join(out_dir, name))


def refit_segments(prof_path: str, pristine: dict, traces: list[JobTrace], base, confidence: float, note: str) -> None:
    """Rewrite the profile's segment times fitted on `traces` (apply_calibration), keeping its
    release paths and job draws as they are. The plan rounds' windows add a thousand or more
    jobs of the variants they run to the few hundred each gets while every variant cycles,
    so the tails of those variants, which block and interfere in the plans that follow, come
    from order statistics below the largest sample instead of the largest itself."""
    held = read_yaml(prof_path, 'profiles file')
    fitted, _, _ = apply_calibration(pristine, traces, base, base.percentiles, confidence)
    for task, entry in (fitted.get('tasks') or {}).items():
        put_path_fields(entry, held_path_fields(((held.get('tasks') or {}).get(task)) or {}))
    fitted['calibrated'] = {**(held.get('calibrated') or {}), 'segments': note}
    rewrite_profile(prof_path, fitted, 'Segments', note)


def rewrite_profile(prof_path: str, raw: dict, key: str, note: str) -> None:
    """Write `raw` over the profiles file atomically, keeping its `#` header (what calibrated
    it and how) with `# <key>: <note>` in place of the line of that key."""
    with open(prof_path) as f:
        header = [line for line in f.read().splitlines() if line.startswith('#') and not line.startswith(f'# {key}:')]

    def write(f):
        f.write('\n'.join(header + [f'# {key}: {note}']) + '\n')
        yaml.safe_dump(raw, f, sort_keys=False, width=160, default_flow_style=None)
    atomic_write(prof_path, write)


def _with_profiles(taskset_file: str, raw: dict, profiles: str) -> str:
    """A copy of the task set that references `profiles` instead (beside the original)."""
    path = os.path.join(os.path.dirname(os.path.abspath(taskset_file)), '.uncalibrated_taskset.yaml')
    atomic_write(path, lambda f: yaml.safe_dump({**raw, 'profiles': os.path.abspath(profiles)}, f, sort_keys=False))
    return path

