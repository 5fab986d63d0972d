"""docs/gpu.md's measured section from a bench/gpu_check.sh run.

    python bench/gpu_report.py results/gpu --doc docs/gpu.md --plots docs/gpu

Reads what the steps left in the run folder (a missing step is reported as not
run) and replaces the text between the markers of the doc; the hand-written
rest of the doc is kept. Figures are copied from the run, never typed in.
"""
import argparse
import glob
import json
import os
import re
import shutil
import sys

import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'rtmdl_ros'))

from rtmdl_ros.report import comparisons, notes_and_comparisons, table   # noqa: E402

BEGIN, END = '<!-- gpu_check:begin -->', '<!-- gpu_check:end -->'
TARGETS = {'packing': 1.5, 'overhead_p99_ms': 0.5, 'accuracy_points': 1.0}


def _load(path, kind='json'):
    if not os.path.exists(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f) if kind == 'json' else yaml.safe_load(f)


def _pct(values, q):
    return float(np.percentile(values, q))


def machine_section(run: str) -> list[str]:
    m = _load(os.path.join(run, 'machine.json')) or {}
    steps = open(os.path.join(run, 'steps.txt'), encoding='utf-8').read().split('\n') \
        if os.path.exists(os.path.join(run, 'steps.txt')) else []
    lines = ['### Machine and steps', '',
             f'{m.get("gpu", "no GPU")} ({m.get("gpu_memory_gib", "-")} GiB, {m.get("sms", "-")} SMs), driver '
             f'{m.get("driver", "-")}, CUDA {m.get("cuda")}, cuDNN {m.get("cudnn", "-")}; {m.get("cpus")} CPUs; '
             f'Python {m.get("python")}, torch {m.get("torch")}, onnxruntime {m.get("onnxruntime", "absent")} '
             f'(providers: {", ".join(m.get("onnxruntime_providers", [])) or "-"}); device `{m.get("device")}`.', '',
             'Command: `bash bench/gpu_check.sh` (steps and seconds below).', '', '```']
    lines += [s for s in steps if s] + ['```']
    tests = os.path.join(run, 'tests.txt')
    if os.path.exists(tests):
        summary = [ln for ln in open(tests, encoding='utf-8').read().splitlines() if re.search(r'\d+ (passed|failed)', ln)]
        lines += ['', f'Tests: {summary[-1].strip("= ") if summary else "no summary line"}.']
    return lines


def profile_section(run: str) -> tuple[list[str], dict | None]:
    lines, worst = ['', '### Profiles on the GPU (`rtmdl profile --device cuda`)'], None
    for path in sorted(glob.glob(os.path.join(run, 'profiles', '*.yaml'))):
        prof = _load(path, 'yaml')
        name = os.path.basename(path)
        slow = prof['platform']['gpu_slowdown']
        packing = prof.get('packing') or {}
        lines += ['', f'`{name}`: packing slowdown (worst variant, other lanes running '
                      f'{packing.get("co_runner", "the same variant")}): '
                      + ', '.join(f'{k} lanes x{v:.2f}' for k, v in slow.items()), '',
                  '| task | variant | accuracy | storage MB | pre p50/p99 ms | infer p50/p99 ms | post p50/p99 ms | '
                  'slowdown 2/3/4 lanes |', '|---|---|---|---|---|---|---|---|']
        for task, spec in prof['tasks'].items():
            for v, e in spec['variants'].items():
                own = (packing.get('variants') or {}).get(task, {}).get(v, {})
                cells = [f'{_pct(e[s], 50):.2f} / {_pct(e[s], 99):.2f}' for s in ('pre_ms', 'infer_ms', 'post_ms')]
                lines.append(f'| {task} | {v} | {e["accuracy"]:.3f} | {e["storage_mb"]:.2f} | ' + ' | '.join(cells)
                             + ' | ' + ' / '.join(f'{own[k]:.2f}' for k in (2, 3, 4) if k in own) + ' |')
        if 'torch' in name:
            worst = slow
    if len(lines) == 2:
        lines += ['', 'Not run.']
    return lines, worst


def packing_section(run: str, plots: str) -> tuple[list[str], float | None]:
    data = _load(os.path.join(run, 'packing.json'))
    lines = ['', '### Packing throughput (`bench/bench_gpu_packing.py`)']
    if not data:
        return lines + ['', 'Not run.'], None
    rows = data['rows']
    ks = sorted({int(k) for r in rows for k in r['ratio']})
    lines += ['', f'Inferences per second on k lanes at once / on one lane, {data["backend"]}/{data["device"]}, '
                  f'{data["seconds"]} s per point, measured side by side in one run.', '',
              '| task | variant | 1 lane /s | ' + ' | '.join(f'{k} lanes' for k in ks[1:]) + ' | best |',
              '|---|---|---|' + '---|' * (len(ks) - 1) + '---|']
    for r in rows:
        ratio = {int(k): v for k, v in r['ratio'].items()}
        lines.append(f'| {r["task"]} | {r["variant"]} | {r["per_s"]["1"]:.0f} | '
                     + ' | '.join(f'{ratio[k]:.2f}x' for k in ks[1:]) + f' | {ratio[r["best_lanes"]]:.2f}x |')
    small = [r['ratio'][str(r['best_lanes'])] for r in rows if float(r['variant'][1:4]) <= 50]
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot(ks, [r['ratio'][str(k)] for k in ks], marker='o', lw=1, label=f'{r["task"]}/{r["variant"]}')
    ax.axhline(TARGETS['packing'], color='k', ls='--', lw=1)
    ax.set_xlabel('lanes'), ax.set_ylabel('throughput / one lane'), ax.set_xticks(ks)
    ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(plots, 'packing.png'), dpi=120)
    lines += ['', '![packing](gpu/packing.png)']
    return lines, (float(np.median(small)) if small else None)


def overhead_section(run: str) -> tuple[list[str], float | None]:
    data = _load(os.path.join(run, 'overhead.json'))
    lines = ['', '### Scheduler overhead on the lanes (`bench/bench_runtime_overhead.py --backend torch`)']
    if not data:
        return lines + ['', 'Not run.'], None
    lines += ['', f'Release to result minus the job\'s own segments, traffic-light detector with real segments, '
                  f'{data["lanes"]} lanes, {data["rate_hz"]:.0f} Hz per task; this is the core runtime alone '
                  '(a component figure).', '', '| run | task | jobs | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|---|']
    for label, tasks in data['runs'].items():
        for t, v in tasks.items():
            lines.append(f'| {label} | {t} | {v["jobs"]} | {v["p50_ms"]:.3f} | {v["p99_ms"]:.3f} | {v["max_ms"]:.3f} |')
    return lines, data['runs']['alone']['urgent']['p99_ms']


def evaluation_section(run: str, plots: str) -> tuple[list[str], dict]:
    results = _load(os.path.join(run, 'evaluation', 'results.json'))
    lines = ['', '### Evaluation grid on the GPU (`rtmdl evaluate --device cuda`, core runtime)']
    if not results:
        return lines + ['', 'Not run.'], {}
    over = [(r['policy'], r.get('cameras', 0), r['load'], t, v['p99_ms'], v['bound_ms'])
            for r in results['runs'] for t, v in r['tasks'].items()
            if r['analysis_schedulable'] and v['p99_ms'] is not None and v['bound_ms'] is not None]
    late = [o for o in over if o[4] > o[5]]
    lines += ['', f'Loads: extra 30 fps cameras {results["cameras"]} x background cores {results["loads"]}, '
                  f'{results["duration_s"]:.0f} s per policy and level, platform {results["platform"]}.', '',
              table(results)] + notes_and_comparisons(results, '.4f')
    lines += ['', f'Measured p99 against the analysed bound, every task of every plan the analysis accepts: '
                  f'{len(over) - len(late)} of {len(over)} within.'
              + (' Over: ' + '; '.join(f'{p} at {c} cameras, {lo} cores: {t} {a:.1f} > {b:.1f} ms'
                                       for p, c, lo, t, a, b in late) if late else '')]
    for png in glob.glob(os.path.join(run, 'evaluation', '*.png')):
        shutil.copy(png, os.path.join(plots, 'evaluation_' + os.path.basename(png)))
        lines += ['', f'![{os.path.basename(png)}](gpu/evaluation_{os.path.basename(png)})']
    cuts = [c for c in comparisons(results) if c['baseline'] == 'dm-nmc' and c['baseline_dmr'] > 0]
    return lines, {'within': (len(over) - len(late), len(over)), 'cuts': cuts}


def targets_section(packing, overhead, evaluation) -> list[str]:
    def verdict(ok):
        return 'met' if ok else 'NOT met'
    rows = ['', '### Targets of issue 13', '', '| target | measured | |', '|---|---|---|']
    rows.append(f'| packing >= {TARGETS["packing"]}x serialised, small variants, best lane count | '
                + (f'median {packing:.2f}x | {verdict(packing >= TARGETS["packing"])} |' if packing else 'not run | |'))
    within = evaluation.get('within')
    rows.append('| measured p99 <= analysed bound, every task | '
                + (f'{within[0]} of {within[1]} | {verdict(within[0] == within[1])} |' if within else 'not run | |'))
    cuts = evaluation.get('cuts')
    if cuts:
        ok = [c for c in cuts if c['dmr_reduction'] > 0 and c['accuracy_loss_points'] <= TARGETS['accuracy_points']]
        rows.append(f'| rtmdl cuts DMR vs dm-nmc at <= 1 point accuracy | {len(ok)} of {len(cuts)} levels where dm-nmc '
                    f'misses | {verdict(len(ok) == len(cuts))} |')
    else:
        rows.append('| rtmdl cuts DMR vs dm-nmc at <= 1 point accuracy | '
                    + ('dm-nmc missed nothing at these loads | NOT shown |' if evaluation else 'not run | |'))
    rows.append(f'| scheduler overhead p99 <= {TARGETS["overhead_p99_ms"]} ms on the lanes | '
                + (f'{overhead:.3f} ms | {verdict(overhead <= TARGETS["overhead_p99_ms"])} |' if overhead is not None
                   else 'not run | |'))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run')
    ap.add_argument('--doc', default='docs/gpu.md')
    ap.add_argument('--plots', default='docs/gpu')
    args = ap.parse_args()
    os.makedirs(args.plots, exist_ok=True)
    body = machine_section(args.run)
    prof, _ = profile_section(args.run)
    pack, packing = packing_section(args.run, args.plots)
    over, overhead = overhead_section(args.run)
    ev, evaluation = evaluation_section(args.run, args.plots)
    body += targets_section(packing, overhead, evaluation) + prof + pack + over + ev
    text = open(args.doc, encoding='utf-8').read()
    if BEGIN not in text or END not in text:
        sys.exit(f'{args.doc}: no {BEGIN} ... {END} markers to write between')
    head, rest = text.split(BEGIN, 1)
    text = head + BEGIN + '\n' + '\n'.join(body) + '\n' + END + rest.split(END, 1)[1]
    tmp = args.doc + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, args.doc)
    print(f'wrote {args.doc} ({len(body)} lines between the markers)')


if __name__ == '__main__':
    main()
