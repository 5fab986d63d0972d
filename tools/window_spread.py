"""How much a calibration's windows disagree, from the traces it left (a diagnosis of
the machine, not a run).

    python tools/window_spread.py CALIBRATION_DIR... [--percentile 99.5] [--confidence 0.9]
                                  [--task traffic_light --variant w025_d1 --draws 200]

Per plan round (CALIBRATION_DIR/round<k>_window<j>/traces.csv) and per task: the most
that leaving one window out moves the tail estimate the profile would hold (the
upper confidence bound of the percentile, or the largest sample where there are too
few) of the release path and of the response, relative to the estimate without it.
With --task/--variant: every round of every directory that ran that variant of that
task at the top priority is pooled, and for 1, 2, 3, 4 and 6 windows drawn at random
(--draws times) the spread (p90 / p10) of the task's own-time tail estimate: whether
more windows per round would narrow the bound, or the windows differ in kind.
"""
from __future__ import annotations

import argparse
import glob
import os
import random
import re

import numpy as np

from rtmdl_ros.core.calibration import after_warmup, own_times
from rtmdl_ros.core.plan import plan_from_params
from rtmdl_ros.core.tails import quantile_upper_bound
from rtmdl_ros.core.taskset import read_yaml
from rtmdl_ros.trace_report import read_csv


def estimate(samples, percentile: float, confidence: float) -> float:
    return quantile_upper_bound(samples, percentile, confidence).bound_or_max


def rounds_of(cal_dir: str) -> dict[int, list]:
    """{round: [window traces, after warm-up]} of one calibration directory."""
    out: dict[int, dict] = {}
    for d in glob.glob(os.path.join(cal_dir, 'round*_window*')):
        m = re.search(r'round(\d+)_window(\d+)$', d)
        if m and os.path.exists(os.path.join(d, 'traces.csv')):
            out.setdefault(int(m[1]), {})[int(m[2])] = after_warmup(read_csv(os.path.join(d, 'traces.csv')))[0]
    return {r: [ws[k] for k in sorted(ws)] for r, ws in sorted(out.items())}


def leave_one_out(windows, task: str, value, percentile: float, confidence: float) -> float:
    per = [[v for v in (value(t) for t in w if t.task == task) if np.isfinite(v)] for w in windows]
    if len(per) < 2 or min(map(len, per)) < 10:
        return float('nan')
    pooled = estimate(sum(per, []), percentile, confidence)
    without = [estimate(sum(per[:k] + per[k + 1:], []), percentile, confidence) for k in range(len(per))]
    return max(abs(pooled - w) / w for w in without)


def top_variant(cal_dir: str, rnd: int, task: str) -> str | None:
    path = os.path.join(cal_dir, f'plan_round{rnd}.yaml')
    a = plan_from_params(read_yaml(path, 'plan'), path).get(task)
    return a.variant if a is not None and a.priority == 0 else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('calibration_dirs', nargs='+')
    ap.add_argument('--percentile', type=float, default=99.5)
    ap.add_argument('--confidence', type=float, default=0.9)
    ap.add_argument('--task')
    ap.add_argument('--variant')
    ap.add_argument('--draws', type=int, default=200)
    a = ap.parse_args(argv)
    pooled = []
    for cal in a.calibration_dirs:
        for rnd, windows in rounds_of(cal).items():
            tasks = sorted({t.task for w in windows for t in w})
            moved = {t: max(leave_one_out(windows, t, lambda j: j.path_ms, a.percentile, a.confidence),
                            leave_one_out(windows, t, lambda j: j.response_ms, a.percentile, a.confidence))
                     for t in tasks}
            print(f'{cal} round {rnd} ({len(windows)} windows): leaving one out moves the p{a.percentile:g} '
                  'estimate by ' + ', '.join(f'{t} {100 * m:.0f} %' for t, m in moved.items()))
            if a.task and top_variant(cal, rnd, a.task) == a.variant:
                pooled += windows
    if a.task:
        print(f'{len(pooled)} windows ran {a.task}={a.variant} at the top priority')
        rng = random.Random(0)
        for k in (1, 2, 3, 4, 6):
            if k > len(pooled):
                break
            est = []
            for _ in range(a.draws):
                own = own_times([t for w in rng.sample(pooled, k) for t in w], a.task).get(a.variant)
                if own is not None and len(own):
                    est.append(estimate(own, a.percentile, a.confidence))
            p10, p50, p90 = np.percentile(est, [10, 50, 90])
            print(f'  {k} window(s): own-time p{a.percentile:g} estimate p10 {p10:.2f} / median {p50:.2f} / '
                  f'p90 {p90:.2f} ms, p90 / p10 {p90 / p10:.2f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
