"""The graph's own CPU and release path at F1/10 rates, with and without extra cameras.

    python bench/bench_graph_cpu.py [--seconds 30] [--cameras 0 4] [--layouts composed separate]

Each run is `rtmdl bringup` (one process per node as launched; simulated sensors,
frames made up front so a camera costs a driver's publish) on config/f1tenth.yaml
plus N extra 30 fps 640x480 cameras, each with a traffic-light task, under one
fixed plan: every task's smallest variant, deadline-monotonic, so that the
models' work is the same whatever the layout. Layouts: `composed` (task nodes
inside the executor's process, the default) and `separate` (a process per task
node, jobs over DDS as ImageJob pictures).

Per run: the cores the graph used, split into the scheduler's segments (pre,
inference, post: the models' work) and everything else (sensors, task nodes,
transport, ROS), the CPU other processes used, and for the most urgent camera
task the p50/p99 of the path stages (sensor, node, transport) over every job of
the run, and the run's miss rate.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import yaml

os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

from rtmdl_ros.bringup import bringup  # noqa: E402
from rtmdl_ros.core.trace import PATH_STAGES  # noqa: E402
from rtmdl_ros.evaluation import with_extra_cameras  # noqa: E402
from rtmdl_ros.nodes.resources import default_taskset_file  # noqa: E402

PATH = PATH_STAGES                 # sensor, node, transport: stamp -> the scheduler's release


def smallest_dm_plan(cfg: dict, path: str) -> None:
    """Every task's smallest variant (w025_d1), priorities by deadline."""
    order = sorted(cfg['tasks'], key=lambda t: (cfg['tasks'][t]['deadline_ms'], t))
    plan = {'rtmdl_executor': {'ros__parameters': {'tasks': {
        t: {'variant': 'w025_d1', 'priority': k} for k, t in enumerate(order)}}}}
    with open(path, 'w') as f:
        yaml.safe_dump(plan, f)


def run(cameras: int, layout: str, seconds: float, folder: str) -> dict:
    cfg, _ = with_extra_cameras(yaml.safe_load(open(default_taskset_file())), cameras)
    taskset = os.path.join(folder, f'taskset_{cameras}.yaml')
    with open(taskset, 'w') as f:
        yaml.safe_dump(cfg, f)
    plan = os.path.join(folder, f'plan_{cameras}.yaml')
    smallest_dm_plan(cfg, plan)
    summary, traces = {}, []
    kwargs = {} if layout == 'composed' else {'compose': False}
    rc = bringup('f1tenth', plan, 'onnxruntime', 'cpu', '', True, seconds, taskset, quiet=True,
                 camera_params={'prerender': 30}, summary=summary, traces_out=traces, **kwargs)
    status = summary.get('status')
    if status is None or summary.get('cpu') is None:
        return {'rc': rc}
    lanes = status.gpu_utilisation * status.gpu_lanes if status.device == 'cpu' else 0.0
    segments = status.cpu_utilisation * status.cpu_workers + lanes
    urgent = min(status.tasks, key=lambda t: t.priority)
    # Stage percentiles over every job of the run (the status window holds the last 10 s only).
    mine = np.array([t.stages_ms[:len(PATH)] for t in traces if t.task == urgent.task]).reshape(-1, len(PATH))
    path = {s: (float(np.nanpercentile(mine[:, k], 50)), float(np.nanpercentile(mine[:, k], 99)))
            for k, s in enumerate(PATH)} if len(mine) else {}
    return {'rc': rc, 'graph': summary['cpu'][0], 'segments': segments, 'other': summary['cpu'][1],
            'task': urgent.task, 'dmr': urgent.run_miss_rate, 'jobs': len(mine), 'path': path}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seconds', type=float, default=30.0)
    ap.add_argument('--cameras', type=int, nargs='+', default=[0, 4])
    ap.add_argument('--layouts', nargs='+', choices=('composed', 'separate'), default=['composed', 'separate'])
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for cameras in args.cameras:
            for layout in args.layouts:
                rows.append((cameras, layout, run(cameras, layout, args.seconds, folder)))
    print(f'\n{"cameras":>7} {"layout":<9}{"graph":>7}{"models":>8}{"rest":>7}{"other":>7}  '
          f'{"most urgent":<22}{"DMR":>7}{"jobs":>6}  path p50/p99 ms: sensor, node, transport (sum of p99)')
    for cameras, layout, r in rows:
        if 'graph' not in r:
            print(f'{cameras:>7} {layout:<9} failed (status {r["rc"]})')
            continue
        path = '  '.join(f'{a:.1f}/{b:.1f}' for a, b in r['path'].values())
        print(f'{cameras:>7} {layout:<9}{r["graph"]:>7.2f}{r["segments"]:>8.2f}{r["graph"] - r["segments"]:>7.2f}'
              f'{r["other"]:>7.2f}  {r["task"]:<22}{r["dmr"]:>7.3f}{r["jobs"]:>6}  {path}  ({sum(b for _, b in r["path"].values()):.1f})')
    print(f'cores of {os.cpu_count()}; graph = every process of the graph; models = the scheduler\'s segments '
          '(CPU worker + lanes busy); rest = graph - models; other = processes outside the graph')
    sys.exit(max(r['rc'] for _, _, r in rows))


if __name__ == '__main__':
    main()
