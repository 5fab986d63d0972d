"""Job life cycle: the scheduling rules shared by the simulator and the runtime.

The rules (also what the analysis assumes):
  * a job is pre (CPU) -> infer (GPU) -> post (CPU); each segment waits in its
    resource's ready queue, ordered by task priority (0 = most urgent), then by
    release time; a segment is never preempted, except that one which runs in
    steps (a limited-preemptive segment, one CPU worker only) hands its server
    over between two steps when a more urgent segment is ready there, and waits
    in the queue again, where a job past its deadline is dropped as at a
    segment boundary;
  * a job whose deadline has passed is dropped at its next segment boundary
    (before it would start another segment) and counts as missed; a job whose
    last segment ends after the deadline completes late and counts as missed;
  * a release that finds the task's previous job still pending either skips the
    new job ('skip') or supersedes the old one ('replace'): a queued old job is
    removed, a running one finishes its segment and is then discarded;
  * a task's priority, variant and deadline are read at release, so changing
    them affects the next job and never one in flight;
  * a job's deadline counts from its origin: the source stamp (the default) or
    its release; a superseded or skipped job counts as missed, which the
    analysis matches by checking each job against the task's next release too.
  * with the job gate (Platform.job_gate), a segment starts only while no more
    urgent job is in flight (released, not yet ended): a less urgent segment
    already running ends (one in steps at its next step), and nothing less
    urgent starts on any worker or lane until that job is done.

This module holds no clock and no threads: the simulator drives it with event
times, the runtime with the wall clock.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .taskset import RESOURCE_OF, SEGMENTS

# Outcomes reported to the stats sink; all but MET count as deadline misses.
MET, LATE, DROPPED, REPLACED, SKIPPED = 'met', 'late', 'dropped', 'replaced', 'skipped'
# Runtime only: a segment raised (e.g. a malformed frame); the job yields no result.
FAILED = 'failed'
MISSED_OUTCOMES = frozenset({LATE, DROPPED, REPLACED, SKIPPED, FAILED})
_EPS = 1e-9


@dataclass
class TaskParams:
    priority: int
    deadline_ms: float
    variant: str
    on_overrun: str = 'replace'


class Job:
    __slots__ = ('task', 'seq', 'release', 'origin', 'deadline', 'priority', 'variant', 'stage', 'state',
                 'durations', 'payload', 'finish', 'superseded', 'queued_on', 'segment_start', 'exec_ms', 'marks', 'path',
                 'steps', 'segment_ran', 'longest_step')

    def __init__(self, task: str, seq: int, release: float, params: TaskParams,
                 durations: Sequence[float] | None, payload: Any, origin: float | None = None):
        self.task = task
        self.seq = seq
        self.release = release
        self.origin = release if origin is None else origin   # what the deadline counts from
        self.deadline = self.origin + params.deadline_ms
        self.priority = params.priority
        self.variant = params.variant
        self.stage = 0              # index into SEGMENTS of the current/next segment
        self.state = 'ready'        # ready | running | done | dropped
        self.durations = durations  # simulator: drawn segment lengths (ms)
        self.payload = payload      # runtime: the input and intermediate results
        self.finish: float | None = None
        self.superseded = False
        self.queued_on: str | None = None
        self.segment_start: float | None = None
        self.exec_ms = 0.0          # runtime: time spent running its own segments
        self.marks: list = []       # runtime: stage boundaries (core/trace.py)
        self.path = None            # runtime: [stamp, node receipt, node release], filled in by the caller
        self.steps = None           # a segment in steps, handed over: what is left of it (runtime: its generator)
        self.segment_ran = 0.0      # time the current segment has run so far (ms)
        self.longest_step = [float('nan')] * len(SEGMENTS)   # per segment in steps, its longest step (ms)

    @property
    def segment(self) -> str:
        return SEGMENTS[self.stage]

    @property
    def resource(self) -> str:
        return RESOURCE_OF[SEGMENTS[self.stage]]

    def __repr__(self) -> str:
        return f'Job({self.task}#{self.seq} {self.state} {self.segment if self.stage < 3 else "end"})'


# Called as sink(task, outcome, job_or_None, now) once per released job (and per skip).
OutcomeSink = Callable[[str, str, 'Job | None', float], None]


class Scheduler:
    """Ready queues and job bookkeeping for a fixed-priority CPU/GPU scheduler."""

    def __init__(self, tasks: Mapping[str, TaskParams], sink: OutcomeSink, job_gate: bool = False):
        self.params: dict[str, TaskParams] = dict(tasks)
        self._sink = sink
        self.job_gate = job_gate
        self._queues: dict[str, list] = {'cpu': [], 'gpu': []}
        self._active: dict[str, Job | None] = {t: None for t in tasks}
        self._seq = itertools.count()

    # -- configuration -----------------------------------------------------
    def configure(self, task: str, params: TaskParams) -> None:
        """Replace a task's parameters; jobs already released keep theirs."""
        self.params[task] = params
        self._active.setdefault(task, None)

    def remove_task(self, task: str, now: float) -> None:
        job = self._active.pop(task, None)
        if job is not None and job.state == 'ready':
            self._drop(job, DROPPED, now)
        self.params.pop(task, None)

    # -- events ------------------------------------------------------------
    def release(self, task: str, now: float, durations: Sequence[float] | None = None,
                payload: Any = None, origin: float | None = None) -> Job | None:
        """Release a job of `task` at `now` (deadline from `origin`, default now);
        returns it, or None if skipped."""
        params = self.params[task]
        prev = self._active.get(task)
        if prev is not None:
            if prev.state == 'ready' and now > prev.deadline + _EPS:
                self._drop(prev, DROPPED, now)          # expired while queued
            elif params.on_overrun == 'skip':
                self._sink(task, SKIPPED, None, now)
                return None
            else:
                self._supersede(prev, now)
        job = Job(task, next(self._seq), now, params, durations, payload, origin)
        self._active[task] = job
        self._enqueue(job)
        return job

    def pop_ready(self, resource: str, now: float) -> Job | None:
        """Highest-priority ready segment on `resource`, now marked running.

        Jobs found past their deadline are dropped here: a queued job is at a
        segment boundary.
        """
        queue = self._queues[resource]
        while queue:
            job = queue[0][-1]
            if job.state != 'ready' or job.queued_on != resource:
                heapq.heappop(queue)                      # stale entry
                continue
            if now > job.deadline + _EPS:
                heapq.heappop(queue)
                self._drop(job, DROPPED, now)
                continue
            if self._gated(job):
                return None                               # the queue's most urgent is held: all are
            heapq.heappop(queue)
            job.queued_on = None
            job.state = 'running'
            job.segment_start = now
            return job
        return None

    def finish_segment(self, job: Job, now: float) -> str:
        """Account the end of the running segment; returns the job's new state."""
        if job.superseded:
            job.state = 'dropped'                         # already counted at replacement
            return job.state
        job.stage += 1
        if job.stage == len(SEGMENTS):
            job.state = 'done'
            job.finish = now
            self._retire(job)
            self._sink(job.task, MET if now <= job.deadline + _EPS else LATE, job, now)
            return job.state
        if now > job.deadline + _EPS:
            self._drop(job, DROPPED, now)
            return job.state
        self._enqueue(job)
        return job.state

    def more_urgent_ready(self, resource: str, job: Job) -> bool:
        """Whether a segment more urgent than `job`'s waits on `resource`: a job running
        in steps hands the server over to it between two steps."""
        if self._gated(job):
            return True
        queue = self._queues[resource]
        while queue:
            entry = queue[0]
            if entry[-1].state != 'ready' or entry[-1].queued_on != resource:
                heapq.heappop(queue)                      # stale entry
                continue
            return entry[:3] < (job.priority, job.origin, job.seq)
        return False

    def hand_over(self, job: Job, now: float) -> str:
        """The running job stops between two steps of its segment and waits in the queue
        again, in the same segment; returns its new state."""
        if job.superseded:
            job.state = 'dropped'                         # already counted at replacement
            return job.state
        self._enqueue(job)
        return job.state

    def fail(self, job: Job, now: float) -> None:
        """A running segment raised: the job ends here without a result."""
        if job.superseded:
            job.state = 'dropped'                         # already counted at replacement
            return
        self._drop(job, FAILED, now)

    def expire(self, now: float) -> None:
        """Drop queued jobs whose deadline has passed (keeps statistics current)."""
        for job in list(self._active.values()):
            if job is not None and job.state == 'ready' and now > job.deadline + _EPS:
                self._drop(job, DROPPED, now)

    def queued(self, resource: str) -> int:
        return sum(1 for *_, j in self._queues[resource] if j.state == 'ready' and j.queued_on == resource)

    def active_job(self, task: str) -> Job | None:
        return self._active.get(task)

    # -- internals ---------------------------------------------------------
    def _gated(self, job: Job) -> bool:
        """With the job gate: whether a job more urgent than `job` is in flight."""
        if not self.job_gate:
            return False
        key = (job.priority, job.origin, job.seq)
        return any(a is not None and a is not job and (a.priority, a.origin, a.seq) < key
                   for a in self._active.values())

    def _enqueue(self, job: Job) -> None:
        job.state = 'ready'
        job.queued_on = job.resource
        heapq.heappush(self._queues[job.queued_on], (job.priority, job.origin, job.seq, job))

    def _supersede(self, job: Job, now: float) -> None:
        if job.state == 'ready':
            job.state = 'dropped'
            job.queued_on = None
        else:                                  # running: ends its segment, then discarded
            job.superseded = True
        self._retire(job)
        self._sink(job.task, REPLACED, job, now)

    def _drop(self, job: Job, outcome: str, now: float) -> None:
        job.state = 'dropped'
        job.queued_on = None
        self._retire(job)
        self._sink(job.task, outcome, job, now)

    def _retire(self, job: Job) -> None:
        if self._active.get(job.task) is job:
            self._active[job.task] = None
