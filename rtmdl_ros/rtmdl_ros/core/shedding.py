"""Degraded mode: under overload, shed the least important task rather than miss the most urgent.

The plan's bounds hold for the machine that was profiled. When other software
takes CPU (or the GPU) the bounds stop holding, and without intervention the
lowest-priority tasks are starved first only as far as fixed priorities
allow: non-preemptive segments of every task still block the most urgent one.
The shedder watches every task's window miss rate (status period) and, once a
task that is kept has stayed over its bound for `after_s`, stops releasing the
least important task still running. It sheds one more only if the overload
persists `settle_s` after the last change (the miss-rate window must first
show the effect of the last one), and never the most important task. When every running
task has stayed within its bound for `restore_after_s`, the most important
shed task comes back (one at a time, with the same wait between them).

Importance: `order`, most important first (by default the plan's priorities).
Pure logic with an explicit clock, so the executor and tests drive it alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoadShedder:
    order: list[str]                      # most important first
    after_s: float = 3.0                  # over its bound this long before a task is shed
    restore_after_s: float = 10.0         # all within bounds this long before one comes back
    settle_s: float = 10.0                # after a change, before the next one (the miss-rate window)
    shed: list[str] = field(default_factory=list)       # in the order they were shed
    _over_since: float | None = None
    _calm_since: float | None = None
    _last_change: float = float('-inf')

    def __post_init__(self):
        if len(set(self.order)) != len(self.order) or not self.order:
            raise ValueError(f'shed order must name each task once, got {self.order}')
        if not (self.after_s > 0 and self.restore_after_s > 0 and self.settle_s >= 0):
            raise ValueError('after_s and restore_after_s must be > 0, settle_s >= 0')

    def running(self) -> list[str]:
        return [t for t in self.order if t not in self.shed]

    def update(self, now_s: float, over: dict[str, bool]) -> tuple[str, str] | None:
        """Feed which running tasks are over their bound now; returns ('shed'|'restore', task) on a change."""
        running = self.running()
        # Only a task that shedding could help counts: the least important running
        # task missing its own bound gains nothing from shedding itself.
        if any(over.get(t, False) for t in running[:-1]):
            self._calm_since = None
            if self._over_since is None:
                self._over_since = now_s
            waited = now_s - max(self._over_since, self._last_change)
            if waited >= self.after_s and now_s - self._last_change >= self.settle_s:
                self.shed.append(running[-1])
                self._last_change = now_s
                return 'shed', running[-1]
            return None
        if any(over.get(t, False) for t in running):     # over, but nothing left to shed for it
            self._over_since = self._calm_since = None
            return None
        self._over_since = None
        if not self.shed:
            return None
        if self._calm_since is None:
            self._calm_since = now_s
        if now_s - max(self._calm_since, self._last_change) >= self.restore_after_s:
            back = min(self.shed, key=self.order.index)          # the most important shed task
            self.shed.remove(back)
            self._last_change = now_s
            self._calm_since = now_s
            return 'restore', back
        return None


class DegradedMode:
    """The executor's use of a LoadShedder: importance from the live priorities, no
    decision while the first window after activation (start-up) is in it."""

    def __init__(self, after_s: float, restore_after_s: float):
        self.after_s, self.restore_after_s = after_s, restore_after_s
        self.shedder: LoadShedder | None = None

    @property
    def shed(self) -> list[str]:
        return self.shedder.shed if self.shedder is not None else []

    def set_times(self, after_s: float, restore_after_s: float) -> None:
        self.after_s, self.restore_after_s = after_s, restore_after_s
        if self.shedder is not None:
            self.shedder.after_s, self.shedder.restore_after_s = after_s, restore_after_s

    def update(self, now_s: float, active_s: float, window_s: float, priorities: dict[str, int],
               over: dict[str, bool]) -> tuple[str, str] | None:
        """over: running tasks over their bound in the last window; ('shed'|'restore', task) on a change."""
        if active_s < window_s + self.after_s:
            return None
        order = sorted(priorities, key=priorities.get)          # most urgent = most important
        if self.shedder is None or self.shedder.order != order:
            kept = self.shed
            self.shedder = LoadShedder(order, self.after_s, self.restore_after_s, settle_s=window_s,
                                       shed=[t for t in kept if t in order])
        return self.shedder.update(now_s, over)
