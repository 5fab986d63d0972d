"""Planning policies: RT-mDL and the baselines of the paper, behind one call.

  rtmdl   joint variant + priority optimisation (optimizer.py)
  dm-nmc  deadline-monotonic priorities, original (largest) model per task
  dm-mc   deadline-monotonic priorities, one fixed compressed variant per task:
          the task's `compressed_variant`, else its median-storage variant
  um-nmc  utilisation-monotonic priorities (highest mean utilisation of the
          largest variant first), largest model per task

EDF is not offered: the runtime schedules by fixed priority only.
"""
from __future__ import annotations

from dataclasses import dataclass

from .analysis import TaskAnalysis, analyze, deadline_monotonic
from .optimizer import OptimizeResult, objective, optimize, storage_mb
from .plan import Assignment
from .taskset import Task, TaskSet

POLICIES = ('rtmdl', 'dm-nmc', 'dm-mc', 'um-nmc')


def compressed_variant(task: Task) -> str:
    if task.compressed_variant is not None:
        return task.compressed_variant
    by_size = sorted(task.variants.values(), key=lambda v: (v.storage_mb, -v.accuracy, v.name))
    return by_size[(len(by_size) - 1) // 2].name


def utilisation_monotonic(taskset: TaskSet) -> list[str]:
    def util(name: str) -> float:
        t = taskset.tasks[name]
        return t.largest_variant.mean_total_ms / t.period_ms
    return sorted(taskset.tasks, key=lambda n: (-util(n), taskset.tasks[n].deadline_ms, n))


def baseline_plan(taskset: TaskSet, policy: str) -> dict[str, Assignment]:
    if policy == 'dm-nmc':
        order, pick = deadline_monotonic(taskset), lambda t: t.largest_variant.name
    elif policy == 'dm-mc':
        order, pick = deadline_monotonic(taskset), compressed_variant
    elif policy == 'um-nmc':
        order, pick = utilisation_monotonic(taskset), lambda t: t.largest_variant.name
    else:
        raise ValueError(f'unknown baseline policy {policy!r}; choose from {POLICIES[1:]}')
    return {name: Assignment(pick(taskset.tasks[name]), prio) for prio, name in enumerate(order)}


def fastest_plan(taskset: TaskSet) -> dict[str, Assignment]:
    """What to run when no plan meets the bounds: every task's fastest variant,
    deadline-monotonic. It keeps the most slack the variants allow (a robot
    loses accuracy before it loses deadlines); the analysis does not certify it."""
    return {n: Assignment(min(taskset.tasks[n].variants, key=lambda v, n=n: taskset.tasks[n].variants[v].mean_total_ms),
                          prio) for prio, n in enumerate(deadline_monotonic(taskset))}


@dataclass
class PolicyResult:
    policy: str
    plan: dict[str, Assignment] | None
    analysis: dict[str, TaskAnalysis] | None
    objective: float | None
    storage_mb: float | None
    meets_bounds: bool
    reason: str = ''
    search: OptimizeResult | None = None

    @property
    def violations(self) -> list[str]:
        """Tasks whose miss-rate bound exceeds their max_miss_rate."""
        return [n for n, a in (self.analysis or {}).items() if not a.meets_bound]


def plan_with(taskset: TaskSet, policy: str, time_limit_s: float = 30.0, progress=None,
              seed: int = 0, max_steps: int | None = None) -> PolicyResult:
    """Plan under `policy`. Baselines always return their plan, met bounds or not.
    progress(best objective, lower bound, elapsed s): the rtmdl search's better plans;
    seed and max_steps: the rtmdl search's (optimizer.optimize)."""
    if policy == 'rtmdl':
        res = optimize(taskset, time_limit_s=time_limit_s, progress=progress, seed=seed, max_steps=max_steps)
        return PolicyResult('rtmdl', res.plan, res.analysis, res.objective, res.storage_mb,
                            meets_bounds=res.plan is not None, reason=res.reason, search=res)
    plan = baseline_plan(taskset, policy)
    analysis = analyze(taskset, plan)
    choice = {n: a.variant for n, a in plan.items()}
    used = storage_mb(taskset, choice)
    ok = all(a.meets_bound for a in analysis.values()) and used <= taskset.platform.storage_budget_mb
    return PolicyResult(policy, plan, analysis, objective(taskset, choice), used, meets_bounds=ok)
