"""How one job of each F1/10 task runs: the three segments the runtime schedules.

A job's payload is whatever the caller's `decode` turns into (data, meta):
data is a bgr frame (camera tasks) or (mono samples, sample rate) for audio,
meta travels with the job to its Result (the ROS shell keeps the source
header there). Decoding runs inside the pre-processing segment, at the job's
priority, so a malformed message fails as that job's pre-processing and is
counted there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..core.runtime import Segments
from .families import family


@dataclass(frozen=True)
class Result:
    """What post-processing yields: ranked labels or detections (in frame pixels)."""
    kind: str                          # 'classify' or 'detect'
    labels: list                       # classify: [(label, class_id, score)], best first
    detections: list                   # detect: [(label, class_id, score, (x0, y0, x1, y1))]
    meta: Any = None                   # from decode (e.g. the source message header)


def make_segments(task: str, backend, labels: tuple[str, ...], decode: Callable[[Any], Any],
                  options: Callable[[], dict] | None = None) -> Segments:
    """Segments of `task` on `backend`; options() gives live settings (e.g. the sign ROI)."""
    fam = family(task)
    options = options or (lambda: {})
    index = {label: i for i, label in enumerate(labels)}

    def pre(message, variant: str):
        data, meta = decode(message)
        if task == 'audio':
            samples, rate = data
            return fam.preprocess(samples, rate), None, meta
        if task == 'sign':
            return fam.preprocess(data, options().get('roi', (0.0, 0.0, 1.0, 1.0))), None, meta
        return fam.preprocess(data), data.shape[:2], meta

    def infer(variant: str, lane: int, prepared):
        x, frame_hw, meta = prepared
        return backend.runner(task, variant, lane)(x), frame_hw, meta

    def post(inferred, message, variant: str) -> Result:
        y, frame_hw, meta = inferred
        if fam.kind == 'classify':
            ranked = fam.postprocess(y, labels, top_k=min(5, len(labels)))
            return Result('classify', [(label, index[label], score) for label, score in ranked], [], meta)
        h, w = frame_hw
        dets = fam.postprocess(y, w, h, score_threshold=options().get('score_threshold', 0.3))
        return Result('detect', [], [(label, index[label], score, box) for label, score, box in dets], meta)

    return Segments(pre, infer, post)


def limit_library_threads() -> None:
    """One thread per OpenCV call and per BLAS call, process-wide.

    The scheduler decides what runs in parallel: a resize or a mel-filter
    product that fans out over every core would steal the cores of the other
    workers and lanes, and run slower together than it was profiled alone.
    Called by everything that profiles or runs jobs (profile, executor, evaluate).
    """
    import cv2
    from threadpoolctl import threadpool_limits
    cv2.setNumThreads(1)
    threadpool_limits(limits=1)


def warm_up(task: str, backend, labels: tuple[str, ...], variants, lanes: int) -> None:
    """Run every segment once per variant and lane on a blank input, so that no
    real job pays for session creation, lazy imports or JIT compilation (the
    first log-mel takes seconds while numba compiles)."""
    import numpy as np
    fam = family(task)
    rng = np.random.default_rng(0)
    if task == 'audio':
        x = fam.preprocess(rng.normal(0, 0.1, 32000).astype(np.float32))
    else:
        x = fam.preprocess(np.zeros((480, 640, 3), np.uint8))
    for v in variants:
        for lane in range(lanes):
            y = backend.runner(task, v, lane)(x)
    if fam.kind == 'classify':
        fam.postprocess(y, labels)
    else:
        fam.postprocess(y, 640, 480)
