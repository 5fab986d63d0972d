"""Which model each task of a task set runs, and what is known of it.

A task's `model:` is either the name of a built-in family of the zoo (default:
the task's own name), so several tasks can run one family (the same detector
on a second camera shares its weights and its profile), a mapping that
declares a user family: ONNX variant files with declared pre- and
post-processing (models/user_family.py), or the folder of a family that
`rtmdl train` made (its family.yaml holds that mapping; relative to the task set).
"""
from __future__ import annotations

import os

from ..core.taskset import TasksetError, read_yaml


def task_models(raw: dict) -> dict[str, str]:
    """Task -> model key: the built-in family's name, or the task's own name for a
    user family (which serves that task alone)."""
    out = {}
    for name, spec in raw['tasks'].items():
        model = spec.get('model', name) if isinstance(spec, dict) else name
        out[str(name)] = model if isinstance(model, str) else str(name)
    return out


FAMILY_FILE = 'family.yaml'


def family_file(model, base_dir: str) -> str | None:
    """The family.yaml a `model:` string names (a folder, relative to base_dir), else None."""
    from .families import FAMILIES
    if not isinstance(model, str) or model in FAMILIES:
        return None
    folder = os.path.normpath(os.path.join(base_dir, os.path.expanduser(model)))
    path = os.path.join(folder, FAMILY_FILE)
    return path if os.path.isfile(path) else None


def read_family_file(task: str, path: str, where: str):
    """The user family a trained family's folder holds (paths in it are relative to it)."""
    from .user_family import user_family
    spec = read_yaml(path, 'family')
    if not isinstance(spec, dict):
        raise TasksetError(f'{where}: {path} is not a family mapping')
    return user_family(task, spec, os.path.dirname(path), f'family {path}')


def task_families(raw: dict, path: str, what: str = 'task set') -> dict:
    """Task -> its family (models.families.Family or models.user_family.UserFamily)."""
    from .families import FAMILIES
    from .user_family import user_family
    base_dir = os.path.dirname(os.path.abspath(path))
    out, unknown = {}, []
    for name, spec in raw['tasks'].items():
        model = spec.get('model', name) if isinstance(spec, dict) else name
        if isinstance(model, dict):
            out[str(name)] = user_family(str(name), model, base_dir, f'{what} {path}: tasks.{name}.model')
        elif family_file(model, base_dir):
            out[str(name)] = read_family_file(str(name), family_file(model, base_dir), f'{what} {path}: tasks.{name}.model')
        elif isinstance(model, str) and model in FAMILIES:
            out[str(name)] = FAMILIES[model]
        else:
            unknown.append(f'tasks.{name}' + ('.model' if model != name else '') + f' ({model!r})')
    if unknown:
        raise TasksetError(f'{what} {path}: no model family for {", ".join(unknown)}; the zoo has {sorted(FAMILIES)}, '
                           f'or name a folder holding {FAMILY_FILE} (rtmdl train), or declare one (docs/byom.md)')
    return out


def task_envelopes(raw: dict, path: str, families: dict) -> dict:
    """Task -> the inputs its profile covers (models/envelope.py)."""
    from .envelope import envelope_of
    sensors = raw.get('sensors') if isinstance(raw.get('sensors'), dict) else {}
    out = {}
    for name, fam in families.items():
        try:
            out[name] = envelope_of(name, raw['tasks'][name], fam, sensors, f'tasks.{name}')
        except ValueError as e:
            raise TasksetError(f'task set {path}: {e}') from None
    return out


def read_task_requirements(path: str, what: str = 'task set') -> dict:
    """The raw task set / config (periods, deadlines, bounds), each task's model checked."""
    raw = read_yaml(path, what)
    if not isinstance(raw, dict) or not isinstance(raw.get('tasks'), dict) or not raw['tasks']:
        raise TasksetError(f'{what} {path}: needs a non-empty tasks mapping')
    bad = [t for t, spec in raw['tasks'].items() if not isinstance(spec, dict)]
    if bad:
        raise TasksetError(f'{what} {path}: tasks {bad}: each task is a mapping of its settings')
    task_envelopes(raw, path, task_families(raw, path, what))
    return raw


def family_variants(fam, zoo_dir: str | None) -> tuple[dict, tuple[str, ...]]:
    """Variant entries (accuracy, storage, no timing) and labels of a task's family."""
    if getattr(fam, 'user', False):
        group = fam.weight_group
        return ({v: {'accuracy': e['accuracy'], 'storage_mb': e['storage_mb'], 'pre_ms': 0.0, 'infer_ms': 0.0,
                     'post_ms': 0.0, **({'weight_group': group} if group else {})} for v, e in fam.variants.items()},
                fam.labels)
    return zoo_variants(fam.task, zoo_dir)


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


def accuracy_sources(raw: dict, base_dir: str = '.') -> dict[str, str]:
    """Task -> where its variants' accuracies come from, for the plan's header."""
    out = {}
    for name, spec in raw['tasks'].items():
        model = spec.get('model', name) if isinstance(spec, dict) else name
        if family_file(model, base_dir):
            model = read_yaml(family_file(model, base_dir), 'family')
        if isinstance(model, dict):
            m = model.get('accuracy_measured')
            out[name] = (f'measured ({m.get("metric")} on {m.get("images")} images of {m.get("data")})'
                         if isinstance(m, dict) else 'declared in the task set')
        else:
            out[name] = f'zoo test split ({model})'
    return out
