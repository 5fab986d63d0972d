"""The two-objective peer of bench_optimizer.py --front: NSGA-II (DEAP) on accuracy loss
(minimised) and execution-time margin (maximised), with the project's analysis.

A plan's margin is the largest factor of a grid (the same grid as `rtmdl optimize
--front`) at which every execution-time sample may be multiplied and the plan still
meets every miss-rate bound (the analysis only grows with the times, so a binary
search over the grid finds it); a plan that fails at x1.0 is infeasible and ranked
last. Genome, seeding and operators as the GA peer (peer_ga.py); selection NSGA-II.
The front compared is every feasible plan met, non-dominated; hypervolume() measures it
inside a reference box (bench_optimizer.py states the box).
A benchmark dependency (bench/requirements.txt), not a runtime one.
"""
from __future__ import annotations

import random
import time

from deap import base, creator, tools
from peer_ga import mutate_genome

from rtmdl_ros.core.analysis import Analyzer, deadline_monotonic
from rtmdl_ros.core.optimizer import objective, storage_mb
from rtmdl_ros.core.taskset import with_time_margin

if not hasattr(creator, 'FrontFitness'):
    creator.create('FrontFitness', base.Fitness, weights=(-1.0, 1.0))
    creator.create('FrontGenome', list, fitness=creator.FrontFitness)


def hypervolume(points, loss_ref: float, margin_ref: float) -> float:
    """Area of (loss, margin) space the points dominate (less loss, more margin) inside
    the box loss <= loss_ref, margin >= margin_ref: a point (l, m) covers
    [l, loss_ref] x [margin_ref, m]; per slab of loss the height is the largest
    margin of the points at or left of it."""
    pts = [(loss, m) for loss, m in points if loss < loss_ref and m > margin_ref]
    area, best = 0.0, margin_ref
    edges = sorted({loss for loss, _ in pts} | {loss_ref})
    for a, b in zip(edges, edges[1:]):
        best = max([best] + [m for loss, m in pts if loss <= a])
        area += (b - a) * (best - margin_ref)
    return area


def margin_analyzers(taskset, margins):
    grid = sorted(set(float(m) for m in margins))
    return grid, [Analyzer(taskset if m == 1.0 else with_time_margin(taskset, m)) for m in grid]


def plan_margin(grid, analyzers, order) -> float:
    """The largest grid factor at which the ordered plan meets every bound (0: not even x1)."""
    if not analyzers[0].feasible(order):
        return 0.0
    lo, hi = 0, len(grid) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if analyzers[mid].feasible(order):
            lo = mid
        else:
            hi = mid - 1
    return grid[lo]


def non_dominated(points):
    return sorted({p for p in points if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points)})


def nsga_front(taskset, margins, time_limit_s: float, seed: int = 0, population: int = 40):
    """Non-dominated (loss, margin) of the feasible plans NSGA-II met within the time limit."""
    rng = random.Random(seed)
    grid, analyzers = margin_analyzers(taskset, margins)
    names = deadline_monotonic(taskset)
    n = len(names)
    variants = [sorted(taskset.tasks[t].variants, key=lambda v, t=t: (taskset.tasks[t].loss(v), v)) for t in names]
    budget = taskset.platform.storage_budget_mb
    seen: dict[tuple, tuple[float, float]] = {}

    def decode(genome):
        ranked = sorted(range(n), key=lambda i: (genome[n + i], i))
        return [(names[i], variants[i][genome[i]]) for i in ranked]

    def evaluate(genome):
        order = decode(genome)
        key = tuple(order)
        if key not in seen:
            choice = dict(order)
            loss = objective(taskset, choice)
            margin = 0.0 if storage_mb(taskset, choice) > budget + 1e-9 else plan_margin(grid, analyzers, order)
            seen[key] = (loss, margin) if margin else (loss + 10.0, 0.0)   # infeasible: behind every feasible plan
        return seen[key]

    dm_keys = [k / n for k in range(n)]
    pop = [creator.FrontGenome([0] * n + dm_keys), creator.FrontGenome([len(v) - 1 for v in variants] + dm_keys)]
    pop += [creator.FrontGenome([rng.randrange(len(v)) for v in variants] + [rng.random() for _ in range(n)])
            for _ in range(population - len(pop))]
    deadline = time.monotonic() + time_limit_s
    state = random.getstate()
    random.seed(seed)
    try:
        for g in pop:
            g.fitness.values = evaluate(g)
        pop = tools.selNSGA2(pop, len(pop))
        while time.monotonic() < deadline:
            offspring = [creator.FrontGenome(g) for g in tools.selTournamentDCD(pop, len(pop))] \
                if len(pop) % 4 == 0 else [creator.FrontGenome(g) for g in pop]
            for a, b in zip(offspring[::2], offspring[1::2]):
                if rng.random() < 0.7:
                    tools.cxUniform(a, b, 0.5)
            for g in offspring:
                mutate_genome(g, variants, rng)
                g.fitness.values = evaluate(g)
                if time.monotonic() > deadline:
                    break
            offspring = [g for g in offspring if g.fitness.valid]
            pop = tools.selNSGA2(pop + offspring, population)
    finally:
        random.setstate(state)
    return non_dominated([(loss, m) for loss, m in seen.values() if m >= 1.0])
