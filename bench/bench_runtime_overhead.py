"""Scheduler overhead of the runtime (rtmdl_ros.core.runtime) per job, on CPU.

    python bench/bench_runtime_overhead.py [--jobs 2000] [--rate-hz 100]
    python bench/bench_runtime_overhead.py --backend torch --device cuda [--lanes 2] [--json OUT]

Overhead = release to result minus the job's own segment times: the time the
job spends being queued, dispatched and handed between CPU workers and lanes.
Segments here sleep for a fixed time: like ONNX Runtime, OpenCV and numpy
they release the GIL while they work, so nothing else contributes.
  single:  one task, jobs released one at a time: pure dispatch cost;
  mixed:   three tasks released together every period on 2 workers + 1 lane:
           overhead then also holds the waits behind other tasks' segments
           (what the analysis bounds), printed per priority.
  real (--backend/--device): the traffic-light detector's real segments (a
           640x480 frame, pre and post on CPU workers, inference on the lanes)
           for two tasks released together on `--lanes` lanes; overhead p99 per
           task and the lanes' work. The issue 13 target on CUDA lanes is p99 <= 0.5 ms
           for the most urgent task.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'rtmdl_ros'))

from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import TaskParams


def busy(ms: float) -> None:
    time.sleep(ms / 1e3)


def segments(pre_ms, infer_ms, post_ms):
    return Segments(lambda p, v: busy(pre_ms), lambda v, lane, x: busy(infer_ms), lambda y, p, v: busy(post_ms))


def run(tasks, segs, jobs, period_s, workers=2, lanes=1, payload=None):
    reports = []
    rt = Runtime(tasks, segs, workers, lanes, on_result=reports.append)
    rt.start()
    next_t = time.perf_counter()
    for _ in range(jobs):
        for name in tasks:
            rt.submit(name, payload)
        next_t += period_s
        time.sleep(max(0.0, next_t - time.perf_counter()))
    time.sleep(0.2)
    rt.stop()
    return reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--jobs', type=int, default=2000)
    ap.add_argument('--rate-hz', type=float, default=100.0)
    ap.add_argument('--backend', choices=('torch', 'onnxruntime'), help='real segments on this backend')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--lanes', type=int, default=2)
    ap.add_argument('--json', help='write the real-segment figures here')
    args = ap.parse_args()
    if args.backend:
        return real(args)
    period = 1.0 / args.rate_hz
    single = run({'a': TaskParams(0, 1000.0, 'v')}, {'a': segments(0.5, 1.0, 0.2)}, args.jobs, period)
    o = np.array([r.overhead_ms for r in single])
    print(f'single task, {len(o)} jobs: overhead p50 {np.percentile(o, 50):.3f} ms, '
          f'p99 {np.percentile(o, 99):.3f} ms, max {o.max():.3f} ms')
    tasks = {'high': TaskParams(0, 1000.0, 'v'), 'mid': TaskParams(1, 1000.0, 'v'), 'low': TaskParams(2, 1000.0, 'v')}
    mixed = run(tasks, {n: segments(0.5, 1.0, 0.2) for n in tasks}, args.jobs // 2, period * 2)
    for name in tasks:
        o = np.array([r.overhead_ms for r in mixed if r.task == name])
        print(f'mixed, {name:<4} priority, {len(o)} jobs: overhead (incl. waiting) p50 {np.percentile(o, 50):.3f} ms, '
              f'p99 {np.percentile(o, 99):.3f} ms')


def real(args) -> None:
    import numpy as np

    from rtmdl_ros.backends import create
    from rtmdl_ros.data import lights
    from rtmdl_ros.models.catalog import zoo_variants
    from rtmdl_ros.models.families import family
    from rtmdl_ros.models.jobs import limit_library_threads, make_segments, raw_decoder, warm_up
    limit_library_threads()
    backend = create(args.backend, args.device)
    fam = family('traffic_light')
    labels = zoo_variants('traffic_light', None)[1]
    seg = make_segments(fam, backend, labels, raw_decoder(fam))
    warm_up(fam, backend, labels, ['w050_d2', 'w100_d3'], args.lanes)
    tasks = {'urgent': TaskParams(0, 1000.0, 'w050_d2'), 'other': TaskParams(1, 1000.0, 'w100_d3')}
    frame = lights.render(np.random.default_rng(0), 640, 480)[0]
    out = {'backend': args.backend, 'device': args.device, 'lanes': args.lanes, 'rate_hz': args.rate_hz / 2,
           'cpus': os.cpu_count(), 'runs': {}}
    # alone: pure scheduler overhead; together: plus waits behind the other task's segments.
    for label, names in (('alone', ['urgent']), ('together', list(tasks))):
        reports = run({n: tasks[n] for n in names}, {n: seg for n in names}, args.jobs // 2, 2.0 / args.rate_hz,
                      2, args.lanes, frame)
        out['runs'][label] = {}
        for name in names:
            o = np.array([r.overhead_ms for r in reports if r.task == name])
            out['runs'][label][name] = {'jobs': len(o), 'p50_ms': float(np.percentile(o, 50)),
                                        'p99_ms': float(np.percentile(o, 99)), 'max_ms': float(o.max())}
            print(f'real segments ({args.backend}/{args.device}, {args.lanes} lanes), {label}, {name:<6} {len(o)} jobs: '
                  f'overhead p50 {np.percentile(o, 50):.3f} ms, p99 {np.percentile(o, 99):.3f} ms, max {o.max():.3f} ms')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(out, f, indent=1)


if __name__ == '__main__':
    main()
