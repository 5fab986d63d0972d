"""Re-analyse one calibration round's own measurements: what each task's bound is
under every task's fastest variant (a component figure, not a run).

    python tools/reanalyse_round.py TASKSET CALIBRATION_DIR [--round round1] [--whole] [--no-work]
                                    [--percentile P]

TASKSET is the profiled task set whose profiles file holds the calibration of
the cycle (the cycling windows); CALIBRATION_DIR/<round>_window*/traces.csv are
the windows run under a plan, whose release paths and job / work draws replace
the profile's (as `rtmdl calibrate` does in that round). --whole drops the
segments' steps (`<segment>_chunk_ms`: they count whole), --no-work drops the
work draws: the same data analysed without either change (docs/benchmarks.md).
--percentile analyses at another percentile than the task set's (the round's
release paths and job draws are bounded at it; the segments' calibrated tails
hold at the task set's percentile only, so elsewhere they are the model's
quantiles: a what-if, not a certificate).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

import yaml

from rtmdl_ros.core.analysis import Analyzer, explain_bound
from rtmdl_ros.core.calibration import after_warmup, path_fields, put_path_fields
from rtmdl_ros.core.policies import fastest_plan
from rtmdl_ros.core.taskset import load_taskset, read_yaml
from rtmdl_ros.trace_report import read_csv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('taskset')
    ap.add_argument('calibration_dir')
    ap.add_argument('--round', default='round1')
    ap.add_argument('--whole', action='store_true', help='drop the steps: every segment counts whole')
    ap.add_argument('--no-work', action='store_true', help='drop the work draws')
    ap.add_argument('--percentile', type=float, help='analyse at this percentile instead of the task set\'s')
    args = ap.parse_args(argv)
    base = load_taskset(args.taskset)
    windows = sorted(glob.glob(os.path.join(args.calibration_dir, f'{args.round}_window*', 'traces.csv')))
    if not windows:
        print(f'no {args.round}_window*/traces.csv under {args.calibration_dir}', file=sys.stderr)
        return 2
    traces = [t for w in windows for t in after_warmup(read_csv(w))[0]]
    raw = read_yaml(args.taskset, 'task set')
    pct = base.percentiles if args.percentile is None else args.percentile
    if args.percentile is not None:
        raw['analysis'] = {**(raw.get('analysis') or {}), 'percentile': args.percentile}
    prof_path = raw['profiles'] if os.path.isabs(raw['profiles']) else \
        os.path.join(os.path.dirname(os.path.abspath(args.taskset)), raw['profiles'])
    prof = read_yaml(prof_path, 'profiles file')
    for task, entry in prof['tasks'].items():
        if task in base.tasks:
            fields, _ = path_fields(traces, task, pct, 0.9)
            if fields:
                put_path_fields(entry, fields)
        for spec in entry.get('variants', {}).values():
            drop = [k for k in spec if (args.whole and '_chunk_' in k) or (args.no_work and k.startswith('work_'))]
            for key in drop:
                del spec[key]
    with tempfile.TemporaryDirectory() as tmp:
        prof_file, ts_file = os.path.join(tmp, 'profiles.yaml'), os.path.join(tmp, 'taskset.yaml')
        with open(prof_file, 'w') as f:
            yaml.safe_dump(prof, f)
        with open(ts_file, 'w') as f:
            yaml.safe_dump({**raw, 'profiles': prof_file}, f)
        ts = load_taskset(ts_file)
    plan = fastest_plan(ts)
    order = [(n, a.variant) for n, a in sorted(plan.items(), key=lambda kv: kv[1].priority)]
    an = Analyzer(ts)
    at_p, _ = an.final_bounds(order)
    print(f'{len(traces)} jobs in {len(windows)} window(s) of {args.round}'
          + (', steps dropped' if args.whole else '') + (', work draws dropped' if args.no_work else ''))
    for r in an.analyze_order(order):
        times = an.times(r.task, r.variant, ts.percentile)
        print(f'{r.task} {r.variant}: miss-rate bound {r.miss_rate_bound:.3f} (<= {r.max_miss_rate:g}); '
              + explain_bound(times, at_p[r.task], ts.tasks[r.task].effective_deadline_ms, ts.percentile))
    return 0


if __name__ == '__main__':
    sys.exit(main())
