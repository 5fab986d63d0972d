"""A crashed executor under `ros2 launch`: how long until results flow again, with the plan in force?

    python bench/bench_respawn.py [--taskset TS --plan PLAN] [--kills 3] [--settle-s 15]

Starts the real launch file (rtmdl.launch.py, respawn_executor:=true) on its own
DDS domain, waits until every task publishes, then kills the executor process
with SIGKILL (a segfault or the OOM killer look the same to launch) `--kills`
times. For each kill it prints the outage of the most urgent task: from the kill
to its first result of a frame stamped after the kill, and the variants the
respawned executor reports in `status` against the plan file. It ends with
Ctrl-C to launch and checks every process finished cleanly. Needs launch,
launch_ros and ros2cli (not on PyPI; the README says how to install them).
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import rclpy
import rclpy.executors
import yaml
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from process_group import interrupt, pids_matching
from rtmdl_interfaces.msg import Classification, DetectionArray, SchedulerStatus


class Watch(Node):
    def __init__(self, task: str, kind: str):
        super().__init__('respawn_watch')
        self.status, self.results = None, []          # (receipt time, stamp time)
        self.create_subscription(SchedulerStatus, 'status', lambda m: setattr(self, 'status', m), 10)
        msg_type, topic = (DetectionArray, f'detections/{task}') if kind == 'detect' else \
            (Classification, f'classifications/{task}')
        self.create_subscription(msg_type, topic, self._on_result, qos_profile_sensor_data)

    def _on_result(self, msg):
        s = msg.header.stamp
        self.results.append((time.time(), s.sec + s.nanosec * 1e-9))


def executor_pids() -> list[int]:
    """The executor process (its Python runs rtmdl_executor with --ros-args), not launch's wrapper."""
    return [pid for pid in pids_matching(b'rtmdl_executor') if pid in pids_matching(b'--ros-args')]


def plan_variants(path: str) -> dict:
    params = yaml.safe_load(open(path, encoding='utf-8'))
    body = next(iter(params.values()))['ros__parameters']
    tasks = body.get('tasks', {})
    return {t: v['variant'] for t, v in tasks.items() if isinstance(v, dict) and 'variant' in v}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--taskset')
    ap.add_argument('--plan')
    ap.add_argument('--kills', type=int, default=3)
    ap.add_argument('--settle-s', type=float, default=15.0, help='results flowing this long before each kill')
    args = ap.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=str(30 + os.getpid() % 30), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    logs = tempfile.mkdtemp(prefix='respawn_logs_')
    env['ROS_LOG_DIR'] = logs
    os.environ.update(env)
    cmd = ['ros2', 'launch', 'rtmdl_ros', 'rtmdl.launch.py', 'respawn_executor:=true'] + \
        ([f'taskset_file:={os.path.abspath(args.taskset)}'] if args.taskset else []) + \
        ([f'plan_file:={os.path.abspath(args.plan)}'] if args.plan else [])
    out = tempfile.TemporaryFile('w+')
    launch = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    from rtmdl_ros.models.catalog import read_task_requirements, task_families
    from rtmdl_ros.nodes.resources import default_taskset_file
    path = args.taskset or default_taskset_file()
    req = read_task_requirements(path)
    # The most urgent task: priority 0 in the plan, else the shortest deadline (dm order).
    plan = plan_variants(args.plan) if args.plan else {}
    prio = next(iter(yaml.safe_load(open(args.plan, encoding='utf-8')).values()))['ros__parameters']['tasks'] \
        if args.plan else {}
    top = min(req['tasks'], key=lambda t: (prio.get(t, {}).get('priority', 0), req['tasks'][t]['deadline_ms'], t))
    kind = task_families(req, path)[top].kind
    rclpy.init()
    watch = Watch(top, kind)
    spin = rclpy.executors.SingleThreadedExecutor()
    spin.add_node(watch)
    threading.Thread(target=spin.spin, daemon=True).start()
    outages, rc = [], 0
    try:
        for k in range(args.kills):
            end = time.time() + 120
            while (not watch.results or time.time() - watch.results[-1][0] > 1.0) and time.time() < end:
                time.sleep(0.2)
            time.sleep(args.settle_s)
            pids = executor_pids()
            if len(pids) != 1:
                print(f'kill {k + 1}: expected one executor process, found {pids}')
                return 1
            t_kill = time.time()
            os.kill(pids[0], signal.SIGKILL)
            end = t_kill + 120
            while time.time() < end and not any(stamp > t_kill for _, stamp in watch.results):
                time.sleep(0.05)
            after = [(t, s) for t, s in watch.results if s > t_kill]
            if not after:
                print(f'kill {k + 1}: no result within 120 s')
                return 1
            outage = after[0][0] - t_kill
            outages.append(outage)
            time.sleep(3.0)                               # a status from the new executor
            status = {t.task: t.variant for t in watch.status.tasks} if watch.status else {}
            same = all(status.get(t) == v for t, v in plan.items())
            print(f'kill {k + 1}: executor pid {pids[0]} killed; {top} results again after {outage:.2f} s '
                  f'(new pid {executor_pids()}); variants {status} '
                  + ('= the plan file' if plan and same else '(no plan file)' if not plan else f'!= plan {plan}'),
                  flush=True)
            rc |= 0 if (same or not plan) else 1
        print(f'outage over {len(outages)} kills: min {min(outages):.2f} s, max {max(outages):.2f} s, '
              f'mean {sum(outages) / len(outages):.2f} s (the respawn delay of the launch file included)')
    finally:
        interrupt(launch)
        spin.shutdown()
        watch.destroy_node()
        rclpy.try_shutdown()
        out.seek(0)
        text = out.read()
        clean = text.count('process has finished cleanly')
        print(f'launch exit code {launch.returncode}; "finished cleanly" x{clean}; '
              f'tracebacks in launch output: {text.count("Traceback")}; logs {logs}')
    return rc


if __name__ == '__main__':
    sys.exit(main())
