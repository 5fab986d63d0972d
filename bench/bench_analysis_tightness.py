"""How far the analysis bound sits above simulated responses (pessimism).

    python bench/bench_analysis_tightness.py [--sets 200]

Constant execution times, random plans; for every task with a finite bound it
prints the distribution of (simulated max response) / (analysis bound): 1.0
would be exact, small values mean a pessimistic bound.
"""
import argparse
import math

import numpy as np

from rtmdl_ros.core.analysis import analyze
from rtmdl_ros.core.plan import Assignment
from rtmdl_ros.core.simulator import simulate
from rtmdl_ros.core.synthetic import random_taskset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--sets', type=int, default=200)
    args = ap.parse_args()
    for cpu, lanes in ((1, 1), (2, 1), (2, 2)):
        ratios = []
        for seed in range(args.sets):
            rng = np.random.default_rng(seed)
            ts = random_taskset(seed, 3, 3, utilisation=float(rng.uniform(0.3, 0.9)), cpu_workers=cpu, gpu_lanes=lanes)
            names = list(ts.tasks)
            plan = {n: Assignment(str(rng.choice(sorted(ts.tasks[n].variants))), i)
                    for i, n in enumerate(rng.permutation(names))}
            bounds = analyze(ts, plan)
            sim = simulate(ts, plan, duration_s=3.0, seed=seed, phase='zero')
            for n, s in sim.tasks.items():
                b = bounds[n].worst_response_bound_ms
                if s.responses and math.isfinite(b):
                    ratios.append(max(s.responses) / b)
        r = np.asarray(ratios)
        print(f'cpu_workers={cpu} gpu_lanes={lanes}: {len(r)} tasks, sim max / bound: '
              f'median {np.median(r):.2f}, p10 {np.percentile(r, 10):.2f}, max {r.max():.2f}')


if __name__ == '__main__':
    main()
