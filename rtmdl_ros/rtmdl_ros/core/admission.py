"""Which inputs on a job topic become jobs, and the counts of those that do not.

A job topic is open to any publisher, so the executor holds every task to its
declared rate by source stamp (core/release.py), with the minimum inter-arrival
scaled when the task's period is retuned live; a task that degraded mode has
shed takes nothing. Inputs refused on receipt (by the executor, or earlier by
the task node, which reports a running count in every job) are counted per task.
"""
from __future__ import annotations

import collections

from .release import ADMIT, ReleaseGate


class Admission:
    def __init__(self, interarrival_ms: dict[str, float], period_ms: dict[str, float]):
        self._declared = {t: (interarrival_ms[t], period_ms[t]) for t in interarrival_ms}
        self.gates = {t: self._gate(t, period_ms[t]) for t in interarrival_ms}
        self.rejected = collections.Counter()        # refused on receipt here (not jobs)
        self.rate_limited = collections.Counter()    # sooner than the minimum inter-arrival, or stale
        self.shed_inputs = collections.Counter()     # valid, but their task is shed
        self.node_refused = collections.Counter()    # refused by the task node (its running count)
        self._node_last: dict[str, int] = {}
        self.node_guard: dict[str, list[int]] = {}   # the task node's guard, per reason (from its jobs)
        self._guard_last: dict[str, tuple] = {}

    def _gate(self, task: str, period_ms: float) -> ReleaseGate:
        gap, period = self._declared[task]
        return ReleaseGate(period_ms * gap / period)

    def set_period(self, task: str, period_ms: float) -> None:
        self.gates[task] = self._gate(task, period_ms)

    def refuse(self, task: str) -> None:
        self.rejected[task] += 1

    def admit(self, task: str, stamp_ms: float, shed: bool = False) -> bool:
        """May an input of `task` with this source stamp become a job?"""
        if self.gates[task].check(stamp_ms) != ADMIT:
            self.rate_limited[task] += 1
            return False
        if shed:
            self.shed_inputs[task] += 1
            return False
        return True

    def node_report(self, task: str, refused_so_far: int) -> None:
        """The task node's running count of refused inputs; a restarted node counts from 0 again."""
        last = self._node_last.get(task, 0)
        self.node_refused[task] += refused_so_far - last if refused_so_far >= last else refused_so_far
        self._node_last[task] = refused_so_far

    def node_guard_report(self, task: str, counts_so_far) -> None:
        """A task node's running counts of well-formed inputs its guard refused, per reason
        (input_guard.REASONS); a restarted node counts from 0 again."""
        last = self._guard_last.get(task, ())
        total = self.node_guard.setdefault(task, [0] * len(counts_so_far))
        for k, n in enumerate(counts_so_far[:len(total)]):
            before = last[k] if k < len(last) else 0
            total[k] += n - before if n >= before else n
        self._guard_last[task] = tuple(counts_so_far)

    def malformed(self, task: str) -> int:
        return self.rejected[task] + self.node_refused[task]
