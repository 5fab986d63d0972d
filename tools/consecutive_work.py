"""What n consecutive jobs of a task put on the worker and the lane, measured against what
the analysis charges today (n times one job's work draw) and what independent draws give.

    python tools/consecutive_work.py CALIBRATION_DIR [--round round1] [--percentile 99.5] [--runs 4]

Reads CALIBRATION_DIR/<round>_window*/traces.csv (one plan per round, so one variant per
task), leaves out each window's warm-up, and per task prints the work of one job
(pre + infer + post + publish) at the percentile, its lag-1 correlation, and for n = 2..runs
the percentile of the sums of n consecutive jobs (within one stretch of successive jobs,
calibration.work_stretches), of n independent
draws (Monte Carlo over the pooled jobs, fixed seed) and n x the one-job percentile.
A component figure from recorded traces (docs/benchmarks.md), not a bound.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

from rtmdl_ros.core.calibration import after_warmup, work_stretches
from rtmdl_ros.trace_report import read_csv


def work_series(traces) -> dict[str, list[np.ndarray]]:
    """{task: its stretches of successive jobs' work} (calibration.work_stretches, over its variants)."""
    out: dict[str, list] = {}
    for task in sorted({t.task for t in traces}):
        for stretches in work_stretches(traces, task).values():
            out.setdefault(task, []).extend(stretches)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('calibration_dir')
    ap.add_argument('--round', default='round1')
    ap.add_argument('--percentile', type=float, default=99.5)
    ap.add_argument('--runs', type=int, default=4)
    args = ap.parse_args(argv)
    windows = sorted(glob.glob(os.path.join(args.calibration_dir, f'{args.round}_window*', 'traces.csv')))
    if not windows:
        print(f'no {args.round}_window*/traces.csv under {args.calibration_dir}', file=sys.stderr)
        return 2
    per_window = [work_series(after_warmup(read_csv(w))[0]) for w in windows]
    q = args.percentile / 100.0
    rng = np.random.default_rng(0)
    for task in sorted({t for w in per_window for t in w}):
        series = [s for w in per_window for s in w.get(task, ()) if len(s) > args.runs]
        if not series:
            continue
        pooled = np.concatenate(series)
        one = float(np.quantile(pooled, q))
        corr = float(np.mean([np.corrcoef(s[:-1], s[1:])[0, 1] for s in series]))
        print(f'{task}: {len(pooled)} jobs in {len(series)} stretch(es), work median {np.median(pooled):.2f} ms, '
              f'p{args.percentile:g} {one:.2f} ms, lag-1 correlation {corr:.2f}')
        for n in range(2, args.runs + 1):
            sums = np.concatenate([np.convolve(s, np.ones(n), 'valid') for s in series])
            independent = rng.choice(pooled, size=(200_000, n)).sum(axis=1)
            print(f'  {n} consecutive jobs: p{args.percentile:g} {np.quantile(sums, q):.2f} ms ({len(sums)} sums); '
                  f'independent draws {np.quantile(independent, q):.2f}; {n} x one job {n * one:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
