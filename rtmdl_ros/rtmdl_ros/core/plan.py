"""Plans: one variant and one priority per task, stored as a ROS 2 parameters file.

    rtmdl_executor:
      ros__parameters:
        tasks:
          front_detector: {variant: w100_d3, priority: 0}

The executor node loads it with `--ros-args --params-file PLAN.yaml` (or the
launch file's plan_file argument). Priorities are distinct integers, 0 = most
urgent, identical on the CPU and the GPU queues.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import yaml

from .files import atomic_write

from .taskset import TaskSet, TasksetError, read_yaml

EXECUTOR_NODE = 'rtmdl_executor'


@dataclass(frozen=True)
class Assignment:
    variant: str
    priority: int


Plan = Mapping[str, Assignment]


def validate_plan(plan: Plan, taskset: TaskSet, where: str = 'plan') -> None:
    """Raise TasksetError unless `plan` names every task once with a known variant."""
    missing = [t for t in taskset.tasks if t not in plan]
    if missing:
        raise TasksetError(f'{where}: no entry for task(s) {missing}')
    extra = [t for t in plan if t not in taskset.tasks]
    if extra:
        raise TasksetError(f'{where}: unknown task(s) {extra}; the task set has {list(taskset.tasks)}')
    seen: dict[int, str] = {}
    for name, a in plan.items():
        task = taskset.tasks[name]
        if a.variant not in task.variants:
            raise TasksetError(f'{where}: task {name!r} has no variant {a.variant!r} '
                               f'(known: {sorted(task.variants)})')
        if isinstance(a.priority, bool) or not isinstance(a.priority, int) or a.priority < 0:
            raise TasksetError(f'{where}: task {name!r} priority must be an integer >= 0, got {a.priority!r}')
        if a.priority in seen:
            raise TasksetError(f'{where}: tasks {seen[a.priority]!r} and {name!r} share priority {a.priority}')
        seen[a.priority] = name


def plan_from_params(raw: object, where: str) -> dict[str, Assignment]:
    """Extract the plan from a parsed ROS 2 parameters file."""
    if not isinstance(raw, Mapping):
        raise TasksetError(f'{where}: expected a ROS 2 parameters file (a mapping)')
    node = raw.get(EXECUTOR_NODE, raw.get('/' + EXECUTOR_NODE, raw.get('/**')))
    params = node.get('ros__parameters') if isinstance(node, Mapping) else None
    tasks = params.get('tasks') if isinstance(params, Mapping) else None
    if not isinstance(tasks, Mapping):
        raise TasksetError(f'{where}: expected {EXECUTOR_NODE}.ros__parameters.tasks')
    plan = {}
    for name, entry in tasks.items():
        if not isinstance(entry, Mapping) or 'variant' not in entry or 'priority' not in entry:
            raise TasksetError(f'{where}: task {name!r} needs variant and priority')
        variant, priority = entry['variant'], entry['priority']
        if not isinstance(variant, str):
            raise TasksetError(f'{where}: task {name!r} variant must be a string, got {variant!r}')
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TasksetError(f'{where}: task {name!r} priority must be an integer, got {priority!r}')
        plan[str(name)] = Assignment(variant, priority)
    return plan


def load_plan(path: str, taskset: TaskSet) -> dict[str, Assignment]:
    plan = plan_from_params(read_yaml(path, 'plan'), f'plan {path}')
    validate_plan(plan, taskset, f'plan {path}')
    return plan


def plan_to_params(plan: Plan) -> dict:
    ordered = sorted(plan.items(), key=lambda kv: kv[1].priority)
    return {EXECUTOR_NODE: {'ros__parameters': {'tasks': {
        name: {'variant': a.variant, 'priority': int(a.priority)} for name, a in ordered}}}}


def write_plan(path: str, plan: Plan, header: str = '') -> None:
    """Write the parameters file atomically: a reader sees the old file or the new one."""
    text = ''.join(f'# {line}\n' for line in header.splitlines())
    text += yaml.safe_dump(plan_to_params(plan), sort_keys=False, default_flow_style=False)
    atomic_write(path, lambda f: f.write(text))
