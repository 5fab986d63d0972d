"""Entry-point plumbing shared by the node executables."""
from __future__ import annotations

import array
import signal
import sys

import numpy as np
import rclpy


def float32_array(x: np.ndarray) -> array.array:
    """A float32[] message field value without a per-element Python check."""
    out = array.array('f')
    out.frombytes(np.ascontiguousarray(x, np.float32).tobytes())
    return out


def start_node(make, name: str, errors: tuple = (ValueError,)):
    """rclpy.init() and the node, or None after printing a start-up error in one line."""
    rclpy.init()
    try:
        return make()
    except errors as e:
        print(f'{name}: error: {e}', file=sys.stderr)
        rclpy.try_shutdown()
        return None


def spin_node(node, threads: int = 1) -> int:
    """Spin until Ctrl-C or shutdown, then clean up."""
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C in a terminal reaches every node of the process group and launch then
        # sends its own SIGINT: the second one must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            node.destroy_node()
            rclpy.try_shutdown()
        except KeyboardInterrupt:       # arrived before the line above
            pass
    return 0


def run_node(make, name: str, errors: tuple = (ValueError,), threads: int = 1) -> int:
    """Start a node and spin it; a start-up error is one line and exit status 2."""
    node = start_node(make, name, errors)
    return 2 if node is None else spin_node(node, threads)
