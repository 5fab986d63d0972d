"""The runtime scheduler: the rules of scheduling.py on real threads and the wall clock.

`cpu_workers` threads run pre- and post-processing segments, `gpu_lanes`
threads run inferences (lane k uses its own CUDA stream or session, so lanes
pack work onto the GPU; without a GPU the lanes are CPU threads). Every thread
takes the most urgent ready segment of its resource; segments are never
interrupted, but one that runs in steps (Segments.pre_steps) hands a lone CPU
worker over between steps to a more urgent ready segment. What a segment
does is supplied per task by the caller, so this module imports neither ROS
nor a DL framework.

Every job carries its stage boundaries (core/trace.py) from the source stamp
to the published result; the result callback runs inside the post segment, so
a job's response and its deadline check end when the result is out.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Mapping

import numpy as np

from .realtime import RealtimeConfig, Watchdog, enter_realtime
from .scheduling import FAILED, LATE, MET, MISSED_OUTCOMES, Job, Scheduler, TaskParams
from .trace import STAGES, JobTrace, stage_durations, stage_percentiles


@dataclass(frozen=True)
class Segments:
    """How one task's job runs: pre(payload, variant) -> x on a CPU worker,
    infer(variant, lane, x) -> y on a lane, post(y, payload, variant) -> result
    on a CPU worker. pre_steps, where given, is pre as a generator that yields
    between steps and returns x: the runtime runs that instead, and with one
    CPU worker hands the worker to a more urgent ready segment between steps."""
    pre: Callable[[Any, str], Any]
    infer: Callable[[str, int, Any], Any]
    post: Callable[[Any, Any, str], Any]
    pre_steps: Callable[[Any, str], Generator] | None = None


@dataclass(frozen=True)
class JobReport:
    """A job whose post-processing just ended, handed to the result callback,
    which publishes it (still inside the job's post segment)."""
    task: str
    seq: int
    variant: str
    priority: int
    release_s: float          # clock seconds: the scheduler's release (executor receipt)
    finish_s: float           # end of post-processing
    deadline_s: float
    deadline_met: bool        # finish_s <= deadline_s (the publish that follows is microseconds)
    exec_ms: float            # time in its own segments
    payload: Any
    result: Any
    origin_s: float | None = None   # what the deadline counts from (source stamp or release)

    @property
    def response_ms(self) -> float:
        """Origin (stamp, or release) to the end of post-processing."""
        return (self.finish_s - (self.release_s if self.origin_s is None else self.origin_s)) * 1e3

    @property
    def overhead_ms(self) -> float:
        """Release to result minus the job's own segment times: queueing and dispatch."""
        return (self.finish_s - self.release_s) * 1e3 - self.exec_ms


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
    stage_p50_ms: tuple = ()  # per trace.STAGES over the window's published jobs
    stage_p99_ms: tuple = ()
    run_p99_ms: float | None = None   # over every published job since start

    @property
    def run_miss_rate(self) -> float:
        return self.total_missed / self.total_jobs if self.total_jobs else 0.0


class _ResponseHistogram:
    """Every response since start, in 0.05 ms bins up to 2 s (and the worst beyond):
    O(1) to add, O(bins) for a percentile, whatever the run's length."""

    BIN_MS, BINS = 0.05, 40_000

    def __init__(self):
        self.counts = np.zeros(self.BINS + 1, np.int64)   # the last bin: over 2 s
        self.worst = 0.0

    def add(self, ms: float) -> None:
        self.counts[min(self.BINS, max(0, int(ms / self.BIN_MS)))] += 1
        self.worst = max(self.worst, ms)

    def percentile(self, q: float) -> float | None:
        total = int(self.counts.sum())
        if not total:
            return None
        k = int(np.searchsorted(np.cumsum(self.counts), np.ceil(total * q / 100.0)))
        # The bin's upper edge: never below the true percentile.
        return self.worst if k >= self.BINS else min(self.worst, (k + 1) * self.BIN_MS)


class _TaskLog:
    """Outcomes of one task: a sliding window, totals and every response since start."""

    def __init__(self):
        self.window: collections.deque = collections.deque()   # (time_s, outcome, response_ms | None, trace)
        self.totals = collections.Counter()
        self.run = _ResponseHistogram()

    def add(self, now_s: float, outcome: str, response_ms: float | None, trace: JobTrace | None) -> None:
        self.window.append((now_s, outcome, response_ms, trace))
        self.totals[outcome] += 1
        if response_ms is not None:
            self.run.add(response_ms)

    def snapshot(self, now_s: float, window_s: float) -> tuple:
        """What stats() needs, copied (cheap) under the caller's lock."""
        while self.window and self.window[0][0] < now_s - window_s:
            self.window.popleft()
        run = _ResponseHistogram()
        run.counts, run.worst = self.run.counts.copy(), self.run.worst
        return list(self.window), collections.Counter(self.totals), run

    @staticmethod
    def stats(snapshot: tuple) -> WindowStats:
        """The statistics of a snapshot, computed outside the lock: the workers never wait for them."""
        window, t, run = snapshot
        outcomes = [w[1] for w in window]
        responses = np.array([w[2] for w in window if w[2] is not None])
        published = [w[3] for w in window if w[2] is not None and w[3] is not None]
        missed = sum(o in MISSED_OUTCOMES for o in outcomes)
        p50, p99 = (float(x) for x in np.percentile(responses, [50, 99])) if responses.size else (None, None)
        stage_p50, stage_p99 = stage_percentiles(published, (50, 99))
        return WindowStats(
            jobs=len(outcomes), missed=missed, miss_rate=missed / len(outcomes) if outcomes else 0.0,
            p50_ms=p50, p99_ms=p99,
            dropped=sum(o not in (MET, LATE, FAILED) for o in outcomes), failed=outcomes.count(FAILED),
            total_jobs=sum(t.values()), total_missed=sum(v for k, v in t.items() if k in MISSED_OUTCOMES),
            total_dropped=sum(v for k, v in t.items() if k not in (MET, LATE, FAILED)), total_failed=t[FAILED],
            stage_p50_ms=stage_p50, stage_p99_ms=stage_p99,
            run_p99_ms=run.percentile(99))


_PATH_MARKS = 3                 # stamp, task node receipt, task node release
_NMARKS = len(STAGES) + 1       # stage boundaries


class Runtime:
    """Run jobs of several tasks under fixed priorities on CPU workers and inference lanes."""

    def __init__(self, tasks: Mapping[str, TaskParams], segments: Mapping[str, Segments], cpu_workers: int,
                 gpu_lanes: int, on_result: Callable[[JobReport], None] | None = None,
                 on_error: Callable[[str, str, BaseException], None] | None = None,
                 window_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 realtime: RealtimeConfig | None = None, keep_traces: int = 0, job_gate: bool = False):
        if cpu_workers < 1 or gpu_lanes < 1:
            raise ValueError('cpu_workers and gpu_lanes must be >= 1')
        self._clock = clock
        self._cond = threading.Condition()
        self._segments = dict(segments)
        self._logs = {t: _TaskLog() for t in tasks}
        self._sched = Scheduler(tasks, self._sink, job_gate)
        self._on_result = on_result or (lambda report: None)
        self._on_error = on_error or (lambda task, segment, exc: None)
        self.window_s = window_s
        self.cpu_workers, self.gpu_lanes = cpu_workers, gpu_lanes
        self.realtime = realtime or RealtimeConfig()
        self.watchdog = Watchdog(self.realtime, self._on_runaway, clock=clock)
        # Finished jobs' traces for a recorder (drain_traces); 0 keeps none.
        self._traces = collections.deque(maxlen=keep_traces) if keep_traces > 0 else None
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
        self.watchdog.start()
        ready = threading.Semaphore(0)
        for resource, count in (('cpu', self.cpu_workers), ('gpu', self.gpu_lanes)):
            for k in range(count):
                t = threading.Thread(target=self._serve, args=(resource, k, ready), name=f'rtmdl-{resource}{k}',
                                     daemon=True)
                t.start()
                self._threads.append(t)
        for _ in self._threads:        # each thread has applied (or been refused) its real-time settings
            ready.acquire(timeout=2.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking segments; running ones finish (they cannot be interrupted)."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout_s)
        self._threads = []
        self.watchdog.stop()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def started_s(self) -> float | None:
        return self._started_s

    # -- jobs and parameters --------------------------------------------------
    def submit(self, task: str, payload: Any, origin_s: float | None = None,
               path_marks: tuple | None = None) -> bool:
        """Release a job of `task` now; False if the task's policy skipped it.

        origin_s: what its deadline counts from (clock seconds; default now).
        path_marks: [stamp, task node receipt, task node release] in clock
        seconds, for the stage trace; kept by reference, so the caller may
        fill in a None until the job ends (None: it came straight from its source).
        """
        with self._cond:
            if task not in self._sched.params:
                raise KeyError(f'unknown task {task!r}')
            now = self._clock()
            job = self._sched.release(task, now * 1e3, payload=payload,
                                      origin=None if origin_s is None else origin_s * 1e3)
            if job is not None:
                marks = [None] * _NMARKS
                marks[0] = marks[1] = marks[2] = origin_s if origin_s is not None else now
                marks[_PATH_MARKS] = now
                job.marks = marks
                job.path = path_marks
            self._cond.notify_all()
            return job is not None

    def configure(self, task: str, params: TaskParams, segments: Segments | None = None) -> None:
        """New variant / priority / deadline for a task: its next job uses them."""
        with self._cond:
            self._sched.configure(task, params)
            if segments is not None:
                self._segments[task] = segments
            if task not in self._logs:
                self._logs[task] = _TaskLog()

    def params(self, task: str) -> TaskParams:
        with self._cond:
            return self._sched.params[task]

    def stats(self, task: str) -> WindowStats:
        with self._cond:
            self._sched.expire(self._now_ms())
            self._cond.notify_all()        # a dropped job may open the job gate
            snapshot = self._logs[task].snapshot(self._clock(), self.window_s)
        return _TaskLog.stats(snapshot)

    def drain_traces(self) -> list[JobTrace]:
        """Traces of the jobs that ended since the last call (needs keep_traces)."""
        with self._cond:
            if self._traces is None:
                return []
            out = list(self._traces)
            self._traces.clear()
            return out

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
        published = outcome in (MET, LATE)
        response = (now_ms - job.origin) if job is not None and published else None
        trace = None
        if job is not None and job.marks:
            marks = list(job.marks)
            if job.path:
                stamp = job.path[0]
                marks[0], marks[1], marks[2] = stamp, job.path[1] or stamp, job.path[2] or stamp
            if published:
                marks[-1] = now_ms / 1e3
            steps = tuple(job.longest_step) if any(x == x for x in job.longest_step) else ()   # (x == x: not NaN)
            trace = JobTrace(task, job.seq, job.variant, outcome, marks[0], stage_durations(marks), steps)
            if self._traces is not None:
                self._traces.append(trace)
        log = self._logs.get(task)
        if log is None:          # (setdefault would build a 320 KB histogram per job to throw away)
            log = self._logs[task] = _TaskLog()
        log.add(now_ms / 1e3, outcome, response, trace)

    def _on_runaway(self, what: str, ran_ms: float) -> None:
        task, _, segment = what.partition('/')
        self._on_error(task, segment, RuntimeError(
            f'runaway segment: ran {ran_ms:.0f} ms at real-time priority, longer than its deadline; '
            'demoted to normal scheduling until it ends'))

    def _run_steps(self, job: Job, segments: Segments) -> bool:
        """Run the job's pre-processing step by step (Segments.pre_steps): True where it
        handed the worker over between two steps to a more urgent ready segment (with
        one CPU worker only: the analysis counts on steps there alone), False at its end."""
        if job.steps is None:
            job.steps = segments.pre_steps(job.payload, job.variant)
        stage = job.stage
        while True:
            s0 = self._clock()
            try:
                next(job.steps)
                end = None
            except StopIteration as stop:
                end = stop
            step_ms = (self._clock() - s0) * 1e3
            if not job.longest_step[stage] >= step_ms:            # (NaN: the first step)
                job.longest_step[stage] = step_ms
            if end is not None:
                job.steps = None
                job.payload = (job.payload, end.value)
                return False
            if self.cpu_workers == 1:
                with self._cond:
                    if job.superseded or self._sched.more_urgent_ready('cpu', job):
                        return True

    def _serve(self, resource: str, index: int, ready: threading.Semaphore) -> None:
        enter_realtime(self.realtime)
        ready.release()
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
            mark = _PATH_MARKS + 1 + 2 * job.stage
            self.watchdog.begin(max(0.05, (job.deadline - job.origin) / 1e3), f'{job.task}/{segment}')
            t0 = self._clock()
            published_s = None
            handed = False
            try:
                if segment == 'pre' and segments.pre_steps is not None:
                    handed = self._run_steps(job, segments)
                elif segment == 'pre':
                    job.payload = (job.payload, segments.pre(job.payload, job.variant))
                elif segment == 'infer':
                    raw, x = job.payload
                    job.payload = (raw, segments.infer(job.variant, index, x))
                else:
                    raw, y = job.payload
                    result = segments.post(y, raw, job.variant)
                    t_post = self._clock()
                    with self._cond:
                        superseded = job.superseded
                        job.marks[mark], job.marks[mark + 1] = t0, t_post
                    if not superseded:
                        self._on_result(JobReport(
                            job.task, job.seq, job.variant, job.priority, job.release / 1e3, t_post,
                            job.deadline / 1e3, t_post * 1e3 <= job.deadline + 1e-9,
                            job.exec_ms + (t_post - t0) * 1e3, raw, result, job.origin / 1e3))
                        published_s = self._clock()
                error = None
            except Exception as exc:           # bad input (or a failing publish) must not stop the worker
                error = exc
                job.steps = None
            finally:
                self.watchdog.end()
            t1 = self._clock() if published_s is None else published_s
            with self._cond:
                self._busy_s[resource] += t1 - t0
                job.exec_ms += (t1 - t0) * 1e3
                if handed:
                    job.segment_ran += (t1 - t0) * 1e3
                    self._sched.hand_over(job, t1 * 1e3)
                    self._cond.notify_all()
                    continue
                if segment != 'post' or error is not None:
                    # A segment handed over between steps waited meanwhile: it counts as
                    # having started its run time before its end (the rest is its wait).
                    start = t0 if not job.segment_ran else t1 - (job.segment_ran / 1e3 + (t1 - t0))
                    job.marks[mark], job.marks[mark + 1] = start, t1
                job.segment_ran = 0.0
                if error is not None:
                    self._sched.fail(job, t1 * 1e3)
                else:
                    self._sched.finish_segment(job, t1 * 1e3)
                self._cond.notify_all()
            if error is not None:
                try:
                    self._on_error(job.task, segment, error)
                except Exception:              # a failing callback must not stop the worker either
                    pass
