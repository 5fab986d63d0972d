"""Discrete-event simulation of a plan under the rules of scheduling.py.

Segment lengths are drawn from each variant's empirical samples. Each task's
source stamps come every period_ms (random phase); a job is released one
release-path sample after its stamp, and its deadline and response count from
the stamp (or from the release, per task). CPU workers run one segment each.
With one CPU worker, a segment that runs in steps (Variant.chunks) is split
into steps no longer than a drawn longest step, and hands the worker over
between steps when a more urgent segment is ready. GPU lanes share the GPU:
while k inferences run, each progresses at 1/slowdown[k] of its solo speed,
so finish times are recomputed whenever a lane starts or ends work.
"""
from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .plan import Plan
from .scheduling import MISSED_OUTCOMES, Job, Scheduler, TaskParams
from .taskset import SEGMENTS, TaskSet

_SEGMENT_END, _RELEASE = 0, 1   # same-instant order: ends free servers before releases


@dataclass
class TaskSimStats:
    jobs: int = 0
    outcomes: dict = field(default_factory=lambda: {k: 0 for k in ('met', 'late', 'dropped', 'replaced', 'skipped')})
    responses: list = field(default_factory=list)

    @property
    def missed(self) -> int:
        return sum(v for k, v in self.outcomes.items() if k in MISSED_OUTCOMES)

    def summary(self) -> dict:
        r = np.asarray(self.responses) if self.responses else None
        pct = (lambda q: float(np.percentile(r, q))) if r is not None else (lambda q: None)
        return {
            'jobs': self.jobs,
            'missed': self.missed,
            'miss_rate': self.missed / self.jobs if self.jobs else 0.0,
            'p50_response_ms': pct(50),
            'p99_response_ms': pct(99),
            'max_response_ms': float(r.max()) if r is not None else None,
            **{k: v for k, v in self.outcomes.items() if k != 'met'},
        }


@dataclass
class SimResult:
    duration_ms: float
    tasks: dict[str, TaskSimStats]
    cpu_busy_ms: float
    gpu_busy_ms: float
    cpu_workers: int
    gpu_lanes: int

    def to_json(self) -> dict:
        return {
            'duration_s': self.duration_ms / 1000.0,
            'cpu_utilisation': self.cpu_busy_ms / (self.duration_ms * self.cpu_workers),
            'gpu_lane_utilisation': self.gpu_busy_ms / (self.duration_ms * self.gpu_lanes),
            'tasks': {name: s.summary() for name, s in self.tasks.items()},
        }


class _Gpu:
    """GPU lanes with processor sharing: k busy lanes each run at 1/slowdown[k]."""

    def __init__(self, lanes: int, slowdown):
        self.lanes = lanes
        self.slowdown = slowdown
        self.running: dict[Job, list] = {}   # job -> [remaining solo ms, version]
        self.last = 0.0
        self.busy_ms = 0.0

    def _advance(self, now: float) -> None:
        k = len(self.running)
        if k:
            progress = (now - self.last) / self.slowdown(k)
            for state in self.running.values():
                state[0] = max(0.0, state[0] - progress)
            self.busy_ms += (now - self.last) * k
        self.last = now

    def _reschedule(self, now: float, push) -> None:
        k = len(self.running)
        for job, state in self.running.items():
            state[1] += 1
            push(now + state[0] * (self.slowdown(k) if k else 1.0), job, state[1])

    def start(self, job: Job, solo_ms: float, now: float, push) -> None:
        self._advance(now)
        self.running[job] = [solo_ms, 0]
        self._reschedule(now, push)

    def end(self, job: Job, version: int, now: float, push) -> bool:
        state = self.running.get(job)
        if state is None or state[1] != version:
            return False                         # superseded finish estimate
        self._advance(now)
        del self.running[job]
        self._reschedule(now, push)
        return True


def simulate(taskset: TaskSet, plan: Plan, duration_s: float, seed: int = 0,
             phase: str = 'random') -> SimResult:
    """Simulate `duration_s` seconds of releases (then let pending jobs finish)."""
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise ValueError(f'duration must be a positive number of seconds, got {duration_s}')
    rng = np.random.default_rng(seed)
    platform = taskset.platform
    horizon = duration_s * 1000.0
    stats = {name: TaskSimStats() for name in taskset.tasks}

    def sink(task, outcome, job, now):
        s = stats[task]
        s.outcomes[outcome] += 1
        if outcome in ('met', 'late'):
            s.responses.append(job.finish - job.origin)

    sched = Scheduler({name: TaskParams(priority=a.priority, deadline_ms=taskset.tasks[name].deadline_ms,
                                        variant=a.variant, on_overrun=taskset.tasks[name].on_overrun)
                       for name, a in plan.items()}, sink, job_gate=platform.job_gate)
    samples = {name: [taskset.tasks[name].variants[a.variant].time(s).samples for s in SEGMENTS]
               for name, a in plan.items()}
    # {task: {stage: longest-step samples}} for the segments that run in steps (one worker only)
    steps = {name: {k: taskset.tasks[name].variants[a.variant].chunks[s].samples for k, s in enumerate(SEGMENTS)
                    if s in taskset.tasks[name].variants[a.variant].chunks and platform.cpu_workers == 1}
             for name, a in plan.items()}
    paths = {name: taskset.tasks[name].path.samples for name in plan}
    by_stamp = {name: taskset.tasks[name].origin_is_stamp for name in plan}

    events: list = []
    order = itertools.count()

    def push(time, kind, payload):
        heapq.heappush(events, (time, kind, next(order), payload))

    def push_gpu_end(time, job, version):
        push(time, _SEGMENT_END, ('gpu', job, version))

    names = list(taskset.tasks)
    phases = {n: (float(rng.uniform(0, taskset.tasks[n].period_ms)) if phase == 'random' else 0.0) for n in names}
    release_index = {n: 0 for n in names}

    def push_release(name: str, stamp: float) -> None:
        path = paths[name]
        push(stamp + float(path[rng.integers(len(path))]), _RELEASE, (name, stamp))

    for n in names:
        if phases[n] < horizon:
            push_release(n, phases[n])

    cpu_free = platform.cpu_workers
    cpu_busy = 0.0
    gpu = _Gpu(platform.gpu_lanes, platform.slowdown)
    now = 0.0
    between: list = []             # jobs at a step boundary this instant

    def split(job) -> list:
        """The job's current segment as steps no longer than a drawn longest step."""
        length = job.durations[job.stage]
        longest = min(length, float(rng.choice(steps[job.task][job.stage])))
        if longest <= 0:
            return [length]
        n = math.ceil(length / longest - 1e-9)
        pieces = [longest] * (n - 1) + [length - longest * (n - 1)]
        rng.shuffle(pieces)
        return pieces

    def run_step(job) -> None:
        nonlocal cpu_busy
        piece = job.steps.pop()
        cpu_busy += piece
        push(now + piece, _SEGMENT_END, ('cpu', job))

    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, kind, _, payload = heapq.heappop(events)
            if kind == _RELEASE:
                name, stamp = payload
                stats[name].jobs += 1
                durations = [float(s[rng.integers(len(s))]) for s in samples[name]]
                sched.release(name, now, durations=durations, origin=stamp if by_stamp[name] else None)
                release_index[name] += 1
                nxt = phases[name] + release_index[name] * taskset.tasks[name].period_ms
                if nxt < horizon:
                    push_release(name, nxt)
            elif payload[0] == 'cpu':
                job = payload[1]
                if job.steps:
                    between.append(job)
                    continue
                job.steps = None
                cpu_free += 1
                sched.finish_segment(job, now)
            elif gpu.end(payload[1], payload[2], now, push_gpu_end):
                sched.finish_segment(payload[1], now)
        # Dispatch once per instant, after every event of that instant.
        for job in between:
            if job.superseded or sched.more_urgent_ready('cpu', job):
                sched.hand_over(job, now)
                cpu_free += 1
            else:
                run_step(job)
        between.clear()
        while cpu_free:
            job = sched.pop_ready('cpu', now)
            if job is None:
                break
            cpu_free -= 1
            if job.stage in steps[job.task]:
                if not job.steps:
                    job.steps = split(job)
                run_step(job)
                continue
            length = job.durations[job.stage]
            cpu_busy += length
            push(now + length, _SEGMENT_END, ('cpu', job))
        while len(gpu.running) < gpu.lanes:
            job = sched.pop_ready('gpu', now)
            if job is None:
                break
            gpu.start(job, job.durations[job.stage], now, push_gpu_end)

    return SimResult(duration_ms=max(horizon, now), tasks=stats, cpu_busy_ms=cpu_busy,
                     gpu_busy_ms=gpu.busy_ms, cpu_workers=platform.cpu_workers, gpu_lanes=platform.gpu_lanes)
