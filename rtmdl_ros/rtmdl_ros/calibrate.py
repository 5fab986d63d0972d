"""`rtmdl calibrate`: measure what the analysis needs on the graph's real path.

`rtmdl profile` times each variant alone, in one process. The running graph
adds what that cannot see: the path from the sensor's stamp to the
scheduler's release (camera driver, transport, task node, the executor's
receipt), and segments that run slower beside the ROS processes. This runs
the graph (one process per node, as launched) with the heaviest plan, the
largest variant of every task, records every job's trace, and writes into
the task set's profiles file:

  * tasks.<t>.release_path_ms: the measured stamp -> release samples, which the
    analysis takes as the path offset and its spread as release jitter;
  * every variant's pre/infer/post samples of task t stretched by the ratio
    of the graph's p99 to the profile's p99 for the variant that ran (post
    includes publishing the result), when the graph was slower.
"""
from __future__ import annotations

import os

import numpy as np
import yaml

from .core.analysis import default_plan
from .core.files import atomic_write
from .core.plan import write_plan
from .core.taskset import TasksetError, load_taskset, read_yaml
from .core.trace import STAGES, JobTrace

_SEGMENT_STAGES = {'pre': ('pre',), 'infer': ('infer',), 'post': ('post', 'publish')}


def graph_ratios(traces: list[JobTrace], taskset, variant_of: dict, percentile: float = 99.0) -> dict:
    """{task: {segment: graph p99 / profiled p99}} over the published jobs of each task."""
    out = {}
    for task, variant in variant_of.items():
        rows = np.array([t.stages_ms for t in traces if t.task == task and not np.isnan(t.stages_ms).any()])
        if len(rows) < 10:
            continue
        prof = taskset.tasks[task].variants[variant]
        out[task] = {}
        for seg, stages in _SEGMENT_STAGES.items():
            graph = rows[:, [STAGES.index(s) for s in stages]].sum(axis=1)
            profiled = prof.time(seg).quantile(percentile)
            out[task][seg] = float(np.percentile(graph, percentile) / profiled) if profiled > 0 else 1.0
    return out


def apply_calibration(profiles: dict, traces: list[JobTrace], ratios: dict) -> dict:
    """The profiles dict with measured release paths and stretched segment samples."""
    out = yaml.safe_load(yaml.safe_dump(profiles))           # deep copy
    for task, entry in out.get('tasks', {}).items():
        paths = [round(t.path_ms, 3) for t in traces if t.task == task and np.isfinite(t.path_ms)]
        if paths:
            entry['release_path_ms'] = sorted(paths)
        for seg, ratio in ratios.get(task, {}).items():
            if ratio <= 1.0:
                continue
            for v in entry.get('variants', {}).values():
                key = f'{seg}_ms'
                vals = v[key] if isinstance(v[key], list) else [v[key]]
                v[key] = [round(float(x) * ratio, 4) for x in vals]
    return out


def calibrate(taskset_file: str, duration_s: float = 20.0, backend: str = 'onnxruntime', device: str = 'cpu',
              zoo_dir: str | None = None, out_dir: str | None = None, quiet: bool = True,
              camera_params: dict | None = None) -> tuple[str, dict, int]:
    """Run the graph with the largest variants, then rewrite the profiles file. Returns
    (profiles file, ratios, jobs traced)."""
    from .trace_report import record
    taskset = load_taskset(taskset_file)
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
    base = load_taskset(_with_profiles(taskset_file, raw, pristine))
    plan = default_plan(base)
    out_dir = out_dir or os.path.join(os.path.dirname(os.path.abspath(taskset_file)), 'calibration')
    os.makedirs(out_dir, exist_ok=True)
    plan_file = os.path.join(out_dir, 'plan_largest.yaml')
    write_plan(plan_file, plan, header='rtmdl calibrate: largest variants, deadline-monotonic')
    rc, traces, _ = record(out_dir, plan_file, os.path.abspath(_with_profiles(taskset_file, raw, pristine)),
                           duration_s, backend, device, zoo_dir, quiet, judge=False, camera_params=camera_params)
    if rc != 0 or not traces:
        raise TasksetError(f'calibration run failed (exit {rc}, {len(traces)} jobs traced); logs above')
    ratios = graph_ratios(traces, base, {n: a.variant for n, a in plan.items()}, taskset.percentile)
    calibrated = apply_calibration(profiles, traces, ratios)
    calibrated['calibrated'] = {'duration_s': duration_s, 'jobs': len(traces), 'ratios': ratios}
    header = (f'Calibrated by `rtmdl calibrate` on the running graph ({duration_s:g} s, {len(traces)} jobs, '
              'largest variants): release_path_ms measured stamp -> release; segment samples stretched by '
              + ', '.join(f'{t} ' + '/'.join(f'{s}x{r:.2f}' for s, r in rs.items()) for t, rs in ratios.items())
              + f' where above 1. Uncalibrated profile: {os.path.basename(pristine)}')

    def write(f):
        f.write(''.join(f'# {line}\n' for line in header.splitlines()))
        yaml.safe_dump(calibrated, f, sort_keys=False, width=160, default_flow_style=None)
    atomic_write(prof_path, write)
    load_taskset(taskset_file)                   # what we wrote must load
    return prof_path, ratios, len(traces)


def _with_profiles(taskset_file: str, raw: dict, profiles: str) -> str:
    """A copy of the task set that references `profiles` instead (beside the original)."""
    path = os.path.join(os.path.dirname(os.path.abspath(taskset_file)), '.uncalibrated_taskset.yaml')
    atomic_write(path, lambda f: yaml.safe_dump({**raw, 'profiles': os.path.abspath(profiles)}, f, sort_keys=False))
    return path

