"""Which model each task of a task set runs, and what the zoo says of it.

A task names its model family with `model:` (default: the task's own name),
so several tasks can run one family: the same detector on a second camera
shares the weights (and the profile) of the first.
"""
from __future__ import annotations

from ..core.taskset import TasksetError, read_yaml


def task_models(raw: dict) -> dict[str, str]:
    """Task -> model family name, from a raw task set / config."""
    out = {}
    for name, spec in raw['tasks'].items():
        model = spec.get('model', name) if isinstance(spec, dict) else name
        out[str(name)] = model if isinstance(model, str) else repr(model)
    return out


def read_task_requirements(path: str, what: str = 'task set') -> dict:
    """The raw task set / config (periods, deadlines, bounds), each task's model checked against the zoo."""
    from .families import FAMILIES
    raw = read_yaml(path, what)
    if not isinstance(raw, dict) or not isinstance(raw.get('tasks'), dict) or not raw['tasks']:
        raise TasksetError(f'{what} {path}: needs a non-empty tasks mapping')
    unknown = {t: m for t, m in task_models(raw).items() if m not in FAMILIES}
    if unknown:
        where = ', '.join(f'tasks.{t}' + ('.model' if t != m else '') + f' ({m!r})' for t, m in unknown.items())
        raise TasksetError(f'{what} {path}: no model family for {where}; the zoo has {sorted(FAMILIES)}')
    return raw


def zoo_variants(model: str, zoo_dir: str | None) -> tuple[dict, tuple[str, ...]]:
    """Variant entries (accuracy, storage, no timing) and labels of a model's supernet."""
    from . import zoo                              # torch: only what loads models needs it
    from .families import FAMILIES
    net, meta = zoo.load(model, zoo_dir)
    metric = meta.get('test_metric', {})
    variants = {s.name: {'accuracy': float(metric.get(s.name, 0.0)),
                         'storage_mb': 4 * net.variant_parameters(s.name) / float(1 << 20),
                         'weight_group': f'{model}_supernet', 'pre_ms': 0.0, 'infer_ms': 0.0, 'post_ms': 0.0}
                for s in net.variants}
    labels = tuple(meta.get('labels') or FAMILIES[model].labels)
    return variants, labels
