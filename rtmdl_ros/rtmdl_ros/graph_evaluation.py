"""`rtmdl evaluate --graph`: the policy x load grid through the ROS graph users run.

The same levels as `rtmdl evaluate` (background CPU work x extra 30 fps
cameras running the traffic-light detector), but every run is the real graph:
one process per node as launched, a simulated camera per camera topic (frames
made up front, so a camera costs what a driver's publish costs), a task node
per task, the lifecycle executor, responses from the sensor's stamp to the
published result. Per level: profile under the load, calibrate on the graph
(release paths, graph slow-down), then plan and run every policy, and compare
what the graph measured with the analysis of the calibrated task set. As in
`make demo`, calibration ends with plan rounds (plan_paths.py): RT-mDL's plan is
the one they settle on, with release paths and job draws measured under it;
without one it is what `rtmdl optimize` returns on the calibrated profile.
"""
from __future__ import annotations

import copy
import json
import math
import os

import yaml

from .core.analysis import analyze
from .core.files import atomic_write
from .core.plan import load_plan, write_plan
from .core.policies import POLICIES, fastest_plan, plan_with
from .core.taskset import load_taskset, platform_for_device
from .evaluation import BackgroundLoad, with_extra_cameras
from .report import level_label, notes_and_comparisons

CAMERA_PARAMS = {'prerender': 30}


def _write_level(level_dir: str, cfg: dict, models: dict, prof: dict) -> str:
    """Task set + profiles file of one level; returns the task set's path."""
    os.makedirs(level_dir, exist_ok=True)
    profiles = {'platform': prof['platform'], 'tasks': {t: copy.deepcopy(prof['tasks'][m]) for t, m in models.items()}}
    atomic_write(os.path.join(level_dir, 'profiles.yaml'),
                 lambda f: yaml.safe_dump(profiles, f, sort_keys=False, width=160, default_flow_style=None))
    path = os.path.join(level_dir, 'taskset.yaml')
    atomic_write(path, lambda f: yaml.safe_dump({**cfg, 'profiles': 'profiles.yaml'}, f, sort_keys=False))
    return path


def _record(taskset, policy, load, cameras, plan, note, summary, models) -> dict:
    status = summary.get('status')
    measured = {t.task: t for t in status.tasks} if status is not None else {}
    bounds = analyze(taskset, plan)
    tasks = {}
    for name, a in plan.items():
        task, m = taskset.tasks[name], measured.get(name)
        bound = bounds[name].response_bound_ms
        tasks[name] = {
            'model': models[name], 'variant': a.variant, 'priority': a.priority,
            'accuracy': task.variants[a.variant].accuracy, 'max_accuracy': task.max_accuracy,
            'deadline_ms': task.deadline_ms, 'max_miss_rate': task.max_miss_rate,
            'jobs': int(m.jobs) if m else 0, 'missed': int(m.missed) if m else 0,
            'dmr': float(m.run_miss_rate) if m else None,
            'p99_ms': float(m.run_response_p99_ms) if m and not math.isnan(m.run_response_p99_ms) else None,
            'bound_ms': bound if math.isfinite(bound) else None, 'miss_rate_bound': bounds[name].miss_rate_bound,
            'stage_p99_ms': dict(zip(m.stages, [float(x) for x in m.stage_p99_ms])) if m else {},
        }
    jobs = sum(v['jobs'] for v in tasks.values())
    cpu = summary.get('cpu')
    return {
        'policy': policy, 'load': load, 'cameras': cameras, 'note': note, 'tasks': tasks,
        'dmr': sum(v['missed'] for v in tasks.values()) / jobs if jobs else 0.0,
        'mean_accuracy': sum(v['accuracy'] for v in tasks.values()) / len(tasks),
        'analysis_schedulable': all(b.meets_bound for b in bounds.values()),
        'over_bound': [t for t, v in tasks.items() if v['p99_ms'] is not None and v['bound_ms'] is not None
                       and v['p99_ms'] > v['bound_ms'] + 1e-6],
        'cpu_graph_cores': cpu[0] if cpu else None, 'cpu_other_cores': cpu[1] if cpu else None,
        'startup_s': summary.get('startup_s'),
    }


def evaluate_graph(config: str, out_dir: str, loads=(0.0, 1.0), cameras=(0,), policies=POLICIES,
                   duration_s: float = 30.0, calibrate_s: float = 15.0, profile_samples: int = 40,
                   backend_name: str = 'onnxruntime', device: str = 'cpu', zoo_dir: str | None = None,
                   time_limit_s: float = 20.0, progress=None, plan_rounds: int = 3) -> dict:
    from .backends import create
    from .bringup import bringup
    from .calibrate import calibrate
    from .models.jobs import limit_library_threads
    from .profiling import measure, read_config
    limit_library_threads()
    base = read_config(config)
    base['platform'], platform_note = platform_for_device(base.get('platform', {}), device)
    backend = create(backend_name, device, zoo_dir)
    results = {'config': os.path.abspath(config), 'duration_s': duration_s, 'calibrate_s': calibrate_s,
               'plan_rounds': plan_rounds, 'loads': list(loads), 'cameras': list(cameras),
               'policies': list(policies), 'backend': backend_name, 'device': device, 'cpus': os.cpu_count(),
               'platform': base['platform'], 'platform_note': platform_note, 'graph': True, 'runs': []}
    lanes = int(base['platform'].get('gpu_lanes', 1))
    for load in loads:
        with BackgroundLoad(load):
            _, all_models = with_extra_cameras(base, max(cameras))
            prof = measure(sorted(set(all_models.values())), backend, profile_samples, 5, zoo_dir, lanes=max(1, lanes))
            prof.pop('probe')
            for n in cameras:
                cfg, models = with_extra_cameras(base, n)
                level_dir = os.path.join(out_dir, f'load{load:g}_cams{n}')
                taskset_file = _write_level(level_dir, cfg, models, prof)
                cal = calibrate(taskset_file, calibrate_s, backend_name, device, zoo_dir,
                                out_dir=os.path.join(level_dir, 'calibration'), camera_params=CAMERA_PARAMS,
                                plan_rounds=plan_rounds)
                taskset = load_taskset(taskset_file)
                for policy in policies:
                    if policy == 'rtmdl' and cal.settled_plan:
                        plan, note = load_plan(cal.settled_plan, taskset), 'the plan calibration settled on'
                    else:
                        res = plan_with(taskset, policy, time_limit_s=time_limit_s)
                        plan, note = res.plan, ''
                    if plan is None:
                        plan, note = fastest_plan(taskset), f'no plan meets the bounds ({res.reason}); ran fastest variants'
                    plan_file = os.path.join(level_dir, f'plan_{policy}.yaml')
                    write_plan(plan_file, plan, header=f'rtmdl evaluate --graph: {policy} at {level_label(load, n)}')
                    summary: dict = {}
                    bringup('f1tenth', plan_file, backend_name, device, '', True, duration_s, taskset_file,
                            quiet=True, zoo_dir=zoo_dir, summary=summary, camera_params=CAMERA_PARAMS)
                    record = _record(taskset, policy, load, n, plan, note, summary, models)
                    results['runs'].append(record)
                    if progress is not None:
                        progress(load, n, policy, record)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, 'table.md'), 'w', encoding='utf-8') as f:
        f.write(table(results))
    return results


def table(results: dict) -> str:
    lines = ['| level | policy | DMR (whole run) | mean acc | tasks with p99 > bound | analysis | other CPU (cores) |',
             '|---|---|---|---|---|---|---|']
    for r in results['runs']:
        other = f'{r["cpu_other_cores"]:.2f}' if r['cpu_other_cores'] is not None else '-'
        lines.append(f'| {level_label(r["load"], r["cameras"])} | {r["policy"]}{" *" if r["note"] else ""} | '
                     f'{r["dmr"]:.4f} | {100 * r["mean_accuracy"]:.2f} | {", ".join(r["over_bound"]) or "none"} | '
                     f'{"schedulable" if r["analysis_schedulable"] else "not schedulable"} | {other} |')
    lines += notes_and_comparisons(results, '.4f')
    lines += ['', '| level | policy | task | variant | jobs | DMR (bound) | measured p99 ms | analysed bound ms |',
              '|---|---|---|---|---|---|---|---|']
    for r in results['runs']:
        for t, v in r['tasks'].items():
            p99 = f'{v["p99_ms"]:.1f}' if v['p99_ms'] is not None else '-'
            bound = f'{v["bound_ms"]:.1f}' if v['bound_ms'] is not None else 'none'
            lines.append(f'| {level_label(r["load"], r["cameras"])} | {r["policy"]} | {t} | {v["variant"]} | '
                         f'{v["jobs"]} | {v["dmr"] if v["dmr"] is not None else float("nan"):.3f} '
                         f'({v["max_miss_rate"]:g}) | {p99} | {bound} |')
    return '\n'.join(lines) + '\n'


def side_by_side(core: dict, graph: dict) -> str:
    """Core runtime vs ROS graph, per level and policy: DMR, mean accuracy and tasks over their bound."""
    def over(r):
        bad = [t for t, v in r['tasks'].items() if v.get('p99_ms') is not None and v.get('bound_ms') is not None
               and v['p99_ms'] > v['bound_ms'] + 1e-6]
        return ', '.join(bad) or 'none'
    core_runs = {(r['load'], r.get('cameras', 0), r['policy']): r for r in core['runs']}
    lines = ['| level | policy | DMR core | DMR graph | mean acc core | mean acc graph | p99 > bound: core | graph |',
             '|---|---|---|---|---|---|---|---|']
    for r in graph['runs']:
        c = core_runs.get((r['load'], r['cameras'], r['policy']))
        core_cells = (f'{c["dmr"]:.4f}', f'{100 * c["mean_accuracy"]:.2f}', over(c)) if c else ('-', '-', '-')
        lines.append(f'| {level_label(r["load"], r["cameras"])} | {r["policy"]} | {core_cells[0]} | {r["dmr"]:.4f} | '
                     f'{core_cells[1]} | {100 * r["mean_accuracy"]:.2f} | {core_cells[2]} | {over(r)} |')
    return '\n'.join(lines) + '\n'
