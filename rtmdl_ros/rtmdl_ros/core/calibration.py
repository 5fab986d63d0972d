"""Graph calibration from the running graph's own traces (no ROS; `rtmdl calibrate` runs the graph).

What the analysis takes from the graph:

* **Release path** (stamp -> the scheduler's release) per task: every measured
  sample, and an upper confidence bound on its percentile (core/tails.py).
* **Segments** per task and segment (pre, infer, post + publish): the graph runs
  every variant in turn (the executor's `cycle_variants_s`). Each variant's
  typical time is its own median in the graph (the median needs few jobs, and
  it carries whatever shifts that variant there: a constant GIL wait or a
  slow-down that scales with its work); the tail around it is the delay
  beyond the median that the other threads cause (the ROS thread, the other
  scheduler thread, the sensors), pooled over the variants of about the same
  length (medians within a factor of BAND, widened to the nearest ones until
  the pool has the samples its confidence bound needs): a longer segment is
  preempted more often, so a 0.6 ms inference must not take the tail of a
  9 ms one (measured: pooled over all twelve traffic-light variants, the
  smallest one's p99.5 bound was 5.6 ms for a 0.6 ms median; its own
  largest delay was 1.6 ms). A shorter neighbour's delays are scaled up to
  the variant's length as length ** exponent (delay_exponent: fitted on the
  variants' p90 delays, at its upper confidence bound; 0 for stalls of a fixed
  length, 1 for a slow-down in proportion to the work, 1 where the medians do
  not span enough to tell): one 6 ms stall of a 0.35 ms inference is not
  charged to a 0.67 ms one as 11 ms (measured, docs/benchmarks.md). A
  variant that ran too few jobs takes its profiled median plus the median
  shift of the task's variants that did. The model is
  checked per variant that ran enough jobs: its p99 against the variant's own
  measured p99, and the worst under-prediction is reported.
* **Job draws** under a plan (job_fields): per variant that ran enough jobs, the
  job's own time from the stamp and its work as one sum each, and the work of
  runs of consecutive jobs (run_fields), bounded from disjoint runs.
* **Steps** of a segment that runs in steps (`<segment>_chunk_ms`, the longest
  step per job, which is what it can block a more urgent segment for): the
  same model on the longest steps the graph's jobs recorded. Where the graph
  recorded none, the profiled steps are dropped and the segment counts whole.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .analysis import RUN_JOBS
from .tails import TailEstimate, quantile_upper_bound, samples_needed
from .taskset import SEGMENTS
from .trace import STAGES, JobTrace

SEGMENT_STAGES = {'pre': ('pre',), 'infer': ('infer',), 'post': ('post', 'publish')}
MIN_JOBS_FOR_MEDIAN = 5        # a variant's own median in the graph from this many jobs
QUANTILE_POINTS = 200          # a variant's calibrated samples: this many quantiles of the model
TOP = 99.8                     # calibrated lists end at an upper bound of this percentile (where one exists)
WARMUP_S = 1.0                 # a window's first second (the first frames after activation) is left out
MIN_JOBS_TO_CHECK = 20         # a variant's own p99 is compared with the model's from this many jobs
BAND = 2.0                     # a variant's tail pools the variants whose median is within this factor
GAP_FACTOR = 1.5               # runs of jobs: successive stamps further apart than this x the median are a gap
TOLERANCE = 0.15               # one more window may move a task's tail by this much (relative)
EXPONENT_SPREAD = 1.5          # delay_exponent is fitted where the variants' medians span this factor
EXPONENT_JOBS = 20             # ... over the variants that ran this many jobs (p90 from 2+ samples above it)
DELAY_QUANTILE = 0.9           # the delay's level the exponent is fitted at (stable from 20 jobs)
# Windows go on (up to their limit) until every task has the jobs whose second-largest
# sample bounds its highest percentile: one stall then cannot set a bound alone (measured:
# a 4 Hz task's one 18.4 ms step among 314 jobs, 4 ms otherwise, refused a plan; one 10.5 ms
# step among 307 set the most urgent camera's p99.5 blocking, docs/benchmarks.md).
OUTLIERS = 1


Levels = float | tuple[float, ...]   # one percentile, or the task set's (TaskSet.percentiles)


def levels_of(percentile: Levels) -> tuple[float, ...]:
    """A percentile or the task set's percentiles (TaskSet.percentiles, the reported one
    first) as a tuple: every tail written carries a bound at each."""
    return tuple(float(p) for p in percentile) if isinstance(percentile, (list, tuple)) else (float(percentile),)


@dataclass(frozen=True)
class SegmentModel:
    task: str
    segment: str
    medians: dict                       # variant -> median in the graph (or profiled + the task's shift)
    residuals: np.ndarray               # time beyond the variant's median, pooled over the task's variants
    tail: TailEstimate                  # of the residuals at the task set's percentile (for the report)
    worst_under: float                  # largest share by which it under-predicted a variant's p99
    checked: int                        # variants with enough jobs to check
    measured: int                       # variants whose median was measured in the graph
    by_variant: dict | None = None      # variant -> its own residuals (variants that ran)
    need: int = 0                       # samples a pool needs for the tail's confidence bound
    exponent: float = 1.0               # delays grow as length ** exponent (delay_exponent)

    def pool(self, variant: str) -> np.ndarray:
        """The residuals a variant's tail is estimated from: those of the variants whose median
        is within BAND of its own, and further the nearest ones until there are `need`. A
        shorter variant's residuals are scaled up to this one's length as length ** exponent,
        a longer one's kept: the pool is no lighter than this variant's own under delays that
        grow with the work no faster than the exponent says."""
        if not self.by_variant:
            return self.residuals
        own = max(self.medians[variant], 1e-3)

        def distance(v):
            return abs(np.log(max(self.medians[v], 1e-3) / own))
        chosen, n = [], 0
        for v in sorted(self.by_variant, key=distance):
            if n >= self.need and distance(v) > np.log(BAND):
                break
            chosen.append(self.by_variant[v] * max(1.0, own / max(self.medians[v], 1e-3)) ** self.exponent)
            n += len(self.by_variant[v])
        return np.sort(np.concatenate(chosen))

    def describe(self) -> str:
        return (f'{self.task}.{self.segment}: {len(self.residuals)} jobs, {self.measured} variants measured; '
                f'delays grow as length^{self.exponent:.2f}; '
                + (f'under-predicts a variant\'s p99 by at most {100 * self.worst_under:.0f} % '
                   f'({self.checked} checked)' if self.checked else 'no variant ran enough jobs to check'))


def _stage_sums(traces: list[JobTrace], task: str, stages, with_path: bool = False) -> dict[str, np.ndarray]:
    """{variant: per job of the task that reached them, the summed `stages` (and its
    release path)}, in trace order."""
    cols = [STAGES.index(s) for s in stages]
    out: dict[str, list] = {}
    for t in traces:
        if t.task == task:
            v = float(np.sum(np.asarray(t.stages_ms, dtype=np.float64)[cols]))
            if with_path:
                v += float(t.path_ms)
            if np.isfinite(v):
                out.setdefault(t.variant, []).append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def segment_samples(traces: list[JobTrace], task: str, segment: str) -> dict[str, np.ndarray]:
    """{variant: the segment's times in the graph} over the task's jobs that ran it."""
    return _stage_sums(traces, task, SEGMENT_STAGES[segment])


def step_samples(traces: list[JobTrace], task: str, segment: str) -> dict[str, np.ndarray]:
    """{variant: per job that ran the segment in steps, its longest step in the graph}."""
    k = SEGMENTS.index(segment)
    out: dict[str, list] = {}
    for t in traces:
        if t.task == task and t.steps_ms and np.isfinite(t.steps_ms[k]):
            out.setdefault(t.variant, []).append(float(t.steps_ms[k]))
    return {v: np.asarray(x) for v, x in out.items()}


def delay_exponent(ran: dict[str, np.ndarray], medians: dict, confidence: float) -> float:
    """How a segment's delay beyond its median grows with the segment's length, as
    length ** exponent: the least-squares slope of log(p90 delay) on log(median) over the
    variants that ran EXPONENT_JOBS jobs, at its one-sided upper `confidence` bound (Student
    t), clipped to [0, 1]. 0 is a stall of a fixed length (a GIL hand-off, another thread's
    turn on the core), 1 a slow-down in proportion to the work (a co-runner's share of the
    core). With fewer than three such variants, or medians spanning less than
    EXPONENT_SPREAD, the data cannot tell: 1, the conservative end."""
    from scipy.stats import t as student
    vs = [v for v, x in ran.items() if len(x) >= EXPONENT_JOBS]
    x = np.log([max(medians[v], 1e-3) for v in vs])
    if len(vs) < 3 or np.ptp(x) < np.log(EXPONENT_SPREAD):
        return 1.0
    y = np.log([max(float(np.quantile(ran[v] - medians[v], DELAY_QUANTILE)), 1e-3) for v in vs])
    dx = x - x.mean()
    slope = float(np.sum(dx * (y - y.mean())) / np.sum(dx ** 2))
    noise = float(np.sum((y - y.mean() - slope * dx) ** 2)) / (len(vs) - 2)
    upper = slope + float(student.ppf(confidence, len(vs) - 2)) * np.sqrt(noise / np.sum(dx ** 2))
    return float(np.clip(upper, 0.0, 1.0))


def fit_segment(task: str, segment: str, graph: dict[str, np.ndarray], profiled: dict[str, float],
                percentile: float, confidence: float) -> SegmentModel | None:
    """Per-variant graph medians and the task's pooled tail beyond them; None without data."""
    ran = {v: x for v, x in graph.items() if v in profiled and len(x) >= MIN_JOBS_FOR_MEDIAN}
    if not ran:
        return None
    medians = {v: float(np.median(x)) for v, x in ran.items()}
    shift = float(np.median([medians[v] - profiled[v] for v in ran]))
    for v, m in profiled.items():
        medians.setdefault(v, max(0.0, m + shift))
    by_variant = {v: x - medians[v] for v, x in ran.items()}
    residuals = np.sort(np.concatenate(list(by_variant.values())))
    model = SegmentModel(task, segment, medians, residuals, quantile_upper_bound(residuals, percentile, confidence),
                         0.0, 0, len(ran), by_variant, min(samples_needed(percentile, confidence), len(residuals)),
                         delay_exponent(ran, medians, confidence))
    worst, checked = 0.0, 0
    for v, x in ran.items():
        if len(x) >= MIN_JOBS_TO_CHECK:
            checked += 1
            measured = float(np.quantile(x, 0.99))
            worst = max(worst, (measured - (medians[v] + float(np.quantile(model.pool(v), 0.99)))) / measured)
    return replace(model, worst_under=worst, checked=checked)


def top_cut(values, confidence: float) -> tuple[float, float]:
    """(cut, top): an upper confidence bound on the TOP-th percentile and TOP where the samples
    give one; else (the largest, 100): a list cut there stands for that percentile."""
    est = quantile_upper_bound(values, TOP, confidence)
    return (est.bound, TOP) if est.ok else (float(np.max(values)), 100.0)


def calibrated_variant(model: SegmentModel, variant: str, percentile: Levels,
                       confidence: float) -> tuple[list[float], dict, float]:
    """(samples, tail, top) for one variant's segment: QUANTILE_POINTS quantiles of the
    model up to its TOP-th percentile bound, the model at the residuals' upper confidence
    bound at the task set's percentile, and the percentile the largest sample stands for.
    A spike rarer than TOP is then left to the miss-rate bound's union term instead of
    entering every worst-case bound (one 1-in-2,400 spike set them before)."""
    residuals = model.pool(variant)
    cut, top = top_cut(residuals, confidence)
    median = model.medians[variant]
    samples = np.maximum(0.0, median + np.minimum(np.quantile(residuals, np.linspace(0.0, 1.0, QUANTILE_POINTS)), cut))
    tail = {}
    for p in levels_of(percentile):
        tail_est = quantile_upper_bound(residuals, p, confidence)
        bound = tail_est.bound if tail_est.ok else tail_est.bound_or_max
        tail[p] = round(float(max(0.0, median + min(bound, cut))), 4)
    return [round(float(x), 4) for x in samples], tail, top


def path_estimate(traces: list[JobTrace], task: str, percentile: float, confidence: float) -> tuple[list, TailEstimate]:
    paths = sorted(round(float(t.path_ms), 3) for t in traces if t.task == task and np.isfinite(t.path_ms))
    return paths, quantile_upper_bound(paths, percentile, confidence)


def path_fields(traces: list[JobTrace], task: str, percentile: Levels, confidence: float) -> tuple[dict, TailEstimate]:
    """The profile's release-path keys for one task (empty without samples): the samples up to
    the TOP-th percentile bound, the tail bound at the percentile, and that TOP; under 'jobs',
    the job draws measured in the same traces (job_fields)."""
    levels = levels_of(percentile)
    samples, est = path_estimate(traces, task, levels[0], confidence)
    if not samples:
        return {}, est
    cut, top = top_cut(samples, confidence)
    ests = {p: est if p == levels[0] else quantile_upper_bound(samples, p, confidence) for p in levels}
    return {'release_path_ms': [x for x in samples if x <= cut],
            'release_path_tail': {p: min(cut, e.bound if e.ok else e.bound_or_max) for p, e in ests.items()},
            'release_path_top': top, 'jobs': job_fields(traces, task, levels, confidence)}, est


def own_times(traces: list[JobTrace], task: str) -> dict[str, np.ndarray]:
    """{variant: per job, release path + pre + infer + post + publish}: the job's own time
    from the stamp, everything but its waits."""
    own = _stage_sums(traces, task, [s for seg in SEGMENT_STAGES.values() for s in seg], with_path=True)
    return {k: np.sort(v) for k, v in own.items()}


def work_times(traces: list[JobTrace], task: str) -> dict[str, np.ndarray]:
    """{variant: per job, pre + infer + post + publish}: the work it puts on the worker and
    the lane, everything but its release path and its waits."""
    work = _stage_sums(traces, task, [s for seg in SEGMENT_STAGES.values() for s in seg])
    return {k: np.sort(v) for k, v in work.items()}


def work_stretches(traces: list[JobTrace], task: str) -> dict[str, list[np.ndarray]]:
    """{variant: stretches of its jobs' work (work_times) in stamp order}: a stretch holds
    successive jobs of one variant, so it ends where the variant changes or a job is
    missing: one that did not finish (dropped, replaced), or a stamp gap over
    GAP_FACTOR x the task's median gap (a skipped frame, a stall, the next window)."""
    cols = [STAGES.index(s) for seg in SEGMENT_STAGES.values() for s in seg]
    jobs = sorted((t for t in traces if t.task == task), key=lambda t: t.stamp_s)
    if len(jobs) < 2:
        return {}
    gap = GAP_FACTOR * float(np.median(np.diff([t.stamp_s for t in jobs])))
    out: dict[str, list] = {}
    last = None
    for t in jobs:
        work = float(np.sum(np.asarray(t.stages_ms, dtype=np.float64)[cols]))
        if not np.isfinite(work):
            last = None
            continue
        if last is None or last.variant != t.variant or t.stamp_s - last.stamp_s > gap:
            out.setdefault(t.variant, []).append([])
        out[t.variant][-1].append(work)
        last = t
    return {v: [np.asarray(s) for s in stretches] for v, stretches in out.items()}


def run_fields(traces: list[JobTrace], task: str, percentile: Levels, confidence: float,
               longest: int) -> dict:
    """{variant: work<n>_ms / _tail / _top for n = 2 .. longest}: the work of n consecutive jobs
    as one draw (taskset.Variant.runs), up to the first n whose percentile cannot be bounded.
    Sums of n jobs that share jobs are not independent, so the bound comes from sums of
    disjoint runs: one set per offset (jobs 1..n, n+1..2n, ... from the k-th job of each
    stretch), each needing the samples the confidence asks for, and the largest of their
    bounds is kept. The samples are every run's sum (a finer picture of the same
    distribution), cut at that set's TOP bound. Measured on the graph's traces, n jobs'
    p99.5 is 20-35 % below n times one job's (docs/benchmarks.md)."""
    levels = levels_of(percentile)
    out: dict[str, dict] = {}
    for variant, stretches in work_stretches(traces, task).items():
        fields: dict = {}
        for n in range(2, longest + 1):
            sliding = [np.convolve(s, np.ones(n), 'valid') for s in stretches if len(s) >= n]
            sets = [[s[k:k + n * ((len(s) - k) // n)].reshape(-1, n).sum(axis=1) for s in stretches if len(s) >= k + n]
                    for k in range(n)]
            sets = [np.concatenate(d) for d in sets if d]
            ests = {p: [quantile_upper_bound(d, p, confidence) for d in sets] for p in levels}
            bounded = [p for p in levels if len(sets) >= n and all(e.ok for e in ests[p])]
            if not bounded:
                break
            cuts = [top_cut(d, confidence) for d in sets]
            cut, top = max(c for c, _ in cuts), min(t for _, t in cuts)
            samples = np.minimum(np.quantile(np.concatenate(sliding), np.linspace(0.0, 1.0, QUANTILE_POINTS)), cut)
            # Tails at the percentiles every offset's runs bound (as _draw_fields).
            tail = {p: round(float(min(cut, max(e.bound for e in ests[p]))), 4) for p in bounded}
            fields.update({f'work{n}_ms': [round(float(v), 4) for v in samples], f'work{n}_tail': tail,
                           f'work{n}_top': top})
        if fields:
            out[variant] = fields
    return out


def _draw_fields(times: dict[str, np.ndarray], key: str, percentile: Levels, confidence: float) -> dict:
    """{variant: {key_ms, key_tail, key_top}} for each variant with enough samples to bound the
    percentile at the confidence: QUANTILE_POINTS quantiles up to the TOP cut and the bound."""
    levels = levels_of(percentile)
    out = {}
    for variant, x in times.items():
        ests = {p: quantile_upper_bound(x, p, confidence) for p in levels}
        if not any(e.ok for e in ests.values()):
            continue                     # too few for a bound: the tails added stay
        cut, top = top_cut(x, confidence)
        samples = np.minimum(np.quantile(x, np.linspace(0.0, 1.0, QUANTILE_POINTS)), cut)
        # A tail only where the samples bound it: at the others the analysis leaves the draw out
        # (ExecTime.bounded_at), so 600 jobs serve p99 although p99.5 at 90 % needs 460 runs of two.
        out[variant] = {f'{key}_ms': [round(float(v), 4) for v in samples],
                        f'{key}_tail': {p: round(float(min(cut, e.bound)), 4) for p, e in ests.items() if e.ok},
                        f'{key}_top': top}
    return out


def job_fields(traces: list[JobTrace], task: str, percentile: Levels, confidence: float) -> dict:
    """{variant: job_ms / job_tail / job_top, work_ms / work_tail / work_top} for each
    variant that ran enough jobs to bound the percentile of its own time (taskset.Variant.job)
    and of its work (Variant.work) at the confidence, and where its work has a draw, the
    work of runs of consecutive jobs (run_fields, Variant.runs). Segments and path measured
    in one job are one draw: their tails do not all come at once (measured on the demo's
    traces: p99.5 of the sum 6.5 ms against 8.3 ms for the tails added)."""
    out: dict[str, dict] = {}
    for key, times in (('job', own_times(traces, task)), ('work', work_times(traces, task))):
        for variant, fields in _draw_fields(times, key, percentile, confidence).items():
            out.setdefault(variant, {}).update(fields)
    # Runs of jobs where one job's work has its draw (the task set needs work_ms beside them).
    for variant, fields in run_fields(traces, task, percentile, confidence, RUN_JOBS).items():
        if 'work_ms' in out.get(variant, {}):
            out[variant].update(fields)
    return out


JOB_KEYS = ('job_ms', 'job_tail', 'job_top', 'work_ms', 'work_tail', 'work_top') + tuple(
    f'work{n}{end}' for n in range(2, RUN_JOBS + 1) for end in ('_ms', '_tail', '_top'))


def put_path_fields(entry: dict, fields: dict) -> None:
    """Replace a profile task entry's release-path keys and its variants' job draws with
    `fields` (path_fields): all of one measurement, nothing of another."""
    for key in [k for k in entry if k.startswith('release_path')]:
        del entry[key]
    for spec in (entry.get('variants') or {}).values():
        for key in JOB_KEYS:
            spec.pop(key, None)
    fields = dict(fields)
    for variant, keys in (fields.pop('jobs', None) or {}).items():
        spec = (entry.get('variants') or {}).get(variant)
        if isinstance(spec, dict):
            spec.update(keys)
    entry.update(fields)


def held_path_fields(entry: dict) -> dict:
    """The path_fields a profile task entry holds (what put_path_fields wrote)."""
    fields = {k: v for k, v in entry.items() if k.startswith('release_path')}
    variants = (entry.get('variants') or {}).items()
    fields['jobs'] = {v: {k: spec[k] for k in JOB_KEYS if k in spec}
                      for v, spec in variants if isinstance(spec, dict) and any(k in spec for k in JOB_KEYS)}
    return fields


def window_shift(before: list[JobTrace], after: list[JobTrace], tasks, percentile: float,
                 value=lambda t: t.path_ms) -> dict[str, float]:
    """Per task, how much one more window moved the tail of `value` (default: its release
    path; relative): the calibration runs another window while this is over its tolerance."""
    out = {}
    for task in tasks:
        a = [v for v in (value(t) for t in before if t.task == task) if np.isfinite(v)]
        b = [v for v in (value(t) for t in after if t.task == task) if np.isfinite(v)]
        if len(a) < 10 or len(b) < 10:
            out[task] = float('inf')
            continue
        qa, qb = float(np.percentile(a, percentile)), float(np.percentile(b, percentile))
        out[task] = abs(qb - qa) / max(qa, 1e-9)
    return out


def jobs_needed(percentile: Levels, confidence: float) -> int:
    """Jobs a task needs before calibration stops: enough that every one of its percentiles
    is bounded below its largest sample (OUTLIERS): the highest needs the most."""
    return samples_needed(max(levels_of(percentile)), confidence, OUTLIERS)


def jobs_short(traces: list[JobTrace], tasks, need: int) -> dict[str, int]:
    """{task: jobs that ran every stage (published)} for the tasks with fewer than `need`."""
    count = {task: 0 for task in tasks}
    for t in traces:
        if t.task in count and np.isfinite(t.response_ms):
            count[t.task] += 1
    return {task: n for task, n in count.items() if n < need}


def settled(windows: list[list[JobTrace]], tasks, percentile: float, confidence: float, tolerance: float,
            min_windows: int = 2, value=lambda t: t.path_ms) -> tuple[bool, dict[str, float]]:
    """Whether the tails have settled after these windows: at least min_windows, and the
    last one moved no task's tail of `value` (default: the release path) by more than
    `tolerance`. Also returns the last window's shift per task. (The callers also wait,
    up to their windows' limit, for every task's jobs_needed: jobs_short.)"""
    if len(windows) < 2:
        return False, {}
    before = [t for w in windows[:-1] for t in w]
    pooled = before + list(windows[-1])
    shift = window_shift(before, pooled, tasks, percentile, value)
    return len(windows) >= min_windows and max(shift.values()) <= tolerance, shift


def after_warmup(traces: list[JobTrace], warmup_s: float = WARMUP_S) -> tuple[list[JobTrace], list[JobTrace]]:
    """(kept, left out): the jobs stamped in a window's first warmup_s take the first frames
    through freshly matched subscriptions (measured: 14-17 ms release paths for the first
    frame, 2-4 ms after); the analysis is of the steady state, and the start-up is
    reported apart (rtmdl bringup's start-up figures)."""
    if not traces:
        return [], []
    t0 = min(t.stamp_s for t in traces)
    kept = [t for t in traces if t.stamp_s - t0 >= warmup_s]
    return kept, [t for t in traces if t.stamp_s - t0 < warmup_s]
