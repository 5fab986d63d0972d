"""Releases on input arrival: a sporadic task fed by a sensor.

A task is released when an input arrives, not by a timer of its own: a 30 Hz
timer sampling a 30 fps camera in another process beats against the frame
phase (bunched releases, empty periods, frames superseding each other). The
gate admits an input when its source stamp is at least `min_gap_ms` after the
stamp of the last admitted one, so

  * a task slower than its sensor is decimated (a 15 Hz task takes every
    other frame of a 30 fps camera when min_gap_ms is 60),
  * releases are never closer than min_gap_ms by stamp, which is the
    minimum inter-arrival the analysis assumes, whatever the sensor does,
  * a stamp that is not newer (a repeat, or out of order) is not released.

The task node and the executor both apply it (the executor's copy holds any
publisher on the job topic to the declared rate).
"""
from __future__ import annotations

ADMIT, TOO_SOON, STALE = 'admit', 'too_soon', 'stale'


class ReleaseGate:
    def __init__(self, min_gap_ms: float, restart_after_ms: float = 10_000.0):
        if not min_gap_ms > 0:
            raise ValueError(f'min_gap_ms must be > 0, got {min_gap_ms}')
        self.min_gap_ms = float(min_gap_ms)
        # A stamp this far behind the last one is a restarted source (a looping
        # bag, a sensor driver restart): start over instead of waiting for it.
        self.restart_after_ms = restart_after_ms
        self.last_ms: float | None = None
        self.counts = {ADMIT: 0, TOO_SOON: 0, STALE: 0}

    def check(self, stamp_ms: float) -> str:
        """ADMIT (and remember the stamp), TOO_SOON or STALE."""
        last = self.last_ms
        if last is not None:
            if stamp_ms <= last:
                if last - stamp_ms < self.restart_after_ms:
                    self.counts[STALE] += 1
                    return STALE
            elif stamp_ms - last < self.min_gap_ms - 1e-6:
                self.counts[TOO_SOON] += 1
                return TOO_SOON
        self.last_ms = stamp_ms
        self.counts[ADMIT] += 1
        return ADMIT

    def admit(self, stamp_ms: float) -> bool:
        return self.check(stamp_ms) == ADMIT

    @property
    def held_back(self) -> int:
        return self.counts[TOO_SOON] + self.counts[STALE]
