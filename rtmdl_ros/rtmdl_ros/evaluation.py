"""`rtmdl evaluate`: RT-mDL against DM-NMC, DM-MC and UM-NMC on this machine.

For each load level: start the background load, profile every zoo variant
under it (so plans see the machine as it is), plan the task set under each
policy, then run each plan on the real runtime (core/runtime.py with real
pre-processing, inference and post-processing, released at the task periods
with synthetic camera frames and audio) for `duration_s`, and predict the same
plan with the analysis and the simulator.

A load level has two parts, both stated before the run and neither touching
the periods or deadlines of the config file:
- background CPU work, in cores: other software of the car (localisation,
  planning) keeping 0.5, 1, ... cores busy in separate processes;
- extra cameras: n more 30 fps cameras (side and rear) whose frames run the
  traffic-light detector, each a deep-learning task with traffic_light's
  period, deadline and miss-rate bound, planned and scheduled with the rest.
"""
from __future__ import annotations

import copy
import heapq
import json
import math
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .core.analysis import analyze
from .core.optimizer import storage_mb
from .core.plan import Assignment
from .core.policies import POLICIES, fastest_plan, plan_with
from .core.runtime import Runtime
from .core.scheduling import TaskParams
from .core.simulator import simulate
from .core.taskset import TaskSet, _deep_merge, platform_for_device, taskset_from_dict


# --------------------------------------------------------------------------- background load

def _burn(duty: float, stop) -> None:
    """Busy for `duty` of every 20 ms slice (numpy work, like a real CPU-bound node)."""
    a = np.random.default_rng(0).normal(size=(64, 64))
    while not stop.is_set():
        start = time.perf_counter()
        while time.perf_counter() - start < 0.02 * duty:
            a = np.tanh(a @ a.T * 1e-3)
        time.sleep(max(0.0, 0.02 * (1.0 - duty)))


class BackgroundLoad:
    """`level` cores' worth of CPU work in separate processes (no GIL sharing)."""

    def __init__(self, level: float):
        self.level = level
        self.procs = []
        ctx = multiprocessing.get_context('spawn')
        self.stop = ctx.Event()
        n = math.ceil(level) if level > 0 else 0
        for _ in range(n):
            p = ctx.Process(target=_burn, args=(level / n, self.stop), daemon=True)
            self.procs.append(p)

    def __enter__(self):
        for p in self.procs:
            p.start()
        time.sleep(0.5 if self.procs else 0.0)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()


# --------------------------------------------------------------------------- one run

@dataclass
class TaskRun:
    jobs: int = 0
    missed: int = 0
    responses: list = field(default_factory=list)
    overheads: list = field(default_factory=list)

    @property
    def dmr(self) -> float:
        return self.missed / self.jobs if self.jobs else 0.0


def payloads(model: str, n: int, seed: int) -> list:
    """Inputs of a zoo model as the task nodes hand them over: camera frames or (sound, rate)."""
    from .data import sounds
    from .data.drive import DriveSequence
    from .models import SOUND
    from .models.families import family
    rng = np.random.default_rng(seed)
    if family(model).input == SOUND:
        return [(sounds.clip(int(rng.integers(0, len(sounds.CLASSES))), rng), sounds.SAMPLE_RATE) for _ in range(n)]
    seq = DriveSequence(seed=seed, scene_s=0.2)
    return [seq.next().image for _ in range(n)]


def run_plan(taskset: TaskSet, plan: dict[str, Assignment], backend, labels: dict, inputs: dict,
             duration_s: float, seed: int = 0, models: dict | None = None) -> tuple[dict[str, TaskRun], dict]:
    """Release every task at its period for duration_s on the real runtime.
    models maps a task to the zoo model it runs (default: the task's own name)."""
    from .models.families import FAMILIES
    from .models.jobs import make_segments, raw_decoder
    models = models or {t: t for t in plan}
    segments = {t: make_segments(FAMILIES[models[t]], backend, labels[models[t]], raw_decoder(FAMILIES[models[t]]))
                for t in plan}
    runs = {t: TaskRun() for t in plan}
    lock = threading.Lock()

    def on_result(r):
        with lock:
            runs[r.task].responses.append(r.response_ms)
            runs[r.task].overheads.append(r.overhead_ms)
    platform = taskset.platform
    rt = Runtime({t: TaskParams(a.priority, taskset.tasks[t].deadline_ms, a.variant, taskset.tasks[t].on_overrun)
                  for t, a in plan.items()}, segments, platform.cpu_workers, platform.gpu_lanes, on_result=on_result,
                 window_s=duration_s + 60, job_gate=platform.job_gate)
    rng = np.random.default_rng(seed)
    start = time.monotonic() + 0.1
    heap = [(start + rng.uniform(0, taskset.tasks[t].period_ms / 1e3), t, 0) for t in plan]
    heapq.heapify(heap)
    rt.start()
    end = start + duration_s
    while heap:
        when, task, k = heapq.heappop(heap)
        if when >= end:
            continue
        delay = when - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        rt.submit(task, inputs[task][k % len(inputs[task])])
        heapq.heappush(heap, (when + taskset.tasks[task].period_ms / 1e3, task, k + 1))
    time.sleep(max(t.deadline_ms for t in taskset.tasks.values()) / 1e3 + 0.2)   # let the last jobs end
    util = rt.utilisation()
    rt.stop()
    for t in plan:
        st = rt.stats(t)
        runs[t].jobs, runs[t].missed = st.total_jobs, st.total_missed
    return runs, util


# --------------------------------------------------------------------------- the evaluation

def extra_camera_task(config: dict) -> str:
    """The task an extra camera copies: the most urgent one running a zoo detector."""
    from .models.families import FAMILIES
    detectors = [(spec.get('deadline_ms', math.inf), t) for t, spec in config['tasks'].items()
                 if FAMILIES.get(spec.get('model', t)) is not None and FAMILIES[spec.get('model', t)].kind == 'detect']
    if not detectors:
        raise ValueError('extra cameras copy a task that runs a zoo detector; the config has none')
    return min(detectors)[1]


def with_extra_cameras(config: dict, n: int) -> tuple[dict, dict[str, str]]:
    """`config` plus n more cameras, each a copy of the most urgent zoo-detector task
    (requirements and model); and the zoo model of every task."""
    out = copy.deepcopy(config)
    models = {t: (spec.get('model', t) if isinstance(spec.get('model', t), str) else t)
              for t, spec in config['tasks'].items()}
    if not n:
        return out, models
    template = extra_camera_task(config)
    for k in range(n):
        name = f'{template}_cam{k + 2}'
        # In the ROS graph each extra camera is a sensor of its own, on cam<k>/image_raw.
        out['tasks'][name] = {**copy.deepcopy(config['tasks'][template]), 'model': models[template],
                              'input_topic': f'cam{k + 2}/image_raw'}
        models[name] = models[template]
    return out, models


def evaluate(config: str, out_dir: str, loads=(0.0, 0.5, 1.0), policies=POLICIES, duration_s: float = 60.0,
             profile_samples: int = 40, backend_name: str = 'onnxruntime', device: str = 'cpu',
             zoo_dir: str | None = None, time_limit_s: float = 20.0, seed: int = 0, progress=None,
             cameras=(0,)) -> dict:
    """Every policy at every (background load, extra cameras) level; results.json, table.md and plots."""
    from .backends import create
    from .models.families import FAMILIES
    from .models.jobs import limit_library_threads, warm_up
    from .profiling import default_packing, measure, read_config
    from .models.catalog import zoo_variants
    limit_library_threads()
    base = read_config(config)
    base['platform'], platform_note = platform_for_device(base.get('platform', {}), device)
    backend = create(backend_name, device, zoo_dir)
    from_zoo = {t: zoo_variants(t, zoo_dir) for t in base['tasks']}
    labels = {t: labels for t, (_, labels) in from_zoo.items()}
    _, models = with_extra_cameras(base, max(cameras))
    inputs = {t: payloads(models[t], 30, seed + i) for i, t in enumerate(models)}
    lanes = int(base['platform'].get('gpu_lanes', 1))
    for t in base['tasks']:
        warm_up(FAMILIES[t], backend, labels[t], sorted(from_zoo[t][0]), lanes)
    results = {'config': os.path.abspath(config), 'duration_s': duration_s, 'loads': list(loads),
               'cameras': list(cameras), 'policies': list(policies), 'backend': backend_name, 'device': device,
               'cpus': os.cpu_count(), 'platform': base['platform'], 'platform_note': platform_note, 'runs': []}
    for load in loads:
        with BackgroundLoad(load):
            prof = measure(base['tasks'], backend, profile_samples, 5, zoo_dir, lanes=max(1, lanes),
                           packing=default_packing(device))
            prof.pop('packing', None)
            prof.pop('probe')
            for n in cameras:
                cfg, models = with_extra_cameras(base, n)
                # Each task takes the profile of the model it runs: the detector is measured once.
                measured = {**prof, 'tasks': {t: prof['tasks'][models[t]] for t in cfg['tasks']}}
                taskset = taskset_from_dict(_deep_merge(measured, cfg), source=config)
                for policy in policies:
                    res = plan_with(taskset, policy, time_limit_s=time_limit_s)
                    plan, note = res.plan, ''
                    if plan is None:
                        plan, note = fastest_plan(taskset), f'no plan meets the bounds ({res.reason}); ran fastest variants'
                    runs, util = run_plan(taskset, plan, backend, labels, inputs, duration_s, seed, models)
                    bounds = analyze(taskset, plan)
                    sim = simulate(taskset, plan, duration_s, seed=seed).to_json()['tasks']
                    record = _record(taskset, policy, load, plan, note, runs, util, bounds, sim)
                    record.update(cameras=n, storage_mb=storage_mb(taskset, {t: a.variant for t, a in plan.items()}),
                                  storage_budget_mb=taskset.platform.storage_budget_mb,
                                  search_optimal=res.search.optimal if res.search is not None else None)
                    for t in record['tasks']:
                        record['tasks'][t]['model'] = models[t]
                    results['runs'].append(record)
                    if progress is not None:
                        progress(load, n, policy, record)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, 'results.json'), 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1)
    from .report import write_report
    write_report(results, out_dir)
    return results


def _pct(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def _record(taskset, policy, load, plan, note, runs, util, bounds, sim) -> dict:
    tasks = {}
    for t, a in plan.items():
        task = taskset.tasks[t]
        r = runs[t]
        tasks[t] = {
            'variant': a.variant, 'priority': a.priority, 'accuracy': task.variants[a.variant].accuracy,
            'max_accuracy': task.max_accuracy, 'deadline_ms': task.deadline_ms, 'max_miss_rate': task.max_miss_rate,
            'jobs': r.jobs, 'missed': r.missed, 'dmr': r.dmr,
            'p50_ms': _pct(r.responses, 50), 'p99_ms': _pct(r.responses, 99),
            'max_ms': max(r.responses) if r.responses else None,
            'bound_ms': bounds[t].response_bound_ms if math.isfinite(bounds[t].response_bound_ms) else None,
            'miss_rate_bound': bounds[t].miss_rate_bound,
            'sim_dmr': sim[t]['miss_rate'], 'sim_p99_ms': sim[t]['p99_response_ms'], 'sim_max_ms': sim[t]['max_response_ms'],
            'responses': [round(x, 3) for x in r.responses],
        }
    jobs = sum(v['jobs'] for v in tasks.values())
    overheads = [o for r in runs.values() for o in r.overheads]
    return {
        'policy': policy, 'load': load, 'note': note, 'tasks': tasks,
        'dmr': sum(v['missed'] for v in tasks.values()) / jobs if jobs else 0.0,
        'mean_accuracy': float(np.mean([v['accuracy'] for v in tasks.values()])),
        'mean_normalised_accuracy': float(np.mean([v['accuracy'] / v['max_accuracy'] for v in tasks.values()])),
        'cpu_utilisation': util['cpu'], 'gpu_utilisation': util['gpu'],
        'overhead_p50_ms': _pct(overheads, 50), 'overhead_p99_ms': _pct(overheads, 99),
        'analysis_schedulable': all(b.meets_bound for b in bounds.values()),
    }
