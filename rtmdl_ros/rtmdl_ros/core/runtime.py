"""The runtime scheduler: the rules of scheduling.py on real threads and the wall clock.

`cpu_workers` threads run pre- and post-processing segments, `gpu_lanes`
threads run inferences (lane k uses its own CUDA stream or session, so lanes
pack work onto the GPU; without a GPU the lanes are CPU threads). Every thread
takes the most urgent ready segment of its resource; segments are never
interrupted. What a segment does is supplied per task by the caller, so this
module imports neither ROS nor a DL framework.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .scheduling import FAILED, LATE, MET, MISSED_OUTCOMES, Job, Scheduler, TaskParams


@dataclass(frozen=True)
class Segments:
    """How one task's job runs: pre(payload, variant) -> x on a CPU worker,
    infer(variant, lane, x) -> y on a lane, post(y, payload, variant) -> result
    on a CPU worker."""
    pre: Callable[[Any, str], Any]
    infer: Callable[[str, int, Any], Any]
    post: Callable[[Any, Any, str], Any]


@dataclass(frozen=True)
class JobReport:
    """A finished job, handed to the result callback (met or late)."""
    task: str
    seq: int
    variant: str
    priority: int
    release_s: float          # clock seconds
    finish_s: float
    deadline_s: float
    deadline_met: bool
    exec_ms: float            # time in its own segments
    payload: Any
    result: Any

    @property
    def response_ms(self) -> float:
        return (self.finish_s - self.release_s) * 1e3

    @property
    def overhead_ms(self) -> float:
        """Release to result minus the job's own segment times: queueing and dispatch."""
        return self.response_ms - self.exec_ms


@dataclass(frozen=True)
class WindowStats:
    jobs: int
    missed: int
    miss_rate: float
    p50_ms: float | None
    p99_ms: float | None
    dropped: int              # dropped, replaced or skipped jobs (no result)
    failed: int               # a segment raised (bad input)
    total_jobs: int           # since start
    total_missed: int
    total_dropped: int
    total_failed: int


class _TaskLog:
    """Outcomes of one task: a sliding window and totals."""

    def __init__(self):
        self.window: collections.deque = collections.deque()   # (time_s, outcome, response_ms | None)
        self.totals = collections.Counter()

    def add(self, now_s: float, outcome: str, response_ms: float | None) -> None:
        self.window.append((now_s, outcome, response_ms))
        self.totals[outcome] += 1

    def stats(self, now_s: float, window_s: float) -> WindowStats:
        while self.window and self.window[0][0] < now_s - window_s:
            self.window.popleft()
        outcomes = [o for _, o, _ in self.window]
        responses = np.array([r for _, _, r in self.window if r is not None])
        missed = sum(o in MISSED_OUTCOMES for o in outcomes)
        t = self.totals
        return WindowStats(
            jobs=len(outcomes), missed=missed, miss_rate=missed / len(outcomes) if outcomes else 0.0,
            p50_ms=float(np.percentile(responses, 50)) if responses.size else None,
            p99_ms=float(np.percentile(responses, 99)) if responses.size else None,
            dropped=sum(o not in (MET, LATE, FAILED) for o in outcomes), failed=outcomes.count(FAILED),
            total_jobs=sum(t.values()), total_missed=sum(v for k, v in t.items() if k in MISSED_OUTCOMES),
            total_dropped=sum(v for k, v in t.items() if k not in (MET, LATE, FAILED)), total_failed=t[FAILED])


class Runtime:
    """Run jobs of several tasks under fixed priorities on CPU workers and inference lanes."""

    def __init__(self, tasks: Mapping[str, TaskParams], segments: Mapping[str, Segments], cpu_workers: int,
                 gpu_lanes: int, on_result: Callable[[JobReport], None] | None = None,
                 on_error: Callable[[str, str, BaseException], None] | None = None,
                 window_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        if cpu_workers < 1 or gpu_lanes < 1:
            raise ValueError('cpu_workers and gpu_lanes must be >= 1')
        self._clock = clock
        self._cond = threading.Condition()
        self._segments = dict(segments)
        self._logs = {t: _TaskLog() for t in tasks}
        self._sched = Scheduler(tasks, self._sink)
        self._on_result = on_result or (lambda report: None)
        self._on_error = on_error or (lambda task, segment, exc: None)
        self.window_s = window_s
        self.cpu_workers, self.gpu_lanes = cpu_workers, gpu_lanes
        self._busy_s = {'cpu': 0.0, 'gpu': 0.0}
        self._started_s: float | None = None
        self._running = False
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._started_s = self._clock()
        for resource, count in (('cpu', self.cpu_workers), ('gpu', self.gpu_lanes)):
            for k in range(count):
                t = threading.Thread(target=self._serve, args=(resource, k), name=f'rtmdl-{resource}{k}', daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking segments; running ones finish (they cannot be interrupted)."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout_s)
        self._threads = []

    # -- jobs and parameters --------------------------------------------------
    def submit(self, task: str, payload: Any) -> bool:
        """Release a job of `task` now; False if the task's policy skipped it."""
        with self._cond:
            if task not in self._sched.params:
                raise KeyError(f'unknown task {task!r}')
            job = self._sched.release(task, self._now_ms(), payload=payload)
            self._cond.notify_all()
            return job is not None

    def configure(self, task: str, params: TaskParams, segments: Segments | None = None) -> None:
        """New variant / priority / deadline for a task: its next job uses them."""
        with self._cond:
            self._sched.configure(task, params)
            if segments is not None:
                self._segments[task] = segments
            self._logs.setdefault(task, _TaskLog())

    def params(self, task: str) -> TaskParams:
        with self._cond:
            return self._sched.params[task]

    def stats(self, task: str) -> WindowStats:
        with self._cond:
            self._sched.expire(self._now_ms())
            return self._logs[task].stats(self._clock(), self.window_s)

    def utilisation(self) -> dict[str, float]:
        """Busy share of CPU workers and lanes since start."""
        with self._cond:
            elapsed = max(1e-9, self._clock() - (self._started_s or self._clock()))
            return {'cpu': self._busy_s['cpu'] / (elapsed * self.cpu_workers),
                    'gpu': self._busy_s['gpu'] / (elapsed * self.gpu_lanes)}

    # -- internals ------------------------------------------------------------
    def _now_ms(self) -> float:
        return self._clock() * 1e3

    def _sink(self, task: str, outcome: str, job: Job | None, now_ms: float) -> None:
        # Called by the scheduler with the lock held.
        response = (now_ms - job.release) if job is not None and outcome in (MET, LATE) else None
        self._logs.setdefault(task, _TaskLog()).add(now_ms / 1e3, outcome, response)

    def _serve(self, resource: str, index: int) -> None:
        while True:
            with self._cond:
                job = None
                while self._running:
                    job = self._sched.pop_ready(resource, self._now_ms())
                    if job is not None:
                        break
                    # Wake up now and then so that expired jobs are dropped promptly.
                    self._cond.wait(0.05)
                if job is None:
                    return
                segments = self._segments[job.task]
            segment = job.segment
            t0 = self._clock()
            try:
                if segment == 'pre':
                    job.payload = (job.payload, segments.pre(job.payload, job.variant))
                elif segment == 'infer':
                    raw, x = job.payload
                    job.payload = (raw, segments.infer(job.variant, index, x))
                else:
                    raw, y = job.payload
                    job.payload = (raw, segments.post(y, raw, job.variant))
                error = None
            except Exception as exc:           # bad input must not stop the worker
                error = exc
            t1 = self._clock()
            report = None
            with self._cond:
                self._busy_s[resource] += t1 - t0
                job.exec_ms += (t1 - t0) * 1e3
                if error is not None:
                    self._sched.fail(job, t1 * 1e3)
                else:
                    state = self._sched.finish_segment(job, t1 * 1e3)
                    if state == 'done':
                        raw, result = job.payload
                        report = JobReport(job.task, job.seq, job.variant, job.priority, job.release / 1e3, t1,
                                           job.deadline / 1e3, t1 * 1e3 <= job.deadline + 1e-9, job.exec_ms, raw, result)
                self._cond.notify_all()
            try:
                if error is not None:
                    self._on_error(job.task, segment, error)
                elif report is not None:
                    self._on_result(report)
            except Exception as exc:           # a failing callback must not stop the worker either
                if error is None:
                    self._on_error(job.task, 'result', exc)
