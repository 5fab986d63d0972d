"""On-demand data sets cached outside git (generated once per seed and size)."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

import numpy as np

from ..core.files import atomic_write


def cache_dir() -> str:
    """$RTMDL_CACHE, else $XDG_CACHE_HOME/rtmdl_ros, else ~/.cache/rtmdl_ros."""
    root = os.environ.get('RTMDL_CACHE')
    if not root:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        root = os.path.join(base, 'rtmdl_ros')
    os.makedirs(root, exist_ok=True)
    return root


def save_npz_atomic(path: str, **arrays: np.ndarray) -> None:
    """Write an .npz so that readers never see a half-written file."""
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)


def balanced_labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    """n labels, every class equally often (up to one), in random order."""
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    return labels.astype(np.int64)


def cached_split(kind: str, splits: dict, split: str, seed: int, size: int | None, seed_base: int,
                 generate: Callable[[int, int], dict]) -> dict[str, np.ndarray]:
    """A split of a synthetic set: splits[split] = (default size, seed offset)."""
    n, offset = splits[split]
    n = n if size is None else size
    return cached(kind, {'split': split, 'seed': seed, 'n': n, 'v': 1},
                  lambda: generate(n, seed * 1000 + seed_base + offset))


def cached(kind: str, params: dict, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays from the cache for (kind, params), building and storing them once."""
    key = hashlib.sha256(json.dumps({'kind': kind, **params}, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir(), f'{kind}-{key}.npz')
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            os.unlink(path)                     # a corrupt cache entry is rebuilt, not trusted
    arrays = build()
    save_npz_atomic(path, **arrays)
    return arrays
