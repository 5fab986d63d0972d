"""Tables and plots of an `rtmdl evaluate` run (results.json -> table.md + PNGs)."""
from __future__ import annotations

import os

import numpy as np


def _fmt(x, spec='.3f', none='-'):
    return none if x is None else format(x, spec)


def comparisons(results: dict) -> list[dict]:
    """Per load and baseline: rtmdl's DMR reduction and accuracy loss (points)."""
    out = []
    for load in results['loads']:
        runs = {r['policy']: r for r in results['runs'] if r['load'] == load}
        if 'rtmdl' not in runs:
            continue
        ours = runs['rtmdl']
        for policy, base in runs.items():
            if policy == 'rtmdl':
                continue
            reduction = (1.0 - ours['dmr'] / base['dmr']) if base['dmr'] > 0 else None
            out.append({'load': load, 'baseline': policy, 'baseline_dmr': base['dmr'], 'rtmdl_dmr': ours['dmr'],
                        'dmr_reduction': reduction,
                        'accuracy_loss_points': 100.0 * (base['mean_accuracy'] - ours['mean_accuracy'])})
    return out


def table(results: dict) -> str:
    tasks = list(results['runs'][0]['tasks']) if results['runs'] else []
    lines = ['| load (cores) | policy | variants (priority) | DMR | ' + ' | '.join(f'{t} DMR' for t in tasks)
             + ' | mean acc | norm. acc | CPU util | lane util | wait+overhead p99 ms | analysis |',
             '|---|---|---|---|' + '---|' * len(tasks) + '---|---|---|---|---|---|']
    for r in results['runs']:
        variants = ', '.join(f'{t}={v["variant"]} ({v["priority"]})' for t, v in r['tasks'].items())
        lines.append(f'| {r["load"]:g} | {r["policy"]}{" *" if r["note"] else ""} | {variants} | {r["dmr"]:.3f} | '
                     + ' | '.join(f'{r["tasks"][t]["dmr"]:.3f}' for t in tasks)
                     + f' | {100 * r["mean_accuracy"]:.1f} | {r["mean_normalised_accuracy"]:.3f} | '
                       f'{r["cpu_utilisation"]:.2f} | {r["gpu_utilisation"]:.2f} | {_fmt(r["overhead_p99_ms"], ".2f")} | '
                       f'{"schedulable" if r["analysis_schedulable"] else "not schedulable"} |')
    notes = [f'* {r["policy"]} at load {r["load"]:g}: {r["note"]}' for r in results['runs'] if r['note']]
    lines += [''] + notes if notes else []
    lines += ['', '| load | baseline | baseline DMR | rtmdl DMR | DMR reduction | accuracy loss (points) |',
              '|---|---|---|---|---|---|']
    for c in comparisons(results):
        red = f'{100 * c["dmr_reduction"]:.1f}%' if c['dmr_reduction'] is not None else 'n/a (baseline misses none)'
        lines.append(f'| {c["load"]:g} | {c["baseline"]} | {c["baseline_dmr"]:.3f} | {c["rtmdl_dmr"]:.3f} | {red} | '
                     f'{c["accuracy_loss_points"]:+.2f} |')
    lines += ['', '| load | policy | task | analysis bound ms (p) | simulated p99 / max ms | measured p99 / max ms | '
                  'deadline ms | DMR sim / measured |', '|---|---|---|---|---|---|---|---|']
    for r in results['runs']:
        for t, v in r['tasks'].items():
            lines.append(f'| {r["load"]:g} | {r["policy"]} | {t} | {_fmt(v["bound_ms"], ".1f", "none")} | '
                         f'{_fmt(v["sim_p99_ms"], ".1f")} / {_fmt(v["sim_max_ms"], ".1f")} | '
                         f'{_fmt(v["p99_ms"], ".1f")} / {_fmt(v["max_ms"], ".1f")} | {v["deadline_ms"]:g} | '
                         f'{v["sim_dmr"]:.3f} / {v["dmr"]:.3f} |')
    return '\n'.join(lines) + '\n'


def plots(results: dict, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    policies, loads = results['policies'], results['loads']
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(policies)
    for i, p in enumerate(policies):
        ys = [next((r['dmr'] for r in results['runs'] if r['policy'] == p and r['load'] == load), np.nan)
              for load in loads]
        ax.bar(np.arange(len(loads)) + i * width, ys, width, label=p)
    ax.set_xticks(np.arange(len(loads)) + width * (len(policies) - 1) / 2, [f'{load:g}' for load in loads])
    ax.set_xlabel('background load (cores)')
    ax.set_ylabel('overall deadline-miss rate')
    ax.legend()
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'dmr_per_policy.png'))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for p in policies:
        rs = [r for r in results['runs'] if r['policy'] == p]
        ax.scatter([r['dmr'] for r in rs], [100 * r['mean_accuracy'] for r in rs], label=p)
        for r in rs:
            ax.annotate(f'{r["load"]:g}', (r['dmr'], 100 * r['mean_accuracy']), fontsize=7)
    ax.set_xlabel('overall deadline-miss rate')
    ax.set_ylabel('mean accuracy of the variants used (%)')
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'accuracy_vs_dmr.png'))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    top = max(loads)
    tasks = list(results['runs'][0]['tasks'])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6))
    for ax, t in zip(np.atleast_1d(axes), tasks):
        for p in policies:
            r = next((r for r in results['runs'] if r['policy'] == p and r['load'] == top), None)
            if r is None or not r['tasks'][t]['responses']:
                continue
            x = np.sort(r['tasks'][t]['responses'])
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=p)
        deadline = results['runs'][0]['tasks'][t]['deadline_ms']
        ax.axvline(deadline, color='k', ls='--', lw=1)
        ax.set_title(f'{t} (load {top:g})')
        ax.set_xlabel('response time of completed jobs (ms)')
        ax.set_ylabel('CDF')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'response_cdf.png'))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def write_report(results: dict, out_dir: str) -> list[str]:
    with open(os.path.join(out_dir, 'table.md'), 'w', encoding='utf-8') as f:
        f.write(table(results))
    return [os.path.join(out_dir, 'table.md')] + plots(results, out_dir)
