"""Pessimistic response-time analysis for CPU -> GPU -> CPU jobs (docs/analysis.md).

Each job of task i runs pre (CPU), infer (GPU), post (CPU). Each resource is a
pool of M identical servers (cpu_workers / gpu_lanes) serving one ready queue in
fixed-priority order, non-preemptively. A segment is analysed on its own, with
the latest start times of higher-priority segments turned into release jitter
(holistic analysis). For a segment of length c that becomes ready at offset a:

    W = least t >= 0 with  M * t = B + sum_{j in hp} sum_{s of j on r}
                                      c_js * (floor((t + c_js + J_js) / T_j) + 1)

    finish = a + W + c, and the next segment becomes ready at finish.

B is the sum of the M longest lower-priority segments that may already run when
ours becomes ready. With one CPU worker a CPU segment may run in steps
(Variant.chunks): a more urgent segment takes the worker over between steps.
Such a segment blocks others for one step, not its whole length, and its own
end is charged the higher-priority work that arrives until it ends
(_stepped_wait). J_js is the start jitter of segment s of task j: latest start
offset (capped at D_j, because a job past its deadline is dropped before its next
segment starts) minus earliest (sum of best-case earlier segments). With k > 1
GPU lanes, inference lengths are stretched by the measured slowdown of the most
lanes busy, which bounds every packed inference.

The release model: a job arrives with its source stamp; it reaches the
scheduler after its release path (transport, task node), a measured time
between best P- and worst P+. Offsets are taken from the stamp: the first
segment becomes ready at P (the percentile or worst path), best-case starts
count from P-, so the path's spread P+ - P- becomes every segment's release
jitter, and stamps of one task are at least its min_interarrival_ms T apart
(T replaces the period in the interference). A task whose deadline counts from
the release has its response measured from there instead.

The miss-rate bound combines the bound at the task set's percentile p with the
bound at the worst observed sample (see miss_rate_bound).
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .plan import Assignment, Plan
from .taskset import RESOURCE_OF, SEGMENTS, Platform, Task, TaskSet

RESOURCES = ('cpu', 'gpu')
_EPS = 1e-9
WATCHED = 3             # Analyzer.fails_early: the tasks last over their bounds it checks
RUN_JOBS = 4            # runs of up to this many consecutive jobs count as one draw (Variant.runs)


@dataclass(frozen=True)
class SegmentTimes:
    """Segment lengths of one variant at one percentile, as the analysis uses them."""

    c: tuple[float, float, float]       # pre, infer (stretched by GPU packing), post
    best: tuple[float, float, float]    # best-case lengths (shortest sample, unstretched)
    path: float = 0.0                   # source stamp -> release, at the percentile
    path_best: float = 0.0              # the quickest release path
    # path + pre + infer + post as one measured draw at the percentile (Variant.job; inf:
    # none): bounds the job's own time, which is otherwise the sum of four tails.
    own: float = math.inf
    # Per segment, whether it runs in steps that a more urgent segment may take over between
    # (one CPU worker only: Variant.chunks), and its longest step (the segment's length if not).
    stepped: tuple[bool, bool, bool] = (False, False, False)
    chunk: tuple[float, float, float] | None = None
    # pre + infer + post as one measured draw at the percentile (Variant.work; inf: none):
    # bounds what one job puts on the worker and the lane (job_item).
    work: float = math.inf
    # Where work is finite: for 1 .. RUN_JOBS consecutive jobs, (bound on their work, draws it
    # takes): a measured run (Variant.runs) as one draw, or the cheapest split into shorter runs.
    runs: tuple[tuple[float, int], ...] = ()

    @property
    def own_time(self) -> float:
        """Bound on the job's own time from the stamp: the one draw, or the four tails added."""
        return min(self.own, self.path + sum(self.c))

    def longest_on(self, resource: str) -> float:
        """The longest stretch a segment of this job holds a server of `resource` without
        letting a more urgent segment in: what it can block a lower-priority one for."""
        held = self.chunk or self.c
        # pre and post run on the CPU, infer on the GPU lanes (taskset.RESOURCE_OF)
        return held[1] if resource == 'gpu' else max(held[0], held[2])


@dataclass(frozen=True)
class SegmentBound:
    """Analysis of one task at one percentile."""

    response_ms: float            # bound on origin (stamp or release) -> end of post (inf: none found)
    latest_start: tuple[float, float, float]   # latest start offset from the stamp per segment
    instances: int                # segment executions the bound accounts for
    # Per segment the wait the bound charged before it, uncapped (latest_start is capped
    # where the job is dropped): with the lengths, these add up to response_ms + shift.
    waits: tuple[float, ...] = ()
    shift: float = 0.0            # stamp -> the deadline's origin (the path, for deadline_from: release)
    # Where the job-level window (job_window) gave the bound: its terms, which add up to it.
    terms: tuple[tuple[str, float], ...] = ()
    own_draws: int = 0            # of the instances, the job's own (path, segments or the one job draw)

    def interference(self, times: SegmentTimes, period: float) -> list[tuple[str, float, float, float]]:
        """(resource, c, c + jitter, T) per segment: what this task imposes on lower priorities."""
        items = []
        earliest = times.path_best
        for k, seg in enumerate(SEGMENTS):
            jitter = max(0.0, self.latest_start[k] - earliest)
            items.append((RESOURCE_OF[seg], times.c[k], times.c[k] + jitter, period))
            earliest += times.best[k]
        return items

    def job_item(self, times: SegmentTimes, period: float) -> tuple[tuple, float, float] | None:
        """(runs, span, T): what its jobs put on the resources, as draws of one job's work or of
        runs of consecutive jobs (SegmentTimes.runs), where its work was measured as one
        (SegmentTimes.work). Its segments run between
        its earliest ready (the quickest path) and its latest end (the post's latest start
        plus its length), so a window of length x overlaps at most floor((x + span)/T) + 1
        of its jobs. The span is the post's interference span (as interference() gives it)
        plus the best cases of the segments before it, which is no shorter."""
        if not math.isfinite(times.work):
            return None
        earliest_post = times.path_best + times.best[0] + times.best[1]
        span = times.c[2] + max(0.0, self.latest_start[2] - earliest_post) + times.best[0] + times.best[1]
        return times.runs, span, period


def closed_runs(measured: Sequence[float]) -> tuple[tuple[float, int], ...]:
    """(work, draws) for 1 .. RUN_JOBS consecutive jobs from measured[k], the bound on the work
    of k + 1 of them as one draw (inf: not measured; measured[0], one job, must be finite).
    Each entry is the lesser of its own draw and the best split into two shorter runs (whose
    draws add): k jobs never cost more than k - 1 jobs and one, and fewer draws win a tie."""
    out: list[tuple[float, int]] = []
    for k in range(RUN_JOBS):
        best = (measured[k], 1) if k < len(measured) else (math.inf, 1)
        for a in range(1, k + 1):
            w, d = out[a - 1][0] + out[k - a][0], out[a - 1][1] + out[k - a][1]
            if w < best[0] - _EPS or (w <= best[0] + _EPS and d < best[1]):
                best = (w, d)
        out.append(best)
    return tuple(out)


def run_work(n: int, runs: Sequence[tuple[float, int]]) -> tuple[float, int]:
    """(work, draws) of n consecutive jobs from closed_runs: as many of the longest runs as
    fit and one shorter run for the rest. Every piece is a run of consecutive jobs, each
    within its bound unless its one draw overran, so the sum bounds the n jobs' work
    and the draws count in the union bound."""
    q, r = divmod(n, len(runs))
    work, draws = q * runs[-1][0], q * runs[-1][1]
    if r:
        work, draws = work + runs[r - 1][0], draws + runs[r - 1][1]
    return work, draws


def add_interference(hp: Mapping, bound: SegmentBound, times: SegmentTimes, period: float) -> dict:
    """hp (as bound_task takes it) with one more higher-priority task's work: its
    segments per resource, and under 'jobs' the same segments with its job item, so
    that the per-job window can charge each task the lesser of the two."""
    items = bound.interference(times, period)
    out = {r: tuple(hp.get(r, ())) + tuple((c, span, t) for res, c, span, t in items if res == r)
           for r in RESOURCES}
    out['jobs'] = tuple(hp.get('jobs', ())) + (
        (tuple((c, span, t) for _, c, span, t in items), bound.job_item(times, period)),)
    return out


def bound_terms(times: SegmentTimes, bound: SegmentBound) -> list[tuple[str, float]]:
    """The bound split into what adds up to it: the release path, then per segment the
    wait before it (blocking and higher-priority work) and its own length."""
    if bound.terms:
        return list(bound.terms)
    # A deadline counted from the release does not include the path.
    terms = [] if bound.shift > 0 else [('release path', times.path)]
    ready = times.path
    for k, seg in enumerate(SEGMENTS):
        wait = bound.waits[k] if bound.waits else max(0.0, bound.latest_start[k] - ready)
        terms += [(f'{seg} wait', wait), (seg, times.c[k])]
        ready += wait + times.c[k]
    return terms


def explain_bound(times: SegmentTimes, bound: SegmentBound, deadline_ms: float, percentile: float) -> str:
    """'path 4.4 + pre wait 6.1 + ... = 27.9 ms, 2.1 ms over the 25 ms deadline; largest: ...'."""
    terms = bound_terms(times, bound)
    parts = ' + '.join(f'{name} {ms:.2f}' for name, ms in terms if ms > 0.005)
    name, ms = max(terms, key=lambda t: t[1])
    over = bound.response_ms - deadline_ms
    verdict = f'{over:.2f} ms over' if over > 0 else f'{-over:.2f} ms under'
    return (f'at p{percentile:g}: {parts} = {bound.response_ms:.2f} ms, {verdict} the {deadline_ms:g} ms deadline; '
            f'the largest term is the {name} ({ms:.2f} ms, {100 * ms / max(deadline_ms, 1e-9):.0f} % of it)')


def segment_times(task: Task, variant: str, percentile: float, platform: Platform) -> SegmentTimes:
    v = task.variants[variant]
    stretch = platform.slowdown(platform.gpu_lanes)
    c = tuple(v.time(s).quantile(percentile) * (stretch if s == 'infer' else 1.0) for s in SEGMENTS)
    best = tuple(v.time(s).best for s in SEGMENTS)
    own = math.inf
    if v.job is not None and task.origin_is_stamp and v.job.bounded_at(percentile):
        # Measured with whatever packing the graph had: charge the stretch on top.
        own = v.job.quantile(percentile) + (stretch - 1.0) * v.time('infer').quantile(percentile)
    stepped, chunk = (False, False, False), None
    if v.chunks and platform.cpu_workers == 1:      # the runtime takes over between steps on one worker only
        stepped = tuple(s in v.chunks for s in SEGMENTS)
        chunk = tuple(min(c[k], v.chunks[s].quantile(percentile)) if stepped[k] else c[k]
                      for k, s in enumerate(SEGMENTS))
    work, runs = math.inf, ()
    if v.work is not None and v.work.bounded_at(percentile):
        # Measured with whatever packing the graph had: each job's inference stretched on top.
        extra = (stretch - 1.0) * v.time('infer').quantile(percentile)
        work = min(sum(c), v.work.quantile(percentile) + extra)
        bounded = list(itertools.takewhile(lambda r: r.bounded_at(percentile), v.runs))    # 2, 3, .. jobs
        runs = closed_runs([work] + [r.quantile(percentile) + (k + 2) * extra for k, r in enumerate(bounded)])
    return SegmentTimes(c=c, best=best, path=task.path.quantile(percentile), path_best=task.path.best, own=own,
                        stepped=stepped, chunk=chunk, work=work, runs=runs)


def pool_items(task: Task, times: SegmentTimes, resource: str) -> tuple[tuple[float, float, float, float], ...]:
    """(c, T, J, whole) of each segment of `task` on `resource`: its length (its longest
    step, for one in steps, whose whole length is `whole`), the least gap
    between its jobs' stamps and the spread of its start offset from the stamp
    (earliest: best-case path and earlier segments; latest: the deadline, where a
    waiting job is dropped). The job-level blocking pool (job_blocking) counts
    from these how often the segment can start within another job's window."""
    cap = task.deadline_ms + (0.0 if task.origin_is_stamp else times.path)
    items, earliest = [], times.path_best
    for k, seg in enumerate(SEGMENTS):
        if RESOURCE_OF[seg] == resource and times.c[k] > 0:
            if times.stepped[k]:
                # T = 0: one execution in steps may block each of another job's segments (a step each).
                items.append((times.chunk[k], 0.0, max(0.0, cap - earliest), times.c[k]))
            else:
                items.append((times.c[k], task.interarrival_ms, max(0.0, cap - earliest), times.c[k]))
        earliest += times.best[k]
    return tuple(items)


def top_items(items: Iterable[tuple[float, float, float]], k: int = 2) -> tuple:
    """The k longest pool items: enough for the k longest blocking executions."""
    return tuple(sorted(items, reverse=True)[:k])


def job_blocking(task: Task, times: SegmentTimes, items: Sequence[tuple[float, float, float]]) -> tuple[float, ...]:
    """With one server, the lengths of the lower-priority segment executions that can
    block this job's successive segments on the resource, longest first.

    Each of our segments is blocked by at most one execution that was already
    running when it became ready, and one that blocked our earlier segment has
    ended before that segment started: the blockers of one job are distinct
    executions. Segment s of task j starts at most floor((L + J_js) / T_j) + 1
    times in a window of length L; our job's segments become ready between
    stamp + best path and its drop time (the deadline), and a blocker starts
    less than c_js before that, so L = cap - best path + c_js. A task that may
    overrun brings a second job (pool item with T = inf counts once more). A
    segment that runs in steps (T = 0) may be taken over between steps and
    resume later, so one execution of it can block each of our segments with
    a step: it counts twice, and as two of its steps, which add up to no more
    than its whole length."""
    cap = task.deadline_ms + (0.0 if task.origin_is_stamp else times.path)
    window = cap - times.path_best
    values = []
    for c, period, jitter, whole in items:
        if period <= 0:
            values.extend([c, max(0.0, min(c, whole - c))])
            continue
        n = 1 if not math.isfinite(period) else math.floor((window + c + jitter) / period) + 1
        values.extend([c] * min(n, 2))
    return tuple(sorted(values, reverse=True)[:2])


def blocking(candidates: Iterable[float], servers: int) -> tuple[tuple[float, ...], int]:
    """The `servers` longest lower-priority segments (> 0) and how many there are."""
    top = tuple(sorted((c for c in candidates if c > 0), reverse=True)[:servers])
    return top, len(top)


@functools.lru_cache(maxsize=1 << 16)
def _wait(servers: int, block: tuple[float, ...], hp: tuple[tuple[float, float, float], ...],
          limit: float) -> tuple[float, int]:
    """Latest start delay of a segment, and the segment executions it accounts for.

    While the segment waits, all M servers are busy. A segment of length b that
    runs in a window of length t adds at most min(b, t) to the busy time, so a
    wait of t needs  M*t <= g(t) = sum_blocking min(b, t)
                                 + sum_hp n(t) * min(c, t),   n(t) = floor((t + span)/T) + 1.
    The wait is at most the first t where M*t exceeds g(t); g is piecewise linear,
    so a sweep over its breakpoints finds that t exactly (jumping over stretches
    where g(t)/M shows the servers are still busy). Memoised: the optimizer
    asks the same question for every plan that differs only elsewhere.
    """
    if not hp:
        # Closed form: a server frees when the shortest of the M blocking segments ends.
        # One draw: the wait passes min(block) only if the running segment with the
        # least bound overran it (the others may; a server still frees then). With a
        # server free there is no wait, whatever the others run: no draw.
        return (min(block), 1) if len(block) >= servers else (0.0, 0)
    floor = math.floor
    t = 0.0
    while True:
        g, active, count, nxt = 0.0, 0, 0, limit
        for b in block:
            if b > t:
                g += t
                active += 1
                if b < nxt:
                    nxt = b
            else:
                g += b
        for c, span, period in hp:
            n = floor((t + span) / period) + 1
            count += n
            if c > t:
                g += n * t
                active += n
                if c < nxt:
                    nxt = c
            else:
                g += n * c
            arrival = n * period - span          # next instance this window will count
            if t < arrival < nxt:                # (rounding can put it at t: no progress)
                nxt = arrival
        h = servers * t - g
        slope = servers - active                # of h, until the next breakpoint
        if h > _EPS or (slope > 0 and h >= -_EPS):
            return t, count + len(block)
        if slope > 0 and t - h / slope < nxt:
            return t - h / slope, count + len(block)
        # No crossing before the next breakpoint; nor before g(t)/M, since g never
        # falls (h < 0 up to there): jump to the later one, as response-time
        # iteration does, instead of walking every instance arrival.
        t = max(nxt, g / servers)
        if t >= limit:
            return math.inf, 0


def _stepped_wait(block: tuple[float, ...], c: float, hp: tuple[tuple[float, float, float], ...],
                  limit: float) -> tuple[float, int]:
    """For a segment of length c that runs in steps on the one server: its end minus c
    after it becomes ready, and the executions that accounts for.

    It is blocked once, by the step a lower-priority segment is in when it becomes
    ready (a lower one starts no step while it is ready); after that, until it
    ends, the server runs it or higher-priority work, which may take over between
    its steps. So it ends by the least x with x = B + c + sum_hp n(x) * c_hp
    (job_window), charging higher-priority work up to its very end: its last step
    is not preemptible, so this is pessimistic by at most what arrives during that
    step, and needs no knowledge of which step comes last."""
    x, counted = job_window(sum(block) + c, hp, limit)
    return x - c, counted + len(block)


def job_window(base: float, hp: Sequence[tuple[float, float, float]], limit: float) -> tuple[float, int]:
    """(x, executions): the least x with  x = base + sum_hp n(x) * c,
    n(x) = floor((x + span) / T) + 1, or (inf, 0) once x passes `limit`.

    On a single-server resource every instant a job waits there, the server runs
    its blocker or higher-priority work, so over the whole job (not per segment)
    the waits on it add up to at most its blockers plus the higher-priority work
    that can run in the job's window x; the other resource's waits and the job's
    own time fill the rest (`base`). At any instant x before the job ends,
    x < base + interference(x), so the job ends by the least fixed point, which
    iteration from `base` reaches (the right side never falls as x grows)."""
    return _least_fixed_point(base, lambda x: _items_work(x, hp), limit)


def _items_work(x: float, items) -> tuple[float, int]:
    """Work of the segment items (c, span, T) in a window of length x, and the executions:
    sum n(x) * c with n(x) = floor((x + span) / T) + 1."""
    floor = math.floor
    work, count = 0.0, 0
    for c, span, period in items:
        n = floor((x + span) / period) + 1
        work += n * c
        count += n
    return work, count


def _least_fixed_point(base: float, charge, limit: float) -> tuple[float, int]:
    """(x, count): the least x with x = base + charge(x)[0] (charge never falls as x
    grows, so iteration from base reaches it), or (inf, 0) once x passes `limit`."""
    x = base
    while True:
        work, count = charge(x)
        nxt = base + work
        if nxt <= x + _EPS:
            return x, count
        if nxt > limit:
            return math.inf, 0
        x = nxt


def _charge(x: float, group) -> tuple[float, int]:
    """A higher-priority task's work in a window of length x and the draws that counts:
    its segments one by one, its jobs' work as draws of runs of jobs (run_work), or
    its jobs' work with the one overlapping the window's edge cut to the overlap
    (carried_work), whichever is least."""
    items, job = group
    work, count = _items_work(x, items)
    if job is not None:
        runs, span, period = job
        for w, d in (run_work(math.floor((x + span) / period) + 1, runs), carried_work(x, runs[0][0], span, period)):
            if w < work:
                work, count = w, d
    return work, count


def carried_work(x: float, c: float, span: float, period: float) -> tuple[float, int]:
    """Work of a task's jobs in a window of length x, each at most c and run inside its
    own interval of length `span` (earliest start to latest end; its segments run one
    after another there, so its work is at most `span` too), their stamps at least
    `period` apart, and the jobs it counts on: the most that sum_k min(c, overlap of job
    k's interval with the window) reaches over every phasing. That sum is piecewise
    linear in the phase, so its most is where some interval's start, end or the point
    c from either sits on an edge of the window: six phases (mod period) to try. It
    counts a job whose interval grazes the window by its overlap, where
    floor((x + span) / period) + 1 whole jobs count it whole, and it never falls as x,
    c or span grow (the most of sums that each grow), which the branch and bound's
    least charge needs. Where the intervals may overlap (span > period): (inf, 0)."""
    if span > period:
        return math.inf, 0
    if x <= 0.0:
        return 0.0, 0
    c = min(c, span)
    best = (0.0, 0)
    for start in (0.0, -span, c - span, x - span, x - c, x):
        first = (start + span) % period - span          # the earliest job whose interval reaches 0
        work, jobs = 0.0, 0
        while first < x:
            overlap = min(first + span, x) - max(first, 0.0)
            if overlap > _EPS:
                work += min(c, overlap)
                jobs += 1
            first += period
        if work > best[0]:
            best = (work, jobs)
    return best


def grouped_window(base: float, groups, limit: float) -> tuple[float, int]:
    """job_window with every resource single-server and each higher-priority task charged
    by _charge: the least x with x = base + sum_tasks charge(x), or (inf, 0) past limit.
    Each charge is a valid bound on that task's work in the window and never falls as
    x grows, so iteration from base reaches the least fixed point as in job_window."""
    def charge(x: float) -> tuple[float, int]:
        work, count = 0.0, 0
        for group in groups:
            w, n = _charge(x, group)
            work += w
            count += n
        return work, count
    return _least_fixed_point(base, charge, limit)


def bound_task(task: Task, times: SegmentTimes, platform: Platform,
               hp: Mapping[str, Sequence[tuple[float, float, float]]],
               block: Mapping[str, tuple[float, int]]) -> SegmentBound:
    """Response bound of one task given higher-priority interference and blocking.

    hp[resource]: (c, c + jitter, period) of every higher-priority segment on it.
    block[resource]: (segments, count) from blocking(); block['pool'][resource],
    where given, the lower-priority pool items (pool_items) of that resource: on a
    single-server resource the job's k-th segment there is charged the k-th
    longest blocker of the job (job_blocking) instead of the longest every time.

    Two bounds, both sound, and the lower is kept: per segment (each wait from
    _wait, holistic), and per job (job_window: on single-server resources the
    higher-priority work is charged once over the job's window instead of once
    per segment, which counts a busy higher-priority task in every segment).
    Both charge the job's own time as times.own_time.
    """
    if platform.job_gate:
        return gated_bound(task, times, platform, hp, block)
    pool = block.get('pool') if hasattr(block, 'get') else None
    charged = {r: job_blocking(task, times, pool[r]) for r in RESOURCES
               if pool is not None and platform.servers(r) == 1}
    seen = {r: 0 for r in RESOURCES}
    # Past this the bound is useless (the job would be dropped long before).
    limit = 10.0 * task.period_ms + 10.0 * task.deadline_ms
    shift = 0.0 if task.origin_is_stamp else times.path     # stamp -> the deadline's origin
    cap = task.deadline_ms + shift
    ready = times.path
    starts, waits, blockers, counts = [], [], [], []
    for k, seg in enumerate(SEGMENTS):
        r = RESOURCE_OF[seg]
        b_segments, _ = block[r]
        if r in charged:
            # Never more than the per-segment charge: the pool's longest is that segment.
            nth = seen[r]
            b_segments = tuple(min(x, y) for x, y in zip(b_segments, charged[r][nth:nth + 1]))
            seen[r] += 1
        blockers.append(tuple(b_segments))
        if not math.isfinite(ready):
            wait, counted = math.inf, 0
        elif times.stepped[k]:
            wait, counted = _stepped_wait(tuple(b_segments), times.c[k], tuple(hp[r]), limit)
        else:
            wait, counted = _wait(platform.servers(r), tuple(b_segments), tuple(hp[r]), limit)
        start = ready + wait            # for a segment in steps: its end minus its length
        waits.append(wait)
        counts.append(counted)
        # A job still waiting at its deadline is dropped, so no segment starts later.
        starts.append(min(start, cap))
        ready = start + times.c[k]
    # (A segment in steps waits longer the longer it runs: its own length is a draw of its own.)
    one_draw = times.own < times.path + sum(times.c) and not any(times.stepped)
    # The job's own draws in the union bound: one, or each segment and a path that varies.
    own = 1 if one_draw else len(SEGMENTS) + (0 if task.path.is_constant else 1)
    response = times.own + sum(waits) if one_draw else ready          # from the stamp
    # The per-job bound, only where it can beat that (its iteration stops there).
    job = _job_bound(times, platform, hp, blockers, waits, counts, min(limit, response), one_draw)
    if job is not None and job[0] < response - _EPS:
        response, instances = job[0], own + job[1]
        terms = _job_terms(times, platform, hp, blockers, waits, job[2], shift, one_draw)
    else:
        instances = own + sum(counts)
        terms = _own_terms(times, shift, one_draw) + tuple(
            (f'{seg} wait', w) for seg, w in zip(SEGMENTS, waits)) if one_draw else ()
    # The job ends by the bound, so a segment starts no later than that minus the best
    # case of it and what follows it.
    b0, b1, b2 = times.best
    latest = (min(starts[0], response - b0 - b1 - b2), min(starts[1], response - b1 - b2),
              min(starts[2], response - b2))
    return SegmentBound(response_ms=response - shift, latest_start=latest, instances=instances,
                        waits=tuple(waits), shift=shift, terms=terms, own_draws=own)


def gated_bound(task: Task, times: SegmentTimes, platform: Platform,
                hp: Mapping[str, Sequence[tuple[float, float, float]]], block: Mapping) -> SegmentBound:
    """bound_task under the job gate (Platform.job_gate; core/scheduling.py).

    Once our job is released, nothing less urgent starts until it ends: what was
    running at its release (per resource at most one execution per server; a
    segment in steps hands over at its next step, so one step) is all that can
    block it, and each of those ends by the release plus its length (block). At
    any instant our job waits, either a more urgent segment runs (its work, charged
    in the per-job window over every resource: grouped_window per task where every
    task above has its groups, else job_window over all segment items), or nothing
    more urgent runs, and then some resource has every server busy with those
    blockers (ours waits for it, or a more urgent job that holds the gate does),
    which ends when the shortest of them ends (release_blocking). So the blocking is
    charged once per job, the largest of those over the resources, not before each
    segment. (bound_task's per-segment bound does not hold under the gate.)"""
    shift = 0.0 if task.origin_is_stamp else times.path
    cap = task.deadline_ms + shift
    limit = 10.0 * task.period_ms + 10.0 * task.deadline_ms
    blocked = release_blocking(block, platform.servers)
    worst = max(RESOURCES, key=lambda r: blocked[r][0])
    one_draw = times.own < times.path + sum(times.c)
    own = 1 if one_draw else len(SEGMENTS) + (0 if task.path.is_constant else 1)
    # The window opens at the earliest release: after the quickest path where the one
    # draw (which includes the path) is charged, else after the path at the percentile.
    opens = times.path_best if one_draw else times.path
    base = times.own_time - opens + blocked[worst][0]
    if not any(hp.get(r) for r in RESOURCES):
        length, counted = base, 0
    elif _whole_groups(hp):
        length, counted = grouped_window(base, hp['jobs'], limit - opens)
    else:
        length, counted = job_window(base, [item for r in RESOURCES for item in hp[r]], limit - opens)
    response = opens + length
    b0, b1, b2 = times.best
    latest = (min(cap, response - b0 - b1 - b2), min(cap, response - b1 - b2), min(cap, response - b2))
    terms = _own_terms(times, shift, one_draw) + ((f'blocking at release ({worst})', blocked[worst][0]),)
    if math.isfinite(length):
        terms += (('higher priority on cpu and gpu', length - base),)
    # Every blocker's length is a draw the bound counts on, the shorter ones too.
    return SegmentBound(response_ms=response - shift, latest_start=latest,
                        instances=own + sum(n for _, n in blocked.values()) + counted,
                        shift=shift, terms=terms, own_draws=own)


def release_blocking(block: Mapping, servers) -> dict[str, tuple[float, int]]:
    """Under the job gate, per resource (wait, draws) that the segments already running at
    a job's release can cost it: the shortest of them where they hold every server."""
    return {r: _wait(servers(r), tuple(block[r][0]), (), math.inf) for r in RESOURCES}


def _own_terms(times: SegmentTimes, shift: float, one_draw: bool) -> tuple:
    if one_draw:
        return (('own time from the stamp (one draw)', times.own - shift),)
    return (() if shift > 0 else (('release path', times.path),)) + tuple(zip(SEGMENTS, times.c))


def _grouped(platform: Platform, hp) -> bool:
    """Whether the per-job window charges per higher-priority task (grouped_window): every
    resource has one server, and hp lists its tasks under 'jobs'."""
    return _whole_groups(hp) and all(platform.servers(r) == 1 for r in RESOURCES)


def _whole_groups(hp) -> bool:
    """Whether hp's per-task groups ('jobs') can stand for its flat lists: only where some
    task has a work draw (else the per-resource form is the same), and every item of the
    flat lists is in some task's group (else work would be left out)."""
    jobs = hp.get('jobs')
    return bool(jobs) and any(job is not None for _, job in jobs) and \
        sum(len(items) for items, _ in jobs) == sum(len(hp[r]) for r in RESOURCES)


def _single(platform: Platform, hp) -> list[str]:
    """Resources the per-job bound charges once per job: one server, something above."""
    return [r for r in RESOURCES if platform.servers(r) == 1 and hp[r]]


def _job_bound(times, platform, hp, blockers, waits, counts, limit, one_draw) -> tuple | None:
    """bound_task's per-job bound: (end from the stamp, executions it counts besides the
    job's own, window length), or None where it would end past `limit` (from the stamp)."""
    single = _single(platform, hp)
    if not single or not all(math.isfinite(w) for w in waits):
        return None
    # The window opens when the first segment can be ready: after the path, or, with
    # the one draw (which includes the path), after the quickest path.
    opens = times.path_best if one_draw else times.path
    base, count = times.own_time - opens, 0
    for k, seg in enumerate(SEGMENTS):
        if RESOURCE_OF[seg] in single:
            base += sum(blockers[k])
            count += len(blockers[k])
        else:            # more servers, or nothing above: the per-segment wait and what it counts
            base += waits[k]
            count += counts[k]
    if opens + base > limit:
        return None
    if _grouped(platform, hp):
        length, counted = grouped_window(base, hp['jobs'], limit - opens)
    else:
        length, counted = job_window(base, [item for r in single for item in hp[r]], limit - opens)
    if not math.isfinite(length):
        return None
    return opens + length, count + counted, length


def _job_terms(times, platform, hp, blockers, waits, length, shift, one_draw) -> tuple:
    """What the per-job bound adds up: own time, per resource the blocking (or the
    per-segment waits) and the higher-priority work in the window."""
    single = _single(platform, hp)
    terms = list(_own_terms(times, shift, one_draw))
    for r in RESOURCES:
        ks = [k for k, seg in enumerate(SEGMENTS) if RESOURCE_OF[seg] == r]
        if r in single:
            terms.append((f'blocking on {r}', sum(sum(blockers[k]) for k in ks)))
        else:
            terms.append((f'waits on {r}', sum(waits[k] for k in ks)))
    if _grouped(platform, hp):
        terms.append(('higher priority on cpu and gpu', sum(_charge(length, g)[0] for g in hp['jobs'])))
        return tuple(terms)
    for r in single:
        terms.append((f'higher priority on {r}', sum((math.floor((length + span) / period) + 1) * c
                                                     for c, span, period in hp[r])))
    return tuple(terms)


def blocking_candidates(lower: Iterable[tuple[Task, SegmentTimes]], resource: str,
                        own: tuple[Task, SegmentTimes] | None = None,
                        overrunning: frozenset = frozenset()) -> list[float]:
    """Segments that may already occupy a server when ours becomes ready.

    One running job per lower-priority task. A task that replaces overrun jobs
    can have two (the superseded job finishes its current segment), but only if
    a job of it can still run past its deadline: the tasks in `overrunning`.
    Such a task's own superseded job may also hold a server.
    """
    out = []
    for task, times in lower:
        n = 2 if task.on_overrun == 'replace' and task.name in overrunning else 1
        out.extend([times.longest_on(resource)] * n)
    if own is not None and own[0].on_overrun == 'replace' and own[0].name in overrunning:
        out.append(own[1].longest_on(resource))
    return out


def _suffix_blocking(timed, servers: Mapping[str, int], overrunning: frozenset = frozenset(),
                     tail: tuple | None = None) -> dict:
    """Per resource and position, the `servers` longest segments of the tasks below it
    (blocking_candidates() of every suffix in one pass, bottom up), and under 'pool'
    the two longest pool items of those tasks (job_blocking). tail=(below, idx): below
    the last of `timed` lie the tasks below position idx of another such result."""
    below = {r: [()] * (len(timed) + 1) for r in RESOURCES}
    below['pool'] = {r: [()] * (len(timed) + 1) for r in RESOURCES}
    if tail is not None:
        for r in RESOURCES:
            below[r][-1], below['pool'][r][-1] = tail[0][r][tail[1]], tail[0]['pool'][r][tail[1]]
    for idx in range(len(timed) - 1, -1, -1):
        for r in RESOURCES:
            below[r][idx] = tuple(sorted(below[r][idx + 1] + tuple(blocking_candidates(
                [timed[idx]], r, None, overrunning)), reverse=True)[:servers[r]])
            below['pool'][r][idx] = top_items(below['pool'][r][idx + 1] + pool_items(*timed[idx], r))
    return below


def own_overrun_item(task: Task, times: SegmentTimes, resource: str, overrunning: frozenset) -> tuple:
    """The task's own superseded job's running segment, as a pool item that counts once."""
    if task.on_overrun == 'replace' and task.name in overrunning:
        held = times.longest_on(resource)
        return ((held, math.inf, 0.0, held),)
    return ()


def block_at(below: dict, idx: int, servers: Mapping[str, int], task: Task | None = None,
             times: SegmentTimes | None = None, overrunning: frozenset = frozenset()) -> dict:
    """bound_task's `block` for the task at position idx (tasks below it from _suffix_blocking)."""
    own = (task, times) if task is not None else None
    block = {r: blocking(below[r][idx + 1] + tuple(blocking_candidates([], r, own, overrunning) if own else ()),
                         servers[r]) for r in RESOURCES}
    block['pool'] = {r: below['pool'][r][idx + 1] + (own_overrun_item(task, times, r, overrunning) if own else ())
                     for r in RESOURCES}
    return block


def miss_rate_bound(at_p: SegmentBound, at_max: SegmentBound, deadline: float, percentile: float,
                    top: float = 100.0, mixed: SegmentBound | None = None) -> float:
    """Bound on the share of jobs that miss their deadline.

    If the bound at the worst observed sample meets the deadline, no job misses
    (on the profiled distribution). Otherwise a job can only miss if one of the
    segment executions its p-bound accounts for overran its p-th percentile; each
    does so with probability <= 1 - p/100, and a union bound adds them up.
    `mixed`, the bound with the job's own draws at p and everything else (the
    higher-priority work and the blocking) at the largest samples, counts the
    same way with each draw at the level it was charged at: own draws at
    1 - p/100 each, the others at 1 - top/100 (nothing, on the profiled
    distribution, where the largest sample is all there is).
    """
    if at_max.response_ms <= deadline + _EPS and top >= 100.0:
        return 0.0
    bound = 1.0
    if at_max.response_ms <= deadline + _EPS:
        # The largest samples stand for the top-th percentile (calibrated): the same union
        # bound at that level.
        bound = min(bound, at_max.instances * (1.0 - top / 100.0))
    if at_p.response_ms <= deadline + _EPS:
        bound = min(bound, at_p.instances * (1.0 - percentile / 100.0))
    if mixed is not None and mixed.response_ms <= deadline + _EPS:
        bound = min(bound, mixed.own_draws * (1.0 - percentile / 100.0)
                    + (mixed.instances - mixed.own_draws) * (1.0 - top / 100.0))
    return bound


@dataclass(frozen=True)
class TaskAnalysis:
    task: str
    variant: str
    priority: int
    deadline_ms: float
    response_bound_ms: float       # at `percentile` below, from the deadline's origin
    worst_response_bound_ms: float  # at the worst observed sample
    miss_rate_bound: float
    max_miss_rate: float
    effective_deadline_ms: float = math.nan   # what the bound is checked against (<= deadline_ms)
    # The percentile of response_bound_ms and of the union bound: the task set's, or another of
    # its percentiles where that gave the lesser miss-rate bound.
    percentile: float = math.nan

    @property
    def meets_bound(self) -> bool:
        return self.miss_rate_bound <= self.max_miss_rate + _EPS


def _hp(state: tuple, pct: float) -> dict:
    """The interference in a feasible() state (hp at the worst sample, {pct: hp}) at pct."""
    return state[0] if pct == 100.0 else state[1][pct]


def _no_less(new: Mapping, old: Mapping) -> bool:
    """Whether one task's interference items (add_interference of it alone) charge no less
    than `old` in every window: each segment item no shorter and no less spread, and its
    job item (runs of jobs) no less work, no fewer draws and no less spread, or none."""
    for r in RESOURCES:
        if len(new[r]) != len(old[r]) or any(nc < oc - _EPS or ns < os - _EPS
                                             for (nc, ns, _), (oc, os, _) in zip(new[r], old[r])):
            return False
    (_, job), (_, old_job) = new['jobs'][0], old['jobs'][0]
    if job is None:
        return True                 # charged its segments alone: no less than the lesser of the two
    if old_job is None:
        return False
    return job[1] >= old_job[1] - _EPS and all(w >= ow - _EPS and d >= od
                                               for (w, d), (ow, od) in zip(job[0], old_job[0]))


def _prefix_key(entry, belows: Sequence[dict], idx: int) -> tuple:
    """What a task's bounds depend on besides the tasks above it: its blocking (at the
    worst sample and at each percentile)."""
    return (entry, *(b[r][idx + 1] for b in belows for r in RESOURCES),
            *(b['pool'][r][idx + 1] for b in belows for r in RESOURCES))


class Analyzer:
    """Caches per-variant segment times; analyses any ordered assignment."""

    def __init__(self, taskset: TaskSet):
        self.taskset = taskset
        self.levels = taskset.percentiles                  # the union bound's percentiles, reported first
        self.percentiles = (*self.levels, 100.0)
        self._times: dict[tuple[str, str, float], SegmentTimes] = {}
        self._prefixes: dict = {}          # feasible(): state after each analysed prefix
        self._passed: dict = {}            # feasible(): per passing order, its tasks' bounds (fails_early)
        self.watched: list[str] = []      # the tasks over their bounds in the last failing feasible()s
        # With short profiles the p-th percentile sample is the worst one for
        # every segment; then both bounds coincide and are computed once.
        self.single_percentile = all(
            self.times(t, v, p) == self.times(t, v, 100.0)
            for t, task in taskset.tasks.items() for v in task.variants for p in self.levels)

    def times(self, task: str, variant: str, percentile: float) -> SegmentTimes:
        key = (task, variant, percentile)
        t = self._times.get(key)
        if t is None:
            t = segment_times(self.taskset.tasks[task], variant, percentile, self.taskset.platform)
            self._times[key] = t
        return t

    def _bounds(self, order, pct: float, overrunning: frozenset, own_pct: float | None = None,
                known: Mapping[str, SegmentBound] | None = None) -> dict[str, SegmentBound]:
        """Each task's bound at `pct`; with own_pct, each task's own times at own_pct
        under what the tasks above and below impose at `pct` (the mixed bound), where
        `known` may hold the bounds at `pct` already computed (what the tasks impose)."""
        ts = self.taskset
        hp: dict = {'cpu': (), 'gpu': (), 'jobs': ()}
        timed = [(ts.tasks[t], self.times(t, v, pct)) for t, v in order]
        servers = {r: ts.platform.servers(r) for r in RESOURCES}
        below = _suffix_blocking(timed, servers, overrunning)
        out = {}
        for idx, (task, times) in enumerate(timed):
            block = block_at(below, idx, servers, task, times, overrunning)
            b = known[task.name] if known is not None else bound_task(task, times, ts.platform, hp, block)
            out[task.name] = b if own_pct is None else bound_task(
                task, self.times(task.name, order[idx][1], own_pct), ts.platform, hp, block)
            hp = add_interference(hp, b, times, task.interarrival_ms)
        return out

    def feasible(self, order: Sequence[tuple[str, str]]) -> bool:
        """analyze_order(order) meets every bound, decided early where it can be.

        One pass with no task charged an overrun, top-down, stops at the first
        task over its miss-rate bound at every percentile: charges only add, so it
        fails in analyze_order too. If no task's worst-case bound passes its
        deadline, that pass is analyze_order's own result; otherwise analyze_order
        decides. A task's bound depends only on the tasks above it and its
        blocking, so the pass resumes after the longest prefix (tasks, variants and
        blocking) it has seen before: a search move low in the order re-analyses little."""
        ts = self.taskset
        levels = () if self.single_percentile else self.levels
        servers = {r: ts.platform.servers(r) for r in RESOURCES}
        n = len(order)
        tasks = [ts.tasks[t] for t, _ in order]
        t_max = [self.times(t, v, 100.0) for t, v in order]
        t_at = {p: [self.times(t, v, p) for t, v in order] for p in levels}
        below_max = _suffix_blocking(list(zip(tasks, t_max)), servers)
        below_at = {p: _suffix_blocking(list(zip(tasks, t_at[p])), servers) for p in levels}
        belows = (below_max, *below_at.values())
        by_pct = {100.0: below_max, **below_at}
        cache = self._prefixes
        if len(cache) > 200_000:
            cache.clear()
        none = {'cpu': (), 'gpu': (), 'jobs': ()}
        keys, key, state, start, states = [], (), (none, {p: none for p in levels}, False), 0, []
        for idx in range(n):
            key = key + (_prefix_key(order[idx], belows, idx),)
            keys.append(key)
            hit = cache.get(key)
            if hit is None:
                break
            if isinstance(hit, str):           # the task there was over its bound
                self._watch(hit)
                return False
            state, start = hit, idx + 1
            states.append(hit)
        hp_max, hp_at, any_late = state
        for idx in range(start, n):
            task = tasks[idx]
            bmax, at, over = self._step(task, order[idx][1], {100.0: hp_max, **hp_at}, by_pct, idx, servers)
            if idx >= len(keys):
                keys.append(keys[-1] + (_prefix_key(order[idx], belows, idx),))
            if over:
                cache[keys[idx]] = task.name
                self._watch(task.name)
                return False
            any_late = any_late or bmax.response_ms > task.effective_deadline_ms + _EPS
            hp_max = add_interference(hp_max, bmax, t_max[idx], task.interarrival_ms)
            hp_at = {p: add_interference(hp_at[p], at[p], t_at[p][idx], task.interarrival_ms) for p in levels}
            cache[keys[idx]] = state = (hp_max, hp_at, any_late)
            states.append(state)
        if any_late and not all(r.meets_bound for r in self.analyze_order(order)):
            return False
        if len(self._passed) > 256:
            self._passed.clear()
        self._passed[tuple(order)] = (states, below_max, below_at)
        return True

    def fails_early(self, base: Sequence[tuple[str, str]], trial: Sequence[tuple[str, str]],
                    sound: bool = False) -> bool:
        """Whether `trial`, `base` (which feasible() passed) with the tasks at positions lo..hi
        changed (variants or order), fails at one of them or at a watched task (one of the
        last over their bounds) below or above them. The changed tasks are analysed as
        feasible() would, under the tasks above them as in `base`; a watched task below, with
        their new interference in place of their old and every other task above it at its
        bounds in `base`; a watched task above (sound=False only), with the blocking the
        change gives it (_blocked_over_above). It costs those tasks' bounds where feasible()
        analyses every task from lo down.

        A changed task over its bound is a proof. For a watched task below, it is one only
        where one task changed and its new interference is no less in any item: then every
        task between can only have grown, so its bounds are lower bounds of feasible()'s;
        sound=True answers only from proofs. Otherwise the tasks between may shrink and a
        True is a strong hint: the local search takes it (a wrong one costs it a move; every
        plan it keeps still passes feasible())."""
        rec = self._passed.get(tuple(base))
        diff = [k for k, (a, b) in enumerate(zip(base, trial)) if a != b]
        if rec is None or not diff or len(base) != len(trial):
            return False
        lo, hi = diff[0], diff[-1]
        if sorted(t for t, _ in base[lo:hi + 1]) != sorted(t for t, _ in trial[lo:hi + 1]):
            return False
        ts = self.taskset
        levels = () if self.single_percentile else self.levels
        servers = {r: ts.platform.servers(r) for r in RESOURCES}
        states, below_max, below_at = rec
        none = {'cpu': (), 'gpu': (), 'jobs': ()}
        above = states[lo - 1] if lo else (none, {p: none for p in levels}, False)
        pcts = (100.0, *levels)
        hp_of = {100.0: above[0], **{p: above[1][p] for p in levels}}
        old_below = {100.0: below_max, **below_at}
        # The changed tasks' blocking: what lies below each in `trial`, bottom up from hi.
        tasks = [ts.tasks[t] for t, _ in trial[lo:hi + 1]]
        timed = {p: [(task, self.times(task.name, v, p)) for task, (_, v) in zip(tasks, trial[lo:hi + 1])]
                 for p in pcts}
        below = {p: _suffix_blocking(timed[p], servers, tail=(old_below[p], hi + 1)) for p in pcts}
        mine = {p: none for p in pcts}             # the changed tasks' own items, in order
        for k, (task, (_, v)) in enumerate(zip(tasks, trial[lo:hi + 1])):
            bmax, at, over = self._step(task, v, hp_of, below, k, servers)
            if over:
                return True
            for p, b in ((100.0, bmax), *at.items()):
                hp_of[p] = add_interference(hp_of[p], b, timed[p][k][1], task.interarrival_ms)
                mine[p] = add_interference(mine[p], b, timed[p][k][1], task.interarrival_ms)
        names = [t for t, _ in base]
        if not sound and self._blocked_over_above(trial, lo, names, states, below, old_below, pcts, servers):
            return True
        if sound and not (lo == hi and all(_no_less(mine[p], {r: _hp(states[hi], p)[r][len(_hp(above, p)[r]):]
                                                              for r in mine[p]}) for p in pcts)):
            return False

        def swapped(p, j):
            """hp above j in base with the changed tasks' items swapped for theirs in trial."""
            hp_j, first, last = _hp(states[j - 1], p), _hp(above, p), _hp(states[hi], p)
            return {r: hp_j[r][:len(first[r])] + mine[p][r] + hp_j[r][len(last[r]):] for r in mine[p]}
        for watched in self.watched:
            j = names.index(watched) if watched in names else -1
            if j <= hi:
                continue
            if self._step(ts.tasks[watched], base[j][1], {p: swapped(p, j) for p in pcts}, old_below, j, servers)[2]:
                return True
        return False

    def _blocked_over_above(self, trial, lo: int, names, states, below, old_below, pcts, servers) -> bool:
        """fails_early's hint above a change: whether a watched task above position lo is
        over its bound with the blocking it has in `trial` (what lies below it: `below`,
        the changed tasks' suffix from lo) and the interference it had in the base plan.
        The tasks between may have a new blocking too, so their bounds may differ either
        way: a hint, not a proof. Where the change leaves the blocking at lo as it was,
        nothing above it changed."""
        if all(below[p][r][0] == old_below[p][r][lo] and below[p]['pool'][r][0] == old_below[p]['pool'][r][lo]
               for p in pcts for r in RESOURCES):
            return False
        above = sorted(names.index(w) for w in self.watched if w in names and names.index(w) < lo)
        if not above:
            return False
        ts = self.taskset
        none = {'cpu': (), 'gpu': (), 'jobs': ()}
        top = above[0]                  # one suffix from the highest of them serves them all
        timed = {p: [(ts.tasks[t], self.times(t, v, p)) for t, v in trial[top:lo]] for p in pcts}
        up = {p: _suffix_blocking(timed[p], servers, tail=(below[p], 0)) for p in pcts}
        for j in above:
            hp = {p: _hp(states[j - 1], p) if j else none for p in pcts}
            if self._step(ts.tasks[trial[j][0]], trial[j][1], hp, up, j - top, servers)[2]:
                return True
        return False

    def _step(self, task: Task, variant: str, hp: Mapping, below: Mapping, idx: int, servers) -> tuple:
        """feasible()'s step for one task at position idx, with hp and below (_suffix_blocking)
        per percentile (100: the worst sample): (bound at the worst sample, {level: bound},
        whether it is over its miss-rate bound at every percentile)."""
        ts = self.taskset
        at = {p: bound_task(task, self.times(task.name, variant, p), ts.platform, hp[p],
                            block_at(below[p], idx, servers)) for p in hp}
        bmax = at.pop(100.0)
        over = self._over_bound(task, at or {ts.percentile: bmax}, bmax, lambda p: bound_task(
            task, self.times(task.name, variant, p), ts.platform, hp[100.0], block_at(below[100.0], idx, servers)))
        return bmax, at, over

    def _watch(self, name: str) -> None:
        self.watched = [name] + [w for w in self.watched if w != name][:WATCHED - 1]

    def _over_bound(self, task: Task, at: Mapping[float, SegmentBound], bmax: SegmentBound, mixed) -> bool:
        """Whether the task's miss-rate bound exceeds its limit at every percentile p: from
        its bounds at p (`at`) and at the worst sample, and, only where those fail, the
        mixed bound (`mixed(p)` computes it)."""
        ts = self.taskset
        limit = task.max_miss_rate + _EPS
        for p, bp in at.items():
            if miss_rate_bound(bp, bmax, task.effective_deadline_ms, p, ts.tail_top) <= limit:
                return False
            if not self.single_percentile and miss_rate_bound(
                    bp, bmax, task.effective_deadline_ms, p, ts.tail_top, mixed(p)) <= limit:
                return False
        return True

    def final_bounds(self, order: Sequence[tuple[str, str]]) -> tuple[dict, dict]:
        """({task: bound at the percentile}, {task: bound at the worst sample}) with the
        overrun charges analyze_order settles on (see there)."""
        overrunning, at_max = self._overrunning(order)
        return (at_max if self.single_percentile else
                self._bounds(order, self.taskset.percentile, overrunning)), at_max

    def _overrunning(self, order) -> tuple[frozenset, dict[str, SegmentBound]]:
        """The tasks charged a possible second running job (see analyze_order) and the
        bounds at the worst sample under those charges."""
        ts = self.taskset
        overrunning: frozenset = frozenset()
        while True:
            at_max = self._bounds(order, 100.0, overrunning)
            late = frozenset(n for n, b in at_max.items()
                             if b.response_ms > ts.tasks[n].effective_deadline_ms + _EPS)
            if late <= overrunning:
                break
            overrunning = overrunning | late
        return overrunning, at_max

    def analyze_order(self, order: Sequence[tuple[str, str]]) -> list[TaskAnalysis]:
        """Analyse tasks listed from most to least urgent as (task, variant).

        First assume no job runs past its deadline; every task whose worst-case
        bound exceeds its deadline is then charged a possible second running job
        and the bounds are recomputed, until that set stops growing. (Before the
        first overrun of a task that was not charged, all bounds hold, so its
        job cannot overrun: the assumption is never the first thing to break.)
        """
        ts = self.taskset
        overrunning, at_max = self._overrunning(order)
        levels = (ts.percentile,) if self.single_percentile else self.levels
        at = {p: at_max if self.single_percentile else self._bounds(order, p, overrunning) for p in levels}
        mixed: dict = {}        # per percentile, only where a task fails without it

        def rate(name: str, p: float) -> float:
            task = ts.tasks[name]
            bound = miss_rate_bound(at[p][name], at_max[name], task.effective_deadline_ms, p, ts.tail_top)
            if bound <= task.max_miss_rate + _EPS or self.single_percentile:
                return bound
            if p not in mixed:
                mixed[p] = self._bounds(order, 100.0, overrunning, own_pct=p, known=at_max)
            return miss_rate_bound(at[p][name], at_max[name], task.effective_deadline_ms, p, ts.tail_top,
                                   mixed[p][name])
        out = []
        for prio, (name, variant) in enumerate(order):
            task = ts.tasks[name]
            # Each percentile's union bound holds on its own: the least of them is the task's.
            rates = {}
            for p in levels:
                rates[p] = rate(name, p)
                if rates[p] <= task.max_miss_rate + _EPS:
                    break
            p = min(rates, key=lambda q: (rates[q], levels.index(q)))
            out.append(TaskAnalysis(
                task=name, variant=variant, priority=prio, deadline_ms=task.deadline_ms,
                response_bound_ms=at[p][name].response_ms, worst_response_bound_ms=at_max[name].response_ms,
                miss_rate_bound=rates[p], max_miss_rate=task.max_miss_rate,
                effective_deadline_ms=task.effective_deadline_ms, percentile=p))
        return out


def analyze(taskset: TaskSet, plan: Plan) -> dict[str, TaskAnalysis]:
    """Analyse a full plan; results keyed by task, priorities as given in the plan."""
    order = sorted(plan.items(), key=lambda kv: kv[1].priority)
    results = Analyzer(taskset).analyze_order([(name, a.variant) for name, a in order])
    return {r.task: TaskAnalysis(**{**r.__dict__, 'priority': plan[r.task].priority}) for r in results}


def default_plan(taskset: TaskSet) -> dict[str, Assignment]:
    """Largest variant per task, deadline-monotonic priorities (the dm-nmc plan)."""
    order = deadline_monotonic(taskset)
    return {name: Assignment(taskset.tasks[name].largest_variant.name, prio) for prio, name in enumerate(order)}


def deadline_monotonic(taskset: TaskSet) -> list[str]:
    """Shorter deadline first; ties by shorter period, then by name (deterministic)."""
    return sorted(taskset.tasks, key=lambda n: (taskset.tasks[n].deadline_ms, taskset.tasks[n].period_ms, n))
