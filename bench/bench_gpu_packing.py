"""Packing throughput: inferences per second on k concurrent lanes vs one lane (serialised).

    python bench/bench_gpu_packing.py [--backend torch] [--device cuda] [--lanes 4] [--seconds 2]
                                      [--variants small|all] [--json OUT.json]

For each vision zoo family's variants (default: the small ones, width <= 0.5),
one lane runs inferences back to back for --seconds (serialised: what a GPU
without packing gives), then k = 2..lanes lanes run them at once, each lane on
its own thread and CUDA stream (or session). Ratio = throughput(k) /
throughput(1), measured side by side in one run. The issue 13 target is
>= 1.5x at the best k for the small variants on a GPU. On a CPU the lanes are
threads on the cores and the ratio is bounded by the core count.
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'rtmdl_ros'))

from rtmdl_ros.backends import create                      # noqa: E402
from rtmdl_ros.models import IMAGE                         # noqa: E402
from rtmdl_ros.models.catalog import zoo_variants          # noqa: E402
from rtmdl_ros.models.families import FAMILIES             # noqa: E402
from rtmdl_ros.models.jobs import limit_library_threads    # noqa: E402

SOUND_FREE = [t for t, f in FAMILIES.items() if f.input == IMAGE]   # no librosa needed on a GPU box


def throughput(runners, x, seconds: float) -> float:
    counts = [0] * len(runners)
    barrier = threading.Barrier(len(runners))

    def lane(i):
        barrier.wait()
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            runners[i](x)
            counts[i] += 1
    threads = [threading.Thread(target=lane, args=(i,)) for i in range(len(runners))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--backend', default='torch', choices=('torch', 'onnxruntime'))
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--lanes', type=int, default=4)
    ap.add_argument('--seconds', type=float, default=2.0)
    ap.add_argument('--variants', choices=('small', 'all'), default='small')
    ap.add_argument('--json', help='write the figures here')
    args = ap.parse_args()
    limit_library_threads()
    backend = create(args.backend, args.device)
    rows = []
    for task in SOUND_FREE:
        names = sorted(zoo_variants(task, None)[0])
        if args.variants == 'small':
            names = [v for v in names if float(v[1:4]) / 100 <= 0.5]
        x = np.zeros((1, *FAMILIES[task].input_shape), np.float32)
        for v in names:
            runners = [backend.runner(task, v, lane=k) for k in range(args.lanes)]
            for r in runners:
                for _ in range(10):
                    r(x)
            per_k = {k: throughput(runners[:k], x, args.seconds) for k in range(1, args.lanes + 1)}
            ratio = {k: per_k[k] / per_k[1] for k in per_k}
            best = max(ratio, key=ratio.get)
            rows.append({'task': task, 'variant': v, 'per_s': per_k, 'ratio': ratio, 'best_lanes': best})
            print(f'{task}/{v}: serialised {per_k[1]:.0f}/s; '
                  + ', '.join(f'{k} lanes {per_k[k]:.0f}/s ({ratio[k]:.2f}x)' for k in per_k if k > 1)
                  + f'; best {best} lanes {ratio[best]:.2f}x', flush=True)
    best = [r['ratio'][r['best_lanes']] for r in rows]
    print(f'packing ratio at the best lane count: median {np.median(best):.2f}x, min {min(best):.2f}x '
          f'over {len(rows)} variants ({args.backend}/{args.device}, {os.cpu_count()} CPUs)')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'backend': args.backend, 'device': args.device, 'seconds': args.seconds, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
