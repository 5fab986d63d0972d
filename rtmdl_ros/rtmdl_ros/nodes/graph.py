"""The graph a task set needs, described once for the launch file and `rtmdl bringup`.

One process per node, as a launch file starts them: the executor's scheduler
threads then share their process only with its own single ROS thread, and the
sensors' and task nodes' callbacks run in processes of their own, which the
executor's SCHED_FIFO threads preempt.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.taskset import TasksetError, read_yaml

# executable -> 'module:function' (the console scripts of setup.py)
ENTRY_POINTS = {
    'rtmdl_executor': 'rtmdl_ros.nodes.executor_node:main',
    'camera_task_node': 'rtmdl_ros.nodes.task_nodes:camera_task_main',
    'audio_task_node': 'rtmdl_ros.nodes.task_nodes:audio_task_main',
    'camera_source': 'rtmdl_ros.nodes.sources:camera_main',
    'microphone_source': 'rtmdl_ros.nodes.sources:microphone_main',
}
TASK_NODE_FOR_INPUT = {'image': 'camera_task_node', 'audio': 'audio_task_node'}


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    params: dict = field(default_factory=dict)
    remaps: tuple = ()                 # (from, to)
    params_file: str | None = None     # e.g. the plan, for the executor
    role: str = 'task'                 # executor | task | sensor

    def ros_args(self, namespace: str = '') -> list[str]:
        """The node's command-line ROS arguments."""
        args = ['--ros-args', '-r', f'__node:={self.name}']
        if namespace:
            args += ['-r', f'__ns:=/{namespace.strip("/")}']
        for src, dst in self.remaps:
            args += ['-r', f'{src}:={dst}']
        for k, v in self.params.items():
            args += ['-p', f'{k}:={_param_text(v)}']
        if self.params_file:
            args += ['--params-file', self.params_file]
        return args


def _param_text(v) -> str:
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return str(v)


def task_inputs(taskset_file: str) -> dict[str, str]:
    """Task -> input kind ('image' or 'audio') for every task of the task set."""
    from ..models.families import FAMILIES
    raw = read_yaml(taskset_file, 'task set')
    tasks = raw.get('tasks') if isinstance(raw, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        raise TasksetError(f'task set {taskset_file}: needs a non-empty tasks mapping')
    unknown = [t for t in tasks if t not in FAMILIES]
    if unknown:
        raise TasksetError(f'task set {taskset_file}: no model family for tasks {unknown}; the zoo has {sorted(FAMILIES)}')
    return {t: FAMILIES[t].input for t in tasks}


def graph_specs(taskset_file: str, plan_file: str | None = None, backend: str = 'onnxruntime', device: str = 'cpu',
                sim_sensors: bool = True, camera_topic: str = 'image_raw', audio_topic: str = 'audio',
                executor_params: dict | None = None) -> list[NodeSpec]:
    """Executor, one task node per task (subscribed to its sensor), and the simulated sensors."""
    inputs = task_inputs(taskset_file)
    topic = {'image': camera_topic, 'audio': audio_topic}
    specs = [NodeSpec('rtmdl_executor', 'rtmdl_executor', {
        'taskset_file': taskset_file, 'backend': backend, 'device': device, **(executor_params or {})},
        params_file=plan_file or None, role='executor')]
    for task, kind in inputs.items():
        specs.append(NodeSpec(TASK_NODE_FOR_INPUT[kind], f'{task}_node', {
            'task': task, 'taskset_file': taskset_file, 'input_topic': topic[kind]}))
    if sim_sensors:
        kinds = set(inputs.values())
        if 'image' in kinds:
            specs.append(NodeSpec('camera_source', 'camera_source', remaps=(('image_raw', camera_topic),),
                                  role='sensor'))
        if 'audio' in kinds:
            specs.append(NodeSpec('microphone_source', 'microphone_source', remaps=(('audio', audio_topic),),
                                  role='sensor'))
    return specs
