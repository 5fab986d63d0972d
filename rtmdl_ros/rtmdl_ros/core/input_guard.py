"""Well-formed input that is still wrong: a stamp from another clock, a second publisher.

A frame passes the envelope checks and still cannot be a job of this graph when
its stamp is not from the graph's clock, or when it comes from a publisher that
is not the task's source. Taken as a job it would miss at once (a stamp decades
old), hold the release gate (a stamp from the future) or supersede the real
camera's jobs (a second driver on the topic). The guard refuses such frames
before they can take a release and counts each under its reason:

  zero_stamp       stamp 0: the driver does not stamp (or sim time before /clock)
  future_stamp     more than max_future_ms ahead of this node's clock
  old_stamp        older at receipt than max_age_ms (default: the task's deadline
                   or 1 s, whichever is longer, for a deadline counted from the
                   stamp): another clock, a bag. Not the deadline itself: a frame
                   the graph delays past its deadline is a miss and counts as one
                   (an overload must show in the miss rate, not hide as old stamps)
  backwards_stamp  not newer than the source's previous stamp (repeated, reordered)
  foreign_source   not the task's source: another publisher, or a frame_id other
                   than the one the task set declares

The source is the declared frame_id where the task set gives one, and among
its publishers the first one heard (by publisher GID where rclpy reports it,
else by what a frame says of itself: frame_id, encoding and size). When the
source has been silent for source_timeout_s, the next publisher that passes the
stamp checks becomes the source (a restarted camera driver). A task whose
driver never stamps sets stamp_source: receipt; then the guard takes the
receipt time as the stamp and only the binding applies.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from .taskset import STAMP_SOURCES

ZERO, FUTURE, OLD, BACKWARDS, FOREIGN = 'zero_stamp', 'future_stamp', 'old_stamp', 'backwards_stamp', 'foreign_source'
REASONS = (ZERO, FUTURE, OLD, BACKWARDS, FOREIGN)
DEFAULT_MIN_AGE_MS = 1000.0      # the default age limit is never shorter than this

HINTS = {
    ZERO: 'the stamp is 0: if this driver never stamps its frames, set stamp_source: receipt for the task '
          'in the task set (its deadlines then count from receipt)',
    FUTURE: 'the stamp is ahead of this node\'s clock: another clock (a camera\'s own clock, use_sim_time set '
            'on one side only, computers not synchronised)',
    OLD: 'the stamp is older than the task allows at receipt: another clock (use_sim_time set on one side only, '
         'a camera\'s own clock), or a bag replayed beside the live source',
    BACKWARDS: 'the stamp is not newer than the source\'s previous one: repeated or reordered frames',
    FOREIGN: 'not the task\'s source: a second publisher on the topic, or another frame_id',
}


@dataclass(frozen=True)
class GuardLimits:
    max_future_ms: float = 50.0       # clock offset tolerated between the stamping host and this one
    max_age_ms: float = 0.0           # 0: max(deadline, 1 s) where the deadline counts from the stamp, else none
    source_timeout_s: float = 1.0     # a source silent this long gives way to the next publisher

    def __post_init__(self):
        for name in ('max_future_ms', 'max_age_ms', 'source_timeout_s'):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f'{name}: must be a finite number >= 0, got {v!r}')


class InputGuard:
    """One task's checks of an input's stamp and source, with counts per reason.

    check() returns None for an input that may go on to the release gate, or
    the reason it is refused. Keys name a publisher: its GID where known, else
    its frame's signature (the caller decides; equal keys are one publisher).
    """

    def __init__(self, limits: GuardLimits, deadline_ms: float, deadline_from_stamp: bool = True,
                 frame_id: str | None = None, stamp_source: str = 'header'):
        if stamp_source not in STAMP_SOURCES:
            raise ValueError(f'stamp_source: must be one of {STAMP_SOURCES}, got {stamp_source!r}')
        self.limits = limits
        self.frame_id = frame_id or None
        self.stamp_source = stamp_source
        age = limits.max_age_ms or (max(deadline_ms, DEFAULT_MIN_AGE_MS) if deadline_from_stamp else math.inf)
        self.max_age_ms = age
        self.counts: collections.Counter = collections.Counter()
        self.foreign: collections.Counter = collections.Counter()    # per publisher key
        self.source = None            # the bound publisher's key
        self.bindings = 0             # how often a source was bound (1 + re-binds)
        self._source_seen_s = -math.inf
        self._last_stamp_ms: float | None = None
        self._last_now_ms = -math.inf

    def check(self, stamp_ms: float, now_ms: float, key, frame_id: str = '') -> str | None:
        """Refusal reason of an input stamped stamp_ms (ROS time), received at now_ms, or None."""
        if self.stamp_source == 'header':
            reason = self._stamp_reason(stamp_ms, now_ms)
            if reason is not None:
                return self._refuse(reason)
        if self.frame_id is not None and frame_id != self.frame_id:
            self.foreign[key] += 1
            return self._refuse(FOREIGN)
        now_s = now_ms * 1e-3
        if key != self.source:
            if self.source is not None and now_s - self._source_seen_s < self.limits.source_timeout_s:
                self.foreign[key] += 1
                return self._refuse(FOREIGN)
            self.source, self.bindings, self._last_stamp_ms = key, self.bindings + 1, None
        self._source_seen_s = now_s
        if now_ms < self._last_now_ms:        # the clock went back (sim time, a looping bag): start over
            self._last_stamp_ms = None
        self._last_now_ms = now_ms
        if self.stamp_source == 'header':
            if self._last_stamp_ms is not None and stamp_ms <= self._last_stamp_ms:
                return self._refuse(BACKWARDS)
            self._last_stamp_ms = stamp_ms
        return None

    def foreign_input(self, key) -> str:
        """Refuse an input whose task takes its jobs elsewhere (a task node composed into the
        executor: a job topic is then no source of it)."""
        self.foreign[key] += 1
        return self._refuse(FOREIGN)

    def _stamp_reason(self, stamp_ms: float, now_ms: float) -> str | None:
        if stamp_ms == 0:
            return ZERO
        if stamp_ms - now_ms > self.limits.max_future_ms:
            return FUTURE
        if now_ms - stamp_ms > self.max_age_ms:
            return OLD
        return None

    def _refuse(self, reason: str) -> str:
        self.counts[reason] += 1
        return reason

    def release(self) -> None:
        """Forget the source: the next publisher that passes the stamp checks binds."""
        self.source, self._source_seen_s, self._last_stamp_ms = None, -math.inf, None

    def count_list(self) -> list[int]:
        """Counts in the order of REASONS (for messages)."""
        return [int(self.counts[r]) for r in REASONS]

    @property
    def refused(self) -> int:
        return sum(self.counts.values())


def publisher_key(info, signature: tuple):
    """A publisher's key: its GID from rclpy's MessageInfo where present, else the
    frame's own signature (frame_id, encoding, size)."""
    gid = info.get('publisher_gid') if isinstance(info, dict) else None
    if gid:
        data = gid.get('data') if isinstance(gid, dict) else gid
        if data is not None:
            return ('gid', bytes(data))
    return ('signature',) + tuple(signature)


def key_text(key) -> str:
    """A key for a log line: GID as hex, or the signature."""
    if key and key[0] == 'gid':
        return 'publisher ' + key[1].hex()[:16]
    return 'publisher of ' + ', '.join(str(x) for x in key[1:])
