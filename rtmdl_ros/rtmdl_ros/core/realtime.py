"""Giving the scheduler's threads the cores the analysis assumes (Linux).

The analysis gives every CPU worker and every inference lane a processor of
its own. In a ROS process that is only true if nothing else can take the core
while a segment runs: rclpy's callbacks, the sensor drivers, other processes.
So the scheduler's threads run under SCHED_FIFO (they preempt every normal
thread the moment a segment is ready) and, where the machine has cores to
spare, on cores of their own. Both need privileges (CAP_SYS_NICE or an rtprio
limit, docs/runtime.md); without them the threads run as before and the
caller is told why, so nothing degrades silently.

A segment stuck at real-time priority would starve everything else on its
core, ROS callbacks included. The watchdog demotes a thread whose segment
runs past its limit to normal scheduling until that segment ends.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

HAVE_FIFO = hasattr(os, 'SCHED_FIFO') and hasattr(os, 'sched_setscheduler')
HAVE_AFFINITY = hasattr(os, 'sched_setaffinity')


@dataclass
class RealtimeConfig:
    priority: int = 0                  # SCHED_FIFO priority 1..98 (0: normal scheduling)
    cpus: frozenset = frozenset()      # cores for the scheduler's threads (empty: any)
    problems: list = field(default_factory=list)   # why a request could not be honoured


def fifo_range() -> tuple[int, int]:
    if not HAVE_FIFO:
        return 0, 0
    return os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)


def enter_realtime(cfg: RealtimeConfig, priority: int | None = None) -> bool:
    """Apply cfg to the calling thread; False (and a problem noted) where refused."""
    ok = True
    if cfg.cpus:
        if not HAVE_AFFINITY:
            _note(cfg, 'CPU affinity is not available on this platform')
            ok = False
        else:
            try:
                os.sched_setaffinity(0, cfg.cpus)
            except OSError as e:
                _note(cfg, f'cannot pin the scheduler to cores {sorted(cfg.cpus)}: {e.strerror}')
                ok = False
    prio = cfg.priority if priority is None else priority
    if prio:
        if not HAVE_FIFO:
            _note(cfg, 'SCHED_FIFO is not available on this platform')
            return False
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
        except (PermissionError, OSError) as e:
            _note(cfg, f'SCHED_FIFO priority {prio} refused ({e.strerror}): the scheduler threads share the '
                       'cores with everything else, so measured responses can exceed the analysed bounds. '
                       'Grant CAP_SYS_NICE or an rtprio limit (docs/runtime.md), or plan with a margin')
            return False
    return ok


def leave_realtime() -> None:
    """Normal scheduling for the calling thread (used by a demoted runaway)."""
    set_thread_policy(threading.get_native_id(), 0)


def set_thread_policy(native_id: int, priority: int) -> bool:
    if not HAVE_FIFO:
        return False
    try:
        if priority:
            os.sched_setscheduler(native_id, os.SCHED_FIFO, os.sched_param(priority))
        else:
            os.sched_setscheduler(native_id, os.SCHED_OTHER, os.sched_param(0))
        return True
    except (PermissionError, OSError, ProcessLookupError):
        return False


def _note(cfg: RealtimeConfig, text: str) -> None:
    if text not in cfg.problems:
        cfg.problems.append(text)


def reserve_cores(scheduler_threads: int, cpus: int | None = None) -> tuple[frozenset, frozenset, str]:
    """(scheduler cores, the others, a note): the last `scheduler_threads` cores
    for the scheduler when at least one core is left for ROS and the sensors."""
    cpus = cpus or os.cpu_count() or 1
    if cpus <= scheduler_threads:
        return frozenset(), frozenset(range(cpus)), (
            f'{cpus} cores for {scheduler_threads} scheduler threads: no core can be kept for them alone, so ROS '
            'callbacks share their cores (SCHED_FIFO still lets a ready segment preempt them)')
    mine = frozenset(range(cpus - scheduler_threads, cpus))
    return mine, frozenset(range(cpus - scheduler_threads)), ''


class Watchdog:
    """Demotes a real-time thread whose segment runs past its limit.

    Threads register what they run with begin()/end(); a watchdog thread
    (itself real-time, so it runs even when the workers hog the cores) checks
    every `period_s`. A demoted thread is restored by end().
    """

    def __init__(self, cfg: RealtimeConfig, on_runaway: Callable[[str, float], None], period_s: float = 0.01,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self._clock = clock
        self._on_runaway = on_runaway
        self._period_s = period_s
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, float, str]] = {}   # native id -> (start, limit_s, what)
        self._demoted: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.demotions = 0

    def start(self) -> None:
        if not self.cfg.priority or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name='rtmdl-watchdog', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None

    def begin(self, limit_s: float, what: str) -> None:
        with self._lock:
            self._running[threading.get_native_id()] = (self._clock(), limit_s, what)

    def end(self) -> None:
        tid = threading.get_native_id()
        with self._lock:
            self._running.pop(tid, None)
            demoted = tid in self._demoted
            self._demoted.discard(tid)
        if demoted:
            set_thread_policy(tid, self.cfg.priority)

    def _loop(self) -> None:
        enter_realtime(RealtimeConfig(priority=min(self.cfg.priority + 1, fifo_range()[1])))
        while not self._stop.wait(self._period_s):
            now = self._clock()
            with self._lock:
                late = [(tid, what, now - start) for tid, (start, limit, what) in self._running.items()
                        if tid not in self._demoted and now - start > limit]
                self._demoted.update(tid for tid, *_ in late)
            for tid, what, ran in late:
                set_thread_policy(tid, 0)
                self.demotions += 1
                self._on_runaway(what, ran * 1e3)
