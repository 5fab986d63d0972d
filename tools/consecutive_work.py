"""What n consecutive jobs of a task put on the worker and the lane, measured against what
the analysis charges today (n times one job's work draw) and what independent draws give.

    python tools/consecutive_work.py CALIBRATION_DIR [--round round1] [--percentile 99.5] [--runs 4]

Reads CALIBRATION_DIR/<round>_window*/traces.csv (one plan per round, so one variant per
task), leaves out each window's warm-up, and per task prints the work of one job
(pre + infer + post + publish) at the percentile, its lag-1 correlation, and for n = 2..runs
the percentile of the sums of n consecutive jobs (within one window), of n independent
draws (Monte Carlo over the pooled jobs, fixed seed) and n x the one-job percentile.
A component figure from recorded traces (docs/benchmarks.md), not a bound.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np

from rtmdl_ros.core.calibration import SEGMENT_STAGES, after_warmup
from rtmdl_ros.core.trace import STAGES
from rtmdl_ros.trace_report import read_csv

WORK_STAGES = [STAGES.index(s) for seg in SEGMENT_STAGES.values() for s in seg]


def work_series(traces) -> dict[str, np.ndarray]:
    """{task: its jobs' work in stamp order}."""
    out: dict[str, list] = {}
    for t in sorted(traces, key=lambda t: t.stamp_s):
        work = float(np.sum(np.asarray(t.stages_ms, dtype=np.float64)[WORK_STAGES]))
        if np.isfinite(work):
            out.setdefault(t.task, []).append(work)
    return {k: np.asarray(v) for k, v in out.items()}


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
        series = [w[task] for w in per_window if len(w.get(task, ())) > args.runs]
        if not series:
            continue
        pooled = np.concatenate(series)
        one = float(np.quantile(pooled, q))
        corr = float(np.mean([np.corrcoef(s[:-1], s[1:])[0, 1] for s in series]))
        print(f'{task}: {len(pooled)} jobs in {len(series)} window(s), work median {np.median(pooled):.2f} ms, '
              f'p{args.percentile:g} {one:.2f} ms, lag-1 correlation {corr:.2f}')
        for n in range(2, args.runs + 1):
            sums = np.concatenate([np.convolve(s, np.ones(n), 'valid') for s in series])
            independent = rng.choice(pooled, size=(200_000, n)).sum(axis=1)
            print(f'  {n} consecutive jobs: p{args.percentile:g} {np.quantile(sums, q):.2f} ms ({len(sums)} sums); '
                  f'independent draws {np.quantile(independent, q):.2f}; {n} x one job {n * one:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
