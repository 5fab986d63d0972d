"""Tables and plots of an `rtmdl evaluate` run (results.json -> table.md + PNGs)."""
from __future__ import annotations

import os

import numpy as np


def _fmt(x, spec='.3f', none='-'):
    return none if x is None else format(x, spec)


def level_label(load: float, cameras: int = 0, short: bool = False) -> str:
    if short:                                           # for crowded plots: "1c+6"
        return f'{load:g}c' + (f'+{cameras}' if cameras else '')
    return f'{load:g} cores' + (f' + {cameras} cams' if cameras else '')


def levels(results: dict) -> list[tuple[float, int]]:
    """(background cores, extra cameras) in run order."""
    out = []
    for r in results['runs']:
        key = (r['load'], r.get('cameras', 0))
        if key not in out:
            out.append(key)
    return out


def _runs_at(results: dict, level: tuple[float, int]) -> dict[str, dict]:
    return {r['policy']: r for r in results['runs'] if (r['load'], r.get('cameras', 0)) == level}


def _is_extra(name: str, v: dict) -> bool:
    return v.get('model', name) != name


def comparisons(results: dict) -> list[dict]:
    """Per level and baseline: rtmdl's DMR reduction and accuracy loss (points)."""
    out = []
    for level in levels(results):
        runs = _runs_at(results, level)
        if 'rtmdl' not in runs:
            continue
        ours = runs['rtmdl']
        for policy, base in runs.items():
            if policy == 'rtmdl':
                continue
            reduction = (1.0 - ours['dmr'] / base['dmr']) if base['dmr'] > 0 else None
            out.append({'load': level[0], 'cameras': level[1], 'level': level_label(*level), 'baseline': policy,
                        'baseline_dmr': base['dmr'], 'rtmdl_dmr': ours['dmr'], 'dmr_reduction': reduction,
                        'accuracy_loss_points': 100.0 * (base['mean_accuracy'] - ours['mean_accuracy'])})
    return out


def notes_and_comparisons(results: dict, dmr_format: str) -> list[str]:
    """The runs' notes, then rtmdl against each baseline per level (markdown lines)."""
    notes = [f'* {r["policy"]} at {level_label(r["load"], r.get("cameras", 0))}: {r["note"]}'
             for r in results['runs'] if r['note']]
    lines = [''] + notes if notes else []
    lines += ['', '| level | baseline | baseline DMR | rtmdl DMR | DMR reduction | accuracy loss (points) |',
              '|---|---|---|---|---|---|']
    for c in comparisons(results):
        red = f'{100 * c["dmr_reduction"]:.1f}%' if c['dmr_reduction'] is not None else 'n/a (baseline misses none)'
        lines.append(f'| {c["level"]} | {c["baseline"]} | {c["baseline_dmr"]:{dmr_format}} | '
                     f'{c["rtmdl_dmr"]:{dmr_format}} | {red} | {c["accuracy_loss_points"]:+.2f} |')
    return lines


def _variants(r: dict) -> str:
    own = [f'{t}={v["variant"]} ({v["priority"]})' for t, v in r['tasks'].items() if not _is_extra(t, v)]
    extra = [v['variant'] for t, v in r['tasks'].items() if _is_extra(t, v)]
    if extra:
        counts = {v: extra.count(v) for v in sorted(set(extra))}
        own.append('extra cams ' + ', '.join(f'{n}x {v}' for v, n in counts.items()))
    return ', '.join(own)


def _extra_dmr(r: dict) -> str:
    extra = [v for t, v in r['tasks'].items() if _is_extra(t, v)]
    jobs = sum(v['jobs'] for v in extra)
    return f'{sum(v["missed"] for v in extra) / jobs:.3f}' if jobs else '-'


def table(results: dict) -> str:
    tasks = [t for t, v in results['runs'][0]['tasks'].items() if not _is_extra(t, v)] if results['runs'] else []
    lines = ['| level | policy | variants (priority) | weights MB | DMR | ' + ' | '.join(f'{t} DMR' for t in tasks)
             + ' | extra cams DMR | mean acc | norm. acc | CPU util | lane util | wait+overhead p99 ms | analysis |',
             '|---|---|---|---|---|' + '---|' * len(tasks) + '---|---|---|---|---|---|---|']
    for r in results['runs']:
        level = level_label(r['load'], r.get('cameras', 0))
        lines.append(f'| {level} | {r["policy"]}{" *" if r["note"] else ""} | {_variants(r)} | '
                     f'{_fmt(r.get("storage_mb"), ".2f")} | {r["dmr"]:.3f} | '
                     + ' | '.join(f'{r["tasks"][t]["dmr"]:.3f}' for t in tasks)
                     + f' | {_extra_dmr(r)} | {100 * r["mean_accuracy"]:.1f} | {r["mean_normalised_accuracy"]:.3f} | '
                       f'{r["cpu_utilisation"]:.2f} | {r["gpu_utilisation"]:.2f} | {_fmt(r["overhead_p99_ms"], ".2f")} | '
                       f'{"schedulable" if r["analysis_schedulable"] else "not schedulable"} |')
    lines += notes_and_comparisons(results, '.3f')
    lines += ['', '| level | policy | task | analysis bound ms (p) | simulated p99 / max ms | measured p99 / max ms | '
                  'deadline ms | DMR sim / measured |', '|---|---|---|---|---|---|---|---|']
    for r in results['runs']:
        for t, v in r['tasks'].items():
            lines.append(f'| {level_label(r["load"], r.get("cameras", 0))} | {r["policy"]} | {t} | '
                         f'{_fmt(v["bound_ms"], ".1f", "none")} | '
                         f'{_fmt(v["sim_p99_ms"], ".1f")} / {_fmt(v["sim_max_ms"], ".1f")} | '
                         f'{_fmt(v["p99_ms"], ".1f")} / {_fmt(v["max_ms"], ".1f")} | {v["deadline_ms"]:g} | '
                         f'{v["sim_dmr"]:.3f} / {v["dmr"]:.3f} |')
    return '\n'.join(lines) + '\n'


def plots(results: dict, out_dir: str) -> list[str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    policies, levs = results['policies'], levels(results)
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(levs)), 4))
    width = 0.8 / len(policies)
    for i, p in enumerate(policies):
        ys = [_runs_at(results, lev).get(p, {}).get('dmr', np.nan) for lev in levs]
        ax.bar(np.arange(len(levs)) + i * width, ys, width, label=p)
    ax.set_xticks(np.arange(len(levs)) + width * (len(policies) - 1) / 2,
                  [level_label(*lev).replace(' + ', '\n+ ') for lev in levs], fontsize=8)
    ax.set_xlabel('load level (background cores + extra cameras)')
    ax.set_ylabel('overall deadline-miss rate')
    ax.legend()
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'dmr_per_policy.png'))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in policies:
        rs = [r for r in results['runs'] if r['policy'] == p]
        ax.scatter([r['dmr'] for r in rs], [100 * r['mean_accuracy'] for r in rs], label=p)
        for r in rs:
            ax.annotate(level_label(r['load'], r.get('cameras', 0), short=True), (r['dmr'], 100 * r['mean_accuracy']),
                        fontsize=6, xytext=(3, 2), textcoords='offset points')
    ax.set_xlabel('overall deadline-miss rate')
    ax.set_ylabel('mean accuracy of the variants used (%)')
    ax.set_title('labels: background cores (c) + extra cameras', fontsize=8)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, 'accuracy_vs_dmr.png'))
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    top = levs[-1]
    tasks = [t for t, v in results['runs'][0]['tasks'].items() if not _is_extra(t, v)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6))
    for ax, t in zip(np.atleast_1d(axes), tasks):
        for p in policies:
            r = _runs_at(results, top).get(p)
            if r is None or not r['tasks'][t]['responses']:
                continue
            x = np.sort(r['tasks'][t]['responses'])
            ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=p)
        deadline = results['runs'][0]['tasks'][t]['deadline_ms']
        ax.axvline(deadline, color='k', ls='--', lw=1)
        ax.set_title(f'{t} ({level_label(*top)})')
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
