"""Files the nodes read: the package's config folder and the task set + zoo view."""
from __future__ import annotations

import os

from ..core.taskset import TaskSet, TasksetError, _deep_merge, load_taskset, taskset_from_dict
from ..models.catalog import family_variants, read_task_requirements, task_envelopes, task_families, task_models


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


def load_runtime_taskset(path: str, zoo_dir: str | None) -> tuple[TaskSet, dict, dict, dict, dict, dict]:
    """The task set as the executor needs it: (task set, variants per task, accuracy per
    variant, labels per task, family per task, input envelope per task). Variants come from the family each
    task runs (the zoo's, or a user's ONNX files); a task set that lists them (e.g.
    a profiled one) must name only variants that family has."""
    raw = read_task_requirements(path)
    families = task_families(raw, path)
    models = task_models(raw)
    by_model = {m: family_variants(families[t], zoo_dir) for t, m in models.items()}
    from_zoo = {t: by_model[m] for t, m in models.items()}
    if raw.get('profiles') or any(isinstance(s, dict) and s.get('variants') for s in raw['tasks'].values()):
        taskset = load_taskset(path)
    else:
        under = {'tasks': {t: {'variants': v} for t, (v, _) in from_zoo.items()}}
        taskset = taskset_from_dict(_deep_merge(under, raw), source=path)
    variants = {t: set(taskset.tasks[t].variants) for t in taskset.tasks}
    for t, vs in variants.items():
        missing = vs - set(from_zoo[t][0])
        if missing:
            raise TasksetError(f'task set {path}: tasks.{t} lists variants {sorted(missing)} its model '
                               f'{models[t]!r} does not have')
    accuracy = {t: {v: taskset.tasks[t].variants[v].accuracy for v in vs} for t, vs in variants.items()}
    labels = {t: from_zoo[t][1] for t in taskset.tasks}
    return taskset, variants, accuracy, labels, families, task_envelopes(raw, path, families)
