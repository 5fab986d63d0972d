"""Does every node end when asked? N bringup start/stop cycles, alternating SIGINT and SIGTERM.

    python bench/bench_shutdown.py [--cycles 50] [--run-s 3] [--out results/shutdown.json]

Each cycle starts the F1/10 graph (`rtmdl bringup`, simulated sensors, the
default plan), lets it run --run-s seconds after the executor is active, then
sends each node SIGINT or SIGTERM (sensors, task nodes, executor, as bringup
does) and waits up to 5 s per node before SIGKILL. Prints per cycle the
slowest node and its time, and the totals: exits with status 0, SIGKILLs, the
longest stop. Keep the machine otherwise idle.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile

os.environ.setdefault('ROS_DOMAIN_ID', str(100 + os.getpid() % 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cycles', type=int, default=50)
    ap.add_argument('--run-s', type=float, default=3.0)
    ap.add_argument('--out', default='results/shutdown.json')
    args = ap.parse_args()
    from rtmdl_ros.bringup import STOP_TIMEOUT_S, bringup
    cycles = []
    for k in range(args.cycles):
        sig = signal.SIGINT if k % 2 == 0 else signal.SIGTERM
        summary: dict = {}
        with tempfile.TemporaryDirectory() as logs:
            rc = bringup('f1tenth', None, 'onnxruntime', 'cpu', '', True, args.run_s, quiet=True, log_dir=logs,
                         summary=summary, stop_signal=sig)
        stops = summary.get('stops', {})
        slowest = max(stops.items(), key=lambda kv: kv[1]['stop_s'], default=('-', {'stop_s': float('nan')}))
        cycles.append({'signal': signal.Signals(sig).name, 'exit': rc, 'stops': stops})
        bad = {n: s['code'] for n, s in stops.items() if s['code'] != 0}
        print(f'cycle {k + 1:2d} {signal.Signals(sig).name:<7} bringup exit {rc}, slowest {slowest[0]} '
              f'{slowest[1]["stop_s"]:.2f} s' + (f', not 0: {bad}' if bad else ''), flush=True)
    stops = [s for c in cycles for s in c['stops'].values()]
    kills = sum(s['killed'] for s in stops)
    clean = sum(s['code'] == 0 for s in stops)
    longest = max((s['stop_s'] for s in stops), default=float('nan'))
    print(f'{len(cycles)} cycles, {len(stops)} node stops: {clean} exit 0, {kills} SIGKILL '
          f'(after {STOP_TIMEOUT_S:g} s), longest stop {longest:.2f} s; bringup exit 0 in '
          f'{sum(c["exit"] == 0 for c in cycles)} of {len(cycles)}')
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(cycles, f, indent=1)
    return 0 if kills == 0 and clean == len(stops) else 1


if __name__ == '__main__':
    sys.exit(main())
