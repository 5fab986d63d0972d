"""`rtmdl`: plan, analyse and simulate RT-mDL task sets from the command line.

    rtmdl optimize TASKSET --policy {rtmdl,dm-nmc,dm-mc,um-nmc} --out PLAN.yaml [--seed N --max-steps N]
    rtmdl analyze  TASKSET [--plan PLAN.yaml] [--json]
    rtmdl simulate TASKSET [--plan PLAN.yaml] --duration-s S [--seed N] [--json]
    rtmdl train {sign,traffic_light,audio,all} [--epochs N] [--seed N] [--data-root DIR]
    rtmdl export [TASK] [--out DIR]
    rtmdl profile [--config f1tenth.yaml] [--out TASKSET] [--backend B] [--device D]

Exit codes: 0 done; 1 no plan meets the bounds (optimize); 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from .backends import DEVICES
from .core.analysis import analyze, default_plan
from .core.plan import load_plan, write_plan
from .core.policies import POLICIES, plan_with
from .core.simulator import simulate
from .core.taskset import TasksetError, load_taskset
from .zoo_commands import CommandError, add_parsers


class CliError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def _plan_for(args, taskset):
    return load_plan(args.plan, taskset) if args.plan else default_plan(taskset)


def _search_line(search) -> str:
    how = {'exact': 'branch and bound', 'local': 'local search'}[search.method]
    proof = 'proven optimal' if search.optimal else (
        f'best found within the time limit, at most {search.gap:.4f} above the lower bound {search.lower_bound:.4f}')
    steps = (f', stopped at its step limit ({search.nodes + search.moves} steps: the same plan on any machine)'
             if search.step_limited else '')
    return f'{how}, {proof}, {search.elapsed_s:.2f} s{steps}'


def _plan_with_progress(taskset, policy: str, time_limit_s: float, quiet: bool, **search):
    """plan_with, showing the best plan so far against the time budget (stderr)."""
    from tqdm import tqdm
    # disable=None: shown on a terminal only, so logs and pipes get the result lines alone.
    with tqdm(total=round(time_limit_s, 1), desc='optimize', unit='s', ncols=100, file=sys.stderr,
              disable=True if quiet or policy != 'rtmdl' else None,
              bar_format='{desc}: {bar} {n:.1f}/{total:.1f} s{postfix}') as bar:
        def progress(best, lower, elapsed):
            bar.n = round(min(elapsed, time_limit_s), 1)
            bar.set_postfix_str(f'best {best:.4f}, lower bound {lower:.4f}')
        res = plan_with(taskset, policy, time_limit_s=time_limit_s, progress=progress, **search)
        if res.search is not None:
            bar.n = round(min(res.search.elapsed_s, time_limit_s), 1)
            bar.refresh()
    return res


def _write_front(args, taskset) -> None:
    """Loss vs execution-time margin: the plans a user can trade accuracy for robustness with."""
    from .core.front import loss_front
    from .core.files import atomic_write
    import yaml
    points = loss_front(taskset, args.front_margins, args.time_limit_s / max(1, len(args.front_margins)))
    base = os.path.splitext(args.out)[0]
    rows = [{'margin': p.margin, 'objective': p.objective, 'proven_optimal': p.optimal,
             'plan': {n: {'variant': a.variant, 'priority': a.priority} for n, a in (p.plan or {}).items()}}
            for p in points]
    atomic_write(base + '_front.yaml', lambda f: yaml.safe_dump({'front': rows}, f, sort_keys=False))
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ok = [p for p in points if p.objective is not None]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([100 * (p.margin - 1) for p in ok], [p.objective for p in ok], 'o-')
    ax.set_xlabel('execution-time margin (%)')
    ax.set_ylabel('summed normalised accuracy loss')
    ax.set_title(os.path.basename(args.taskset))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(base + '_front.png', lambda f: fig.savefig(f, format='png', dpi=120), binary=True)
    for p in points:
        print(f'front: margin +{100 * (p.margin - 1):.0f}%: ' +
              (f'loss {p.objective:.4f}' if p.objective is not None else 'no plan meets the bounds'))
    print(f'wrote {base}_front.yaml and {base}_front.png')


def cmd_optimize(args) -> int:
    if not (args.time_limit_s > 0 and math.isfinite(args.time_limit_s)):
        raise CliError(f'--time-limit-s must be a positive number, got {args.time_limit_s}')
    if args.max_steps is not None and args.max_steps < 1:
        raise CliError(f'--max-steps must be >= 1, got {args.max_steps}')
    taskset = load_taskset(args.taskset)
    res = _plan_with_progress(taskset, args.policy, args.time_limit_s, args.quiet, seed=args.seed,
                              max_steps=args.max_steps)
    if res.plan is None:
        print(f'rtmdl optimize: no plan meets the bounds: {res.reason}', file=sys.stderr)
        if args.fallback == 'fastest':
            _write_fastest(args, taskset, res.reason)
        return 1
    note = _calibration_note(taskset)
    again = f' --seed {args.seed} --max-steps {args.max_steps}' if args.max_steps is not None else ''
    lines = [f'written by: rtmdl optimize {args.taskset} --policy {args.policy}{again}',
             f'objective (sum of normalised accuracy loss): {res.objective:.4f}',
             f'storage: {res.storage_mb:.2f} MB'] + ([note] if note else [])
    if res.search is not None:
        lines.append(f'search: {_search_line(res.search)}')
    lines += _accuracy_lines(args.taskset)
    write_plan(args.out, res.plan, header='\n'.join(lines))
    for name, a in sorted(res.plan.items(), key=lambda kv: kv[1].priority):
        an = res.analysis[name]
        print(f'{name}: variant={a.variant} priority={a.priority} '
              f'bound={an.response_bound_ms:.2f}/{an.deadline_ms:g} ms miss<={an.miss_rate_bound:.3g}'
              f' (p{an.percentile:g})')
    if res.search is not None:
        print(f'search: {_search_line(res.search)}')
    if res.search is not None and not res.search.optimal and not res.search.step_limited:
        print('rtmdl optimize: time limit reached; the plan is feasible but may not be optimal', file=sys.stderr)
    if args.front:
        _write_front(args, taskset)
    if not res.meets_bounds:
        print(f'rtmdl optimize: warning: the {args.policy} plan does not meet the bounds of '
              f'{", ".join(res.violations) or "the storage budget"} (written anyway: baselines are fixed rules)',
              file=sys.stderr)
    print(f'wrote {args.out}')
    return 0


def _write_fastest(args, taskset, reason: str) -> None:
    """--fallback fastest: the plan to run anyway, said to be uncertified in its header and here."""
    from .core.policies import fastest_plan
    plan = fastest_plan(taskset)
    note = _calibration_note(taskset)
    write_plan(args.out, plan, header='\n'.join([
        f'written by: rtmdl optimize {args.taskset} --policy {args.policy} --fallback fastest',
        f'NOT CERTIFIED: no plan meets the bounds ({reason});',
        'this is every task\'s fastest variant, deadline-monotonic'] + ([note] if note else [])))
    analysis = analyze(taskset, plan)
    for name, a in sorted(plan.items(), key=lambda kv: kv[1].priority):
        an = analysis[name]
        print(f'{name}: variant={a.variant} priority={a.priority} '
              f'bound={an.response_bound_ms:.2f}/{an.deadline_ms:g} ms miss<={an.miss_rate_bound:.3g}'
              f' (p{an.percentile:g})')
    print(f'rtmdl optimize: wrote the fastest plan to {args.out} (--fallback fastest); '
          'its bounds are not met, so its deadlines are not guaranteed', file=sys.stderr)


def _accuracy_lines(taskset_file: str) -> list[str]:
    """Where each task's accuracies come from (measured, declared, zoo), for the plan header."""
    from .core.taskset import read_yaml
    from .models.catalog import accuracy_sources
    raw = read_yaml(taskset_file, 'task set')
    here = os.path.dirname(os.path.abspath(taskset_file))
    return [f'accuracy of {t}: {src}' for t, src in accuracy_sources(raw, here).items()]


def cmd_accuracy(args) -> int:
    from .accuracy import accuracy
    from .zoo_commands import one_line_errors

    def run(a) -> int:
        measured, metric, n, target = accuracy(
            a.taskset, a.task, a.data, a.backend, a.device,
            progress=None if a.quiet else (lambda v, x: print(f'{a.task}/{v}: {x:.4f}')))
        print(f'{a.task}: {metric} on {n} images of {a.data}; wrote {target} (previous file: {target}.bak)')
        return 0
    return one_line_errors(run)(args)


def _calibration_note(taskset) -> str:
    """The task set's calibration note (TaskSet.calibration_note), also said on stderr."""
    note = taskset.calibration_note()
    if note:
        print(f'rtmdl: {note}', file=sys.stderr)
    return note


def cmd_analyze(args) -> int:
    taskset = load_taskset(args.taskset)
    results = analyze(taskset, _plan_for(args, taskset))
    schedulable = all(r.meets_bound for r in results.values())
    note = _calibration_note(taskset)
    if args.json:
        print(json.dumps({'schedulable': schedulable, 'percentile': taskset.percentile,
                          'uncalibrated_tasks': taskset.uncalibrated, 'tasks': {
            name: {'variant': r.variant, 'priority': r.priority, 'deadline_ms': r.deadline_ms,
                   'response_bound_ms': _finite(r.response_bound_ms),
                   'worst_response_bound_ms': _finite(r.worst_response_bound_ms),
                   'miss_rate_bound': r.miss_rate_bound, 'max_miss_rate': r.max_miss_rate,
                   'bound_percentile': r.percentile}
            for name, r in results.items()}}, indent=2))
        return 0
    print(f'{"task":<16}{"variant":<14}{"prio":>5}{"bound ms":>11}{"deadline":>10}{"miss<=":>9}{"max":>7}')
    for name, r in sorted(results.items(), key=lambda kv: kv[1].priority):
        bound = f'{r.response_bound_ms:.2f}' if math.isfinite(r.response_bound_ms) else 'none'
        print(f'{name:<16}{r.variant:<14}{r.priority:>5}{bound:>11}{r.deadline_ms:>10g}'
              f'{r.miss_rate_bound:>9.3g}{r.max_miss_rate:>7g}{"" if r.meets_bound else "  VIOLATED"}'
              + ('' if r.percentile == taskset.percentile else f'  (bound at p{r.percentile:g})'))
    for name, t in taskset.tasks.items():
        if t.stamp_source == 'receipt':
            print(f'{name}: stamp_source receipt: its bound counts from the task node\'s receipt, not the sensor')
    print(('schedulable' if schedulable else 'not schedulable') + (' (UNCALIBRATED: see above)' if note else ''))
    return 0


def cmd_simulate(args) -> int:
    taskset = load_taskset(args.taskset)
    if not (args.duration_s > 0 and math.isfinite(args.duration_s)):
        raise CliError(f'--duration-s must be a positive number, got {args.duration_s}')
    res = simulate(taskset, _plan_for(args, taskset), args.duration_s, seed=args.seed)
    out = res.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f'{"task":<16}{"jobs":>7}{"missed":>8}{"rate":>8}{"p99 ms":>9}{"max ms":>9}')
    for name, s in out['tasks'].items():
        p99 = f'{s["p99_response_ms"]:.2f}' if s['p99_response_ms'] is not None else '-'
        mx = f'{s["max_response_ms"]:.2f}' if s['max_response_ms'] is not None else '-'
        print(f'{name:<16}{s["jobs"]:>7}{s["missed"]:>8}{s["miss_rate"]:>8.3f}{p99:>9}{mx:>9}')
    print(f'CPU utilisation {out["cpu_utilisation"]:.2f}, GPU lane utilisation {out["gpu_lane_utilisation"]:.2f}')
    return 0


def cmd_bringup(args) -> int:
    if args.duration_s is not None and not (args.duration_s > 0 and math.isfinite(args.duration_s)):
        raise CliError(f'--duration-s must be a positive number, got {args.duration_s}')
    from .bringup import bringup
    from .zoo_commands import one_line_errors
    return one_line_errors(lambda a: bringup(a.graph, a.plan, a.backend, a.device, a.namespace,
                                             not a.no_sim_sensors, a.duration_s, a.taskset, a.quiet, a.zoo,
                                             compose=not a.separate_task_nodes,
                                             executor_params={'annotate_hz': a.annotate_hz} if a.annotate_hz
                                             else None))(args)


def cmd_monitor(args) -> int:
    if args.duration_s is not None and not (args.duration_s > 0 and math.isfinite(args.duration_s)):
        raise CliError(f'--duration-s must be a positive number, got {args.duration_s}')
    from .bringup import monitor
    return monitor(args.namespace, args.duration_s, args.quiet)


def cmd_trace(args) -> int:
    if not (args.duration_s > 0 and math.isfinite(args.duration_s)):
        raise CliError(f'--duration-s must be a positive number, got {args.duration_s}')
    from .zoo_commands import one_line_errors
    from .trace_report import breakdown, plot, read_csv, record, schedule_plot, table

    def run(a) -> int:
        if a.from_csv:                          # the pictures of a recorded run, again
            traces = read_csv(a.from_csv)
            summary = breakdown(traces)
            os.makedirs(a.out, exist_ok=True)
            plot(summary, os.path.join(a.out, 'stages.png'), f'{len(traces)} jobs from {a.from_csv}')
            schedule_plot(traces, os.path.join(a.out, 'schedule.png'))
            print(table(summary))
            print(f'wrote {os.path.join(a.out, "stages.png")} and {os.path.join(a.out, "schedule.png")}')
            return 0
        rc, traces, summary = record(a.out, a.plan, a.taskset, a.duration_s, a.backend, a.device, a.zoo, a.quiet)
        print(table(summary))
        print(f'wrote {os.path.join(a.out, "traces.csv")} ({len(traces)} jobs), {os.path.join(a.out, "stages.png")} '
              f'and {os.path.join(a.out, "schedule.png")}')
        return rc
    return one_line_errors(run)(args)


def cmd_calibrate(args) -> int:
    if not (args.duration_s > 0 and math.isfinite(args.duration_s)):
        raise CliError(f'--duration-s must be a positive number, got {args.duration_s}')
    if not 2 <= args.max_windows <= 20:
        raise CliError(f'--max-windows must be in 2..20, got {args.max_windows}')
    if not 0 <= args.plan_rounds <= 10:
        raise CliError(f'--plan-rounds must be in 0..10, got {args.plan_rounds}')
    from .calibrate import calibrate
    from .zoo_commands import one_line_errors

    def run(a) -> int:
        result = calibrate(a.taskset, a.duration_s, a.backend, a.device, a.zoo, quiet=a.quiet,
                           max_windows=a.max_windows, plan_rounds=a.plan_rounds)
        print(result.report())
        print(f'wrote {result.profiles_file}')
        return 0
    return one_line_errors(run)(args)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other bad input
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog='rtmdl', description='RT-mDL planning tools for rtmdl_ros.')
    sub = p.add_subparsers(dest='command', required=True, parser_class=_Parser)

    o = sub.add_parser('optimize', help='choose a variant and priority per task; write a plan file')
    o.add_argument('taskset')
    o.add_argument('--policy', choices=POLICIES, default='rtmdl')
    o.add_argument('--out', required=True, help='ROS 2 parameters file for rtmdl_executor')
    o.add_argument('--time-limit-s', type=float, default=30.0, help='search time limit (rtmdl policy)')
    o.add_argument('--seed', type=int, default=0, help='seed of the local search\'s random moves (rtmdl policy)')
    o.add_argument('--max-steps', type=int, default=None,
                   help='stop after this many search steps (branch-and-bound nodes + local-search moves): with '
                        'the same seed, the same plan on any machine, unless --time-limit-s stops it first')
    o.add_argument('--quiet', action='store_true', help='no progress display')
    o.add_argument('--fallback', choices=('none', 'fastest'), default='none',
                   help='when no plan meets the bounds: none (write nothing) or fastest (every task\'s fastest '
                        'variant, deadline-monotonic, marked as not certified); the exit code is 1 either way')
    o.add_argument('--front', action='store_true',
                   help='also the loss vs execution-time margin front: OUT_front.yaml and OUT_front.png')
    o.add_argument('--front-margins', type=float, nargs='+', default=[1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0],
                   help='execution-time factors of the front (default: %(default)s)')
    o.set_defaults(func=cmd_optimize)

    a = sub.add_parser('analyze', help='response-time and miss-rate bounds of a plan')
    a.add_argument('taskset')
    a.add_argument('--plan', help='plan file (default: largest variants, deadline-monotonic)')
    a.add_argument('--json', action='store_true')
    a.set_defaults(func=cmd_analyze)

    s = sub.add_parser('simulate', help='discrete-event simulation of a plan')
    s.add_argument('taskset')
    s.add_argument('--plan', help='plan file (default: largest variants, deadline-monotonic)')
    s.add_argument('--duration-s', type=float, required=True)
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--json', action='store_true')
    s.set_defaults(func=cmd_simulate)

    add_parsers(sub)

    b = sub.add_parser('bringup', help='start the ROS graph in this process (no launch_ros needed)')
    b.add_argument('graph', nargs='?', choices=('f1tenth',), default='f1tenth',
                   help='shipped task set to run unless --taskset names one (default: %(default)s)')
    b.add_argument('--plan', help='plan parameters file from rtmdl optimize (default: dm-nmc)')
    b.add_argument('--taskset', help='task set file (default: the package config/<graph>.yaml)')
    b.add_argument('--backend', choices=('onnxruntime', 'torch'), default='onnxruntime')
    b.add_argument('--device', choices=DEVICES, default='cpu')
    b.add_argument('--namespace', default='')
    b.add_argument('--no-sim-sensors', action='store_true', help='use real camera/microphone topics')
    b.add_argument('--duration-s', type=float, help='stop after this long (default: until Ctrl-C)')
    b.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
    b.add_argument('--quiet', action='store_true', help='only the final table')
    b.add_argument('--separate-task-nodes', action='store_true',
                   help='a process per task node publishing on jobs/<task> (default: inside the executor\'s process)')
    b.add_argument('--annotate-hz', type=float, default=0.0,
                   help='pictures a second on annotated/<task>: the frame with what the model found (default: none)')
    b.set_defaults(func=cmd_bringup)

    m = sub.add_parser('monitor', help='the live table of a running graph (e.g. started with ros2 launch)')
    m.add_argument('--namespace', default='')
    m.add_argument('--duration-s', type=float, help='stop after this long (default: until Ctrl-C)')
    m.add_argument('--quiet', action='store_true', help='only the final table')
    m.set_defaults(func=cmd_monitor)

    def graph_args(q, duration: float) -> None:
        q.add_argument('--backend', choices=('onnxruntime', 'torch'), default='onnxruntime')
        q.add_argument('--device', choices=DEVICES, default='cpu')
        q.add_argument('--duration-s', type=float, default=duration)
        q.add_argument('--zoo', help='zoo folder (default: the shipped zoo)')
        q.add_argument('--quiet', action='store_true', help='no live table')

    t = sub.add_parser('trace', help='run the graph and record where every job\'s time goes (csv + plot)')
    t.add_argument('--plan', help='plan parameters file (default: dm-nmc)')
    t.add_argument('--taskset', help='task set file (default: the package config/f1tenth.yaml)')
    t.add_argument('--out', default='results/trace', help='folder for traces.csv, stages.png and schedule.png')
    t.add_argument('--from', dest='from_csv', metavar='TRACES_CSV',
                   help='draw the pictures of a recorded run (its traces.csv) instead of running the graph')
    graph_args(t, 30.0)
    t.set_defaults(func=cmd_trace)

    q = sub.add_parser('accuracy', help="measure a user family's variants on a labelled folder; write them back")
    q.add_argument('taskset', help='task set whose tasks.<task>.model declares the family')
    q.add_argument('--task', required=True)
    q.add_argument('--data', required=True, help='classifier: a folder per label; detector: images/ + labels/ (YOLO)')
    q.add_argument('--backend', choices=('onnxruntime',), default='onnxruntime')
    q.add_argument('--device', choices=DEVICES, default='cpu')
    q.add_argument('--quiet', action='store_true')
    q.set_defaults(func=cmd_accuracy)

    c = sub.add_parser('calibrate', help='measure release paths and graph slow-down into a profiled task set')
    c.add_argument('taskset', help='task set from rtmdl profile')
    graph_args(c, 20.0)
    c.add_argument('--max-windows', type=int, default=10,
                   help='cycling windows of --duration-s to run at most while the tails still move or a slow '
                        'task has too few jobs for its bounds to leave out one stall (at least 2; each plan '
                        'round runs up to 4 or this many, the fewer)')
    c.add_argument('--plan-rounds', type=int, default=3,
                   help='then plan and re-measure the release paths under the plan, up to this many rounds '
                        '(0: keep the paths measured while every variant cycled)')
    c.set_defaults(func=cmd_calibrate)
    return p


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (TasksetError, CliError, CommandError) as e:
        print(f'rtmdl: error: {e}', file=sys.stderr)
        return 2
    except OSError as e:
        print(f'rtmdl: error: {e.filename or ""}: {e.strerror}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
