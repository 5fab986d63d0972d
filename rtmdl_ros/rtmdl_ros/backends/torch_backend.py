"""PyTorch backend: the supernet in memory, each variant a slice of it.

The weights are held once per task (on the device for cuda), so weight sharing
saves memory at run time too: a variant is a view of the supernet's tensors.
"""
from __future__ import annotations

import threading

import numpy as np

from . import BackendError


class TorchBackend:
    name = 'torch'

    def __init__(self, device: str, zoo_dir: str | None, threads: int, cuda_graphs: bool = True):
        import torch
        self._torch = torch
        if device == 'cuda' and not torch.cuda.is_available():
            raise BackendError('device cuda: torch sees no CUDA device here; use device cpu')
        self.device, self.zoo_dir = torch.device(device), zoo_dir
        self.threads, self.cuda_graphs = threads, cuda_graphs
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
        if self.device.type != 'cuda':
            def run_cpu(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return net(torch.from_numpy(x), variant).numpy()
            return run_cpu
        lane_state = self._lane(lane)

        def run(x: np.ndarray) -> np.ndarray:
            return lane_state.run(net, variant, x)
        return run

    def _lane(self, lane: int) -> '_CudaLane':
        with self._lock:
            state = self._streams.get(lane)
            if state is None:
                state = self._streams[lane] = _CudaLane(self._torch, self.device, self.cuda_graphs)
        return state


class _CudaLane:
    """One inference lane on the GPU: its own stream, pinned host buffers and CUDA graphs.

    The copy in, the network and the copy out are queued on the lane's stream
    only, and the lane waits for that stream alone, so two lanes' inferences
    overlap on the GPU. Host buffers are page-locked, which is what lets the
    copies run asynchronously (a copy from pageable memory blocks the thread).
    Each variant and input shape is captured once as a CUDA graph: a replay is
    one launch instead of one per layer, so the lane's thread holds the GIL for
    microseconds and other lanes' threads can queue their work meanwhile. A
    network that cannot be captured runs eagerly (the reason is kept in
    `eager_reason`). A lane runs one inference at a time (the runtime gives each
    lane one thread), so its buffers and graphs are reused without locks.
    """

    def __init__(self, torch, device, graphs: bool = True):
        self.torch, self.device, self.graphs = torch, device, graphs
        self.stream = torch.cuda.Stream(device=device)
        self.eager_reason: str | None = None if graphs else 'CUDA graphs turned off'
        self._pool = torch.cuda.graph_pool_handle() if graphs else None   # one pool: a lane replays one at a time
        self._captured: dict = {}
        self._pinned_in: dict = {}
        self._pinned_out: dict = {}

    def _host_in(self, x: np.ndarray):
        key = (x.shape, x.dtype.str)
        buf = self._pinned_in.get(key)
        if buf is None:
            buf = self._pinned_in[key] = self.torch.from_numpy(np.empty(x.shape, x.dtype)).pin_memory()
        return buf

    def _host_out(self, key, y):
        buf = self._pinned_out.get(key)
        if buf is None:
            buf = self._pinned_out[key] = self.torch.empty(tuple(y.shape), dtype=y.dtype, pin_memory=True)
        return buf

    def _capture(self, net, variant: str, host_in):
        """(graph, device input, device output) for this variant and shape, or None to run eagerly."""
        torch = self.torch
        try:
            with torch.no_grad(), torch.cuda.stream(self.stream):
                static_in = host_in.to(self.device, non_blocking=True)
                for _ in range(3):                  # warm-up on the capture stream (cuDNN picks its kernels)
                    net(static_in, variant)
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                # thread_local: other lanes keep running (and allocating) while this one captures
                with torch.cuda.graph(graph, pool=self._pool, stream=self.stream, capture_error_mode='thread_local'):
                    static_out = net(static_in, variant)
            self.stream.synchronize()
            return graph, static_in, static_out
        except Exception as e:                      # e.g. an op that synchronises with the host
            self.eager_reason = f'{variant}: CUDA graph capture failed ({type(e).__name__}: {e})'
            self.graphs = False
            return None

    def run(self, net, variant: str, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        host_in = self._host_in(x)
        host_in.numpy()[...] = x
        key = (id(net), variant, x.shape, x.dtype.str)
        captured = self._captured.get(key)
        if captured is None and self.graphs:
            captured = self._captured[key] = self._capture(net, variant, host_in)
        with torch.no_grad(), torch.cuda.stream(self.stream):
            if captured:
                graph, static_in, y = captured
                static_in.copy_(host_in, non_blocking=True)
                graph.replay()                      # on the current stream: the lane's
            else:
                y = net(host_in.to(self.device, non_blocking=True), variant)
            host_out = self._host_out(key, y)
            host_out.copy_(y, non_blocking=True)
        self.stream.synchronize()                   # this lane's work only; releases the GIL while it waits
        return host_out.numpy().copy()              # the buffer is reused by the lane's next job
