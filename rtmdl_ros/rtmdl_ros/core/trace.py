"""Where a job's time goes: the stages from the sensor's stamp to the published result.

A job's stages follow each other without gaps, so they add up to its response
(publish time minus source stamp):

    sensor     stamp -> the task node receives the input (driver, transport)
    node       task node receipt -> its release of the job (decimation, windowing)
    transport  task node release -> the executor's receipt, where the scheduler releases it
    pre_wait, pre, infer_wait, infer, post_wait, post
               queueing for and running each sub-task on its worker or lane
    publish    end of post-processing -> the result is published

Without a task node (a job submitted directly) sensor/node are 0 and transport
is stamp -> receipt. A job dropped on the way has NaN for the stages it never
reached.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

STAGES = ('sensor', 'node', 'transport', 'pre_wait', 'pre', 'infer_wait', 'infer', 'post_wait', 'post', 'publish')
PATH_STAGES = STAGES[:3]          # before the scheduler's release: the release path


@dataclass(frozen=True)
class JobTrace:
    """One job's stage durations (ms) and outcome."""
    task: str
    seq: int
    variant: str
    outcome: str                   # met, late, dropped, replaced, failed
    stamp_s: float                 # source stamp on the runtime clock
    stages_ms: tuple[float, ...]   # one per STAGES (NaN: not reached)
    # Per segment (pre, infer, post), the longest step of one that ran in steps (NaN: it ran
    # whole); empty where none did. A handed-over segment's wait between steps is in its *_wait.
    steps_ms: tuple[float, ...] = ()

    @property
    def response_ms(self) -> float:
        """Stamp -> publish, or NaN for a job that published nothing."""
        return float(sum(self.stages_ms)) if not any(math.isnan(x) for x in self.stages_ms) else math.nan

    @property
    def path_ms(self) -> float:
        """Stamp -> release: the release path the analysis takes as measured."""
        return float(sum(self.stages_ms[:len(PATH_STAGES)]))


def stage_durations(marks: Sequence[float | None]) -> tuple[float, ...]:
    """Consecutive differences (ms) of the stage boundaries (clock seconds):
    stamp, node receipt, node release, release, pre start, pre end, infer start,
    infer end, post start, post end, published. None = not reached."""
    out = []
    for a, b in zip(marks, marks[1:]):
        out.append((b - a) * 1e3 if a is not None and b is not None else math.nan)
    return tuple(out)


def stage_percentiles(traces: Sequence[JobTrace], qs: Sequence[float]) -> list[tuple[float, ...]]:
    """Per q in qs, per stage, the q-th percentile over the jobs that reached it (NaN if none);
    one vectorised pass (the executor computes this every status period in its ROS thread)."""
    if not traces:
        return [tuple(math.nan for _ in STAGES) for _ in qs]
    arr = np.array([t.stages_ms for t in traces], dtype=np.float64)
    if np.isnan(arr).any():
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)         # a stage no job reached: NaN
            table = np.nanpercentile(arr, qs, axis=0)
    else:
        table = np.percentile(arr, qs, axis=0)
    return [tuple(float(x) for x in row) for row in table]
