"""Release paths measured under the plan they certify (`rtmdl calibrate --plan-rounds N`).

The path from a frame's stamp to the scheduler's release depends on what the
scheduler's threads are doing meanwhile: they run at SCHED_FIFO and take the
cores from the ROS thread and the sensors. Calibration measures it while every
variant cycles, an average load; under a light plan it is shorter (measured on
the 2-core VM: sensor-stage p99 2.6 ms under the fastest variants against a
9.7 ms p99.5 bound while cycling), under the heaviest plan longer. So:

  plan with the calibrated profile; run the graph under that plan (two
  windows, two starts: measured, one 90 ms stall of one run put three frames
  at the top of a 600-sample window) and put the release paths measured there
  into the profile; plan again.

The profile keeps, per task, the longest paths measured under any plan so far,
so they only grow and the plans only get lighter. It stops when planning again
returns a plan already measured: that plan passes with paths no shorter than
its own, and `rtmdl optimize` on the written profile returns it. Without that
fixed point within the rounds, the most accurate plan run that passes with the
paths measured while it ran is the one: its paths go into the profile and the
plan into plan_settled.yaml (planning again would pick a heavier plan whose
paths were not measured, so the report says to run that file). Where no plan
passes with the cycling paths, round 1 runs every task's fastest variant; where none
passes after a round, the next runs the fastest variants of the profile as refitted (the
rounds' jobs may have moved which are fastest), unless they ran already. Otherwise the
profile gets back the paths of the cycling calibration (an average load), and
the report says so: a plan is never certified with paths measured under a
lighter one.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .core.calibration import (TOLERANCE, after_warmup, held_path_fields, jobs_short, path_fields, put_path_fields,
                               settled as tails_settled)
from .core.plan import write_plan
from .core.analysis import analyze
from .core.optimizer import objective
from .core.policies import fastest_plan, plan_with
from .core.taskset import TasksetError, load_taskset, read_yaml


def _order(plan) -> str:
    return ', '.join(f'{n}={a.variant}@{a.priority}' for n, a in sorted(plan.items(), key=lambda kv: kv[1].priority))


def _tail(fields: dict, percentile: float) -> float:
    return fields['release_path_tail'][float(percentile)]


def _draws(variant: str, draws: dict, percentile: float) -> str:
    """A variant's job draws for the report: its own time, and its work per run of jobs."""
    p = float(percentile)
    out = [f'own time of {variant} {draws["job_tail"][p]:.2f} ms'] if p in draws.get('job_tail', {}) else []
    runs = [(1, draws['work_tail'][p])] if p in draws.get('work_tail', {}) else []
    runs += [(int(k[4:-5]), v[p]) for k, v in draws.items() if k.startswith('work') and k[4:-5].isdigit()
             and k.endswith('_tail') and p in v]
    if runs:
        out.append('work of ' + ', '.join(f'{n} job{"s" if n > 1 else ""} {w:.2f}' for n, w in sorted(runs)) + ' ms')
    return '; '.join(out)


def _window_tail(traces, task: str, percentile: float) -> float:
    paths = [t.path_ms for t in traces if t.task == task and math.isfinite(t.path_ms)]
    return float(np.percentile(paths, percentile)) if paths else math.nan


def _tails(fields: dict, percentile: float) -> str:
    """A round's measured tails for the report: per task its release path and the job draws
    bounded at the percentile (a slow task's may be bounded at a lesser one only)."""
    return ', '.join(f'{t} p{percentile:g} <= {_tail(f, percentile):.2f} ms'
                     + ''.join(f' ({d})' for d in (_draws(v, j, percentile) for v, j in f.get('jobs', {}).items()) if d)
                     for t, f in fields.items())


def _write_paths(prof_path: str, fields: dict, note: str) -> None:
    """The profiles file with each task's release-path keys replaced, atomically."""
    from .calibrate import rewrite_profile
    raw = read_yaml(prof_path, 'profiles file')
    for task, entry in fields.items():
        put_path_fields(raw.setdefault('tasks', {}).setdefault(task, {}), entry)
    raw.setdefault('calibrated', {})['release_paths'] = note
    rewrite_profile(prof_path, raw, 'Release paths', note)


def settle_paths(taskset_file: str, prof_path: str, rounds: int, duration_s: float, confidence: float,
                 out_dir: str, record_kwargs: dict, time_limit_s: float = 20.0,
                 windows: int = 2, refit=None, max_windows: int | None = None,
                 tolerance: float = TOLERANCE, need: int = 0, before: list = ()) -> tuple[list[str], str | None]:
    """Up to `rounds` plan -> run (`windows` windows, up to max_windows while the last one still
    moves a tail by more than calibrate's tolerance, or while a task has fewer than `need` jobs
    in `before` and the rounds so far) -> re-measure rounds; returns the report lines
    and the settled plan file (out_dir/plan_settled.yaml), if any. refit(traces), where given,
    rewrites the profile's segment times with every round's jobs added (calibrate.refit_segments)
    before each round's paths go in."""
    from .trace_report import record
    taskset = load_taskset(taskset_file)
    cycling = {t: held_path_fields(entry) for t, entry in (read_yaml(prof_path, 'profiles file').get('tasks') or {}).items()}
    res = plan_with(taskset, 'rtmdl', time_limit_s=time_limit_s)
    lines = []
    plan = res.plan
    if plan is None:
        # The cycling paths (an average load) may be what fails: start from the lightest plan.
        plan = fastest_plan(taskset)
        lines.append('no plan meets the bounds with the paths measured while every variant cycled; '
                     'round 1 measures them under every task\'s fastest variant')
    merged: dict = {}
    measured, own, ran = [], [], []
    settled = os.path.join(out_dir, 'plan_settled.yaml')
    if os.path.exists(settled):
        os.remove(settled)                    # only this run's verdict
    for k in range(rounds):
        plan_file = os.path.join(out_dir, f'plan_round{k + 1}.yaml')
        write_plan(plan_file, plan, header=f'rtmdl calibrate: release paths under this plan, round {k + 1}')
        runs, moved, mover = [], '', ''
        while True:                       # separate starts: one stall of one run is not the tail
            rc, got, _ = record(os.path.join(out_dir, f'round{k + 1}_window{len(runs) + 1}'), plan_file,
                                taskset_file, duration_s, judge=False, **record_kwargs)
            got, _ = after_warmup(got)
            if not got:
                raise TasksetError(f'paths under the plan: round {k + 1} traced no job (exit {rc}); logs above')
            runs.append(got)
            if len(runs) < windows:
                continue
            # A window that moves a task's release-path or response tail by more than the
            # tolerance was unlike the others: measure more rather than let it decide alone.
            shifts = [tails_settled(runs, taskset.tasks, taskset.percentile, confidence, tolerance, windows, value)[1]
                      for value in (lambda t: t.path_ms, lambda t: t.response_ms)]
            worst = max(((s, t) for shift in shifts for t, s in shift.items()), default=(0.0, ''))
            # A slow task's jobs: enough that one stall does not set its segments' bounds (refit).
            short = jobs_short(list(before) + ran + [t for w in runs for t in w], taskset.tasks, need) if need else {}
            if (worst[0] <= tolerance and not short) or len(runs) >= max(windows, max_windows or 0):
                break
            why = ([f'window {len(runs)} moved {worst[1]}\'s tail by {100 * worst[0]:.0f} %']
                   if worst[0] > tolerance else []) + [f'{t} had {n} jobs, {need} needed' for t, n in short.items()]
            moved = f' ({len(runs) + 1} windows: {"; ".join(why)})'
            mover = worst[1] if worst[0] > tolerance else ''
        if moved and mover:
            # Which windows were slow: the bound covers them (nothing measured is dropped).
            tails = [_window_tail(w, mover, taskset.percentile) for w in runs]
            moved += (f' ({mover}\'s release path p{taskset.percentile:g} per window '
                      + ', '.join(f'{x:.1f}' for x in tails) + ' ms)')
        traces = [t for w in runs for t in w]
        fields = {t: path_fields(traces, t, taskset.percentiles, confidence)[0] for t in taskset.tasks}
        fields = {t: f for t, f in fields.items() if f}
        tails = _tails(fields, taskset.percentile)
        # Per task the longest of the paths measured under every plan so far: a plan chosen
        # with them was measured itself, or is measured next round.
        merged = {t: max((f, merged.get(t)), key=lambda x: _tail(x, taskset.percentile) if x else -1.0)
                  for t, f in fields.items()}
        measured.append(plan)
        own.append((plan, fields))
        ran += traces
        if refit is not None:
            refit(ran)
        _write_paths(prof_path, merged, 'per task the longest measured under ' + '; '.join(map(_order, measured)))
        taskset = load_taskset(taskset_file)
        again = plan_with(taskset, 'rtmdl', time_limit_s=time_limit_s).plan
        lines.append(f'round {k + 1}: under {_order(plan)}{moved}: {tails}; planning again gives '
                     + (_order(again) if again is not None else 'no plan'))
        if again is not None and again in measured:
            write_plan(settled, again, header='rtmdl calibrate: passes with release paths no shorter than those '
                                              'measured while it ran (per task the longest under every plan run)')
            lines.append(f'paths under the plan: settled on {_order(again)}: it passes with paths no shorter than '
                         f'those measured while it ran, and rtmdl optimize returns it ({settled})')
            return lines, settled
        if again is None:
            # The refit may have moved which variants are fastest: measure those before giving up
            # (a variant that never ran under a plan has no job draw, and its waits count apart).
            again = fastest_plan(taskset)
            if again in measured or k + 1 == rounds:
                break
            lines.append(f'round {k + 2} measures every task\'s fastest variant of the refitted profile')
        plan = again
    # No fixed point: the most accurate plan run that passes with the paths measured while it ran.
    passing = []
    for plan, fields in own:
        _write_paths(prof_path, fields, f'measured under {_order(plan)}')
        taskset = load_taskset(taskset_file)
        if all(a.meets_bound for a in analyze(taskset, plan).values()):
            passing.append((objective(taskset, {n: a.variant for n, a in plan.items()}), plan, fields))
    if passing:
        _, plan, fields = min(passing, key=lambda x: x[0])
        _write_paths(prof_path, fields, f'measured under {_order(plan)} (the plan in {os.path.basename(settled)})')
        write_plan(settled, plan, header='rtmdl calibrate: passes with the release paths measured while it ran; '
                                         'rtmdl optimize on this profile may choose a heavier plan whose paths '
                                         'were not measured')
        lines.append(f'paths under the plan: {_order(plan)} passes with the paths measured while it ran ({settled}); '
                     'planning again chose heavier plans that did not, so use that plan rather than rtmdl optimize')
        return lines, settled
    _write_paths(prof_path, cycling, 'measured while every variant cycled (no plan settled with its own paths)')
    lines.append('paths under the plan: no plan passed with the paths measured under itself; the profile keeps '
                 'the paths measured while every variant cycled')
    return lines, None
