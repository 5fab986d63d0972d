"""Inference backends: run a zoo variant on a device, one lane at a time.

    runner = create('onnxruntime', 'cpu').runner(FAMILY, 'w050_d2', lane=0)   # a zoo family's variant
    logits = runner(x)            # float32 numpy in, numpy out

'onnxruntime' runs the exported variant files (one session per variant and
lane); 'torch' runs the supernet slices in memory (weights held once per task).
On 'cuda', each lane is its own CUDA stream (torch) or session (onnxruntime),
so that lanes can pack inferences onto the GPU concurrently. 'tensorrt' is
onnxruntime's TensorRT execution provider (CUDA for what TensorRT cannot run).
"""
from __future__ import annotations

BACKENDS = ('onnxruntime', 'torch')
DEVICES = ('cpu', 'cuda', 'tensorrt')


class BackendError(RuntimeError):
    """A backend or device that cannot be used here; the message says why."""


def create(backend: str, device: str = 'cpu', zoo_dir: str | None = None, onnx_root: str | None = None,
           threads: int = 1):
    if backend not in BACKENDS:
        raise BackendError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if device not in DEVICES:
        raise BackendError(f'device must be one of {DEVICES}, got {device!r}')
    if device == 'tensorrt' and backend != 'onnxruntime':
        raise BackendError('device tensorrt is onnxruntime\'s TensorRT provider: use backend onnxruntime')
    if backend == 'onnxruntime':
        from .onnxrt import OrtBackend
        return OrtBackend(device, zoo_dir, onnx_root, threads)
    from .torch_backend import TorchBackend
    return TorchBackend(device, zoo_dir, threads)
