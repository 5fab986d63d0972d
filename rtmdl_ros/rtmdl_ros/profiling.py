"""Measure every zoo variant on this machine and write a task set for the engine.

Per variant: the empirical distributions of pre-processing, inference and
post-processing time (warm-up, then N samples each), on the chosen backend and
device, with the same functions and thread settings as the runtime. Then the
packing slowdown: k = 1..4 lanes running inferences concurrently, each
stretched by a factor that the engine's GPU model uses.
"""
from __future__ import annotations

import copy

import datetime
import os
import platform as host
import socket
import threading
import time

import cv2
import numpy as np
import yaml

from .backends import create
from .core.files import atomic_write
from .core.taskset import _deep_merge, load_taskset, platform_for_device, taskset_from_dict
from .data import lights, sounds
from .models import SOUND, export, zoo
from .models.envelope import DEFAULT_FRAME
from .models.families import family, timed_steps

CAMERA_W, CAMERA_H = DEFAULT_FRAME         # frames are rendered at each task's envelope (models/envelope.py)


def sample_input(task: str, rng: np.random.Generator, size: tuple[int, int] = DEFAULT_FRAME):
    """A raw sensor payload as a sensor sends it: a rendered frame, or (a clip, its rate)."""
    if family(task).input == SOUND:
        return sounds.clip(int(rng.integers(0, len(sounds.CLASSES))), rng), sounds.SAMPLE_RATE
    return lights.render(rng, *size)[0]


def run_job(fam, runner, payload) -> tuple[float, float, float, float]:
    """One job's three segments on a raw payload, and the pre segment's longest step
    (NaN: it runs in one), in milliseconds. A camera frame's pre segment is encode +
    tensor, as the executor runs it for its composed task nodes (a task node in a
    process of its own encodes before the release, which is cheaper here)."""
    longest = float('nan')
    t0 = time.perf_counter()
    if fam.input == SOUND and fam.tensor_steps is not None:
        x, longest = timed_steps(fam.tensor_steps(*payload))
    elif fam.input == SOUND:
        x = fam.tensor(*payload)
    else:
        if isinstance(payload, bytes):             # a compressed camera's frame: decoding is pre-processing
            payload = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        picture, place = fam.encode(payload, fam.default_roi)
        x = fam.tensor(picture)
    t1 = time.perf_counter()
    y = runner(x)
    t2 = time.perf_counter()
    if fam.kind == 'classify':
        fam.postprocess(y, fam.labels)
    else:
        fam.postprocess(y, place)
    t3 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, longest


def profile_variant(backend, task: str, variant: str, samples: int, warmup: int, seed: int = 0,
                    size: tuple[int, int] = DEFAULT_FRAME, compression: str = '') -> dict:
    """compression: jpeg or png where a task with this model reads a compressed camera (its frames
    are then decoded in the pre segment, as the executor does)."""
    rng = np.random.default_rng(seed)
    fam = family(task)
    inputs = [sample_input(task, rng, size) for _ in range(8)]    # a few scenes, reused: rendering is not the job
    if compression:
        inputs = [cv2.imencode('.jpg' if compression == 'jpeg' else '.png', x)[1].tobytes() for x in inputs]
    runner = backend.runner(task, variant, lane=0)
    for k in range(warmup):
        run_job(fam, runner, inputs[k % len(inputs)])
    times = np.array([run_job(fam, runner, inputs[k % len(inputs)]) for k in range(samples)])
    out = {seg: [round(float(v), 4) for v in times[:, i]] for i, seg in enumerate(('pre_ms', 'infer_ms', 'post_ms'))}
    if not np.isnan(times[:, 3]).any():          # pre runs in steps: its longest step per job
        out['pre_chunk_ms'] = [round(float(v), 4) for v in times[:, 3]]
    return out


def packing_slowdown(backend, task: str, variant: str, max_lanes: int = 4, seconds: float = 1.5,
                     co_runner: tuple[str, str] | None = None) -> dict[int, float]:
    """Mean inference time of `variant` on lane 0 while k - 1 other lanes are busy, relative
    to lane 0 alone, for k = 1..max_lanes. The other lanes run `co_runner` (a task and
    variant), by default the same variant."""
    co_task, co_variant = co_runner or (task, variant)
    x = np.zeros((1, *family(task).input_shape), np.float32)
    xo = np.zeros((1, *family(co_task).input_shape), np.float32)
    runners = [backend.runner(task, variant, lane=0)] + [backend.runner(co_task, co_variant, lane=k)
                                                          for k in range(1, max_lanes)]
    for r, inp in zip(runners, [x] + [xo] * (max_lanes - 1)):
        for _ in range(5):
            r(inp)
    means = {}
    for k in range(1, max_lanes + 1):
        durations: list[float] = []
        done = threading.Event()
        barrier = threading.Barrier(k)

        def measured() -> None:
            barrier.wait()
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                runners[0](x)
                durations.append(time.perf_counter() - t0)
            done.set()

        def busy(i: int) -> None:
            barrier.wait()
            while not done.is_set():          # keep the lane busy for the whole measurement
                runners[i](xo)
        threads = [threading.Thread(target=measured)] + [threading.Thread(target=busy, args=(i,)) for i in range(1, k)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        means[k] = float(np.mean(durations))
    slowdown, last = {1: 1.0}, 1.0
    for k in range(2, max_lanes + 1):
        # Never below 1, never falling as lanes are added: what the engine's model assumes.
        last = max(last, means[k] / means[1])
        slowdown[k] = round(last, 3)
    return slowdown


def packing_of_each(backend, profiled: dict, lanes: int, seconds: float = 0.3) -> dict:
    """Every variant's slowdown with the other lanes running the heaviest variant measured.

    The analysis stretches every inference by one factor per lane count; the
    largest over all variants bounds each of them against the worst co-runner
    (small variants lose the most when a large one fills the GPU)."""
    infer = {(t, v): float(np.mean(e['infer_ms'])) for t, p in profiled.items() for v, e in p['variants'].items()}
    heavy = max(infer, key=infer.get)
    each = {t: {v: packing_slowdown(backend, t, v, lanes, seconds, co_runner=heavy) for v in p['variants']}
            for t, p in profiled.items()}
    worst = {k: max(s[k] for per in each.values() for s in per.values()) for k in range(1, lanes + 1)}
    return {'gpu_slowdown': worst, 'co_runner': f'{heavy[0]}/{heavy[1]}', 'variants': each}


def _write_yaml_atomic(path: str, data: dict, header: str) -> None:
    def write(f):
        f.write(''.join(f'# {line}\n' for line in header.splitlines()))
        yaml.safe_dump(data, f, sort_keys=False, width=160, default_flow_style=None)
    atomic_write(path, write)


def measure_user(fam, backend, samples: int, warmup: int, seed: int = 0, progress=None,
                 size: tuple[int, int] = DEFAULT_FRAME) -> dict:
    """Profiles of a user family's variants, timed through the very segments the runtime runs."""
    from .models.jobs import make_segments, raw_decoder, sample_payload
    segments = make_segments(fam, backend, fam.labels, raw_decoder(fam))       # encode in pre, as composed
    rng = np.random.default_rng(seed)
    payloads = [lights.render(rng, *size)[0] for _ in range(8)] if fam.input != SOUND \
        else [sample_payload(fam, rng) for _ in range(4)]
    variants = {}
    for v, spec in fam.variants.items():
        times = []
        for k in range(warmup + samples):
            payload = payloads[k % len(payloads)]
            t0 = time.perf_counter()
            x = segments.pre(payload, v)
            t1 = time.perf_counter()
            y = segments.infer(v, 0, x)
            t2 = time.perf_counter()
            segments.post(y, payload, v)
            t3 = time.perf_counter()
            if k >= warmup:
                times.append(((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
        arr = np.array(times)
        variants[v] = {'accuracy': spec['accuracy'], 'storage_mb': spec['storage_mb'],
                       **({'weight_group': fam.weight_group} if fam.weight_group else {}),
                       **{seg: [round(float(x), 4) for x in arr[:, i]] for i, seg in enumerate(('pre_ms', 'infer_ms', 'post_ms'))}}
        if progress is not None:
            progress(fam.task, v)
    return {'variants': variants}


def _absolute_model_paths(base: dict, config: str) -> dict:
    """The config with user families' and sensors' files made absolute: the written task set may live elsewhere."""
    from .models.catalog import family_file
    out = copy.deepcopy(base)
    here = os.path.dirname(os.path.abspath(config))
    for spec in out['tasks'].values():
        model = spec.get('model')
        if family_file(model, here):                      # a trained family's folder
            spec['model'] = os.path.dirname(family_file(model, here))
        if isinstance(model, dict):
            if isinstance(model.get('labels_file'), str):
                model['labels_file'] = os.path.join(here, model['labels_file'])
            for v in (model.get('variants') or {}).values():
                if isinstance(v, dict) and isinstance(v.get('onnx'), str):
                    v['onnx'] = os.path.normpath(os.path.join(here, v['onnx']))
    for params in (out.get('sensors') or {}).values():    # simulated sensors' files
        src = params.get('source') if isinstance(params, dict) else None
        if isinstance(src, str) and src != 'synthetic' and not os.path.isabs(src):
            params['source'] = os.path.normpath(os.path.join(here, src))
    return out


def read_config(config: str) -> dict:
    """The task-requirements file (periods, deadlines, bounds), checked against the zoo."""
    from .models.catalog import read_task_requirements
    return read_task_requirements(config, 'config')


def measure(tasks, backend, samples: int, warmup: int, zoo_dir: str | None = None, lanes: int = 4,
            progress=None, sizes: dict | None = None, packing: str = 'probe', compressed: dict | None = None) -> dict:
    """Profiles of every variant of `tasks` on `backend`: {'platform': {gpu_slowdown}, 'tasks': ...}.

    packing 'probe': the slowdown of one mid-size variant packed with copies of
    itself (seconds; enough where lanes are CPU threads); 'each': every variant
    against the heaviest (what a GPU needs, section `packing` of the result)."""
    out = {}
    for task in tasks:
        net, meta = zoo.load(task, zoo_dir)
        manifest = export.export_task(task, zoo_dir, check=False)
        metric = meta.get('test_metric', {})
        variants = {}
        for spec in net.variants:
            v = spec.name
            entry = {'accuracy': round(float(metric.get(v, 0.0)), 4),
                     'storage_mb': manifest['variants'][v]['bytes'] / export.MIB,
                     'weight_group': f'{task}_supernet'}
            entry.update(profile_variant(backend, task, v, samples, warmup,
                                         size=(sizes or {}).get(task, DEFAULT_FRAME),
                                         compression=(compressed or {}).get(task, '')))
            variants[v] = entry
            if progress is not None:
                progress(task, v)
        out[task] = {'variants': variants}
    if packing == 'each' and lanes > 1:
        each = packing_of_each(backend, out, lanes)
        return {'platform': {'gpu_slowdown': each.pop('gpu_slowdown')}, 'tasks': out, 'packing': each,
                'probe': f'every variant against {each["co_runner"]}'}
    first = next(iter(tasks))
    probe, _ = zoo.load(first, zoo_dir)
    mid = probe.variants[len(probe.variants) // 2].name
    return {'platform': {'gpu_slowdown': packing_slowdown(backend, first, mid, max_lanes=lanes)}, 'tasks': out,
            'probe': f'{first}/{mid}'}


def default_packing(device: str) -> str:
    return 'probe' if device == 'cpu' else 'each'


def profile_steps(config: str, zoo_dir: str | None = None) -> int:
    """How many variants `profile` measures (each zoo model once, every user variant)."""
    from .models.catalog import family_variants, task_families, task_models
    base = read_config(config)
    families, models = task_families(base, config, 'config'), task_models(base)
    zoo_models = {models[t] for t, f in families.items() if not getattr(f, 'user', False)}
    users = [f for f in families.values() if getattr(f, 'user', False)]
    return sum(len(family_variants(families[next(t for t in families if models[t] == m)], zoo_dir)[0])
               for m in zoo_models) + sum(len(f.variants) for f in users)


def profile(config: str, out: str, backend_name: str = 'onnxruntime', device: str = 'cpu',
            samples: int = 200, warmup: int = 20, zoo_dir: str | None = None, lanes: int = 4,
            progress=None, packing: str | None = None) -> tuple[str, str]:
    """Profile the tasks of `config` and write (task set, profiles file) next to `out`.
    packing: see measure(); by default 'each' on a GPU, 'probe' on the CPU."""
    base = read_config(config)
    from .models.catalog import family_variants, task_envelopes, task_families, task_models
    families, models = task_families(base, config, 'config'), task_models(base)
    envelopes = task_envelopes(base, config, families)
    # A bad config fails now, not after minutes of profiling: check it with the
    # families' variants (timing unknown yet).
    taskset_from_dict(_deep_merge({'tasks': {t: {'variants': family_variants(f, zoo_dir)[0]}
                                             for t, f in families.items()}}, base), source=config)
    from .models.jobs import limit_library_threads
    limit_library_threads()                 # time the segments as the runtime runs them
    backend = create(backend_name, device, zoo_dir)
    # Each zoo model is measured once; every task takes the profile of the model it runs.
    builtin = {t: m for t, m in models.items() if not getattr(families[t], 'user', False)}
    if builtin:
        # A zoo model shared by tasks is measured at the largest frame any of them admits.
        sizes = {}
        for t, m in builtin.items():
            e = envelopes[t]
            if e.kind != SOUND and e.max_pixels > sizes.get(m, (0, 0))[0] * sizes.get(m, (0, 0))[1]:
                sizes[m] = (e.max_width, e.max_height)
        # A model read from a compressed camera by any task is timed with the decoding in its pre segment.
        from .nodes.compressed import is_compressed_topic
        compressed = {m: 'jpeg' for t, m in builtin.items() if is_compressed_topic(str(base['tasks'][t].get(
            'input_topic') or ''))}
        prof = measure(sorted(set(builtin.values()), key=list(builtin.values()).index), backend, samples, warmup,
                       zoo_dir, lanes, progress, sizes, packing or default_packing(device), compressed)
    else:
        prof = {'platform': {'gpu_slowdown': {1: 1.0}}, 'tasks': {}, 'probe': 'none (user families only)'}
    tasks = {t: copy.deepcopy(prof['tasks'][m]) for t, m in builtin.items()}   # copies: no YAML aliases
    for t, fam in families.items():
        if t not in builtin:
            e = envelopes[t]
            tasks[t] = measure_user(fam, backend, samples, warmup, progress=progress,
                                    size=(e.max_width, e.max_height))
    prof['tasks'] = {t: tasks[t] for t in families}
    probe = prof.pop('probe')
    base = _absolute_model_paths(base, config)
    machine = f'{socket.gethostname()}-{backend_name}-{device}'
    prof_path = os.path.join(os.path.dirname(os.path.abspath(out)), 'profiles', f'{machine}.yaml')
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    header = (f'Measured by `rtmdl profile` on {socket.gethostname()} ({host.machine()}, {os.cpu_count()} CPUs), '
              f'{stamp}\nbackend {backend_name}, device {device}, {samples} samples per segment after {warmup} '
              f'warm-up jobs; packing slowdown measured on {probe}. storage_mb = ONNX file size / 2^20.')
    _write_yaml_atomic(prof_path, prof, header)
    taskset = dict(base)
    taskset['platform'], platform_note = platform_for_device(base.get('platform', {}), device)
    taskset['profiles'] = os.path.relpath(prof_path, os.path.dirname(os.path.abspath(out)))
    _write_yaml_atomic(out, taskset, f'Task set for this machine: {config} + the profiles it references.\n'
                                     f'Made by: rtmdl profile --config {config} --backend {backend_name} '
                                     f'--device {device} --samples {samples}'
                                     + (f'\nplatform: {platform_note}' if platform_note else ''))
    load_taskset(out)                       # what we wrote must be a valid task set
    return out, prof_path
