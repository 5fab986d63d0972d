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


def _entry(target: str):
    """A console entry for `module:function`, imported only once the signals are held."""
    def main() -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        module, func = target.split(':')
        return getattr(importlib.import_module(module), func)()
    main.target = target        # what it runs (test_graph_specs checks that it exists)
    return main


executor_main = _entry('rtmdl_ros.nodes.executor_node:main')
optimizer_main = _entry('rtmdl_ros.nodes.optimizer_node:main')
camera_task_main = _entry('rtmdl_ros.nodes.task_nodes:camera_task_main')
sound_task_main = _entry('rtmdl_ros.nodes.task_nodes:sound_task_main')
camera_main = _entry('rtmdl_ros.nodes.sources:camera_main')
microphone_main = _entry('rtmdl_ros.nodes.sources:microphone_main')
