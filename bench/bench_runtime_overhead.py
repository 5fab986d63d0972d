"""Scheduler overhead of the runtime (rtmdl_ros.core.runtime) per job, on CPU.

    python bench/bench_runtime_overhead.py [--jobs 2000] [--rate-hz 100]

Overhead = release to result minus the job's own segment times: the time the
job spends being queued, dispatched and handed between CPU workers and lanes.
Segments here sleep for a fixed time: like ONNX Runtime, OpenCV and numpy
they release the GIL while they work, so nothing else contributes.
  single:  one task, jobs released one at a time: pure dispatch cost;
  mixed:   three tasks released together every period on 2 workers + 1 lane:
           overhead then also holds the waits behind other tasks' segments
           (what the analysis bounds), printed per priority.
"""
import argparse
import time

import numpy as np

from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import TaskParams


def busy(ms: float) -> None:
    time.sleep(ms / 1e3)


def segments(pre_ms, infer_ms, post_ms):
    return Segments(lambda p, v: busy(pre_ms), lambda v, lane, x: busy(infer_ms), lambda y, p, v: busy(post_ms))


def run(tasks, segs, jobs, period_s):
    reports = []
    rt = Runtime(tasks, segs, 2, 1, on_result=reports.append)
    rt.start()
    next_t = time.perf_counter()
    for _ in range(jobs):
        for name in tasks:
            rt.submit(name, None)
        next_t += period_s
        time.sleep(max(0.0, next_t - time.perf_counter()))
    time.sleep(0.2)
    rt.stop()
    return reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--jobs', type=int, default=2000)
    ap.add_argument('--rate-hz', type=float, default=100.0)
    args = ap.parse_args()
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


if __name__ == '__main__':
    main()
