"""Export zoo variants to ONNX, check them against torch, and account storage.

Each variant becomes a stand-alone ONNX file holding only its slice of the
shared weights and its own batch-norm set. Files live in a folder named after
the checkpoint's content hash and the exporter, so a retrained zoo or a new
torch release is exported afresh.
"""
from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import torch
import yaml

from ..core.files import atomic_write
from ..data.cache import cache_dir
from . import zoo
from .families import family
from .supernet import SuperNet, VariantView

MIB = float(1 << 20)
# ONNX Runtime fuses and reorders float operations: outputs agree with torch to
# about 1e-5 on these networks; a wrong export differs by orders more.
ATOL = 1e-3


def checkpoint_hash(task: str, zoo_dir: str | None = None) -> str:
    with open(zoo.checkpoint_path(task, zoo_dir), 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def exporter_hash() -> str:
    """What writes the files besides the weights: torch's exporter and this module."""
    with open(__file__, 'rb') as f:
        return hashlib.sha256(torch.__version__.encode() + f.read()).hexdigest()[:8]


def onnx_dir(task: str, zoo_dir: str | None = None, out_dir: str | None = None) -> str:
    """The task's export folder, named by the checkpoint and the exporter, so that a
    retrained zoo or another torch release never reads an older export."""
    root = out_dir or os.path.join(cache_dir(), 'onnx')
    return os.path.join(root, f'{task}-{checkpoint_hash(task, zoo_dir)}-{exporter_hash()}')


def onnx_path(task: str, variant: str, zoo_dir: str | None = None, out_dir: str | None = None) -> str:
    return os.path.join(onnx_dir(task, zoo_dir, out_dir), f'{variant}.onnx')


def export_variant(net: SuperNet, task: str, variant: str, path: str) -> None:
    """Write one variant's ONNX file atomically (batch size 1, the runtime's)."""
    fam = family(task)
    view = VariantView(net, variant).eval()
    dummy = torch.zeros(1, *fam.input_shape)
    def write(f):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')      # the TorchScript exporter announces its deprecation
            # The TorchScript-based exporter needs no extra packages; constant
            # folding turns the weight slices into the variant's own initialisers.
            torch.onnx.export(view, (dummy,), f, input_names=['input'], output_names=['output'],
                              opset_version=17, do_constant_folding=True, dynamo=False)
    atomic_write(path, write, binary=True)


def max_difference(net: SuperNet, task: str, variant: str, path: str, samples: int = 4, seed: int = 0) -> float:
    """Largest |onnxruntime - torch| over random inputs."""
    import onnxruntime as ort
    fam = family(task)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(samples):
        x = torch.randn(1, *fam.input_shape, generator=gen)
        with torch.inference_mode():
            ref = net(x, variant).numpy()
        got = sess.run(None, {'input': x.numpy()})[0]
        worst = max(worst, float(np.max(np.abs(ref - got))))
    return worst


def export_task(task: str, zoo_dir: str | None = None, out_dir: str | None = None, check: bool = True,
                progress=None) -> dict:
    """Export every variant of a task (skipping files already there); returns its manifest."""
    net, meta = zoo.load(task, zoo_dir)
    folder = onnx_dir(task, zoo_dir, out_dir)
    variants = {}
    for spec in net.variants:
        path = os.path.join(folder, f'{spec.name}.onnx')
        if not os.path.exists(path):
            export_variant(net, task, spec.name, path)
        entry = {'file': os.path.basename(path), 'bytes': os.path.getsize(path),
                 'parameters': net.variant_parameters(spec.name),
                 'test_metric': meta.get('test_metric', {}).get(spec.name)}
        if check:
            diff = max_difference(net, task, spec.name, path)
            if not diff <= ATOL:
                raise RuntimeError(f'{task}/{spec.name}: ONNX Runtime output differs from torch by {diff:.3g}')
            entry['max_abs_diff'] = diff
        variants[spec.name] = entry
        if progress is not None:
            progress(task, spec.name)
    manifest = {'task': task, 'checkpoint': zoo.checkpoint_path(task, zoo_dir),
                'checkpoint_bytes': os.path.getsize(zoo.checkpoint_path(task, zoo_dir)),
                'metric': meta.get('metric'), 'variants': variants}
    with open(os.path.join(folder, 'manifest.yaml'), 'w', encoding='utf-8') as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    return manifest


def storage_report(manifest: dict) -> dict:
    """The pool's size on disk two ways: one shared checkpoint vs separate files."""
    separate = sum(v['bytes'] for v in manifest['variants'].values())
    return {'shared_checkpoint_mb': manifest['checkpoint_bytes'] / MIB, 'separate_files_mb': separate / MIB,
            'largest_variant_mb': max(v['bytes'] for v in manifest['variants'].values()) / MIB}
