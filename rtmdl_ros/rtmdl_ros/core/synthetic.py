"""Random task sets shaped like multi-DNN workloads, for tests and benchmarks.

Each task gets a family of width x depth variants whose time and storage grow
with the scaling factor and whose accuracy saturates, like a weight-shared
supernet. Utilisations are split with UUniFast so the load is controlled.
"""
from __future__ import annotations

import numpy as np

from .taskset import TaskSet, taskset_from_dict


def uunifast(rng: np.random.Generator, n: int, total: float) -> list[float]:
    utils, rest = [], total
    for i in range(1, n):
        nxt = rest * rng.random() ** (1.0 / (n - i))
        utils.append(rest - nxt)
        rest = nxt
    utils.append(rest)
    return utils


def random_taskset_dict(rng: np.random.Generator, n_tasks: int, n_variants: int, *,
                        utilisation: float = 0.6, cpu_workers: int = 1, gpu_lanes: int = 1,
                        samples: int = 0, storage_budget_mb: float | None = None,
                        overrun: str | None = None, work: bool = False, runs: int = 0,
                        job_gate: bool = False) -> dict:
    """A task set as the YAML schema's dict. samples=0 gives constant times; work (with
    samples) adds each variant's work_ms: 200 sums of independent draws of its segments,
    as the simulator draws them; runs (with work) adds work2_ms .. work<runs>_ms, the same
    for 2 .. runs consecutive jobs."""
    periods = [float(rng.choice([20, 25, 33.3, 40, 50, 66.7, 100])) for _ in range(n_tasks)]
    # UUniFast, blended with an even split: one task hogging the machine makes
    # non-preemptive blocking alone decide feasibility, which says little.
    utils = [0.5 * u + 0.5 * utilisation / n_tasks for u in uunifast(rng, n_tasks, utilisation)]
    tasks = {}
    for i, (period, u) in enumerate(zip(periods, utils)):
        deadline = round(period * float(rng.uniform(0.6, 1.0)), 3)
        full_ms = max(0.05, u * period * 1.6)     # the largest variant's total time
        gpu_share = float(rng.uniform(0.4, 0.8))
        variants = {}
        for k in range(n_variants):
            scale = (k + 1) / n_variants          # 1.0 = the original model
            acc = 0.55 + 0.4 * (1 - np.exp(-4 * scale)) / (1 - np.exp(-4))
            total = full_ms * (0.25 + 0.75 * scale)
            parts = {'pre_ms': total * (1 - gpu_share) * 0.6, 'infer_ms': total * gpu_share,
                     'post_ms': total * (1 - gpu_share) * 0.4}
            spec = {'accuracy': round(float(acc), 4), 'storage_mb': round(20 * scale ** 2 + 0.5, 3),
                    'weight_group': f'g{i}'}
            for key, mean in parts.items():
                if samples:
                    spec[key] = [round(float(x), 4) for x in rng.gamma(16.0, mean / 16.0, size=samples)]
                else:
                    spec[key] = round(float(mean), 4)
            if work and samples:
                spec['work_ms'] = [round(float(sum(rng.choice(spec[k]) for k in parts)), 4) for _ in range(200)]
                for n in range(2, runs + 1):
                    sums = sum(rng.choice(spec[k], size=(200, n)).sum(axis=1) for k in parts)
                    spec[f'work{n}_ms'] = [round(float(x), 4) for x in sums]
            variants[f'v{k:02d}'] = spec
        tasks[f't{i}'] = {'period_ms': period, 'deadline_ms': deadline,
                          'max_miss_rate': float(rng.choice([0.02, 0.05, 0.1, 0.2])),
                          'on_overrun': overrun or str(rng.choice(['replace', 'skip'])),
                          'variants': variants}
    platform = {'cpu_workers': cpu_workers, 'gpu_lanes': gpu_lanes, 'job_gate': job_gate}
    if gpu_lanes > 1:
        platform['gpu_slowdown'] = {k: round(1.0 + 0.45 * (k - 1), 2) for k in range(1, gpu_lanes + 1)}
    if storage_budget_mb is not None:
        platform['storage_budget_mb'] = storage_budget_mb
    return {'platform': platform, 'tasks': tasks}


def random_taskset(seed: int, n_tasks: int, n_variants: int, **kw) -> TaskSet:
    return taskset_from_dict(random_taskset_dict(np.random.default_rng(seed), n_tasks, n_variants, **kw))
