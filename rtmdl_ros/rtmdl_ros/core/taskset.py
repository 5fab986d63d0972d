"""Task model: periodic DL tasks made of CPU -> GPU -> CPU sub-tasks.

A task set is what the optimizer, the analysis, the simulator and the runtime all
read. It comes from one YAML schema (see docs/analysis.md and config/):

    platform: {cpu_workers: 2, gpu_lanes: 1, storage_budget_mb: 64,
               gpu_slowdown: {1: 1.0, 2: 1.3},      # optional
               job_gate: false}                     # optional: see Platform.job_gate
    analysis: {percentile: 99.0}                     # optional; or a list, e.g. [99.5, 99.0]:
                                                     # each task's miss-rate bound is the least over them
    profiles: profiles/this_machine.yaml             # optional, merged underneath
    tasks:
      NAME:
        period_ms: 33.3
        deadline_ms: 33.3          # <= period_ms
        max_miss_rate: 0.05
        on_overrun: replace        # or skip (default replace)
        deadline_from: stamp       # or release: what a deadline counts from (default stamp)
        min_interarrival_ms: 30.0  # releases at least this far apart, by source stamp (default period_ms)
        stamp_source: header       # or receipt: for a driver that never stamps (core/input_guard.py)
        source_frame_id: camera    # optional: take jobs only from frames with this frame_id
        release_path_ms: [1.9, 2.4]  # source stamp -> executor receipt (measured; default 0)
        compressed_variant: w050   # optional, used by the dm-mc baseline
        variants:
          VNAME: {accuracy: 0.97, storage_mb: 4.2, weight_group: g1,
                  pre_ms: 1.5, infer_ms: [8.1, 8.4, ...], post_ms: 0.4,
                  job_ms: [9.8, 10.3, ...],   # optional, rtmdl calibrate: see Variant.job
                  work_ms: [7.1, 7.4, ...],   # optional, rtmdl calibrate: see Variant.work
                  work2_ms: [11.9, ...],      # optional, with work_ms: see Variant.runs
                  pre_chunk_ms: [2.1, 2.3, ...]}  # optional: see Variant.chunks

Each *_ms is a number or a list of measured samples (milliseconds). Unknown
keys are kept out of the way so that tools can add their own.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import yaml

SEGMENTS = ('pre', 'infer', 'post')
RESOURCE_OF = {'pre': 'cpu', 'infer': 'gpu', 'post': 'cpu'}
OVERRUN_POLICIES = ('replace', 'skip')
DEADLINE_ORIGINS = ('stamp', 'release')
STAMP_SOURCES = ('header', 'receipt')


class TasksetError(ValueError):
    """A task set, profile or plan that cannot be used; the message says where."""


@dataclass(frozen=True)
class ExecTime:
    """Execution time of one sub-task: a constant or empirical samples (ms)."""

    samples: np.ndarray  # sorted, float64, non-empty
    # {percentile: ms}: an upper confidence bound on that percentile (rtmdl calibrate, core/tails.py);
    # quantile() never returns less there than the bound.
    tail: tuple[tuple[float, float], ...] = ()
    # The percentile the largest sample stands for: 100 for samples taken as all there is
    # (a profile), less where calibration cut the list at an upper bound of that
    # percentile (a rarer spike is left to the miss-rate bound, analysis.miss_rate_bound).
    top: float = 100.0

    @classmethod
    def of(cls, value: Any, where: str, tail: Any = None, top: Any = None) -> 'ExecTime':
        if isinstance(value, bool) or value is None:
            raise TasksetError(f'{where}: expected a number or a list of numbers (ms), got {value!r}')
        if isinstance(value, (int, float)):
            values = [value]
        elif isinstance(value, (list, tuple)):
            values = list(value)
            if not values:
                raise TasksetError(f'{where}: the list of samples is empty')
        else:
            raise TasksetError(f'{where}: expected a number or a list of numbers (ms), got {type(value).__name__}')
        for x in values:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
                raise TasksetError(f'{where}: samples must be finite numbers >= 0 ms, got {x!r}')
        arr = np.sort(np.asarray(values, dtype=np.float64))
        arr.setflags(write=False)
        if top is not None and (isinstance(top, bool) or not isinstance(top, (int, float)) or not 50 <= top <= 100):
            raise TasksetError(f'{where} top: the percentile its largest sample stands for, 50..100, got {top!r}')
        return cls(arr, _parse_tail(tail, where), 100.0 if top is None else float(top))

    def bounded_at(self, percentile: float) -> bool:
        """Whether this time may be charged at `percentile`: samples given as they are (no
        tails), the largest sample (100), or a tail bound at that percentile. Calibration
        writes a draw's tail only at the percentiles its samples bound at the confidence
        (core/calibration.py), so a draw measured too few times for p99.5 still serves p99."""
        return percentile >= 100.0 or not self.tail or any(abs(p - percentile) < 1e-9 for p, _ in self.tail)

    def quantile(self, percentile: float) -> float:
        """Smallest sample that at most a (1 - p/100) share of samples exceeds.

        That is the ceil(n*p/100)-th smallest sample: what the miss-rate bound needs.
        """
        n = len(self.samples)
        k = math.ceil(n * percentile / 100.0 - 1e-9)
        value = float(self.samples[min(n, max(k, 1)) - 1])
        for p, bound in self.tail:
            if abs(p - percentile) < 1e-9:
                return max(value, bound)
        return value

    @property
    def best(self) -> float:
        return float(self.samples[0])

    @property
    def worst(self) -> float:
        return float(self.samples[-1])

    @functools.cached_property               # the optimizer asks often; samples are read-only
    def mean(self) -> float:
        return float(self.samples.mean())

    @property
    def is_constant(self) -> bool:
        return self.samples[0] == self.samples[-1]


def _parse_tail(raw: Any, where: str) -> tuple[tuple[float, float], ...]:
    """`<key>_tail: {99.5: 5.3}` beside a list of samples: percentile -> bound (ms)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise TasksetError(f'{where} tail: expected a mapping percentile -> ms, got {raw!r}')
    out = []
    for p, v in raw.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 100:
            raise TasksetError(f'{where} tail: percentiles must be in (0, 100), got {p!r}')
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise TasksetError(f'{where} tail: bounds must be finite numbers >= 0 ms, got {v!r}')
        out.append((float(p), float(v)))
    return tuple(sorted(out))


_ZERO = ExecTime.of(0.0, 'release_path_ms')


@dataclass(frozen=True)
class Variant:
    name: str
    accuracy: float
    storage_mb: float
    times: Mapping[str, ExecTime]   # keys: SEGMENTS
    weight_group: str | None = None  # variants of one group share weights
    # A job's own time from the stamp (release path + pre + infer + post) measured in the
    # graph as one sum per job, where calibration ran this variant long enough to bound its
    # tail (plan_paths.py): the analysis charges it as one draw instead of four tails added.
    job: ExecTime | None = None
    # CPU segments that run in steps (a limited-preemptive segment, docs/analysis.md): per job
    # the longest step. With one CPU worker a more urgent segment takes over between steps.
    chunks: Mapping[str, ExecTime] = field(default_factory=dict)
    # pre + infer + post measured in the graph as one sum per job (rtmdl calibrate, like job):
    # what one of its jobs puts on the worker and the lane, charged to lower-priority tasks
    # as one draw instead of three tails added (analysis.job_item).
    work: ExecTime | None = None
    # The work of 2, 3, ... consecutive jobs as one sum (`work2_ms`, `work3_ms`, ...; rtmdl
    # calibrate): a run of jobs above a lower-priority one charged as one draw instead of
    # one work tail per job, which do not all come at once (analysis.job_item).
    runs: tuple[ExecTime, ...] = ()

    def time(self, segment: str) -> ExecTime:
        return self.times[segment]

    @functools.cached_property
    def mean_total_ms(self) -> float:
        return sum(self.times[s].mean for s in SEGMENTS)


@dataclass(frozen=True)
class Task:
    name: str
    period_ms: float
    deadline_ms: float
    max_miss_rate: float
    variants: Mapping[str, Variant]
    on_overrun: str = 'replace'
    compressed_variant: str | None = None
    # The release model (docs/analysis.md, "From the sensor's stamp"): jobs are
    # released on input arrival, at least min_interarrival_ms apart by source
    # stamp; release_path is stamp -> release (transport, task node); deadlines
    # and responses count from the stamp unless deadline_from is 'release'.
    min_interarrival_ms: float | None = None        # None: period_ms
    deadline_from: str = 'stamp'
    release_path: ExecTime | None = None            # None: 0 ms
    # Where a job's stamp comes from: the input's header, or its receipt by the task
    # node (a driver that never stamps); then the release path starts at receipt.
    stamp_source: str = 'header'
    source_frame_id: str | None = None              # the source's frame_id (None: the first publisher heard)

    @property
    def interarrival_ms(self) -> float:
        return self.period_ms if self.min_interarrival_ms is None else self.min_interarrival_ms

    @property
    def path(self) -> 'ExecTime':
        return self.release_path if self.release_path is not None else _ZERO

    @property
    def origin_is_stamp(self) -> bool:
        return self.deadline_from == 'stamp'

    @property
    def effective_deadline_ms(self) -> float:
        """The deadline the analysis checks, from the deadline's origin: a job must
        also end before the task's next release could supersede (or skip) it, and
        that release comes min_interarrival_ms after the stamp plus the quickest path."""
        p = self.path
        next_release = self.interarrival_ms + (p.best if self.origin_is_stamp else p.best - p.worst)
        return min(self.deadline_ms, next_release)

    @property
    def max_accuracy(self) -> float:
        return max(v.accuracy for v in self.variants.values())

    @property
    def largest_variant(self) -> Variant:
        """The original, unscaled model: most storage, then most accurate."""
        return max(self.variants.values(), key=lambda v: (v.storage_mb, v.accuracy, v.mean_total_ms))

    def loss(self, variant: str) -> float:
        """Normalised accuracy loss of a variant: (acc_max - acc) / acc_max."""
        amax = self.max_accuracy
        return 0.0 if amax <= 0 else (amax - self.variants[variant].accuracy) / amax


@dataclass(frozen=True)
class Platform:
    cpu_workers: int = 1
    gpu_lanes: int = 1
    storage_budget_mb: float = math.inf
    # slowdown[k]: factor by which each of k concurrent inferences is stretched.
    gpu_slowdown: Mapping[int, float] = field(default_factory=lambda: {1: 1.0})
    # The job gate (core/scheduling.py): while a job is in flight, no segment of a less urgent
    # task starts on any worker or lane, so a job is blocked once, at its release, not before
    # each of its segments; less urgent tasks give up running beside it (docs/analysis.md).
    job_gate: bool = False

    def slowdown(self, lanes_busy: int) -> float:
        return self.gpu_slowdown[max(1, lanes_busy)]

    def servers(self, resource: str) -> int:
        return self.cpu_workers if resource == 'cpu' else self.gpu_lanes


@dataclass(frozen=True)
class TaskSet:
    platform: Platform
    tasks: Mapping[str, Task]
    percentile: float = 99.0
    source: str | None = None
    # More percentiles to take the union bound at (`analysis.percentile` as a list): a task's
    # miss-rate bound is the least over all of them (analysis.Analyzer). Reports use `percentile`.
    extra_percentiles: tuple[float, ...] = ()

    @property
    def percentiles(self) -> tuple[float, ...]:
        """The percentiles the analysis bounds at, the reported one first."""
        return (self.percentile, *(p for p in self.extra_percentiles if p != self.percentile))

    @functools.cached_property
    def tail_top(self) -> float:
        """The lowest percentile any time's largest sample stands for (100: all profiled)."""
        return min([t.path.top for t in self.tasks.values()]
                   + [x.top for t in self.tasks.values() for v in t.variants.values()
                      for x in (*v.times.values(), *v.chunks.values(),
                                *(d for d in (v.job, v.work) if d is not None), *v.runs)])

    @property
    def uncalibrated(self) -> list[str]:
        """Tasks whose release path was never measured (`rtmdl calibrate`): their bounds leave
        out the graph's path from the stamp to the release."""
        return [n for n, t in self.tasks.items() if t.release_path is None]

    def calibration_note(self) -> str:
        """'' when every release path was measured, else what the bounds leave out and what to run."""
        missing = self.uncalibrated
        if not missing:
            return ''
        where = self.source or 'TASKSET'
        return (f'UNCALIBRATED: the release paths of {", ".join(missing)} were never measured, so their bounds '
                'leave out the graph\'s path from the sensor stamp to the release (transport, task node) and the '
                f'graph\'s own slow-down; run `rtmdl calibrate {where}` first')

    def task(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise TasksetError(f'unknown task {name!r}; the task set has {sorted(self.tasks)}') from None


# ---------------------------------------------------------------------------
# Loading and validation


def _number(mapping: Mapping, key: str, where: str, *, default: Any = None, integer: bool = False) -> Any:
    if key not in mapping or mapping[key] is None:
        if default is not None:
            return default
        raise TasksetError(f'{where}: missing required key {key!r}')
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise TasksetError(f'{where}.{key}: expected a finite number, got {value!r}')
    if integer:
        if float(value) != int(value):
            raise TasksetError(f'{where}.{key}: expected a whole number, got {value!r}')
        return int(value)
    return float(value)


def _mapping(value: Any, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise TasksetError(f'{where}: expected a mapping, got {type(value).__name__}')
    return value


def _parse_variant(name: str, raw: Any, where: str) -> Variant:
    raw = _mapping(raw, where)
    acc = _number(raw, 'accuracy', where)
    if not 0.0 <= acc <= 1.0:
        raise TasksetError(f'{where}.accuracy: must be a fraction in [0, 1], got {acc}')
    storage = _number(raw, 'storage_mb', where)
    if storage < 0:
        raise TasksetError(f'{where}.storage_mb: must be >= 0, got {storage}')
    times = {}
    for seg in SEGMENTS:
        key = f'{seg}_ms'
        if key not in raw:
            raise TasksetError(f'{where}: missing required key {key!r}')
        times[seg] = ExecTime.of(raw[key], f'{where}.{key}', raw.get(f'{seg}_tail'), raw.get(f'{seg}_top'))
    group = raw.get('weight_group')
    if group is not None and not isinstance(group, str):
        raise TasksetError(f'{where}.weight_group: expected a name, got {group!r}')
    job = ExecTime.of(raw['job_ms'], f'{where}.job_ms', raw.get('job_tail'), raw.get('job_top')) \
        if raw.get('job_ms') is not None else None
    chunks = {}
    for seg in SEGMENTS:
        key = f'{seg}_chunk_ms'
        if raw.get(key) is None:
            continue
        if RESOURCE_OF[seg] != 'cpu':
            raise TasksetError(f'{where}.{key}: only CPU segments run in steps (pre, post)')
        chunks[seg] = ExecTime.of(raw[key], f'{where}.{key}', raw.get(f'{seg}_chunk_tail'),
                                  raw.get(f'{seg}_chunk_top'))
    work = ExecTime.of(raw['work_ms'], f'{where}.work_ms', raw.get('work_tail'), raw.get('work_top')) \
        if raw.get('work_ms') is not None else None
    runs = []
    while raw.get(f'work{len(runs) + 2}_ms') is not None:
        key = f'work{len(runs) + 2}'
        runs.append(ExecTime.of(raw[f'{key}_ms'], f'{where}.{key}_ms', raw.get(f'{key}_tail'), raw.get(f'{key}_top')))
    stray = sorted(k for k in raw if isinstance(k, str) and k.startswith('work') and k.endswith('_ms')
                   and k[4:-3].isdigit() and int(k[4:-3]) > len(runs) + 1)
    if stray:
        raise TasksetError(f'{where}.{stray[0]}: runs of jobs count up from two without a gap '
                           f'(work2_ms, work3_ms, ...); work{len(runs) + 2}_ms is missing')
    if runs and work is None:
        raise TasksetError(f'{where}.work2_ms: the work of runs of jobs needs the work of one job (work_ms) beside it')
    return Variant(name=str(name), accuracy=acc, storage_mb=storage, times=times, weight_group=group, job=job,
                   chunks=chunks, work=work, runs=tuple(runs))


def source_settings(raw: Mapping, where: str) -> tuple[str, str | None]:
    """(stamp_source, source_frame_id) of a raw task entry, checked."""
    stamp_source = raw.get('stamp_source', 'header')
    if stamp_source not in STAMP_SOURCES:
        raise TasksetError(f'{where}.stamp_source: must be one of {STAMP_SOURCES}, got {stamp_source!r}')
    frame_id = raw.get('source_frame_id')
    if frame_id is not None and not (isinstance(frame_id, str) and frame_id):
        raise TasksetError(f'{where}.source_frame_id: expected a frame_id (a non-empty string), got {frame_id!r}')
    return stamp_source, frame_id


def release_settings(raw: Mapping, where: str) -> dict:
    """A task's release and deadline settings, validated: what a task node needs of its
    entry (period_ms, deadline_ms, min_interarrival_ms, deadline_from, stamp_source,
    source_frame_id), without its variants."""
    period = _number(raw, 'period_ms', where)
    if period <= 0:
        raise TasksetError(f'{where}.period_ms: must be > 0, got {period}')
    deadline = _number(raw, 'deadline_ms', where, default=period)
    if deadline <= 0:
        raise TasksetError(f'{where}.deadline_ms: must be > 0, got {deadline}')
    if deadline > period:
        raise TasksetError(f'{where}.deadline_ms: {deadline} ms exceeds period_ms {period} ms '
                           '(constrained deadlines only)')
    origin = raw.get('deadline_from', 'stamp')
    if origin not in DEADLINE_ORIGINS:
        raise TasksetError(f'{where}.deadline_from: must be one of {DEADLINE_ORIGINS}, got {origin!r}')
    stamp_source, frame_id = source_settings(raw, where)
    gap = _number(raw, 'min_interarrival_ms', where, default=period)
    if not 0 < gap <= period:
        raise TasksetError(f'{where}.min_interarrival_ms: must be in (0, period_ms={period:g}], got {gap:g}')
    return {'period_ms': period, 'deadline_ms': deadline, 'min_interarrival_ms': gap, 'deadline_from': origin,
            'stamp_source': stamp_source, 'source_frame_id': frame_id}


def _parse_task(name: str, raw: Any) -> Task:
    where = f'tasks.{name}'
    raw = _mapping(raw, where)
    timing = release_settings(raw, where)
    period = timing['period_ms']
    miss = _number(raw, 'max_miss_rate', where)
    if not 0.0 <= miss <= 1.0:
        raise TasksetError(f'{where}.max_miss_rate: must be in [0, 1], got {miss}')
    overrun = raw.get('on_overrun', 'replace')
    if overrun not in OVERRUN_POLICIES:
        raise TasksetError(f'{where}.on_overrun: must be one of {OVERRUN_POLICIES}, got {overrun!r}')
    variants_raw = _mapping(raw.get('variants'), f'{where}.variants') if 'variants' in raw else None
    if not variants_raw:
        raise TasksetError(f'{where}: needs at least one entry under variants')
    variants = {str(v): _parse_variant(str(v), spec, f'{where}.variants.{v}') for v, spec in variants_raw.items()}
    compressed = raw.get('compressed_variant')
    if compressed is not None and compressed not in variants:
        raise TasksetError(f'{where}.compressed_variant: {compressed!r} is not one of {sorted(variants)}')
    gap = timing['min_interarrival_ms']
    path = ExecTime.of(raw['release_path_ms'], f'{where}.release_path_ms', raw.get('release_path_tail'),
                       raw.get('release_path_top')) \
        if raw.get('release_path_ms') is not None else None
    return Task(name=str(name), period_ms=period, deadline_ms=timing['deadline_ms'], max_miss_rate=miss,
                variants=variants, on_overrun=overrun, compressed_variant=compressed,
                min_interarrival_ms=None if gap == period else gap, deadline_from=timing['deadline_from'],
                release_path=path, stamp_source=timing['stamp_source'], source_frame_id=timing['source_frame_id'])


def _parse_platform(raw: Any) -> Platform:
    raw = _mapping(raw if raw is not None else {}, 'platform')
    cpu = _number(raw, 'cpu_workers', 'platform', default=1, integer=True)
    lanes = _number(raw, 'gpu_lanes', 'platform', default=1, integer=True)
    if cpu < 1:
        raise TasksetError(f'platform.cpu_workers: must be >= 1, got {cpu}')
    if lanes < 1:
        raise TasksetError(f'platform.gpu_lanes: must be >= 1, got {lanes}')
    budget = raw.get('storage_budget_mb')
    if budget is None:
        budget = math.inf
    else:
        budget = _number(raw, 'storage_budget_mb', 'platform')
        if budget <= 0:
            raise TasksetError(f'platform.storage_budget_mb: must be > 0, got {budget}')
    slow_raw = _mapping(raw.get('gpu_slowdown') or {}, 'platform.gpu_slowdown')
    slowdown = {1: 1.0}
    for k, v in slow_raw.items():
        try:
            lanes_k = int(k)
        except (TypeError, ValueError):
            raise TasksetError(f'platform.gpu_slowdown: keys are lane counts, got {k!r}') from None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1.0:
            raise TasksetError(f'platform.gpu_slowdown.{k}: must be a factor >= 1, got {v!r}')
        slowdown[lanes_k] = float(v)
    if slowdown[1] != 1.0:
        raise TasksetError('platform.gpu_slowdown.1: a single lane runs at its profiled speed (1.0)')
    for k in range(2, lanes + 1):
        if k not in slowdown:
            # Unmeasured packing: assume k concurrent inferences share the GPU with no
            # gain at all (each stretched k times), which keeps the analysis safe.
            slowdown[k] = float(k)
        if slowdown[k] < slowdown[k - 1]:
            raise TasksetError(f'platform.gpu_slowdown: factors must not fall as lanes are added '
                               f'({k - 1}: {slowdown[k - 1]}, {k}: {slowdown[k]})')
    gate = raw.get('job_gate', False)
    if not isinstance(gate, bool):
        raise TasksetError(f'platform.job_gate: must be true or false, got {gate!r}')
    return Platform(cpu_workers=cpu, gpu_lanes=lanes, storage_budget_mb=budget, gpu_slowdown=slowdown,
                    job_gate=gate)


def platform_for_device(platform: dict, device: str, cpus: int | None = None) -> tuple[dict, str]:
    """The platform section as this machine can honour it, and a note when it changed.

    Without a GPU the inference lanes are CPU threads: they and the CPU workers
    share the cores, so the analysis's independent CPU and GPU resources only
    hold if workers + lanes <= cores. Keep the lanes and cut the workers to fit.
    """
    cpus = cpus or os.cpu_count() or 1
    workers, lanes = int(platform.get('cpu_workers', 1)), int(platform.get('gpu_lanes', 1))
    if device != 'cpu' or workers + lanes <= cpus:
        return dict(platform), ''
    fit = max(1, cpus - lanes)
    note = (f'no GPU: the {lanes} inference lane(s) run on the CPU, so cpu_workers {workers} -> {fit} '
            f'to keep workers + lanes within the {cpus} cores')
    return {**platform, 'cpu_workers': fit}, note


def _deep_merge(base: Mapping, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last
    silently: two tasks of one name would become one)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f'key {key!r} appears twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})',
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
            except TypeError:             # an unhashable key: the base class reports it
                break
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str, what: str) -> Any:
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.load(f, Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        raise TasksetError(f'{what} {path}: no such file') from None
    except IsADirectoryError:
        raise TasksetError(f'{what} {path}: is a directory') from None
    except yaml.constructor.ConstructorError as e:
        raise TasksetError(f'{what} {path}: {e.problem}') from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        at = f' (line {mark.line + 1})' if mark is not None else ''
        raise TasksetError(f'{what} {path}: not valid YAML{at}') from None
    except UnicodeDecodeError:
        raise TasksetError(f'{what} {path}: not a text file') from None


def taskset_from_dict(raw: Any, source: str | None = None) -> TaskSet:
    raw = _mapping(raw, 'task set')
    tasks_raw = raw.get('tasks')
    if not isinstance(tasks_raw, Mapping) or not tasks_raw:
        raise TasksetError("task set: needs a non-empty 'tasks' mapping")
    platform = _parse_platform(raw.get('platform'))
    tasks = {str(name): _parse_task(str(name), spec) for name, spec in tasks_raw.items()}
    analysis = _mapping(raw.get('analysis') or {}, 'analysis')
    levels = analysis.get('percentile')
    if isinstance(levels, (list, tuple)):
        if not levels:
            raise TasksetError('analysis.percentile: an empty list; give one percentile or several')
        for i, x in enumerate(levels):        # a blank entry is a mistake, not the default
            if x is None:
                raise TasksetError(f'analysis.percentile[{i}]: blank; every entry of the list is a percentile')
        pcts = [_number({f'percentile[{i}]': x}, f'percentile[{i}]', 'analysis') for i, x in enumerate(levels)]
    else:
        pcts = [_number({'percentile': levels}, 'percentile', 'analysis', default=99.0)]
    for pct in pcts:
        if not 0.0 < pct <= 100.0:
            raise TasksetError(f'analysis.percentile: must be in (0, 100], got {pct}')
    return TaskSet(platform=platform, tasks=tasks, percentile=pcts[0], source=source,
                   extra_percentiles=tuple(dict.fromkeys(pcts[1:])))


def load_taskset(path: str) -> TaskSet:
    """Read and validate a task set file (merging its `profiles:` file if any)."""
    raw = read_yaml(path, 'task set')
    if not isinstance(raw, Mapping):
        raise TasksetError(f'task set {path}: expected a mapping at the top level')
    profiles = raw.get('profiles')
    if profiles is not None:
        if not isinstance(profiles, str):
            raise TasksetError(f'task set {path}: profiles must be a file path')
        ppath = profiles if os.path.isabs(profiles) else os.path.join(os.path.dirname(os.path.abspath(path)), profiles)
        praw = read_yaml(ppath, 'profiles file')
        if not isinstance(praw, Mapping):
            raise TasksetError(f'profiles file {ppath}: expected a mapping at the top level')
        # Measured numbers lie underneath; the task set's own keys win. Profiles of
        # tasks the set does not list are ignored.
        under = {'platform': praw.get('platform') or {}}
        if isinstance(raw.get('tasks'), Mapping) and isinstance(praw.get('tasks'), Mapping):
            under['tasks'] = {k: v for k, v in praw['tasks'].items() if k in raw['tasks']}
        raw = _deep_merge(under, raw)
    try:
        return taskset_from_dict(raw, source=path)
    except TasksetError as e:
        raise TasksetError(f'task set {path}: {e}') from None


# ---------------------------------------------------------------------------
# Derived task sets (online re-planning)


def with_task_changes(taskset: TaskSet, task: str, **changes: float) -> TaskSet:
    """The task set with one task's period_ms / deadline_ms changed (validated). A declared
    min_interarrival_ms keeps its ratio to the period (the executor's gate does the same)."""
    from dataclasses import replace
    t = taskset.task(task)
    if 'period_ms' in changes and t.min_interarrival_ms is not None:
        changes = {**changes, 'min_interarrival_ms': t.min_interarrival_ms * changes['period_ms'] / t.period_ms}
    new = replace(t, **changes)
    if not 0 < new.deadline_ms <= new.period_ms:
        raise TasksetError(f'tasks.{task}: need 0 < deadline_ms ({new.deadline_ms}) <= period_ms ({new.period_ms})')
    return replace(taskset, tasks={**taskset.tasks, task: new})


def with_time_margin(taskset: TaskSet, factor: float) -> TaskSet:
    """Every execution-time sample multiplied by `factor` (>= 1): a safety margin
    for a machine that runs slower than it was profiled (e.g. under contention)."""
    from dataclasses import replace
    if not factor >= 1.0:
        raise TasksetError(f'time margin must be >= 1, got {factor}')
    tasks = {}
    for name, t in taskset.tasks.items():
        variants = {v: replace(var, times={s: ExecTime.of((var.times[s].samples * factor).tolist(), s)
                                           for s in SEGMENTS}) for v, var in t.variants.items()}
        tasks[name] = replace(t, variants=variants)
    return replace(taskset, tasks=tasks)
