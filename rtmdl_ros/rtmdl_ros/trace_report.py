"""`rtmdl trace`: record every job's stages in the running graph and show where time goes.

Runs the graph as `rtmdl bringup` does, records the executor's `trace` topic,
and writes traces.csv (one row per job), stages.png (per task, the mean of each
stage stacked, jobs that met their deadline beside those that missed),
schedule.png (a second of the run as a timeline: jobs per task, segments per
resource, misses in red) and prints the table. `rtmdl trace --from traces.csv`
draws both pictures again from a recorded run (a bug report's attachment).
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .core.scheduling import MET
from .core.taskset import SEGMENTS
from .core.trace import STAGES, JobTrace

# Per segment the longest step of one that ran in steps (empty: it ran whole, or no job did):
# with them a calibration's windows can be fitted again offline as `rtmdl calibrate` fitted them.
STEP_COLUMNS = tuple(f'{s}_step_ms' for s in SEGMENTS)


def write_csv(traces: list[JobTrace], path: str) -> None:
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['task', 'seq', 'variant', 'outcome', 'stamp_s', 'response_ms', *[f'{s}_ms' for s in STAGES],
                    *STEP_COLUMNS])
        for t in traces:
            w.writerow([t.task, t.seq, t.variant, t.outcome, f'{t.stamp_s:.6f}', f'{t.response_ms:.3f}',
                        *[f'{x:.3f}' for x in t.stages_ms],
                        *([f'{x:.3f}' for x in t.steps_ms] if t.steps_ms else [''] * len(STEP_COLUMNS))])


def read_csv(path: str) -> list[JobTrace]:
    """The traces a traces.csv holds (write_csv's format; files written before the step columns
    read with no steps): to redraw the pictures of a recorded run, or fit its calibration again."""
    def steps(r):
        cells = [r.get(c) or '' for c in STEP_COLUMNS]
        return tuple(float(c) for c in cells) if all(cells) else ()
    try:
        with open(path, newline='') as f:
            rows = list(csv.DictReader(f))
        return [JobTrace(r['task'], int(r['seq']), r['variant'], r['outcome'], float(r['stamp_s']),
                         tuple(float(r[f'{s}_ms']) for s in STAGES), steps(r)) for r in rows]
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f'{path}: not a traces.csv of `rtmdl trace` ({type(e).__name__}: {e})') from None


SEGMENT_ROWS = (('CPU (pre)', 'pre'), ('GPU lanes (infer)', 'infer'), ('CPU (post)', 'post'))


def busiest_window(traces: list[JobTrace], seconds: float) -> float:
    """Start (stamp seconds) of the window with the most missed jobs, else the middle one."""
    stamps = sorted(t.stamp_s for t in traces)
    missed = sorted(t.stamp_s for t in traces if t.outcome != MET)
    if not missed:
        return stamps[len(stamps) // 2] - seconds / 2
    counts = [np.searchsorted(missed, m + seconds, side='right') - k for k, m in enumerate(missed)]
    return missed[int(np.argmax(counts))]


def schedule_plot(traces: list[JobTrace], path: str, seconds: float = 1.0, title: str = '') -> None:
    """A timeline of `seconds` of the run (the one with the most misses): per task each job from
    its stamp to its result (a miss in red), and the pre, infer and post segments on the rows
    of the resources that ran them, coloured by task."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not traces:
        raise ValueError('no job traced: nothing to draw')
    t0 = busiest_window(traces, seconds)
    shown = [t for t in traces if t0 <= t.stamp_s <= t0 + seconds]
    tasks = sorted({t.task for t in traces})
    colours = plt.get_cmap('tab10')
    rows = [f'{task} jobs' for task in tasks] + [name for name, _ in SEGMENT_ROWS]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.6))
    index = {stage: k for k, stage in enumerate(STAGES)}
    for t in shown:
        c = colours(tasks.index(t.task) % 10)
        ms = np.nan_to_num(np.asarray(t.stages_ms, dtype=np.float64), nan=0.0)
        start = (t.stamp_s - t0) * 1e3
        row = tasks.index(t.task)
        end = start + ms.sum()                     # a dropped job: where it was left
        late = t.outcome != MET
        ax.plot([start, end], [row, row], color='red' if late else c, linewidth=3 if late else 2,
                solid_capstyle='butt')
        ax.plot([start], [row], marker='|', color='black', markersize=8)
        if late:
            ax.plot([end], [row], marker='x', color='red', markersize=7)
        for r, (_, seg) in enumerate(SEGMENT_ROWS):
            k = index[seg]
            if np.isnan(t.stages_ms[k]):
                continue
            x = start + ms[:k].sum()
            ax.broken_barh([(x, ms[k] + (ms[index['publish']] if seg == 'post' else 0.0))],
                           (len(tasks) + r - 0.35, 0.7), facecolors=c, edgecolors='red' if late else 'none')
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, seconds * 1e3)
    ax.set_xlabel(f'ms from t0 (| release stamp, red: a missed job, x where it ended); {len(shown)} jobs')
    handles = [plt.Line2D([], [], color=colours(k % 10), linewidth=4, label=task) for k, task in enumerate(tasks)]
    ax.legend(handles=handles, fontsize=7, loc='upper left', bbox_to_anchor=(1.005, 1.0))
    ax.set_title(title or f'Schedule over {seconds:g} s (the window with the most misses)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
        schedule_plot(traces, os.path.join(out_dir, 'schedule.png'))
    return rc, traces, summary

