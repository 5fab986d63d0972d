"""The standard peer of bench_optimizer.py: a genetic algorithm (DEAP) over the same
decision variables, with the project's own analysis as the fitness.

Genome: one variant index per task (tasks in deadline-monotonic order) and one
random key per task (priorities: ascending keys, most urgent first). Fitness,
minimised: the summed normalised loss for a plan that meets every miss-rate bound
and the storage budget; otherwise 10 + the number of tasks over their bound + the
storage excess in budgets, so that the search is pulled toward feasibility.
Tournament selection, uniform crossover, per-gene mutation, an elite of 2, and a
population seeded with the largest- and smallest-variant deadline-monotonic plans.
A benchmark dependency (bench/requirements.txt), not a runtime one.
"""
from __future__ import annotations

import math
import random
import time

from deap import base, creator, tools

from rtmdl_ros.core.analysis import Analyzer, deadline_monotonic
from rtmdl_ros.core.optimizer import objective, storage_mb

if not hasattr(creator, 'PlanFitness'):
    creator.create('PlanFitness', base.Fitness, weights=(-1.0,))
    creator.create('PlanGenome', list, fitness=creator.PlanFitness)


def mutate_genome(genome, variants, rng):
    """Per gene with probability 1/n: a variant index one step up or down, a priority key redrawn."""
    n = len(variants)
    p = 1.0 / max(1, n)
    for i in range(n):
        if rng.random() < p:
            genome[i] = max(0, min(len(variants[i]) - 1, genome[i] + rng.choice((-1, 1))))
        if rng.random() < p:
            genome[n + i] = rng.random()
    return (genome,)


def ga_optimize(taskset, time_limit_s: float, seed: int = 0, population: int = 40):
    """Best feasible (order of (task, variant), objective) found within the time limit, or (None, inf)."""
    rng = random.Random(seed)
    an = Analyzer(taskset)
    names = deadline_monotonic(taskset)
    n = len(names)
    # Variants per task, most accurate first (index 0 = least loss).
    variants = [sorted(taskset.tasks[t].variants, key=lambda v, t=t: (taskset.tasks[t].loss(v), v)) for t in names]
    budget = taskset.platform.storage_budget_mb

    def decode(genome):
        keys = genome[n:]
        ranked = sorted(range(n), key=lambda i: (keys[i], i))
        return [(names[i], variants[i][genome[i]]) for i in ranked]

    def fitness(genome):
        order = decode(genome)
        choice = dict(order)
        excess = max(0.0, storage_mb(taskset, choice) - budget) / max(budget, 1e-9) if math.isfinite(budget) else 0.0
        if excess == 0.0 and an.feasible(order):
            return (objective(taskset, choice),)
        over = sum(not r.meets_bound for r in an.analyze_order(order))
        return (10.0 + over + excess,)

    def random_genome():
        return creator.PlanGenome([rng.randrange(len(v)) for v in variants] + [rng.random() for _ in range(n)])

    def mutate(genome):
        return mutate_genome(genome, variants, rng)

    toolbox = base.Toolbox()
    toolbox.register('mate', tools.cxUniform, indpb=0.5)
    toolbox.register('select', tools.selTournament, tournsize=3)
    dm_keys = [k / n for k in range(n)]
    pop = [creator.PlanGenome([0] * n + dm_keys),                                  # dm-nmc
           creator.PlanGenome([len(v) - 1 for v in variants] + dm_keys)]           # least accurate, dm order
    pop += [random_genome() for _ in range(population - len(pop))]
    deadline = time.monotonic() + time_limit_s
    best, best_fit = None, math.inf
    state = random.getstate()
    random.seed(seed)                          # DEAP's operators draw from the random module
    try:
        while True:
            for g in pop:
                if not g.fitness.valid:
                    g.fitness.values = fitness(g)
                    if g.fitness.values[0] < best_fit:
                        best, best_fit = list(g), g.fitness.values[0]
                if time.monotonic() > deadline:
                    break
            if time.monotonic() > deadline:
                break
            elite = tools.selBest(pop, 2)
            offspring = [toolbox.clone(g) for g in toolbox.select(pop, len(pop) - 2)]
            for a, b in zip(offspring[::2], offspring[1::2]):
                if rng.random() < 0.7:
                    toolbox.mate(a, b)
                    del a.fitness.values, b.fitness.values
            for g in offspring:
                mutate(g)
                del g.fitness.values
            pop = [toolbox.clone(g) for g in elite] + offspring
    finally:
        random.setstate(state)
    if best is None or best_fit >= 10.0:
        return None, math.inf
    return decode(best), best_fit
