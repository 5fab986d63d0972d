"""The optimizer at car scale, side by side with a standard evolutionary peer.

    python bench/bench_optimizer.py [--sizes 5 8 10 20 40] [--sets 6] [--budget-s 5 40=10] [--front]

Random multi-DNN task sets (rtmdl_ros.core.synthetic, fixed seeds, 12 variants
per task, 2 CPU workers, 1 GPU lane, 50 samples per segment, loads 0.5 and
0.7). On each set, in one run:
  ours   rtmdl_ros.core.optimizer.optimize with --budget-s (exact branch and
         bound up to 8 tasks, with --exact-limit-s; anytime local search above);
  peer   a DEAP genetic algorithm over the same variables with the same analysis
         as fitness (bench/peer_ga.py), with the same time as ours;
  ref    for the local-search sizes, ours again with --ref-factor x the budget
         and another seed, only to know a best objective;
  ctl    (unless --no-control) ours once more, as long as ref with a third seed,
         not counted in the best known: how often the same search with the
         reference's own time lands within 1 % of it, the ceiling for "in 1%".
With --front, instead: per set the accuracy-loss / execution-time-margin front of
`rtmdl optimize --front` (one plan per margin of --front-margins, the budget split
between them) against NSGA-II (bench/peer_nsga.py) with the whole budget; each
plan's margin is the largest grid factor at which it still meets every bound, and
the fronts are compared by hypervolume in the box loss <= the summed largest
losses, margin >= 0.9 (so plans that hold only at x1.0 count too).
Best known = the least objective of the three. Printed per size: sets, proven
optimal, infeasible; ours' median / max time to return and median / max time to
a plan within 1 % of the best known; how many of ours are within 1 %; the peer's
feasible count; ours better / tie / worse than the peer; unsafe plans (each
returned plan re-checked by the exact analysis and by 20 s of simulation); the
median gap to the best known; ours' and the best known objectives summed over
the sets with a plan (the gap is relative to a longer run of the same search, so
a change that speeds both up shows in the sums, not in the gap); and how many
control runs are within 1 % of the best known.
"""
import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peer_ga import ga_optimize  # noqa: E402

from rtmdl_ros.core.analysis import analyze  # noqa: E402
from rtmdl_ros.core.optimizer import EXACT_TASKS, _Search, optimize  # noqa: E402
from rtmdl_ros.core.simulator import simulate  # noqa: E402
from rtmdl_ros.core.synthetic import random_taskset  # noqa: E402

EPS = 1e-9


def within(obj: float, best: float) -> bool:
    return obj <= best * 1.01 + EPS


def unsafe(ts, plan) -> bool:
    if not all(a.meets_bound for a in analyze(ts, plan).values()):
        return True
    sim = simulate(ts, plan, 20.0, seed=1)
    return any(s.jobs and s.missed / s.jobs > ts.tasks[n].max_miss_rate + EPS for n, s in sim.tasks.items())


def longer_run(ts, seconds: float, seed: int) -> float:
    """The best objective of the same search (warm start, local search) with `seconds`."""
    search = _Search(ts, seconds)
    search.quick_start()
    search.local_search(seed=seed)
    return search.best_obj


def budgets_by_size(tokens):
    """['5', '40=10'] -> size -> seconds (5 s, 10 s for 40 tasks)."""
    default, per = None, {}
    for tok in tokens:
        size, _, secs = tok.rpartition('=')
        if size:
            per[int(size)] = float(secs)
        else:
            default = float(secs)
    if default is None:
        raise SystemExit('--budget-s needs a plain number for the sizes it does not name')
    return lambda n: per.get(n, default)


def front_rows(sizes, variants, sets, budgets, margins) -> None:
    from peer_nsga import hypervolume, margin_analyzers, non_dominated, nsga_front, plan_margin

    from rtmdl_ros.core.front import loss_front
    print(f'{"tasks":>5} {"sets":>4} {"ours>=peer":>10} {"med HV ours":>11} {"med HV peer":>11} '
          f'{"ours pts":>8} {"peer pts":>8}', flush=True)
    for n in sizes:
        budget_s = budgets(n)
        rows = []
        for k in range(sets):
            load = 0.5 if k % 2 == 0 else 0.7
            ts = random_taskset(k // 2, n, variants, utilisation=load, samples=50, cpu_workers=2)
            grid, analyzers = margin_analyzers(ts, margins)
            ours = []
            for point in loss_front(ts, margins, budget_s / len(margins)):
                if point.plan is not None:
                    order = [(t, a.variant) for t, a in sorted(point.plan.items(), key=lambda kv: kv[1].priority)]
                    ours.append((point.objective, plan_margin(grid, analyzers, order)))
            ours = non_dominated(ours)
            peer = nsga_front(ts, margins, budget_s, seed=k)
            ref = sum(max(t.loss(v) for v in t.variants) for t in ts.tasks.values())
            rows.append((hypervolume(ours, ref, 0.9), hypervolume(peer, ref, 0.9), len(ours), len(peer)))
        print(f'{n:>5} {len(rows):>4} {sum(a >= b - EPS for a, b, *_ in rows):>10} '
              f'{statistics.median(r[0] for r in rows):>11.4f} {statistics.median(r[1] for r in rows):>11.4f} '
              f'{statistics.median(r[2] for r in rows):>8.0f} {statistics.median(r[3] for r in rows):>8.0f}',
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[5, 8, 10, 20, 40])
    ap.add_argument('--variants', type=int, default=12)
    ap.add_argument('--sets', type=int, default=6, help='task sets per size (half at each load)')
    ap.add_argument('--budget-s', nargs='+', default=['5', '40=10'],
                    help='time budget of ours (local) and of the peer: a number for every size, SIZE=S for one '
                         '(default: %(default)s, as issue 25 sets them)')
    ap.add_argument('--exact-limit-s', type=float, default=10.0, help='time limit of the exact search')
    ap.add_argument('--ref-factor', type=float, default=3.0)
    ap.add_argument('--no-control', dest='control', action='store_false',
                    help='skip the control run (ours with the reference\'s time and a third seed)')
    ap.add_argument('--front', action='store_true', help='compare loss/margin fronts with NSGA-II instead')
    ap.add_argument('--front-margins', type=float, nargs='+', default=[1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0])
    args = ap.parse_args()
    budgets = budgets_by_size(args.budget_s)
    if args.front:
        front_rows(args.sizes, args.variants, args.sets, budgets, args.front_margins)
        return
    print(f'{"tasks":>5} {"sets":>4} {"opt":>4} {"inf":>4} {"med s":>6} {"max s":>6} {"1% med":>7} {"1% max":>7} '
          f'{"in 1%":>6} {"peer ok":>7} {"better":>6} {"tie":>4} {"worse":>5} {"unsafe":>6} {"med gap %":>9} '
          f'{"sum ours":>8} {"sum best":>8} {"ctl 1%":>6}',
          flush=True)
    for n in args.sizes:
        exact = n <= EXACT_TASKS
        budget_s = budgets(n)
        rows = []
        for k in range(args.sets):
            load = 0.5 if k % 2 == 0 else 0.7
            ts = random_taskset(k // 2, n, args.variants, utilisation=load, samples=50, cpu_workers=2)
            marks = []
            t0 = time.perf_counter()
            ours_s = args.exact_limit_s if exact else budget_s
            ours = optimize(ts, ours_s,
                            progress=lambda obj, lb, el: marks.append((el, obj)))
            took = time.perf_counter() - t0
            plan_peer, peer_obj = ga_optimize(ts, ours_s, seed=k)     # the same time as ours
            ref_obj = ctl_obj = math.inf
            if not exact:
                ref_obj = longer_run(ts, args.ref_factor * budget_s, seed=k + 1)
            our_obj = ours.objective if ours.plan is not None else math.inf
            best = min(our_obj, peer_obj, ref_obj)
            if not exact and args.control:
                ctl_obj = longer_run(ts, args.ref_factor * budget_s, seed=k + 2)
            to_1 = next((el for el, obj in marks if within(obj, best)), math.inf) if math.isfinite(best) else math.nan
            rows.append({'optimal': ours.optimal and ours.plan is not None,
                         'infeasible': ours.optimal and ours.plan is None,
                         'took': took, 'to_1': to_1, 'in_1': ours.plan is not None and within(our_obj, best),
                         'peer_ok': plan_peer is not None, 'ours': our_obj, 'peer': peer_obj, 'best': best,
                         'unsafe': ours.plan is not None and unsafe(ts, ours.plan),
                         'ctl_in_1': within(ctl_obj, best) if math.isfinite(ctl_obj) else None})
        found = [r for r in rows if math.isfinite(r['best'])]
        to_1 = [r['to_1'] for r in found]
        gaps = [100 * (r['ours'] - r['best']) / r['best'] for r in found if r['best'] > 0 and math.isfinite(r['ours'])]
        ctl = [r['ctl_in_1'] for r in rows if r['ctl_in_1'] is not None]
        better = sum(r['ours'] < r['peer'] - EPS for r in rows)
        tie = sum(abs(r['ours'] - r['peer']) <= EPS or (math.isinf(r['ours']) and math.isinf(r['peer'])) for r in rows)
        fmt = (lambda xs, f: f'{f(xs):.2f}' if xs and all(map(math.isfinite, xs)) else
               (f'{f(xs):.2f}' if xs and math.isfinite(f(xs)) else '-'))
        print(f'{n:>5} {len(rows):>4} {sum(r["optimal"] for r in rows):>4} {sum(r["infeasible"] for r in rows):>4} '
              f'{statistics.median(r["took"] for r in rows):>6.2f} {max(r["took"] for r in rows):>6.2f} '
              f'{fmt(to_1, statistics.median):>7} {fmt(to_1, max):>7} '
              f'{sum(r["in_1"] for r in rows):>6} {sum(r["peer_ok"] for r in rows):>7} {better:>6} {tie:>4} '
              f'{len(rows) - better - tie:>5} {sum(r["unsafe"] for r in rows):>6} '
              f'{(statistics.median(gaps) if gaps else 0.0):>9.2f} '
              f'{sum(r["ours"] for r in found):>8.3f} {sum(r["best"] for r in found):>8.3f} '
              f'{str(sum(ctl)) if ctl else "-":>6}', flush=True)


if __name__ == '__main__':
    main()
