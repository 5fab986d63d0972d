"""Every task's variant re-chosen at once for a fixed priority order (an LP step).

The local search changes one or two tasks a move. At a fixed order a task's bound
grows about linearly with its own time and with the segments of the tasks above it:
each of those counts n = floor((R + J) / T) + 1 times in its window (R its bound, J
the other's jitter, both from the analysis of the plan we start from), over the
servers of the segment's resource. A linear programme on that model (each task's
variants as shares that add up to one) picks, for every task at once, the variants
with the least summed loss that keep each task's change within its slack; the few
tasks it leaves split take the fastest variant of their split. So that no task's
blocking grows, a task keeps to variants that hold a server no longer than it does
now or than the M-th longest of the tasks below it (with M servers a task is blocked
by the M longest below it); summed storage stands in for the weight groups' (never
less). The model is only a guide: a choice is kept only if the
exact analysis passes it (the optimizer checks), and the LP is solved again on less
of each slack where it does not. (A MILP through scipy's HiGHS did no better on
40-task sets and printed a stray HiGHS debug line to stdout now and then.)
"""
from __future__ import annotations

import math
from typing import Iterator, Mapping, Sequence

import numpy as np

from .analysis import RESOURCES, Analyzer, TaskAnalysis

SLACK_SHARES = (1.0, 0.6, 0.3)   # of each task's slack the model may spend, tried in turn (no feedback)
SHRINK = 0.5                     # told which tasks the exact check failed: their share, times this
SHRINK_OTHERS = 0.7              # ... and every other task's (the next to fail is often one that passed)
TRIES = 12                       # LP solves per step, at most


def _held(an: Analyzer, task: str, variant: str) -> tuple[float, ...]:
    """Per resource, the longest stretch the task holds a server: what it blocks those above for."""
    times = an.times(task, variant, 100.0)
    return tuple(times.longest_on(r) for r in RESOURCES)


def _no_more_blocking(an: Analyzer, names: Sequence[str], cur: Mapping[str, str],
                      servers: Mapping[str, int]) -> list[tuple[float, ...]]:
    """Per level k and resource, the longest stretch task k may hold without growing any
    blocking above it: its own now, or the M-th longest of the tasks below it (a task above
    is blocked by the M longest below it, M servers), whichever is longer."""
    held = [_held(an, t, cur[t]) for t in names]
    out = []
    for k in range(len(names)):
        limits = []
        for i, r in enumerate(RESOURCES):
            below = sorted((h[i] for h in held[k + 1:]), reverse=True)
            m = servers[r]
            limits.append(max(held[k][i], below[m - 1] if len(below) >= m else 0.0))
        out.append(tuple(limits))
    return out


def solver():
    """scipy's linprog, imported on first use: scipy.optimize takes 0.3-0.6 s to load here, which
    a command that never runs the LP step should not pay (optimize loads it before its clock)."""
    from scipy.optimize import linprog
    return linprog


def choices(an: Analyzer, order: Sequence[tuple[str, str]], results: Sequence[TaskAnalysis],
            variants: Mapping[str, Sequence[str]], loss: Mapping[str, Mapping[str, float]],
            storage_budget_mb: float) -> Iterator[dict[str, str]]:
    """Variant choices for `order` (priorities kept), each better than the current one in summed
    loss; `results` is analyze_order(order). Send back the tasks the exact check failed: the
    next choice gives those less of their slack; plain iteration shrinks every task's share."""
    linprog = solver()

    ts = an.taskset
    names = [t for t, _ in order]
    cur = dict(order)
    n = len(names)
    servers = {r: ts.platform.servers(r) for r in RESOURCES}
    pct = [r.percentile if not math.isnan(r.percentile) else an.levels[0] for r in results]
    hold_limit = _no_more_blocking(an, names, cur, servers)
    cols = [(k, v) for k, t in enumerate(names) for v in variants[t]
            if all(a <= b + 1e-9 for a, b in zip(_held(an, t, v), hold_limit[k]))]
    cost = np.array([loss[names[k]][v] for k, v in cols])
    level_of = np.array([k for k, _ in cols])
    pick = np.zeros((n, len(cols)))
    pick[level_of, np.arange(len(cols))] = 1.0
    # Row i, column (k, v): what task i's bound grows by when task k takes v. Its own time
    # where k = i; where k is above, k's change on each resource over its servers, times
    # the jobs of k in i's window (those depend on (i, k) alone, so they are counted once).
    jitter = [max(0.0, r.response_bound_ms - an.times(t, cur[t], pct[k]).own_time)
              for k, (t, r) in enumerate(zip(names, results))]
    period = [ts.tasks[t].interarrival_ms for t in names]
    grow = np.zeros((n, len(cols)))
    for p in set(pct):
        own, load = [], []
        for k, v in cols:
            new, old = an.times(names[k], v, p), an.times(names[k], cur[names[k]], p)
            own.append(new.own_time - old.own_time)
            load.append((new.c[0] + new.c[2] - old.c[0] - old.c[2]) / servers['cpu']
                        + (new.c[1] - old.c[1]) / servers['gpu'])
        own, load = np.array(own), np.array(load)
        for i in (i for i in range(n) if pct[i] == p):
            window = results[i].response_bound_ms
            count = np.array([math.floor((window + jitter[k]) / period[k]) + 1 for k in range(i)] or [0])
            above, mine = level_of < i, level_of == i
            grow[i, above] = count[level_of[above]] * load[above]
            grow[i, mine] = own[mine]
    slack = np.array([max(0.0, r.effective_deadline_ms - r.response_bound_ms) for r in results])
    storage = np.array([ts.tasks[names[k]].variants[v].storage_mb for k, v in cols])
    speed = [sum(an.times(names[k], v, 100.0).c) for k, v in cols]
    now, offered = sum(loss[t][v] for t, v in order), []
    rows, budgets = grow, []
    if math.isfinite(storage_budget_mb):
        rows, budgets = np.vstack([grow, storage]), [storage_budget_mb]
    share, level, failing = np.ones(n), 0, None
    index = {t: k for k, t in enumerate(names)}
    for _ in range(TRIES):
        res = linprog(cost, A_ub=rows, b_ub=np.append(share * slack, budgets), A_eq=pick, b_eq=np.ones(n),
                      bounds=(0, 1), method='highs')
        if res.x is None:
            return
        # The LP leaves a few tasks split between variants (at most one per binding row);
        # each takes the fastest of its share, which grows no row more than the split did
        # where times at every percentile keep the same order (the exact check decides).
        chosen = {}
        for j in np.argsort(speed):
            k, v = cols[j]
            if res.x[j] > 1e-6 and names[k] not in chosen:
                chosen[names[k]] = v
        if sum(loss[t][v] for t, v in chosen.items()) >= now - 1e-9:
            return                   # the model has nothing better, at this share or a smaller one
        if chosen not in offered:
            offered.append(chosen)
            failing = yield chosen
        if failing:
            # Where the model was wrong (a window that took in one more job of a task above,
            # a percentile that moved) only the tasks that failed spend less of their slack.
            share *= SHRINK_OTHERS
            for t in failing:
                share[index[t]] *= SHRINK / SHRINK_OTHERS
        else:
            level += 1
            if level == len(SLACK_SHARES):
                return
            share[:] = SLACK_SHARES[level]
