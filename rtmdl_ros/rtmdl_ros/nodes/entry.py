"""The nodes' console entry points (setup.py, bringup), light on purpose.

Each holds the stop signals from its first line, before the node's imports (rclpy,
onnxruntime, OpenCV: seconds on a small board), and spin.start_node releases them once
rclpy's handlers are in place. A Ctrl-C or SIGTERM during the imports then ends the node
as one during the rest of its start-up does (status 0, no traceback) instead of a
KeyboardInterrupt traceback, and is not lost where the process inherited SIGINT ignored
(a shell script's background job: Python then leaves it ignored until rclpy.init()).
"""
import importlib
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _run(target: str) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    module, func = target.split(':')
    return getattr(importlib.import_module(module), func)()


def executor_main() -> int:
    return _run('rtmdl_ros.nodes.executor_node:main')


def optimizer_main() -> int:
    return _run('rtmdl_ros.nodes.optimizer_node:main')


def camera_task_main() -> int:
    return _run('rtmdl_ros.nodes.task_nodes:camera_task_main')


def sound_task_main() -> int:
    return _run('rtmdl_ros.nodes.task_nodes:sound_task_main')


def camera_main() -> int:
    return _run('rtmdl_ros.nodes.sources:camera_main')


def microphone_main() -> int:
    return _run('rtmdl_ros.nodes.sources:microphone_main')
