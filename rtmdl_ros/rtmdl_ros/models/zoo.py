"""The model zoo on disk: one supernet checkpoint per task.

The trained default zoo ships inside the package (rtmdl_ros/models/zoo/); a user
zoo is any folder with the same files. A checkpoint holds the architecture, the
shared weights with every variant's batch-norm sets, the test metric of each
variant and how it was made (command, seed).
"""
from __future__ import annotations

import os

import torch

from ..core.files import atomic_write

from .families import FAMILIES, family
from .supernet import SuperNet, VariantSpec

DEFAULT_ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'zoo')


class ZooError(ValueError):
    """A missing or unreadable checkpoint; the message says which and why."""


def checkpoint_path(task: str, zoo_dir: str | None = None) -> str:
    family(task)
    return os.path.join(zoo_dir or DEFAULT_ZOO, f'{task}.pt')


def save(net: SuperNet, task: str, meta: dict, zoo_dir: str | None = None) -> str:
    """Write a checkpoint atomically; returns its path."""
    path = checkpoint_path(task, zoo_dir)
    payload = {'task': task, 'config': net.config, 'state_dict': net.state_dict(), 'meta': meta}
    atomic_write(path, lambda f: torch.save(payload, f), binary=True)
    return path


def load(task: str, zoo_dir: str | None = None) -> tuple[SuperNet, dict]:
    """The task's supernet (eval mode) and its metadata."""
    path = checkpoint_path(task, zoo_dir)
    if not os.path.exists(path):
        raise ZooError(f'no checkpoint for {task!r} at {path}; train one with `rtmdl train {task}`')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
        cfg = dict(payload['config'])
        variants = [VariantSpec.parse(v) for v in cfg.pop('variants')]
        cfg['stages'] = [tuple(s) for s in cfg['stages']]
        net = SuperNet(**cfg, variants=variants)
        net.load_state_dict(payload['state_dict'])
    except ZooError:
        raise
    except Exception as e:                          # corrupt or foreign file: say so, in one line
        raise ZooError(f'checkpoint {path} cannot be loaded: {type(e).__name__}: {str(e).splitlines()[0][:200]}') from None
    if payload.get('task') != task:
        raise ZooError(f'checkpoint {path} holds task {payload.get("task")!r}, not {task!r}')
    net.eval()
    return net, dict(payload.get('meta', {}))


def tasks() -> list[str]:
    return list(FAMILIES)
