"""How one job of a task runs: the three segments the runtime schedules.

A job's payload is whatever the caller's `decode` turns into (data, meta):
data is a Picture (camera tasks: the model-sized picture the task node cut
from the frame, and its placement; models/picture.py) or (mono samples,
sample rate) for sound; meta travels with the job to its Result (the ROS
shell keeps the source header there). Decoding runs inside the
pre-processing segment, at the job's priority, so a malformed message fails
as that job's pre-processing and is counted there. A family is a built-in
one (models/families.py, run from the zoo) or a user's
(models/user_family.py, run from its ONNX files).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.runtime import Segments
from . import SOUND
from .picture import Picture


@dataclass(frozen=True)
class Result:
    """What post-processing yields: ranked labels or detections (in frame pixels)."""
    kind: str                          # 'classify' or 'detect'
    labels: list                       # classify: [(label, class_id, score)], best first
    detections: list                   # detect: [(label, class_id, score, (x0, y0, x1, y1))]
    meta: Any = None                   # from decode (e.g. the source message header)


def make_segments(fam, backend, labels: tuple[str, ...], decode: Callable[[Any], Any]) -> Segments:
    """Segments of a task running `fam` on `backend`."""
    user = getattr(fam, 'user', False)
    index = {label: i for i, label in enumerate(labels)}

    def runner(variant: str, lane: int):
        return backend.file_runner(fam.variants[variant]['onnx'], lane) if user else \
            backend.runner(fam.task, variant, lane)

    steps = getattr(fam, 'tensor_steps', None)

    def pre(message, variant: str):
        data, meta = decode(message)
        if fam.input == SOUND:
            return fam.tensor(*data), None, meta
        return fam.tensor(data.image), data.place, meta

    def pre_steps(message, variant: str):
        # (the only families in steps take sound)
        data, meta = decode(message)
        x = yield from steps(*data)
        return x, None, meta

    def infer(variant: str, lane: int, prepared):
        x, place, meta = prepared
        return runner(variant, lane)(x), place, meta

    def post(inferred, message, variant: str) -> Result:
        y, place, meta = inferred
        if fam.kind == 'classify':
            if user:
                return Result('classify', fam.post.classify(y, labels), [], meta)
            ranked = fam.postprocess(y, labels, top_k=min(5, len(labels)))
            return Result('classify', [(label, index[label], score) for label, score in ranked], [], meta)
        dets = fam.post.detect(y, labels, place) if user else \
            [(label, index[label], score, box) for label, score, box in fam.postprocess(y, place)]
        return Result('detect', [], dets, meta)

    return Segments(pre, infer, post, pre_steps if steps is not None and fam.input == SOUND else None)


def raw_decoder(fam, roi=None) -> Callable[[Any], tuple]:
    """decode for callers that hold raw sensor payloads (profiling, accuracy, warm-up):
    a frame is encoded here as the task node would, a sound payload passes."""
    if fam.input == SOUND:
        return lambda payload: (payload, None)
    roi = roi if roi is not None else fam.default_roi
    return lambda frame: (Picture(*fam.encode(frame, roi)), None)


def sample_payload(fam, rng: np.random.Generator):
    """A decoded input of the family's kind: a 640x480 frame or 2 s of audio at its rate."""
    if fam.input == SOUND:
        rate = getattr(getattr(fam, 'pre', None), 'sample_rate', 16000)
        return rng.normal(0, 0.1, 2 * rate).astype(np.float32), rate
    return np.zeros((480, 640, 3), np.uint8)


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


def warm_up(fam, backend, labels: tuple[str, ...], variants, lanes: int) -> None:
    """Run every segment once per variant and lane on a blank input, so that no
    real job pays for session creation, lazy imports or JIT compilation (the
    first log-mel takes seconds while numba compiles)."""
    segments = make_segments(fam, backend, labels, raw_decoder(fam))
    payload = sample_payload(fam, np.random.default_rng(0))
    for v in variants:
        x = segments.pre(payload, v)
        for lane in range(lanes):
            y = segments.infer(v, lane, x)
        segments.post(y, payload, v)


def warm_up_all(families: dict, backend, labels: dict, variants: dict, lanes: int) -> None:
    """warm_up for every task's family; tasks running one family share its sessions."""
    warmed = set()
    for name, fam in families.items():
        if id(fam) not in warmed:
            warm_up(fam, backend, labels[name], sorted(variants[name]), lanes)
            warmed.add(id(fam))
