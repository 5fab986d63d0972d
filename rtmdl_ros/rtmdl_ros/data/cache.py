"""On-demand data sets cached outside git, keyed by what made them.

A cache entry's key holds the request (kind, split, seed, size) and the maker:
the source of the generator's module and of the data modules it imports, its
module-level constants, and the versions of the libraries those modules import.
A changed generator, constant or library release (OpenCV's anti-aliasing has
changed between releases) is a new key, so an old file is never read for it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import json
import os
import re
import sys
from types import ModuleType
from typing import Callable

import numpy as np

from ..core.files import atomic_write

_CONSTANT = re.compile(r'_?[A-Z][A-Z0-9_]*$')
_PLAIN = (int, float, str, bool, tuple, list, dict, type(None))


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


def _imports(module: ModuleType) -> tuple[list[ModuleType], set[str]]:
    """(modules of the same package, top-level names of other packages) that the
    module imports anywhere in its source, function-level imports included."""
    package = module.__name__.rpartition('.')[0]
    local, outside = [], set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            local += [importlib.import_module(f'{package}.{n}') for n in names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            outside.add(node.module.split('.')[0])
        elif isinstance(node, ast.Import):
            outside.update(a.name.split('.')[0] for a in node.names)
    return local, outside - set(sys.stdlib_module_names) - {'__future__'}


def _constants(module: ModuleType) -> str:
    return repr(sorted((k, repr(v)) for k, v in vars(module).items()
                       if _CONSTANT.match(k) and isinstance(v, _PLAIN)))


def maker_fingerprint(module: ModuleType) -> dict:
    """What a generator module's output depends on: its source and constants and
    those of the data modules it imports (transitively), and the library versions."""
    seen: dict[str, ModuleType] = {}
    libraries: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        if m.__name__ in seen:
            continue
        seen[m.__name__] = m
        local, outside = _imports(m)
        todo += local
        libraries |= outside
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + inspect.getsource(seen[name]).encode() + _constants(seen[name]).encode())
    return {'source': digest.hexdigest()[:16], 'libraries': {lib: _version(lib) for lib in sorted(libraries)}}


@functools.lru_cache(maxsize=None)
def _version(library: str) -> str:
    return str(getattr(importlib.import_module(library), '__version__', 'unknown'))


def cache_key(kind: str, params: dict, made_by: ModuleType) -> str:
    # The BLAS kernel too: a split's last bits follow it (tools/env.sh pins it on x86-64).
    blob = json.dumps({'kind': kind, **params, 'maker': maker_fingerprint(made_by),
                       'blas': os.environ.get('OPENBLAS_CORETYPE', '')}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_split(kind: str, splits: dict, split: str, seed: int, size: int | None, seed_base: int,
                 generate: Callable[[int, int], dict]) -> dict[str, np.ndarray]:
    """A split of a synthetic set: splits[split] = (default size, seed offset)."""
    n, offset = splits[split]
    n = n if size is None else size
    rng_seed = seed * 1000 + seed_base + offset
    return cached(kind, {'split': split, 'n': n, 'rng_seed': rng_seed},
                  lambda: generate(n, rng_seed), sys.modules[generate.__module__])


def cached(kind: str, params: dict, build: Callable[[], dict[str, np.ndarray]],
           made_by: ModuleType) -> dict[str, np.ndarray]:
    """Arrays from the cache for (kind, params, maker), building and storing them once."""
    path = os.path.join(cache_dir(), f'{kind}-{cache_key(kind, params, made_by)}.npz')
    if os.path.exists(path):
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):
            os.unlink(path)                     # a corrupt cache entry is rebuilt, not trusted
    arrays = build()
    save_npz_atomic(path, **arrays)
    return arrays


def split_digest(*arrays: np.ndarray) -> str:
    """A content hash of a data set's arrays (shape, dtype and bytes): what a stored
    metric was measured on, so a changed split is told apart from a changed model."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f'{a.dtype.str}{a.shape}'.encode() + a.tobytes())
    return digest.hexdigest()[:16]
