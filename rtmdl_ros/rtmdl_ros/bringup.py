"""`rtmdl bringup f1tenth`: the launch file's graph without launch_ros.

Starts the nodes of nodes/graph.py, one process each as the launch file does
(executor with the plan file, a task node per task, the simulated camera and
microphone unless --no-sim-sensors), and prints a live per-task table from
the executor's `status` until Ctrl-C, SIGTERM or --duration-s. Then it stops
the sensors, the task nodes and last the executor, each with SIGINT, and
prints the whole run: counted from the executor's activation, before which
no job is released.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

GRAPHS = ('f1tenth',)
_STOP_ORDER = ('sensor', 'task', 'executor')


def _ms(x: float) -> str:
    return f'{x:.1f}' if not math.isnan(x) else '-'


def _name_width(status) -> int:
    return max([14] + [len(t.task) + 2 for t in status.tasks])


def _table(status, whole_run: bool = False) -> str:
    """Per task: plan, jobs, misses, DMR (window and whole run), measured p99 vs the analysed bound."""
    w = _name_width(status)
    rows = [f'{"task":<{w}}{"variant":<10}{"prio":>5}{"acc":>7}{"jobs":>7}{"missed":>8}{"DMR":>8}{"run DMR":>9}'
            f'{"bound":>7}{"p50 ms":>8}{"p99 ms":>8}{"run p99":>9}{"analysed":>9}{"bad in":>7}']
    for t in sorted(status.tasks, key=lambda t: t.priority):
        ok = t.run_miss_rate <= t.max_miss_rate + 1e-9 and not (t.run_response_p99_ms > t.response_bound_ms + 1e-6)
        rows.append(f'{t.task:<{w}}{t.variant:<10}{t.priority:>5}{t.accuracy:>7.3f}{t.jobs:>7}{t.missed:>8}'
                    f'{t.miss_rate:>8.3f}{t.run_miss_rate:>9.3f}{t.max_miss_rate:>7g}{_ms(t.response_p50_ms):>8}'
                    f'{_ms(t.response_p99_ms):>8}{_ms(t.run_response_p99_ms):>9}{_ms(t.response_bound_ms):>9}'
                    f'{t.malformed:>7}' + ('' if ok or not whole_run else '  <- over its bound'))
    if not status.tasks:
        return '\n'.join(rows)
    rt = ('SCHED_FIFO' if status.realtime else 'normal scheduling') + \
        (f' ({status.realtime_note})' if status.realtime_note else '')
    rows.append(f'{status.backend}/{status.device}: {status.cpu_workers} CPU workers {status.cpu_utilisation:.0%} '
                f'busy, {status.gpu_lanes} lanes {status.gpu_utilisation:.0%} busy; {rt}')
    rows.append(f'responses from the {status.tasks[0].deadline_from} to the published result; DMR over the last '
                f'{status.tasks[0].window_s:g} s, run DMR / run p99 since activation ({status.active_s:.0f} s ago; '
                f'start-up: {status.configure_s:.1f} s loading and warming every variant)')
    return '\n'.join(rows)


def stage_table(status) -> str:
    """p50/p99 of each stage of each task's jobs over the window (ms)."""
    if not status.tasks or not status.tasks[0].stages:
        return ''
    stages = list(status.tasks[0].stages)
    w = max(14, _name_width(status))
    head = f'{"stage p50/p99":<{w}}' + ''.join(f'{s:>12}' for s in stages)
    rows = [head]
    for t in sorted(status.tasks, key=lambda t: t.priority):
        rows.append(f'{t.task:<{w}}' + ''.join(f'{_ms(a) + "/" + _ms(b):>12}'
                                               for a, b in zip(t.stage_p50_ms, t.stage_p99_ms)))
    return '\n'.join(rows)


def build_graph(taskset_file: str, backend: str, device: str, namespace: str,
                sim_sensors: bool, zoo_dir: str | None = None, executor_params: dict | None = None):
    """The graph's nodes in this process (tests; rclpy initialised with the plan as
    --params-file), from the same description as the multi-process graph. The
    executor is configured and activated; the task nodes it composed follow it in the list."""
    from .nodes.executor_node import ExecutorNode
    from .nodes.graph import graph_specs
    from .nodes.sources import CameraSource, MicrophoneSource
    from .nodes.task_nodes import CameraTaskNode, SoundTaskNode
    classes = {'rtmdl_executor': ExecutorNode, 'camera_task_node': CameraTaskNode, 'sound_task_node': SoundTaskNode,
               'camera_source': CameraSource, 'microphone_source': MicrophoneSource}
    params = {**(executor_params or {}), **({'zoo_dir': zoo_dir} if zoo_dir else {})}
    specs = graph_specs(taskset_file, None, backend, device, sim_sensors, executor_params=params)
    nodes = []
    for spec in specs:
        node = classes[spec.executable](namespace=namespace, cli_args=spec.ros_args())
        if spec.role == 'executor' and not node.start():
            node.destroy_node()
            raise RuntimeError('rtmdl_executor: configure/activate failed (see the log)')
        nodes += [node] + (node.task_nodes if spec.role == 'executor' else [])
    return nodes[0], nodes


def _close(spinner, node, thread, handlers) -> None:
    """Stop spinning, end the ROS context and give the signals back (bringup, monitor)."""
    import rclpy
    spinner.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    thread.join(2.0)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class _Stop:
    """Set by SIGINT / SIGTERM (systemd and docker stop send SIGTERM)."""

    def __init__(self):
        self.event = threading.Event()
        self.signal = None

    def __call__(self, signum, frame):
        self.signal = signum
        self.event.set()


def _spawn(spec, namespace: str, log_dir: str) -> subprocess.Popen:
    from .nodes.graph import ENTRY_POINTS
    module, func = ENTRY_POINTS[spec.executable].split(':')
    code = f'import sys; from {module} import {func}; sys.exit({func}())'
    log = open(os.path.join(log_dir, f'{spec.name}.log'), 'w')
    # RTMDL_SENSOR_NETNS: the simulated sensors in that network namespace, as on a camera
    # computer of their own (tools/two_namespaces.sh; docs/usage.md, two computers).
    netns = os.environ.get('RTMDL_SENSOR_NETNS', '') if spec.role == 'sensor' else ''
    prefix = ['ip', 'netns', 'exec', netns] if netns else []
    # Own process group: a Ctrl-C in the terminal reaches bringup only, which stops the nodes in order.
    return subprocess.Popen(prefix + [sys.executable, '-c', code] + spec.ros_args(namespace), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


# What faulthandler writes when a node's teardown hangs in C (nodes/spin._end): the node ended
# itself with status 0, after all it owns had stopped, and its log holds the stacks.
NATIVE_HANG_MARK = 'Timeout (0:'


def native_hangs(names, log_dir: str) -> list[str]:
    """The nodes among `names` whose log says their teardown was cut short in the middleware."""
    return [n for n in names if NATIVE_HANG_MARK in _tail(os.path.join(log_dir, f'{n}.log'), 60)]


def bringup(graph: str, plan_file: str | None, backend: str, device: str, namespace: str, sim_sensors: bool,
            duration_s: float | None, taskset_file: str | None = None, quiet: bool = False,
            zoo_dir: str | None = None, log_dir: str | None = None, executor_params: dict | None = None,
            camera_params: dict | None = None, summary: dict | None = None, traces_out: list | None = None,
            judge: bool = True, compose: bool = True, stop_signal: int = signal.SIGINT) -> int:
    """Run the graph; summary (if given) gets the final status ('status'), the CPU
    of the graph and of other processes ('cpu'), the start-up time ('startup_s');
    traces_out every job's trace (core.trace.JobTrace). compose: task nodes in the
    executor's process (else a process each). The nodes are stopped with the signal
    that stopped bringup, else stop_signal; summary['stops'] says how long each took."""
    from .nodes.graph import graph_specs
    from .nodes.resources import config_dir
    if graph not in GRAPHS:
        raise ValueError(f'unknown graph {graph!r}; known: {GRAPHS}')
    taskset_file = os.path.abspath(taskset_file or os.path.join(config_dir(), f'{graph}.yaml'))
    if plan_file and not os.path.isfile(plan_file):
        raise ValueError(f'plan file {plan_file}: no such file')
    params = dict(executor_params or {})
    if zoo_dir:
        params['zoo_dir'] = zoo_dir
    specs = graph_specs(taskset_file, os.path.abspath(plan_file) if plan_file else None, backend, device,
                        sim_sensors, executor_params=params, camera_params=camera_params, compose=compose)
    log_dir = log_dir or os.path.join(os.environ.get('ROS_LOG_DIR') or os.path.expanduser('~/.ros/log'),
                                      time.strftime('rtmdl_bringup_%Y%m%d_%H%M%S'))
    os.makedirs(log_dir, exist_ok=True)

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rtmdl_interfaces.msg import JobTraceArray, SchedulerStatus

    from .core.trace import JobTrace
    from .nodes.topics import STATUS_TOPIC, TRACE_TOPIC
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=['--ros-args', '-r', '__node:=rtmdl_bringup'], signal_handler_options=_no_signals())
    node = rclpy.create_node('rtmdl_bringup', namespace=namespace)
    latest = _watch_status(node, SchedulerStatus, STATUS_TOPIC)
    if traces_out is not None:
        def on_traces(msg) -> None:
            traces_out.extend(JobTrace(j.task, j.seq, j.variant, j.outcome, j.stamp.sec + j.stamp.nanosec * 1e-9,
                                       tuple(float(x) for x in j.stages_ms),
                                       tuple(float(x) for x in j.steps_ms)) for j in msg.jobs)
        node.create_subscription(JobTraceArray, TRACE_TOPIC, on_traces, 50)
    spinner = SingleThreadedExecutor()
    spinner.add_node(node)
    thread = threading.Thread(target=lambda: _spin_quietly(spinner), daemon=True)
    thread.start()

    procs = []
    t0 = time.monotonic()
    failed = ''
    meter = None
    try:
        for spec in specs:                   # the executor first: it loads while the others start
            procs.append((spec, _spawn(spec, namespace, log_dir)))
        tty = sys.stdout.isatty()
        every = 1.0 if tty else 5.0          # a log file gets a table every 5 s, a terminal a live one
        active_at = None
        while not stop.event.is_set():
            dead = [(s, p) for s, p in procs if p.poll() is not None]
            if dead:
                s, p = dead[0]
                failed = (f'{s.name} exited with status {p.returncode}; its log ({log_dir}/{s.name}.log) ends:\n'
                          + _tail(os.path.join(log_dir, f'{s.name}.log')))
                break
            if latest and active_at is None:
                # Run time counts from activation: start-up is reported apart.
                active_at = time.monotonic() - t0
                meter = CpuMeter([os.getpid()] + [p.pid for _, p in procs])
            if duration_s is not None and active_at is not None and \
                    time.monotonic() - t0 - active_at >= duration_s:
                break
            stop.event.wait(every if active_at is not None else 0.2)
            if not quiet and latest:
                status = latest[-1]
                print(('\x1b[2J\x1b[H' if tty else '') + f'rtmdl bringup {graph}  t={status.active_s:.0f} s'
                      + ('  (Ctrl-C stops)' if duration_s is None else '') + '\n' + _table(status) + '\n'
                      + stage_table(status), flush=True)
            elif not quiet and active_at is None and int((time.monotonic() - t0) * 5) % 10 == 0:
                print(f'rtmdl bringup {graph}: waiting for the executor to configure '
                      f'({time.monotonic() - t0:.0f} s)', flush=True)
    finally:
        final = latest[-1] if latest else None
        cpu = meter.cores() if meter is not None else None
        # Forward what stopped bringup (systemd and docker send SIGTERM), else Ctrl-C's SIGINT.
        codes, stops = _stop_all(procs, stop.signal or stop_signal)
        _close(spinner, node, thread, old)
    if summary is not None:
        summary.update(status=final, cpu=cpu, startup_s=active_at, stops=stops)
    slow = {n: s for n, s in stops.items() if s['killed']}
    if slow:
        print(f'rtmdl bringup: {", ".join(slow)} did not end within {STOP_TIMEOUT_S:g} s of '
              f'{signal.Signals(stop.signal or stop_signal).name} and were killed (logs in {log_dir}); where each '
              'hung, from its log:\n' + '\n'.join(f'--- {name}.log ends:\n' + _tail(
                  os.path.join(log_dir, f'{name}.log'), 40) for name in slow), file=sys.stderr, flush=True)
    if final is not None:
        print(f'final (whole run, {final.active_s:.0f} s since activation; start-up {active_at or 0:.1f} s):\n'
              + _table(final, whole_run=judge) + '\n' + stage_table(final), flush=True)
        if cpu is not None:
            models = segment_cores(final)
            print(f'CPU over the run: the graph used {cpu[0]:.2f} cores ({models:.2f} in the scheduler\'s segments, '
                  f'{max(0.0, cpu[0] - models):.2f} for everything else), other processes {cpu[1]:.2f} cores '
                  f'(of {os.cpu_count()})', flush=True)
    if failed:
        print(f'rtmdl bringup: {failed}', file=sys.stderr, flush=True)
        return 1
    bad = {s.name: c for (s, _), c in zip(procs, codes) if c not in (0, None)}
    if bad:
        print(f'rtmdl bringup: nodes did not exit cleanly: {bad} (logs in {log_dir})' + ''.join(
            f'\n--- {name}.log ends:\n' + _tail(os.path.join(log_dir, f'{name}.log'), 40)
            for name in bad if name not in slow), file=sys.stderr, flush=True)
        return 1
    hung = native_hangs([s.name for s, _ in procs], log_dir)
    if hung:
        print(f'rtmdl bringup: {", ".join(hung)} stopped, but the middleware hung in their teardown and '
              f'they ended themselves (status 0); where it hung is in their logs ({log_dir})', file=sys.stderr,
              flush=True)
    print(f'node logs: {log_dir}', flush=True)
    return 0


def monitor(namespace: str = '', duration_s: float | None = None, quiet: bool = False) -> int:
    """`rtmdl monitor`: the bringup table of a graph started elsewhere (e.g. ros2 launch),
    live, and the whole run when it stops (Ctrl-C, SIGTERM or duration_s)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rtmdl_interfaces.msg import SchedulerStatus

    from .nodes.topics import STATUS_TOPIC
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    rclpy.init(args=['--ros-args', '-r', '__node:=rtmdl_monitor'], signal_handler_options=_no_signals())
    node = rclpy.create_node('rtmdl_monitor', namespace=namespace)
    latest = _watch_status(node, SchedulerStatus, STATUS_TOPIC)
    spinner = SingleThreadedExecutor()
    spinner.add_node(node)
    thread = threading.Thread(target=lambda: _spin_quietly(spinner), daemon=True)
    thread.start()
    start, tty = time.monotonic(), sys.stdout.isatty()
    try:
        while not stop.event.is_set() and (duration_s is None or time.monotonic() - start < duration_s):
            stop.event.wait(1.0 if tty else 5.0)
            if latest and not quiet:
                print(('\x1b[2J\x1b[H' if tty else '') + f'rtmdl monitor  t={latest[-1].active_s:.0f} s\n'
                      + _table(latest[-1]) + '\n' + stage_table(latest[-1]), flush=True)
    finally:
        _close(spinner, node, thread, old)
    if not latest:
        print('rtmdl monitor: no status from an active executor' + (f' in namespace {namespace!r}' if namespace else ''),
              file=sys.stderr)
        return 1
    print(f'final (whole run, {latest[-1].active_s:.0f} s since activation):\n' + _table(latest[-1], whole_run=True)
          + '\n' + stage_table(latest[-1]), flush=True)
    return 0


def _watch_status(node, msg_type, topic) -> list:
    """A list that holds the executor's newest status."""
    latest: list = []

    def on_status(msg) -> None:
        latest[:] = [msg]
    node.create_subscription(msg_type, topic, on_status, 10)
    return latest


def _spin_quietly(spinner) -> None:
    from .nodes.spin import spin_through_destroyed
    try:
        spin_through_destroyed(spinner)
    except Exception:            # the context went down while stopping
        pass


def segment_cores(status) -> float:
    """Cores the scheduler's segments (pre, inference, post) kept busy since activation; without
    a GPU the inference lanes are CPU threads too."""
    cores = status.cpu_utilisation * status.cpu_workers
    return cores + (status.gpu_utilisation * status.gpu_lanes if status.device == 'cpu' else 0.0)


class CpuMeter:
    """Cores used over an interval by the graph's processes and by everything else
    (Linux /proc; the machine may be shared, and a timing run must say so)."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.start = self._sample()

    def _sample(self):
        try:
            with open('/proc/stat') as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            busy_all = sum(fields) - fields[3] - fields[4]       # minus idle and iowait
            ours = 0
            for pid in self.pids:
                try:
                    with open(f'/proc/{pid}/stat') as f:
                        parts = f.read().rsplit(')', 1)[1].split()
                    ours += int(parts[11]) + int(parts[12])       # utime + stime
                except (OSError, IndexError, ValueError):
                    pass
            return time.monotonic(), busy_all, ours
        except (OSError, ValueError):
            return None

    def cores(self) -> tuple[float, float] | None:
        """(cores used by the graph, cores used by other processes) since start."""
        end = self._sample()
        if self.start is None or end is None:
            return None
        hz = os.sysconf('SC_CLK_TCK')
        elapsed = max(1e-6, end[0] - self.start[0])
        ours = (end[2] - self.start[2]) / hz / elapsed
        return ours, max(0.0, (end[1] - self.start[1]) / hz / elapsed - ours)


def _no_signals():
    """rclpy must not install its own SIGINT handler here: bringup's decides the order of shutdown."""
    from rclpy.signals import SignalHandlerOptions
    return SignalHandlerOptions.NO


STOP_TIMEOUT_S = 5.0                # a node not gone this long after its signal is killed (and reported)
DUMP_WAIT_S = 0.5                   # for a hung node to write its stacks (nodes/spin.py) before the kill


def _stop_all(procs, sig=signal.SIGINT, timeout_s: float = STOP_TIMEOUT_S) -> tuple[list, dict]:
    """`sig` to the sensors, then the task nodes, then the executor; kill what hangs.
    Returns the exit codes (in procs' order) and per node {'code', 'stop_s', 'killed'}."""
    from .nodes.spin import DUMP_SIGNAL
    codes, stops = {}, {}
    for role in _STOP_ORDER:
        group = [(s, p) for s, p in procs if s.role == role]
        sent = time.monotonic()
        for s, p in group:
            if p.poll() is None:
                p.send_signal(sig)
        for s, p in group:
            killed = False
            try:
                codes[s.name] = p.wait(max(0.0, sent + timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.send_signal(DUMP_SIGNAL)           # its threads' stacks into its log: where it hung
                try:
                    p.wait(DUMP_WAIT_S)
                except subprocess.TimeoutExpired:
                    pass
                p.kill()
                codes[s.name], killed = p.wait(), True
            stops[s.name] = {'code': codes[s.name], 'stop_s': time.monotonic() - sent, 'killed': killed}
    return [codes.get(s.name) for s, _ in procs], stops
