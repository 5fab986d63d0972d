"""`rtmdl bringup` end to end: one process per node, a whole-run table, a clean exit.

Runs the real command in a subprocess (as a user or systemd would), on its own
DDS domain, and reads what it prints and what its nodes logged.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip('rclpy')

RTMDL = [sys.executable, '-c', 'import sys; from rtmdl_ros.cli import main; sys.exit(main())']


def _env(tmp_path, domain_offset):
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(150 + (os.getpid() + domain_offset) % 80)
    env['ROS_LOG_DIR'] = str(tmp_path / 'logs')
    return env


def _node_logs(tmp_path) -> str:
    return '\n'.join(p.read_text(errors='replace') for p in pathlib.Path(tmp_path / 'logs').rglob('*.log'))


def test_bringup_runs_the_graph_and_exits_cleanly(tmp_path):
    run = subprocess.run(RTMDL + ['bringup', 'f1tenth', '--duration-s', '6', '--quiet'], capture_output=True,
                         text=True, timeout=180, env=_env(tmp_path, 0))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert 'final (whole run' in out
    for task in ('traffic_light', 'sign', 'audio'):
        row = next(line for line in out.splitlines() if line.startswith(task) and 'w100_d3' in line)
        assert int(row.split()[4]) > 0, row                      # jobs published from the stamp
    logs = _node_logs(tmp_path)
    assert 'executor active' in logs and 'configured in' in logs
    assert 'the job gate on' in logs                            # config/f1tenth.yaml's platform.job_gate
    assert 'Traceback' not in out + logs and 'exception was never retrieved' not in out + logs


def test_separate_task_nodes_send_their_jobs_over_the_job_topics(tmp_path):
    """A task node per process (a camera computer's layout): its jobs cross jobs/<task>, and the
    executor takes them from that publisher (its source), refusing none."""
    run = subprocess.run(RTMDL + ['bringup', 'f1tenth', '--separate-task-nodes', '--duration-s', '6', '--quiet'],
                         capture_output=True, text=True, timeout=180, env=_env(tmp_path, 4))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    for task in ('traffic_light', 'sign', 'audio'):
        row = next(line for line in out.splitlines() if line.startswith(task) and 'w100_d3' in line)
        assert int(row.split()[4]) > 0, row
    logs = _node_logs(tmp_path)
    from rtmdl_ros.nodes.source_guard import WITH_GID      # else the source is named by its frames
    assert ('taking jobs from node' if WITH_GID else 'taking jobs from publisher of') in logs
    assert 'refused (' not in logs and 'Traceback' not in out + logs


def test_bringup_stops_cleanly_on_sigterm(tmp_path):
    proc = subprocess.Popen(RTMDL + ['bringup', 'f1tenth'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(tmp_path, 1))
    lines = []
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith('rtmdl bringup f1tenth  t='):     # the executor is active, a table came
                break
        # `rtmdl monitor` shows the same table for a graph it did not start (ros2 launch).
        mon = subprocess.run(RTMDL + ['monitor', '--duration-s', '3', '--quiet'], capture_output=True, text=True,
                             timeout=60, env=_env(tmp_path, 1))
        assert mon.returncode == 0 and 'final (whole run' in mon.stdout and 'traffic_light' in mon.stdout, \
            mon.stdout + mon.stderr
        proc.send_signal(signal.SIGTERM)                        # what systemd and docker stop send
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = ''.join(lines) + rest
    assert proc.returncode == 0, out
    assert 'final (whole run' in out
    assert 'Traceback' not in out + _node_logs(tmp_path)


def test_start_stop_cycles_end_every_node_within_5_s(tmp_path):
    """bench/bench_shutdown.py, two cycles (SIGINT, then SIGTERM): every node exits 0 within
    5 s of its signal, none killed (`make bench` runs 50)."""
    bench = pathlib.Path(__file__).resolve().parents[2] / 'bench' / 'bench_shutdown.py'
    run = subprocess.run([sys.executable, str(bench), '--cycles', '2', '--run-s', '2', '--out',
                          str(tmp_path / 'shutdown.json')], capture_output=True, text=True, timeout=300,
                         env=_env(tmp_path, 3))
    assert run.returncode == 0, run.stdout + run.stderr
    cycles = json.loads((tmp_path / 'shutdown.json').read_text())
    assert [c['signal'] for c in cycles] == ['SIGINT', 'SIGTERM']
    for c in cycles:
        assert c['exit'] == 0 and len(c['stops']) == 3     # the executor (task nodes composed), two sensors
        for name, stop in c['stops'].items():
            assert stop['code'] == 0 and not stop['killed'] and stop['stop_s'] < 5.0, (name, stop)


def _launch_available() -> bool:
    import importlib.util
    import shutil
    return shutil.which('ros2') is not None and importlib.util.find_spec('launch_ros') is not None


@pytest.mark.skipif(not _launch_available(), reason='ros2 launch (launch, launch_ros, ros2cli) is not installed')
def test_ros2_launch_starts_the_graph_every_task_publishes_and_ctrl_c_is_clean(tmp_path):
    """The real launch file (where launch_ros exists): the same graph as bringup."""
    env = _env(tmp_path, 2)
    proc = subprocess.Popen(['ros2', 'launch', 'rtmdl_ros', 'rtmdl.launch.py'], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        mon = subprocess.run(RTMDL + ['monitor', '--duration-s', '20', '--quiet'], capture_output=True, text=True,
                             timeout=90, env=env)
        assert mon.returncode == 0, mon.stdout + mon.stderr
        for task in ('traffic_light', 'sign', 'audio'):
            row = next(line for line in mon.stdout.splitlines() if line.startswith(task))
            assert int(row.split()[4]) > 0, mon.stdout           # jobs with results
        os.killpg(proc.pid, signal.SIGINT)                       # Ctrl-C in the terminal
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert out.count('process has finished cleanly') == 6, out    # executor, 3 task nodes, 2 sensors
    assert 'Traceback' not in out + _node_logs(tmp_path)


HUNG_NODE = '''
import signal, sys, time
from rclpy.node import Node
from rtmdl_ros.nodes.spin import start_node
node, executor = start_node(lambda: Node('stuck_node'), 'stuck_node')
signal.signal(signal.SIGINT, signal.SIG_IGN)       # a clean-up that never ends, as a hang would
print('ready', flush=True)
def stuck_in_clean_up():
    time.sleep(60)
stuck_in_clean_up()
'''


HUNG_TEARDOWN = '''
import time
from rclpy.node import Node
from rtmdl_ros.nodes.spin import run_node
class Stuck(Node):
    def destroy_node(self):
        print('ready', flush=True)
        time.sleep(60)                                 # a teardown that never returns, as one in C would
print('started', flush=True)
run_node(lambda: Stuck('stuck_teardown'), 'stuck_teardown')
'''


# The hang seen in CI and evaluation runs: rclpy's node fini stuck in the middleware, in C with
# the GIL held (PyDLL keeps the GIL through the call), after the node had stopped all it owns.
HUNG_NATIVE_TEARDOWN = HUNG_TEARDOWN.replace('import time', 'import ctypes').replace(
    'time.sleep(60)', 'ctypes.PyDLL(None).sleep(60)')


def _stop_during_teardown(tmp_path, script: str, domain: int):
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(tmp_path, domain))
    try:
        assert proc.stdout.readline().strip() == 'started'
        time.sleep(1.0)                                      # spinning
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=30)
        return proc.returncode, time.monotonic() - sent, out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_node_stuck_in_native_teardown_ends_itself_with_status_0_and_its_stacks(tmp_path):
    """A hang in C with the GIL held (no Python can run there) after CLEANUP_S: faulthandler
    writes the stacks, and a C timer ends the node with status 0 before bringup would kill it."""
    from rtmdl_ros.nodes.spin import CLEANUP_S, NATIVE_GRACE_S
    code, took, out = _stop_during_teardown(tmp_path, HUNG_NATIVE_TEARDOWN, 7)
    assert code == 0 and CLEANUP_S <= took < CLEANUP_S + NATIVE_GRACE_S + 0.5, (code, took, out)
    assert 'ready' in out and 'in destroy_node' in out and 'Timeout' in out, out


def test_a_node_stuck_in_native_teardown_whose_exit_timer_never_comes_is_ended_by_the_kernel(tmp_path):
    """The last resort: a timer thread that never runs (made so here) leaves SIGALRM's default
    action, armed by _end, to end the node (status -SIGALRM) before bringup's 5 s kill."""
    from rtmdl_ros.nodes.spin import CLEANUP_S, NATIVE_GRACE_S
    silent = HUNG_NATIVE_TEARDOWN.replace(
        'from rtmdl_ros.nodes.spin import run_node',
        'from rtmdl_ros.nodes import spin\nfrom rtmdl_ros.nodes.spin import run_node\n'
        'spin._NativeExit.arm = classmethod(lambda cls, s: type("Silent", (), {"cancel": lambda self: None})())')
    code, took, out = _stop_during_teardown(tmp_path, silent, 8)
    assert code == -signal.SIGALRM and CLEANUP_S + NATIVE_GRACE_S <= took < 5.0, (code, took, out)
    assert 'Timeout' in out and 'in destroy_node' in out, out


def test_a_node_whose_clean_up_hangs_ends_itself_with_its_stacks(tmp_path):
    """The clean-up after a stop signal has CLEANUP_S (nodes/spin._end): a hang in Python (our
    own clean-up) then writes every thread's stack and exits with status 1, before bringup
    would have to kill it."""
    from rtmdl_ros.nodes.spin import CLEANUP_S
    code, took, out = _stop_during_teardown(tmp_path, HUNG_TEARDOWN, 6)
    assert code == 1 and CLEANUP_S <= took < CLEANUP_S + 1.0, (code, took, out)
    assert 'ready' in out and 'in destroy_node' in out and 'still running after' in out, out


# A stop while the node still imports (seconds on a small board), sent by the node itself
# once its entry (nodes/entry.py) holds the stop signals, so the moment is certain.
STOP_WHILE_IMPORTING = '''
import importlib, os, signal, sys
signal.signal(signal.SIGINT, signal.{disposition})
from rtmdl_ros.nodes import entry
real = importlib.import_module
def importing(name):
    os.kill(os.getpid(), signal.{sig})
    return real(name)
entry.importlib = type('Importing', (), {{'import_module': staticmethod(importing)}})
sys.exit(entry.camera_main())
'''


@pytest.mark.parametrize('domain,sig,disposition', [(10, 'SIGINT', 'SIG_IGN'), (11, 'SIGINT', 'default_int_handler'),
                                                    (12, 'SIGTERM', 'default_int_handler')])
def test_a_stop_signal_while_a_node_imports_ends_it_quietly_with_status_0(tmp_path, domain, sig, disposition):
    """Held until rclpy's handler is in place, then handled as a stop during start-up is.
    Unheld, SIGINT there was a KeyboardInterrupt traceback (status -2), SIGTERM status -15,
    and SIGINT was lost where the node inherited it ignored (a shell script's background job)."""
    script = STOP_WHILE_IMPORTING.format(sig=sig, disposition=disposition)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=30,
                          env=_env(tmp_path, domain))
    assert proc.returncode == 0 and 'Traceback' not in proc.stdout + proc.stderr, (proc.returncode, proc.stderr)


def test_a_node_that_hangs_at_exit_is_killed_and_its_stacks_are_in_its_log(tmp_path):
    """Every node registers a stack dump on SIGUSR1 (nodes/spin.start_node): bringup asks for
    it before the kill, so the log of a node that hung says where."""
    from rtmdl_ros.bringup import _stop_all
    from rtmdl_ros.nodes.graph import NodeSpec
    log = tmp_path / 'stuck_node.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-c', HUNG_NODE], stdout=out, stderr=subprocess.STDOUT,
                                env=_env(tmp_path, 5))
    deadline = time.monotonic() + 60
    while 'ready' not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, log.read_text()
    codes, stops = _stop_all([(NodeSpec('camera_task_node', 'stuck_node'), proc)], signal.SIGINT, timeout_s=1.0)
    assert stops['stuck_node']['killed'] and codes == [-signal.SIGKILL]
    text = log.read_text()
    assert 'stuck_in_clean_up' in text and 'thread 0x' in text, text


def test_bringup_names_the_nodes_whose_teardown_hung_in_the_middleware(tmp_path):
    from rtmdl_ros.bringup import native_hangs
    (tmp_path / 'camera_source.log').write_text('[INFO] camera_source: ...\nTimeout (0:00:04.200000)!\n'
                                                'Thread 0x1 (most recent call first):\n  File "node.py"\n')
    (tmp_path / 'rtmdl_executor.log').write_text('[INFO] rtmdl_executor: shutting down\n')
    assert native_hangs(['camera_source', 'rtmdl_executor', 'no_log'], str(tmp_path)) == ['camera_source']
