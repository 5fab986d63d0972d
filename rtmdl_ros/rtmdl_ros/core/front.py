"""The accuracy-loss vs safety-margin front (like RT-mDL's Pareto view).

Each point plans the task set with every execution-time sample multiplied by
a margin factor: a plan chosen at margin 1.3 still meets its bounds if the
machine runs 30 % slower than profiled, at the accuracy loss the point shows.
"""
from __future__ import annotations

from dataclasses import dataclass

from .optimizer import optimize
from .plan import Assignment
from .taskset import TaskSet, TasksetError, with_time_margin


@dataclass(frozen=True)
class FrontPoint:
    margin: float
    objective: float | None          # None: no plan meets the bounds at this margin
    plan: dict[str, Assignment] | None
    optimal: bool


def loss_front(taskset: TaskSet, margins, time_limit_s: float) -> list[FrontPoint]:
    """One point per margin factor (>= 1), smallest first."""
    points = []
    for m in sorted(set(float(x) for x in margins)):
        if not m >= 1.0:
            raise TasksetError(f'front margins are factors >= 1, got {m}')
        res = optimize(with_time_margin(taskset, m) if m > 1.0 else taskset, time_limit_s=time_limit_s)
        points.append(FrontPoint(m, res.objective, res.plan, res.optimal))
    return points
