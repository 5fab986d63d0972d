"""Per-variant latency of the shipped zoo on this machine's CPU (and CUDA when present).

    python bench/bench_zoo.py [--samples 100] [--write-docs]

For every task and variant: held-out test metric (from the checkpoint), ONNX
size, and median / p99 inference time on onnxruntime and torch (batch 1, one
thread per lane, as the runtime runs them), plus the CPU pre- and
post-processing medians. With --write-docs, docs/zoo.md and
docs/zoo_accuracy_latency.png are rewritten from the figures of this run.
"""
import argparse
import datetime
import os
import platform
import socket

import numpy as np
import torch

from rtmdl_ros.backends import create
from rtmdl_ros.models import export, zoo
from rtmdl_ros.profiling import profile_variant

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(samples: int) -> tuple[list[dict], list[str]]:
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    backends = {}
    for dev in devices:
        backends[('onnxruntime', dev)] = create('onnxruntime', dev)
        backends[('torch', dev)] = create('torch', dev)
    rows = []
    for task in zoo.tasks():
        net, meta = zoo.load(task)
        manifest = export.export_task(task, check=False)
        for spec in net.variants:
            v = spec.name
            row = {'task': task, 'variant': v, 'metric': meta['test_metric'][v], 'metric_name': meta['metric'],
                   'kib': manifest['variants'][v]['bytes'] / 1024}
            for (name, dev), backend in backends.items():
                t = profile_variant(backend, task, v, samples, warmup=10)
                row[f'{name}/{dev}'] = (float(np.median(t['infer_ms'])), float(np.percentile(t['infer_ms'], 99)))
                if name == 'onnxruntime' and dev == 'cpu':
                    row['pre'] = float(np.median(t['pre_ms']))
                    row['post'] = float(np.median(t['post_ms']))
            rows.append(row)
            print(f'{task:<14}{v:<9}{row["metric"]:>7.3f}{row["kib"]:>8.0f} KiB  '
                  + '  '.join(f'{k} {row[k][0]:.2f}/{row[k][1]:.2f} ms' for k in row if '/' in k)
                  + f'  pre {row["pre"]:.2f} post {row["post"]:.2f} ms', flush=True)
    return rows, [k for k in rows[0] if '/' in k]


def write_docs(rows: list[dict], columns: list[str], samples: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    tasks = list(dict.fromkeys(r['task'] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4))
    for ax, task in zip(axes, tasks):
        rs = [r for r in rows if r['task'] == task]
        for depth, marker in (('d1', 'o'), ('d2', 's'), ('d3', '^')):
            sel = [r for r in rs if r['variant'].endswith(depth)]
            ax.plot([r['onnxruntime/cpu'][0] for r in sel], [r['metric'] for r in sel], marker=marker,
                    label=f'depth {depth[1]} (widths 0.25..1.0)')
        ax.set_title(task)
        ax.set_xlabel('median inference, onnxruntime CPU (ms)')
        ax.set_ylabel(rs[0]['metric_name'] + ' on synthetic test split')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, 'docs', 'zoo_accuracy_latency.png'), dpi=90)

    stamp = datetime.date.today().isoformat()
    lines = [
        '# Model zoo',
        '',
        'Three weight-shared supernets ship in `rtmdl_ros/rtmdl_ros/models/zoo/`, one per F1/10 task. Each',
        'offers 12 variants: widths 0.25/0.5/0.75/1.0 (share of every layer\'s channels) x depths 1/2/3 (residual',
        'blocks run per stage). A variant is a sub-network: its convolutions read slices of the shared weight',
        'tensors; it has its own batch-norm statistics. Training (`rtmdl_ros/models/train.py`): sandwich rule',
        '(largest, smallest and two random variants per step), in-place distillation for the classifiers,',
        'ground-truth loss for every detector variant, then batch-norm recalibration per variant.',
        '',
        '| task | model | input | data (synthetic, seeded) | metric |',
        '|---|---|---|---|---|',
        '| sign | ResNet-style classifier, 16 GTSRB-style classes | 32x32 bgr crop | 6000 / 800 / 1600 rendered signs | accuracy |',
        '| traffic_light | tiny-YOLO-style grid detector (stride 8), states red/yellow/green/off | 160x120 frame | 3000 / 300 / 600 road scenes | mAP@0.5 |',
        '| audio | SBCNN-style CNN on log-mel (64 bands, 2 s) | 1x64x126 | 2400 / 400 / 800 synthetic urban sounds (UrbanSound8K classes) | accuracy |',
        '',
        'Reproduce the shipped zoo (same seeds, same data):',
        '',
        '```',
    ]
    for task in tasks:
        lines.append(zoo.load(task)[1]['command'])
    lines += [
        '```',
        '',
        f'## Accuracy, size and latency ({socket.gethostname()}, {platform.machine()}, {os.cpu_count()} CPUs, {stamp})',
        '',
        'Made by `python bench/bench_zoo.py --samples %d --write-docs` (after `source tools/env.sh`). Metric: on' % samples,
        'the held-out synthetic test split, stored in the checkpoint by training and re-checked by',
        '`test/test_zoo.py`. Latency: batch 1, one thread per lane, median / p99 over the samples.',
        'Pre/post: the CPU sub-tasks (onnxruntime run), medians. Size: the variant\'s ONNX file.'
        + ('' if any('cuda' in c for c in columns) else ' No GPU on this machine: no CUDA columns.'),
        '',
        '| task | variant | metric | size KiB | ' + ' | '.join(f'{c} ms' for c in columns) + ' | pre ms | post ms |',
        '|---|---|---|---|' + '---|' * len(columns) + '---|---|',
    ]
    for r in rows:
        lines.append(f'| {r["task"]} | {r["variant"]} | {r["metric"]:.3f} | {r["kib"]:.0f} | '
                     + ' | '.join(f'{r[c][0]:.2f} / {r[c][1]:.2f}' for c in columns)
                     + f' | {r["pre"]:.2f} | {r["post"]:.2f} |')
    lines += ['', '![accuracy vs latency](zoo_accuracy_latency.png)', '', '## Storage', '',
              'The pool on disk two ways: the shared supernet checkpoint (every variant, weights once, all',
              'batch-norm sets) versus every variant exported as its own ONNX file.', '',
              '| task | shared checkpoint MB | separate ONNX files MB | largest variant MB |', '|---|---|---|---|']
    for task in tasks:
        rep = export.storage_report(export.export_task(task, check=False))
        lines.append(f'| {task} | {rep["shared_checkpoint_mb"]:.3f} | {rep["separate_files_mb"]:.3f} | '
                     f'{rep["largest_variant_mb"]:.3f} |')
    lines += ['', 'MB = 2^20 bytes. The task set written by `rtmdl profile` gives each variant its ONNX file size as',
              '`storage_mb` and the task\'s supernet as `weight_group`, so the optimizer\'s storage bound counts',
              'the bytes a deployment holds.', '']
    with open(os.path.join(ROOT, 'docs', 'zoo.md'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--samples', type=int, default=100)
    ap.add_argument('--write-docs', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows, columns = measure(args.samples)
    if args.write_docs:
        write_docs(rows, columns, args.samples)
        print('wrote docs/zoo.md and docs/zoo_accuracy_latency.png')


if __name__ == '__main__':
    main()
