"""`rtmdl trace`: record every job's stages in the running graph and show where time goes.

Runs the graph as `rtmdl bringup` does, records the executor's `trace` topic,
and writes traces.csv (one row per job), stages.png (per task, the mean of each
stage stacked, jobs that met their deadline beside those that missed) and
prints the same as a table.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .core.scheduling import MET
from .core.trace import STAGES, JobTrace


def write_csv(traces: list[JobTrace], path: str) -> None:
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['task', 'seq', 'variant', 'outcome', 'stamp_s', 'response_ms', *[f'{s}_ms' for s in STAGES]])
        for t in traces:
            w.writerow([t.task, t.seq, t.variant, t.outcome, f'{t.stamp_s:.6f}', f'{t.response_ms:.3f}',
                        *[f'{x:.3f}' for x in t.stages_ms]])


def breakdown(traces: list[JobTrace]) -> dict:
    """{task: {'met'|'missed': {'jobs': n, 'mean_ms': [per stage], 'p99_ms': [per stage]}}};
    stages a job never reached count as 0 in the means."""
    out: dict = {}
    for task in sorted({t.task for t in traces}):
        out[task] = {}
        for label, keep in (('met', lambda t: t.outcome == MET), ('missed', lambda t: t.outcome != MET)):
            rows = [t.stages_ms for t in traces if t.task == task and keep(t)]
            if not rows:
                continue
            arr = np.nan_to_num(np.array(rows, dtype=np.float64), nan=0.0)
            out[task][label] = {'jobs': len(rows), 'mean_ms': arr.mean(axis=0).tolist(),
                                'p99_ms': np.percentile(arr, 99, axis=0).tolist()}
    return out


def table(summary: dict) -> str:
    head = f'{"task":<14}{"jobs":<12}' + ''.join(f'{s:>11}' for s in STAGES) + f'{"total":>9}'
    rows = ['mean stage times (ms) per job', head]
    for task, groups in summary.items():
        for label, g in groups.items():
            rows.append(f'{task:<14}{label + " " + str(g["jobs"]):<12}' + ''.join(f'{x:>11.2f}' for x in g['mean_ms'])
                        + f'{sum(g["mean_ms"]):>9.2f}')
    return '\n'.join(rows)


def plot(summary: dict, path: str, title: str = '') -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bars = [(task, label, g) for task, groups in summary.items() for label, g in groups.items()]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(bars) + 2), 4.5))
    colours = plt.get_cmap('tab10')
    x = np.arange(len(bars))
    bottom = np.zeros(len(bars))
    for k, stage in enumerate(STAGES):
        h = np.array([g['mean_ms'][k] for _, _, g in bars])
        ax.bar(x, h, bottom=bottom, color=colours(k % 10), label=stage, width=0.7)
        bottom += h
    ax.set_xticks(x, [f'{t}\n{label} ({g["jobs"]})' for t, label, g in bars], fontsize=8)
    ax.set_ylabel('mean time per job (ms), stamp -> published result')
    ax.set_title(title or 'Where each job\'s time goes')
    ax.legend(fontsize=7, ncol=2, loc='upper left')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def record(out_dir: str, plan_file: str | None, taskset_file: str | None, duration_s: float,
           backend: str = 'onnxruntime', device: str = 'cpu', zoo_dir: str | None = None,
           quiet: bool = True, judge: bool = True, camera_params: dict | None = None,
           executor_params: dict | None = None) -> tuple[int, list[JobTrace], dict]:
    """Run the graph for duration_s, write traces.csv and stages.png to out_dir."""
    from .bringup import bringup
    os.makedirs(out_dir, exist_ok=True)
    traces: list[JobTrace] = []
    rc = bringup('f1tenth', plan_file, backend, device, '', True, duration_s, taskset_file, quiet=quiet,
                 zoo_dir=zoo_dir, traces_out=traces, judge=judge, camera_params=camera_params,
                 executor_params=executor_params)
    write_csv(traces, os.path.join(out_dir, 'traces.csv'))
    summary = breakdown(traces)
    if traces:
        plot(summary, os.path.join(out_dir, 'stages.png'),
             f'{len(traces)} jobs over {duration_s:g} s' + (f', plan {os.path.basename(plan_file)}' if plan_file else ''))
    return rc, traces, summary

