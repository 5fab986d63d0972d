"""Entry-point plumbing shared by the node executables."""
from __future__ import annotations

import array
import faulthandler
import os
import signal
import sys
import threading
import time

import numpy as np
import rclpy

from .entry import STOP_SIGNALS      # the signals the entry points hold until start_node


def float32_array(x: np.ndarray) -> array.array:
    """A float32[] message field value without a per-element Python check."""
    out = array.array('f')
    out.frombytes(np.ascontiguousarray(x, np.float32).tobytes())
    return out


class Pacer:
    """Calls `tick` every `period_s` from a thread of its own, on absolute deadlines (a late
    tick is not made up with a burst). For periodic work that must not run on a node's ROS
    thread: a simulated sensor then costs what its publishes cost (an executor timer wakes
    rclpy's wait-set machinery each time), and the executor's status does not hold up frames."""

    def __init__(self, period_s: float, tick):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period_s, tick), daemon=True)
        self._thread.start()

    def _run(self, period_s: float, tick) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            try:
                tick()
            except Exception:
                if not rclpy.ok():                 # the context went down (a signal) before destroy_node
                    return
                raise
            deadline += period_s
            now = time.monotonic()
            if deadline < now - period_s:
                deadline = now                     # fell a whole period behind: start again from now
            self._stop.wait(max(0.0, deadline - now))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


DUMP_SIGNAL = signal.SIGUSR1
CLEANUP_S = 4.0                 # a node's clean-up after its stop signal, at most (bringup kills at 5 s)
NATIVE_GRACE_S = 0.4            # then a hang in C (GIL held) gets this long to dump its stacks and exit 0


def _stopped() -> bool:
    """True once a stop signal (rclpy's handler) has shut the context down."""
    return not rclpy.ok()


class _NativeExit:
    """A POSIX timer whose expiry calls _exit(0) from a thread glibc makes in C: it fires even
    while the main thread is stuck in C with the GIL held, where no Python code can run.
    arm() gives None where the C library has no timer_create: faulthandler then exits with 1."""

    def __init__(self, after_s: float):
        import ctypes

        class SigEvent(ctypes.Structure):        # struct sigevent, 64-bit Linux (64 bytes)
            _fields_ = [('value', ctypes.c_void_p), ('signo', ctypes.c_int), ('notify', ctypes.c_int),
                        ('function', ctypes.c_void_p), ('attribute', ctypes.c_void_p), ('pad', ctypes.c_int * 8)]

        class TimeSpec(ctypes.Structure):
            _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]

        libc = ctypes.CDLL(None)
        # glibc before 2.34 (Ubuntu 20.04, JetPack 5) keeps timer_create in librt
        rt = libc if hasattr(libc, 'timer_create') else ctypes.CDLL('librt.so.1')
        self._rt, self._id = rt, ctypes.c_void_p()
        # SIGEV_THREAD: glibc calls function(value) in a new thread; value 0 is _exit's status
        event = SigEvent(value=0, notify=2, function=ctypes.cast(libc._exit, ctypes.c_void_p).value)
        if rt.timer_create(1, ctypes.byref(event), ctypes.byref(self._id)) != 0:     # CLOCK_MONOTONIC
            raise OSError('timer_create failed')
        when = (TimeSpec(0, 0), TimeSpec(int(after_s), int(after_s % 1 * 1e9)))      # once, after after_s
        if rt.timer_settime(self._id, 0, ctypes.byref((TimeSpec * 2)(*when)), None) != 0:
            self.cancel()
            raise OSError('timer_settime failed')

    @classmethod
    def arm(cls, after_s: float):
        try:
            return cls(after_s)
        except (OSError, AttributeError, TypeError):
            return None

    def cancel(self) -> None:
        self._rt.timer_delete(self._id)


def _python_hang(seconds: float) -> None:
    faulthandler.dump_traceback(all_threads=True)
    print(f'clean-up still running after {seconds:g} s: exiting with status 1', file=sys.stderr, flush=True)
    os._exit(1)


def _end(node=None) -> None:
    # Ctrl-C in a terminal reaches every node of the process group and launch then
    # sends its own SIGINT: the second one must not cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The clean-up has CLEANUP_S, then the node ends itself, before bringup (or launch) has to kill
    # it, with every thread's stack in its log. Which status depends on where it hangs:
    # - in Python (our own clean-up: a join, a lock, a loop) a watchdog thread gets the GIL and
    #   exits with status 1: that is a bug of ours;
    # - in C with the GIL held, where no Python runs: seen about once in several hundred stops
    #   (CI, evaluation runs), a sensor's destroy_node stuck in rclpy's node fini in the
    #   middleware after every publisher was gone. The node has stopped all it owns, so
    #   faulthandler's C watchdog writes the stacks ("Timeout") and a C timer exits with status 0.
    sys.stdout.flush()
    sys.stderr.flush()
    watchdog = threading.Timer(CLEANUP_S, _python_hang, (CLEANUP_S,))
    watchdog.daemon = True
    watchdog.start()
    native = _NativeExit.arm(CLEANUP_S + NATIVE_GRACE_S)
    faulthandler.dump_traceback_later(CLEANUP_S + NATIVE_GRACE_S / 2, exit=native is None)
    # Should the C library's timer thread not run (it is a new thread, which can fail to start),
    # the kernel ends the node: SIGALRM's default action, status -14, still before bringup's kill.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, CLEANUP_S + 2 * NATIVE_GRACE_S)
    try:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    except KeyboardInterrupt:           # arrived before the line above
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        watchdog.cancel()
        faulthandler.cancel_dump_traceback_later()
        if native is not None:
            native.cancel()


def settle_heap() -> None:
    """Move every object alive now (modules, loaded models, prerendered frames) out of the
    cyclic collector's reach. A full collection holds the GIL while it walks them: measured
    in the executor, 70-140 ms pauses every few seconds, each a burst of missed frames
    (a 120 ms stall in the sensor stage, 4 misses in 450 jobs). Afterwards a collection
    walks only what was made since: what a node makes per message is short-lived."""
    import gc
    gc.collect()
    gc.freeze()


def start_node(make, name: str, errors: tuple = (ValueError,), threads: int = 1):
    """rclpy.init(), an executor, then the node: (node, executor).

    A start-up error is one line and exit status 2; a stop signal at any point of
    start-up ends the process quietly with status 0, as one during spin does. The
    executor is made first, with the stop signals held for that moment: made after a
    signal, on the dead context, it would fail in its constructor with tracebacks.
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    # `kill -USR1 <pid>` writes every thread's Python stack into the node's log, even with the
    # main thread stuck in C: bringup does so before it kills a node that hangs at exit.
    faulthandler.register(DUMP_SIGNAL, all_threads=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)      # (held already when entry.py started us)
    try:
        rclpy.init()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        raise
    try:
        # A stop signal held until now arrives here, at rclpy's handler: it shuts the context
        # down and, for SIGINT, raises KeyboardInterrupt right at this call.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        node = make()
        settle_heap()                         # part of start-up: a stop signal here ends quietly too
    except (Exception, KeyboardInterrupt) as e:
        if _stopped() or isinstance(e, KeyboardInterrupt):
            _end()
            sys.exit(0)
        if not isinstance(e, errors):
            raise
        print(f'{name}: error: {e}', file=sys.stderr)
        _end()
        sys.exit(2)
    executor.add_node(node)
    return node, executor


def spin_through_destroyed(executor) -> None:
    """executor.spin(), resumed where rclpy before 9 (Jazzy, Humble) trips over an entity
    that another thread destroyed while it built its wait set (InvalidHandle from a
    lifecycle transition or a dropped subscription): the next wait set no longer has it."""
    from rclpy.exceptions import InvalidHandle
    while True:
        try:
            executor.spin()
            return
        except InvalidHandle:
            if not executor.context.ok():
                return


def spin_node(node, executor, prepare=None) -> int:
    """Spin until a stop signal or shutdown, then clean up: exit status 0.

    `prepare` (the executor node's configure + activate) runs first; False from it,
    not caused by a signal, is status 1.
    """
    from rclpy.clock import Clock, ClockType
    from rclpy.executors import ExternalShutdownException
    code = 0
    try:
        # rclpy's signal thread triggers the executor's guard condition, then shuts the
        # context down; a wait set built between the two blocks forever on an idle node
        # (seen: a task node ignoring SIGTERM). A steady 0.5 s tick bounds that wait, so
        # spin() sees the dead context. Steady: a ROS-time timer stops under use_sim_time.
        node.create_timer(0.5, lambda: None, clock=Clock(clock_type=ClockType.STEADY_TIME))
        if prepare is not None and not prepare():
            code = 0 if _stopped() else 1
        else:
            spin_through_destroyed(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if not _stopped():
            raise
        # the same race the other way round: "failed to initialize wait set" on the dead context
    finally:
        _end(node)
    return code


def run_node(make, name: str, errors: tuple = (ValueError,), threads: int = 1) -> int:
    """Start a node and spin it (see start_node and spin_node for the exit status)."""
    return spin_node(*start_node(make, name, errors, threads))
