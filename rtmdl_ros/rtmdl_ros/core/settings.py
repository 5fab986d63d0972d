"""Live per-task settings of the executor, and the rules a change must pass.

A change (one parameter or several at once) is checked against the whole
resulting configuration; if any rule fails, nothing changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from .analysis import analyze, default_plan
from .plan import Assignment
from .taskset import TaskSet, TasksetError, with_task_changes

PRIORITY_MAX = 99
PERIOD_RANGE_MS = (1.0, 60_000.0)


@dataclass(frozen=True)
class TaskSettings:
    variant: str
    priority: int
    period_ms: float
    deadline_ms: float


def initial_settings(taskset: TaskSet, plan: Mapping | None) -> dict[str, TaskSettings]:
    """From the task set, with variants and priorities from a plan (default: dm-nmc)."""
    plan = plan or default_plan(taskset)
    return {name: TaskSettings(plan[name].variant, plan[name].priority, t.period_ms, t.deadline_ms)
            for name, t in taskset.tasks.items()}


def apply_change(current: Mapping[str, TaskSettings], changes: Mapping[tuple[str, str], object],
                 variants: Mapping[str, set]) -> dict[str, TaskSettings]:
    """The configuration after `changes` {(task, field): value}; ValueError names what is wrong."""
    out = dict(current)
    for (task, field), value in changes.items():
        if task not in out:
            raise ValueError(f'unknown task {task!r}')
        if field not in TaskSettings.__dataclass_fields__:
            raise ValueError(f'tasks.{task}.{field} is not a task setting')
        out[task] = replace(out[task], **{field: value})
    check(out, variants)
    return out


def check(settings: Mapping[str, TaskSettings], variants: Mapping[str, set]) -> None:
    seen: dict[int, str] = {}
    for task, s in settings.items():
        where = f'tasks.{task}'
        if s.variant not in variants[task]:
            raise ValueError(f'{where}.variant: unknown variant {s.variant!r}; choose one of {sorted(variants[task])}')
        if isinstance(s.priority, bool) or not isinstance(s.priority, int) or not 0 <= s.priority <= PRIORITY_MAX:
            raise ValueError(f'{where}.priority: must be an integer in 0..{PRIORITY_MAX}, got {s.priority!r}')
        if s.priority in seen:
            raise ValueError(f'{where}.priority: {s.priority} is already the priority of {seen[s.priority]!r} '
                             '(priorities must be distinct; set both tasks in one call to swap them)')
        seen[s.priority] = task
        for field, value in (('period_ms', s.period_ms), ('deadline_ms', s.deadline_ms)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or not PERIOD_RANGE_MS[0] <= value <= PERIOD_RANGE_MS[1]:
                raise ValueError(f'{where}.{field}: must be in {PERIOD_RANGE_MS[0]:g}..{PERIOD_RANGE_MS[1]:g} ms, '
                                 f'got {value!r}')
        if s.deadline_ms > s.period_ms:
            raise ValueError(f'{where}.deadline_ms: {s.deadline_ms:g} ms exceeds period_ms {s.period_ms:g} ms')


def analysed_bounds(taskset: TaskSet, settings: Mapping[str, TaskSettings]) -> dict[str, float]:
    """Response bound per task for the live settings, where the task set has measured times."""
    ts = taskset
    if not any(v.time('infer').worst > 0 for t in ts.tasks.values() for v in t.variants.values()):
        return {}
    try:
        for name, s in settings.items():
            t = ts.tasks[name]
            if (s.period_ms, s.deadline_ms) != (t.period_ms, t.deadline_ms):
                ts = with_task_changes(ts, name, period_ms=s.period_ms, deadline_ms=s.deadline_ms)
        result = analyze(ts, {n: Assignment(s.variant, s.priority) for n, s in settings.items()})
    except (TasksetError, ValueError):
        return {}
    return {n: r.response_bound_ms for n, r in result.items()}
