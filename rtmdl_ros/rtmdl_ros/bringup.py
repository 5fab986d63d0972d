"""`rtmdl bringup f1tenth`: the launch file's graph in one process, without launch_ros.

Starts the same nodes from the same files as launch/f1tenth.launch.py: the
executor (config/f1tenth.yaml + the plan parameters file), the three task
nodes, and the synthetic camera and microphone (unless --no-sim-sensors), and
prints a live per-task table until Ctrl-C or --duration-s.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time

GRAPHS = ('f1tenth',)


def _table(status) -> str:
    rows = [f'{"task":<14}{"variant":<10}{"prio":>5}{"acc":>7}{"jobs":>7}{"missed":>8}{"DMR":>8}'
            f'{"bound":>7}{"p50 ms":>8}{"p99 ms":>8}{"bad in":>7}']
    for t in sorted(status.tasks, key=lambda t: t.priority):
        p50 = f'{t.response_p50_ms:.1f}' if not math.isnan(t.response_p50_ms) else '-'
        p99 = f'{t.response_p99_ms:.1f}' if not math.isnan(t.response_p99_ms) else '-'
        rows.append(f'{t.task:<14}{t.variant:<10}{t.priority:>5}{t.accuracy:>7.3f}{t.jobs:>7}{t.missed:>8}'
                    f'{t.miss_rate:>8.3f}{t.max_miss_rate:>7g}{p50:>8}{p99:>8}{t.malformed:>7}')
    rows.append(f'{status.backend}/{status.device}: {status.cpu_workers} CPU workers {status.cpu_utilisation:.0%} busy, '
                f'{status.gpu_lanes} lanes {status.gpu_utilisation:.0%} busy; DMR over the last '
                f'{status.tasks[0].window_s:g} s' if status.tasks else '')
    return '\n'.join(rows)


def build_graph(taskset_file: str, backend: str, device: str, namespace: str,
                sim_sensors: bool, zoo_dir: str | None = None):
    """The graph's nodes (rclpy must be initialised, with the plan file as --params-file)."""
    from rclpy.parameter import Parameter

    from .nodes.executor_node import ExecutorNode
    from .nodes.sources import CameraSource, MicrophoneSource
    from .nodes.task_nodes import AudioNode, SignNode, TrafficLightNode
    common = [Parameter('taskset_file', value=taskset_file)]
    executor_params = common + [Parameter('backend', value=backend), Parameter('device', value=device)]
    if zoo_dir:
        executor_params.append(Parameter('zoo_dir', value=zoo_dir))
    executor = ExecutorNode(namespace=namespace, parameter_overrides=executor_params)
    nodes = [executor] + [cls(namespace=namespace, parameter_overrides=common)
                          for cls in (TrafficLightNode, SignNode, AudioNode) if cls.task in executor.settings]
    if sim_sensors:
        nodes += [CameraSource(namespace=namespace), MicrophoneSource(namespace=namespace)]
    return executor, nodes


def bringup(graph: str, plan_file: str | None, backend: str, device: str, namespace: str, sim_sensors: bool,
            duration_s: float | None, taskset_file: str | None = None, quiet: bool = False,
            zoo_dir: str | None = None) -> int:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from .nodes.resources import config_dir
    if graph not in GRAPHS:
        raise ValueError(f'unknown graph {graph!r}; known: {GRAPHS}')
    taskset_file = taskset_file or os.path.join(config_dir(), f'{graph}.yaml')
    if plan_file and not os.path.isfile(plan_file):
        raise ValueError(f'plan file {plan_file}: no such file')
    args = ['--ros-args', '--params-file', plan_file] if plan_file else []
    rclpy.init(args=args)
    try:
        executor_node, nodes = build_graph(taskset_file, backend, device, namespace, sim_sensors, zoo_dir)
    except BaseException:
        rclpy.try_shutdown()
        raise
    spinner = MultiThreadedExecutor(num_threads=4)
    for n in nodes:
        spinner.add_node(n)
    thread = threading.Thread(target=spinner.spin, daemon=True)
    thread.start()
    tty = sys.stdout.isatty()
    start = time.monotonic()
    try:
        every = 1.0 if tty else 5.0            # a log file gets a table every 5 s, a terminal a live one
        while duration_s is None or time.monotonic() - start < duration_s:
            time.sleep(every if duration_s is None else min(every, max(0.0, duration_s - (time.monotonic() - start))))
            if not quiet:
                table = _table(executor_node.status_message())
                print(('\x1b[2J\x1b[H' if tty else '') + f'rtmdl bringup {graph}  t={time.monotonic() - start:.0f} s'
                      + ('  (Ctrl-C stops)' if duration_s is None else '') + '\n' + table, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        final = _table(executor_node.status_message())
        spinner.shutdown()
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
        thread.join(5.0)
    print('final:\n' + final, flush=True)
    return 0
