"""The graph a task set needs, described once for the launch file and `rtmdl bringup`.

One process per node, as a launch file starts them: the executor's scheduler
threads then share their process only with its own single ROS thread, and the
sensors' and task nodes' callbacks run in processes of their own, which the
executor's SCHED_FIFO threads preempt.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.taskset import TasksetError, read_yaml
from ..models import IMAGE, SOUND
from .compressed import is_compressed_topic
from .topics import DEFAULT_CAMERA_TOPIC, DEFAULT_SOUND_TOPIC

# executable -> 'module:function' (the console scripts of setup.py)
ENTRY_POINTS = {
    'rtmdl_executor': 'rtmdl_ros.nodes.entry:executor_main',
    'camera_task_node': 'rtmdl_ros.nodes.entry:camera_task_main',
    'sound_task_node': 'rtmdl_ros.nodes.entry:sound_task_main',
    'camera_source': 'rtmdl_ros.nodes.entry:camera_main',
    'microphone_source': 'rtmdl_ros.nodes.entry:microphone_main',
}
TASK_NODE_FOR_INPUT = {IMAGE: 'camera_task_node', SOUND: 'sound_task_node'}
SENSOR_FOR_INPUT = {IMAGE: ('camera_source', DEFAULT_CAMERA_TOPIC), SOUND: ('microphone_source', DEFAULT_SOUND_TOPIC)}


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


def task_inputs(taskset_file: str, raw: dict | None = None, families: dict | None = None
                ) -> dict[str, tuple[str, str | None]]:
    """Task -> (input kind IMAGE or SOUND, its `input_topic` or None) for every task
    (raw, families: the task set already read, so that model files are read once)."""
    from ..models.catalog import read_task_requirements, task_families
    raw = raw if raw is not None else read_task_requirements(taskset_file)
    out = {}
    for task, fam in (families if families is not None else task_families(raw, taskset_file)).items():
        topic = raw['tasks'][task].get('input_topic')
        if topic is not None and not (isinstance(topic, str) and topic):
            raise TasksetError(f'task set {taskset_file}: tasks.{task}.input_topic: expected a topic name, got {topic!r}')
        out[task] = (fam.input, topic)
    return out


def check_plan_file(plan_file: str, taskset_file: str, tasks=None) -> None:
    """A plan must parse and name tasks of the task set, before rclpy reads it
    (rclpy's own parser fails with a traceback; an empty file would silently run
    the default plan). The executor checks variants and priorities."""
    from ..core.plan import plan_from_params
    where = f'plan {plan_file}'
    plan = plan_from_params(read_yaml(plan_file, 'plan'), where)
    tasks = set(tasks if tasks is not None else task_inputs(taskset_file))
    unknown = sorted(set(plan) - tasks)
    if unknown:
        raise TasksetError(f'{where}: tasks {unknown} are not in the task set {taskset_file} ({sorted(tasks)})')


def task_node_params(taskset_file: str, camera_topic: str = DEFAULT_CAMERA_TOPIC,
                     sound_topic: str = DEFAULT_SOUND_TOPIC, raw: dict | None = None,
                     families: dict | None = None) -> dict[str, tuple[str, dict]]:
    """Task -> (input kind, its task node's parameters). A task's `input_topic` (task set)
    wins over the camera_topic / sound_topic defaults; one message type per topic."""
    from ..models.catalog import read_task_requirements, task_families
    raw = raw if raw is not None else read_task_requirements(taskset_file)
    families = families if families is not None else task_families(raw, taskset_file)
    default = {IMAGE: camera_topic, SOUND: sound_topic}
    kinds: dict[str, str] = {}
    users: dict[str, str] = {}
    out = {}
    for task, (kind, topic) in task_inputs(taskset_file, raw, families).items():
        topic = topic or default[kind]
        if kinds.setdefault(topic, kind) != kind:
            raise TasksetError(f'task set {taskset_file}: tasks.{task} reads {kind} from {topic!r}, which task '
                               f'{users[topic]!r} reads as {kinds[topic]} (one message type per topic)')
        users.setdefault(topic, task)
        params = {'task': task, 'taskset_file': taskset_file, 'input_topic': topic}
        if kind == SOUND:
            params['window_s'] = float(families[task].window_s)
        out[task] = (kind, params)
    return out


def graph_specs(taskset_file: str, plan_file: str | None = None, backend: str = 'onnxruntime', device: str = 'cpu',
                sim_sensors: bool = True, camera_topic: str = DEFAULT_CAMERA_TOPIC,
                sound_topic: str = DEFAULT_SOUND_TOPIC, executor_params: dict | None = None,
                camera_params: dict | None = None, compose: bool = True) -> list[NodeSpec]:
    """Executor, one task node per task (subscribed to its sensor), and a simulated
    sensor per input topic; tasks on one topic share its sensor, which a task set's
    `sensors: {TOPIC: {PARAM: VALUE}}` may configure (e.g. `source:` an image folder,
    relative to the task set, and `fps:`). compose: the task nodes run inside the
    executor's process and hand their jobs over there (no second hop); otherwise each
    is a process of its own, publishing on jobs/<task>."""
    from ..models.catalog import read_task_requirements, task_families
    raw = read_task_requirements(taskset_file)
    families = task_families(raw, taskset_file)
    nodes = task_node_params(taskset_file, camera_topic, sound_topic, raw, families)
    sensors = sensor_settings(taskset_file)
    if plan_file:
        check_plan_file(plan_file, taskset_file, nodes)
    composed = {'compose_task_nodes': True, 'camera_topic': camera_topic, 'sound_topic': sound_topic} if compose else {}
    specs = [NodeSpec('rtmdl_executor', 'rtmdl_executor', {
        'taskset_file': taskset_file, 'backend': backend, 'device': device, **composed, **(executor_params or {})},
        params_file=plan_file or None, role='executor')]
    topics = {params['input_topic']: kind for kind, params in nodes.values()}   # in order of first use
    if not compose:
        specs += [NodeSpec(TASK_NODE_FOR_INPUT[kind], f'{task}_node', params) for task, (kind, params) in nodes.items()]
    unused = sorted(set(sensors) - set(topics))
    if unused:
        raise TasksetError(f'task set {taskset_file}: sensors {unused}: no task reads these topics '
                           f'({sorted(topics)})')
    if sim_sensors:
        count = {IMAGE: 0, SOUND: 0}
        for topic, kind in topics.items():
            k = count[kind]
            count[kind] += 1
            executable, own_topic = SENSOR_FOR_INPUT[kind]
            params = {**((camera_params or {}) if kind == IMAGE else {}), **({'seed': k} if k else {}),
                      **({'compression': 'jpeg'} if kind == IMAGE and is_compressed_topic(topic) else {}),
                      **sensors.get(topic, {})}
            specs.append(NodeSpec(executable, executable + (f'_{k + 1}' if k else ''), params,
                                  remaps=((own_topic, topic),), role='sensor'))
    return specs


SENSOR_KEYS = {'source': str, 'fps': float, 'width': int, 'height': int, 'encoding': str, 'frame_id': str,
               'seed': int, 'prerender': int, 'chunk_s': float, 'compression': str, 'jpeg_quality': int}


def sensor_settings(taskset_file: str) -> dict[str, dict]:
    """The task set's `sensors:` section, checked: topic -> simulated-sensor parameters
    (a relative `source` path is made absolute against the task set's folder)."""
    import os
    raw = read_yaml(taskset_file, 'task set')
    section = raw.get('sensors') or {}
    where = f'task set {taskset_file}: sensors'
    if not isinstance(section, dict):
        raise TasksetError(f'{where}: expected a mapping topic -> {{parameter: value}}')
    out = {}
    for topic, params in section.items():
        if not isinstance(params, dict):
            raise TasksetError(f'{where}.{topic}: expected a mapping of sensor parameters')
        checked = {}
        for key, value in params.items():
            kind = SENSOR_KEYS.get(key)
            if kind is None:
                raise TasksetError(f'{where}.{topic}.{key}: unknown; known: {sorted(SENSOR_KEYS)}')
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if isinstance(value, bool) or not ok:
                raise TasksetError(f'{where}.{topic}.{key}: expected a {kind.__name__}, got {value!r}')
            checked[key] = kind(value)
        src = checked.get('source')
        if src and src != 'synthetic' and not os.path.isabs(src):
            checked['source'] = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(taskset_file)), src))
        out[str(topic)] = checked
    return out
