"""Files the nodes read: the package's config folder and the task set + zoo view."""
from __future__ import annotations

import os

from ..core.taskset import TaskSet, TasksetError, _deep_merge, load_taskset, read_yaml, taskset_from_dict


def config_dir() -> str:
    """config/ of the installed package (ament index), else of the source tree."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            share = os.path.join(get_package_share_directory('rtmdl_ros'), 'config')
            if os.path.isdir(share):
                return share
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'config')


def default_taskset_file() -> str:
    return os.path.join(config_dir(), 'f1tenth.yaml')


def zoo_variants(task: str, zoo_dir: str | None) -> tuple[dict, tuple[str, ...]]:
    """Variant entries (accuracy, storage, no timing) and labels of a task's supernet."""
    from ..models import zoo                      # torch: only the executor needs it
    from ..models.families import FAMILIES
    net, meta = zoo.load(task, zoo_dir)
    metric = meta.get('test_metric', {})
    variants = {s.name: {'accuracy': float(metric.get(s.name, 0.0)),
                         'storage_mb': 4 * net.variant_parameters(s.name) / float(1 << 20),
                         'weight_group': f'{task}_supernet', 'pre_ms': 0.0, 'infer_ms': 0.0, 'post_ms': 0.0}
                for s in net.variants}
    labels = tuple(meta.get('labels') or FAMILIES[task].labels)
    return variants, labels


def read_task_requirements(path: str, what: str = 'task set') -> dict:
    """The raw task set / config (periods, deadlines, bounds), its tasks checked against the zoo."""
    from ..models.families import FAMILIES
    raw = read_yaml(path, what)
    if not isinstance(raw, dict) or not isinstance(raw.get('tasks'), dict) or not raw['tasks']:
        raise TasksetError(f'{what} {path}: needs a non-empty tasks mapping')
    unknown = [t for t in raw['tasks'] if t not in FAMILIES]
    if unknown:
        raise TasksetError(f'{what} {path}: no model family for tasks {unknown}; the zoo has {sorted(FAMILIES)}')
    return raw


def load_runtime_taskset(path: str, zoo_dir: str | None) -> tuple[TaskSet, dict, dict, dict]:
    """The task set as the executor needs it: (task set, variants per task, accuracy per
    variant, labels per task). Variants come from the zoo; a task set that lists
    them (e.g. a profiled one) must name only variants the zoo has."""
    raw = read_task_requirements(path)
    from_zoo = {t: zoo_variants(t, zoo_dir) for t in raw['tasks']}
    if raw.get('profiles') or any(isinstance(s, dict) and s.get('variants') for s in raw['tasks'].values()):
        taskset = load_taskset(path)
    else:
        under = {'tasks': {t: {'variants': v} for t, (v, _) in from_zoo.items()}}
        taskset = taskset_from_dict(_deep_merge(under, raw), source=path)
    variants = {t: set(taskset.tasks[t].variants) for t in taskset.tasks}
    for t, vs in variants.items():
        missing = vs - set(from_zoo[t][0])
        if missing:
            raise TasksetError(f'task set {path}: tasks.{t} lists variants {sorted(missing)} the zoo does not have')
    accuracy = {t: {v: taskset.tasks[t].variants[v].accuracy for v in vs} for t, vs in variants.items()}
    labels = {t: from_zoo[t][1] for t in taskset.tasks}
    return taskset, variants, accuracy, labels
