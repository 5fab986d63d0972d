"""PyTorch backend: the supernet in memory, each variant a slice of it."""
from __future__ import annotations

import threading

import numpy as np

from . import BackendError


class TorchBackend:
    name = 'torch'

    def __init__(self, device: str, zoo_dir: str | None, threads: int):
        import torch
        self._torch = torch
        if device == 'cuda' and not torch.cuda.is_available():
            raise BackendError('device cuda: torch sees no CUDA device here; use device cpu')
        self.device, self.zoo_dir = torch.device(device), zoo_dir
        self.threads = threads
        self._nets: dict = {}
        self._streams: dict = {}
        self._lock = threading.Lock()

    def net(self, task: str):
        from ..models import zoo
        with self._lock:
            net = self._nets.get(task)
            if net is None:
                net, _ = zoo.load(task, self.zoo_dir)
                net = self._nets[task] = net.to(self.device).eval()
        return net

    def file_runner(self, path: str, lane: int = 0):
        raise BackendError(f'{path}: a user family is a set of ONNX files; run it with backend onnxruntime')

    def runner(self, task: str, variant: str, lane: int = 0):
        torch = self._torch
        net = self.net(task)
        if variant not in net.index:
            raise BackendError(f'{task}: unknown variant {variant!r}')
        stream = None
        if self.device.type == 'cuda':
            with self._lock:
                stream = self._streams.setdefault(lane, torch.cuda.Stream(device=self.device))

        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                if stream is None:
                    return net(torch.from_numpy(x), variant).numpy()
                with torch.cuda.stream(stream):
                    y = net(torch.from_numpy(x).to(self.device, non_blocking=True), variant)
                    out = y.to('cpu', non_blocking=True)
                stream.synchronize()
                return out.numpy()
        return run
