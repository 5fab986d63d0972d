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


def pids_matching(pattern: bytes) -> list[int]:
    """Processes whose command line holds `pattern` (Linux /proc)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if pattern in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def rss_mb(pattern: bytes) -> float:
    """Summed resident memory of the processes whose command line holds `pattern`."""
    total = 0.0
    for pid in pids_matching(pattern):
        try:
            with open(f'/proc/{pid}/status') as f:
                total += next(int(line.split()[1]) for line in f if line.startswith('VmRSS')) / 1024
        except (OSError, StopIteration):
            pass
    return total
