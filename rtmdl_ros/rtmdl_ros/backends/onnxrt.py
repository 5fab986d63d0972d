"""ONNX Runtime backend: one session per (task, variant, lane)."""
from __future__ import annotations

import os
import threading

import numpy as np

from ..data.cache import cache_dir
from . import BackendError


# Each lane has a session of its own, and each session its own CUDA compute
# stream (copies stay on it: do_copy_in_default_stream's default), so lanes
# overlap. The arena grows by what is asked, not by powers of two.
_CUDA_OPTIONS = {'arena_extend_strategy': 'kSameAsRequested'}


def providers(device: str, available) -> list:
    """onnxruntime's execution providers for `device`, or a BackendError saying what is missing."""
    if device == 'cpu':
        return ['CPUExecutionProvider']
    need = ['CUDAExecutionProvider'] + (['TensorrtExecutionProvider'] if device == 'tensorrt' else [])
    missing = [p for p in need if p not in available]
    if missing:
        raise BackendError(f'device {device}: this onnxruntime has no {" or ".join(missing)} '
                           f'(available: {", ".join(available)}); install onnxruntime-gpu or use device cpu')
    chosen = [('CUDAExecutionProvider', dict(_CUDA_OPTIONS)), 'CPUExecutionProvider']
    if device == 'tensorrt':
        # TensorRT builds an engine per session on first load (minutes): keep it in the cache.
        chosen.insert(0, ('TensorrtExecutionProvider', {
            'trt_engine_cache_enable': 'True', 'trt_engine_cache_path': os.path.join(cache_dir(), 'tensorrt')}))
    return chosen


class OrtBackend:
    name = 'onnxruntime'

    def __init__(self, device: str, zoo_dir: str | None, onnx_root: str | None, threads: int):
        import onnxruntime as ort
        self._ort = ort
        self.providers = providers(device, ort.get_available_providers())
        self.device, self.zoo_dir, self.onnx_root, self.threads = device, zoo_dir, onnx_root, threads
        self._sessions: dict = {}
        self._lock = threading.Lock()

    def path(self, task: str, variant: str) -> str:
        """The variant's ONNX file, exported from the zoo on first use."""
        from ..models import export
        path = export.onnx_path(task, variant, self.zoo_dir, self.onnx_root)
        if not os.path.exists(path):
            export.export_task(task, self.zoo_dir, self.onnx_root)
        return path

    def runner(self, task: str, variant: str, lane: int = 0):
        return self._runner((task, variant, lane), lambda: self.path(task, variant), rebuild=(task, variant))

    def file_runner(self, path: str, lane: int = 0):
        """A runner for a user's ONNX file (its first input and first output)."""
        return self._runner((path, lane), lambda: path)

    def _session(self, path: str):
        opts = self._ort.SessionOptions()
        # One thread per lane: the scheduler, not the library, decides what runs in parallel.
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        return self._ort.InferenceSession(path, opts, providers=self.providers)

    def _runner(self, key, path, rebuild=None):
        with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                try:
                    sess = self._session(path())
                except Exception as e:        # a corrupt or unsupported model file
                    if rebuild is None:
                        raise BackendError(f'{path()}: onnxruntime cannot load it ({type(e).__name__}: {e})') from None
                    sess = self._rebuilt(path(), rebuild, e)
                self._sessions[key] = sess
        name = sess.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return sess.run(None, {name: x})[0]
        return run

    def _rebuilt(self, path: str, zoo_variant: tuple[str, str], first: Exception):
        """A cached export that does not load (truncated by a crash, a full disk) is made
        again from the zoo checkpoint once; if that fails too, both errors are reported."""

        from ..models import export
        try:
            os.unlink(path)
        except OSError:
            pass
        try:
            export.export_task(zoo_variant[0], self.zoo_dir, self.onnx_root, check=False)
            return self._session(path)
        except Exception as e:
            raise BackendError(f'{path}: the cached export of {zoo_variant[0]}/{zoo_variant[1]} does not load '
                               f'({type(first).__name__}: {first}), and exporting it again failed '
                               f'({type(e).__name__}: {e})') from None
