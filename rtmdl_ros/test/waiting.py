"""Polling for a condition in tests that run threads or DDS: no fixed sleeps."""
import time


def wait_for(cond, timeout: float = 10.0, poll_s: float = 0.005) -> bool:
    """True as soon as cond() holds, False after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll_s)
    return False
