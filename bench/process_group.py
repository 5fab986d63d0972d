"""Stopping a graph the benchmarks started in its own session, as Ctrl-C in its terminal would."""
import os
import signal
import subprocess


def interrupt(proc: subprocess.Popen, timeout_s: float = 60.0) -> int | None:
    """SIGINT to the process group, then SIGKILL if it has not exited within timeout_s; its exit code."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return None
