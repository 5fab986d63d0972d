"""Optimizer time for random multi-DNN task sets of 5, 10 and 20 tasks.

    python bench/bench_optimizer.py [--variants 12] [--sets 8] [--time-limit-s 30]

Prints, per size, how many sets were solved to proven optimality, found
infeasible, or stopped at the time limit; the median / p90 / max time of the
whole search; and for the warm start alone (greedy + local search, the plan
you get first) its median time and its median gap to the final objective. Sets come from rtmdl_ros.core.synthetic with fixed seeds (2 CPU workers,
1 GPU lane, 50 execution-time samples per segment, loads 0.5 and 0.7).
"""
import argparse
import statistics
import time

import numpy as np

from rtmdl_ros.core.optimizer import _Search, optimize
from rtmdl_ros.core.synthetic import random_taskset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[5, 10, 20])
    ap.add_argument('--variants', type=int, default=12)
    ap.add_argument('--sets', type=int, default=8, help='task sets per size (half at each load)')
    ap.add_argument('--time-limit-s', type=float, default=30.0)
    args = ap.parse_args()
    print(f'{"tasks":>5} {"variants":>8} {"optimal":>8} {"infeas.":>8} {"limit":>6} '
          f'{"median s":>9} {"p90 s":>7} {"max s":>7} {"warm s":>7} {"warm gap":>9}')
    for n in args.sizes:
        times, warm_times, gaps, optimal, infeasible, limited = [], [], [], 0, 0, 0
        for k in range(args.sets):
            load = 0.5 if k % 2 == 0 else 0.7
            ts = random_taskset(k // 2, n, args.variants, utilisation=load, samples=50, cpu_workers=2)
            t0 = time.perf_counter()
            warm = _Search(ts, args.time_limit_s)
            warm.greedy()
            warm_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = optimize(ts, time_limit_s=args.time_limit_s)
            times.append(time.perf_counter() - t0)
            if res.plan is not None and np.isfinite(warm.best_obj):
                gaps.append(warm.best_obj - res.objective)
            if not res.optimal:
                limited += 1
            elif res.plan is None:
                infeasible += 1
            else:
                optimal += 1
        gap = f'{statistics.median(gaps):.3f}' if gaps else '-'
        print(f'{n:>5} {args.variants:>8} {optimal:>8} {infeasible:>8} {limited:>6} '
              f'{statistics.median(times):>9.2f} {np.percentile(times, 90):>7.2f} {max(times):>7.2f} '
              f'{statistics.median(warm_times):>7.2f} {gap:>9}', flush=True)


if __name__ == '__main__':
    main()
