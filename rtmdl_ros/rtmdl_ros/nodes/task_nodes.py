"""Task nodes: one per task, releasing a job into the executor when an input arrives.

camera_task_node (parameter `task`: its name in the task set) subscribes to a
camera (sensor_msgs/Image, sensor-data QoS) and releases a frame when its stamp
is at least the task's min_interarrival_ms after the last released one
(core/release.py): on arrival, so releases follow the camera's phase, and
decimated for a task slower than its camera. It reads each frame once, as a
view of the serialized message, checks it (fields, the task's profiled
envelope), and for a frame it releases runs the geometric half of the model's
pre-processing (region of interest, resize, letterbox: models/picture.py). It
publishes an ImageJob on jobs/<task>: that picture, where it lies in the
frame, and when the frame came and the job left. A 640x480 frame becomes the
few kilobytes the model reads, so the hop to the executor costs little, on
one host or over a network.

sound_task_node keeps the last `window_s` seconds of AudioChunks (the clip its
model reads; graph.py sets it from the family) and releases that window as a
SoundJob under the same rule. Malformed inputs are counted, logged and left out.
Nothing is released while no executor is active (it subscribes to the job
topic only then), so start-up loses no job and counts none as missed.

Composed into the executor's process (the executor's compose_task_nodes, what
the launch files and bringup do), a task node hands its job to the executor
directly (`sink`): no second DDS hop, no serialization. Run alone, it
publishes on jobs/<task>, e.g. from a camera computer to the car's Jetson.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rtmdl_interfaces.msg import AudioChunk, ImageJob, SoundJob
from sensor_msgs.msg import CompressedImage, Image

from ..core.release import ADMIT, ReleaseGate
from ..core.input_guard import publisher_key
from ..core.taskset import Task, TasksetError, release_settings
from ..models import SOUND, InputError
from .compressed import CompressedFrame, decode, is_compressed_topic, read_compressed
from .conversions import chunk_to_mono
from .graph import task_node_params
from .input_filters import INPUT_FILTER_HELP, filter_text, filtered_subscription, sensor_filter, widest_filter
from .job_codec import JobFields, LocalJob, encode_frame, image_job, read_frame, sound_job
from .resources import default_taskset_file
from .source_guard import WITH_GID, GuardLog, declare_guard_params, publisher_text, task_guard, with_info
from .spin import float32_array, run_node
from .topics import DEFAULT_SOUND_TOPIC, JOB_QOS, job_topic

SILENCE_S = 5.0                    # publishers heard, nothing passed the filter: warn
MIN_ROI_PX = 8                     # a region of interest must keep this many pixels a side


@dataclass(frozen=True)
class TaskSpec:
    """What a task node needs of its task's entry in the task set."""
    family: object
    envelope: object
    gap_ms: float                  # minimum inter-arrival by stamp
    task: Task                     # deadline, its origin, stamp_source, source_frame_id (no variants)


def task_spec(taskset_file: str, task: str) -> TaskSpec:
    """A task's TaskSpec, from one read of the task set."""
    from ..models.catalog import read_task_requirements, task_envelopes, task_families
    raw = read_task_requirements(taskset_file)
    if task not in raw['tasks']:
        raise TasksetError(f'task set {taskset_file}: no task {task!r}; it has {sorted(raw["tasks"])}')
    spec = raw['tasks'][task]
    where = f'task set {taskset_file}: tasks.{task}'
    if not isinstance(spec, dict):
        raise TasksetError(f'{where}: must be a mapping, got {type(spec).__name__}')
    timing = release_settings(spec, where)          # the schema's own checks (core/taskset.py)
    families = task_families({**raw, 'tasks': {task: spec}}, taskset_file)
    entry = Task(task, timing['period_ms'], timing['deadline_ms'], 0.0, {}, deadline_from=timing['deadline_from'],
                 stamp_source=timing['stamp_source'], source_frame_id=timing['source_frame_id'])
    gap = timing['min_interarrival_ms']
    return TaskSpec(families[task], task_envelopes(raw, taskset_file, families)[task], gap, entry)


class TaskNode(Node):
    msg_type = Image
    job_type = ImageJob
    default_input = 'image_raw'
    raw_input = False              # True: take serialized messages (no Python message is built)

    def __init__(self, task: str = '', sink=None, subscribe: bool = True, **kwargs):
        """sink: the executor in this process (accepting(), offer(task, LocalJob), priority(task)),
        or None. subscribe=False: another node of this process reads the topic for it (subscribe())."""
        super().__init__(f'{task or "task"}_node', **kwargs)
        self.sink = sink
        ro = ParameterDescriptor(read_only=True)
        self.task = self.declare_parameter('task', task, ParameterDescriptor(
            read_only=True, description='task name in the task set')).value
        if not self.task:
            raise TasksetError('parameter task: name the task this node releases jobs for')
        taskset_file = self.declare_parameter('taskset_file', default_taskset_file(), ro).value
        spec = task_spec(taskset_file, self.task)
        self.family, self.envelope, self.stamp_source = spec.family, spec.envelope, spec.task.stamp_source
        self.gate = ReleaseGate(spec.gap_ms)
        self.guard = task_guard(declare_guard_params(self), spec.task)
        self.guard_log = GuardLog(self)
        self.source_text, self._bound_as = '', 0
        self.input_topic = self.declare_parameter('input_topic', self.default_input, ro).value
        self.msg_type = self.input_type(self.input_topic)
        self.pub = None if sink is not None else self.create_publisher(self.job_type, job_topic(self.task), JOB_QOS)
        use_filter = self.declare_parameter('input_filter', True, ParameterDescriptor(
            read_only=True, description=INPUT_FILTER_HELP)).value
        self.input_filter = sensor_filter(self.envelope) if use_filter and self.msg_type is not CompressedImage \
            else None
        self.input_sub = None
        self.released = self.before_active = self.malformed = 0
        self.received = self._received_at_check = 0     # inputs past the DDS filter
        filtered = self.subscribe([self], self.input_filter) if subscribe else False
        self.get_logger().info(f'{self.task}: releasing on arrival from {self.input_topic}, at least '
                               f'{self.gate.min_gap_ms:g} ms apart by stamp' +
                               ('; DDS drops inputs outside the profiled envelope' if filtered else '') +
                               ('; no DDS content filter here (rclpy >= 9 and an RMW with filters): every input '
                                'reaches the Python checks' if use_filter and subscribe and not filtered else '') +
                               ('' if WITH_GID else '; this rclpy gives no publisher GID: publishers are told '
                                'apart by frame_id, encoding and size') +
                               ('; jobs count from receipt (stamp_source: receipt)'
                                if self.stamp_source == 'receipt' else ''))

    def subscribe(self, readers: list, content_filter) -> bool:
        """Read the input topic for `readers` (task nodes of this process on it, this one
        among them): one take per input, handed to each, the most urgent task first."""
        if len(readers) == 1:
            callback = with_info(lambda msg, info: self.on_input(msg, None, info))
        else:
            nodes, sink = tuple(readers), self.sink

            def take(msg, info):
                parsed = self.parse(msg)              # once per input, not once per task
                for node in sorted(nodes, key=lambda n: sink.priority(n.task)):
                    node.on_input(msg, parsed, info)
            callback = with_info(take)
        self.input_filter = content_filter
        self.input_sub, filtered = filtered_subscription(self, self.msg_type, self.input_topic, callback,
                                                         qos_profile_sensor_data, content_filter, raw=self.raw_input)
        if filtered:
            # DDS drops what fails the filter without a trace: say so when a publisher is
            # heard from but nothing arrives, or a mis-set camera looks like a dead one.
            self.create_timer(SILENCE_S, self._check_silence, clock=Clock(clock_type=ClockType.STEADY_TIME))
        return filtered

    def _check_silence(self) -> None:
        publishers, heard = self.count_publishers(self.input_topic), self.received - self._received_at_check
        self._received_at_check = self.received
        if publishers == 0 or heard:
            return
        self.get_logger().warning(
            f'{self.task}: no input from {self.input_topic} in {SILENCE_S:g} s, although {publishers} '
            f'publisher(s) are on it. DDS drops inputs outside the profiled envelope '
            f'({filter_text(self.input_filter)}): if it is publishing, check its encoding and size against the '
            'task set (input_filter:=false shows why each input is refused)', throttle_duration_sec=30.0)

    def parse(self, msg):
        """(input, None) or (None, InputError): what every task on the topic reads of it."""
        return msg, None

    def input_type(self, topic: str):
        """The message type of the input topic."""
        return self.msg_type

    def refuse(self, what: str, error: InputError) -> None:
        self.malformed += 1
        self.get_logger().warning(f'{what} rejected ({self.malformed} so far): {error}', throttle_duration_sec=5.0)

    def check_source(self, sec: int, nanosec: int, received_s: float, info, signature: tuple,
                     frame_id: str) -> tuple[int, int] | None:
        """The job's stamp (the header's, or the receipt's with stamp_source: receipt), or None
        where the input guard refuses it (counted and logged under its reason)."""
        key = publisher_key(info, signature)
        reason = self.guard.check(sec * 1e3 + nanosec * 1e-6, received_s * 1e3, key, frame_id)
        if reason is not None:
            self.guard_log.refused(self.task, self.input_topic, self.guard, reason, key)
            return None
        if self.guard.bindings != self._bound_as:            # a (new) source: say which
            self._bound_as = self.guard.bindings
            self.source_text = publisher_text(self, self.input_topic, key)
            again = self._bound_as > 1
            self.get_logger().info(
                f'{self.task}: taking jobs from {self.source_text} on {self.input_topic}' +
                (f' (the previous source was silent for {self.guard.limits.source_timeout_s:g} s)' if again else
                 '; other publishers there are counted as foreign_source, not taken'))
        if self.stamp_source == 'receipt':
            ns = int(round(received_s * 1e9))
            return ns // 1_000_000_000, ns % 1_000_000_000
        return sec, nanosec

    def executor_active(self) -> bool:
        return self.sink.accepting() if self.sink is not None else self.pub.get_subscription_count() > 0

    def release(self, fields: JobFields, frame_id: str, payload, message) -> None:
        """Hand the job to the executor in this process, or publish it (message() builds it)."""
        if self.sink is not None:
            self.sink.offer(self.task, LocalJob(fields, frame_id, payload))
        else:
            self.pub.publish(message())
        self.released += 1

    def admit(self, sec: int, nanosec: int) -> bool:
        """May an input with this stamp be released now? (an executor listens, the gate admits it)"""
        if not self.executor_active():
            self.before_active += 1
            return False
        return self.gate.check(sec * 1e3 + nanosec * 1e-6) == ADMIT

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


class CameraTaskNode(TaskNode):
    raw_input = True

    def __init__(self, task: str = '', **kwargs):
        super().__init__(task, **kwargs)
        self.roi = None
        if self.family.uses_roi:
            self.roi = list(self.declare_parameter('roi', list(self.family.default_roi), ParameterDescriptor(
                description='crop [x0, y0, x1, y1] of the frame, as fractions, that the model reads')).value)
            problem = self._roi_problem(self.roi)
            if problem:
                raise ValueError(f'parameter roi: {problem}')
            self.add_on_set_parameters_callback(self._on_set_parameters)

    def _roi_problem(self, roi) -> str:
        if len(roi) != 4 or not (0 <= roi[0] < roi[2] <= 1 and 0 <= roi[1] < roi[3] <= 1):
            return f'{list(roi)}: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1'
        w, h = self.envelope.max_width, self.envelope.max_height
        if (roi[2] - roi[0]) * w < MIN_ROI_PX or (roi[3] - roi[1]) * h < MIN_ROI_PX:
            return f'{list(roi)} crops fewer than {MIN_ROI_PX} x {MIN_ROI_PX} pixels of the {w}x{h} frame'
        return ''

    def _on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == 'roi':
                problem = self._roi_problem(list(p.value))
                if problem:
                    return SetParametersResult(successful=False, reason=f'roi: {problem}')
                self.roi = list(p.value)            # from the next released frame
        return SetParametersResult(successful=True)

    def input_type(self, topic: str):
        # image_transport's `<camera>/compressed`: jpeg or png, decoded in the job's pre segment
        return CompressedImage if is_compressed_topic(topic) else Image

    def parse(self, raw: bytes):
        try:
            return (read_compressed(raw) if self.msg_type is CompressedImage else read_frame(raw)), None
        except InputError as e:
            return None, e

    def on_input(self, raw: bytes, parsed=None, info=None) -> None:
        received_s = self.now_s()
        self.received += 1
        frame, error = parsed or self.parse(raw)
        if error is None:
            try:
                self.envelope.check_frame(frame.width, frame.height)
            except InputError as e:
                error = e
        if error is not None:
            self.refuse('frame', error)
            return
        stamp = self.check_source(frame.sec, frame.nanosec, received_s, info,
                                  (frame.frame_id, frame.encoding, frame.width, frame.height), frame.frame_id)
        if stamp is None:
            return
        if stamp != (frame.sec, frame.nanosec):
            frame = replace(frame, sec=stamp[0], nanosec=stamp[1])
        if not self.admit(frame.sec, frame.nanosec):
            return
        payload = picture = None
        if self.sink is not None:
            payload = (frame, self.roi)           # composed: the job's pre segment encodes it, at its priority
        else:
            try:                                  # alone: only the model's picture crosses to the executor
                pixels = decode(frame) if isinstance(frame, CompressedFrame) else frame   # decoded here, alone
                payload = picture = encode_frame(self.family, pixels, self.roi)
            except InputError as e:
                self.refuse('frame', e)
                return
        fields = JobFields(frame.sec, frame.nanosec, received_s, self.now_s(), self.malformed)
        self.release(fields, frame.frame_id, payload, lambda: image_job(
            frame, picture, received_s, fields.released_s, self.malformed, self.guard.count_list()))


class SoundTaskNode(TaskNode):
    msg_type = AudioChunk
    job_type = SoundJob
    default_input = DEFAULT_SOUND_TOPIC

    def __init__(self, task: str = '', **kwargs):
        self._buffer = np.zeros(0, np.float32)
        self._rate = self._bindings = 0
        super().__init__(task, **kwargs)
        self.window_s = self.declare_parameter('window_s', 2.0, ParameterDescriptor(
            read_only=True, description='seconds of sound a job carries (the clip the model reads)',
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=30.0, step=0.0)])).value

    def on_input(self, msg: AudioChunk, parsed=None, info=None) -> None:
        received_s = self.now_s()
        self.received += 1
        try:
            samples, rate = chunk_to_mono(msg)
            self.envelope.check_sound(rate, samples.size)
        except InputError as e:
            self.refuse('AudioChunk', e)
            return
        header = msg.header
        stamp = self.check_source(header.stamp.sec, header.stamp.nanosec, received_s, info,
                                  (header.frame_id, rate, msg.channels), header.frame_id)
        if stamp is None:                         # not the source's: kept out of the window too
            return
        if rate != self._rate or self.guard.bindings != self._bindings:
            self._buffer = np.zeros(0, np.float32)      # a new stream: do not splice rates or sources
            self._rate, self._bindings = rate, self.guard.bindings
        self._buffer = np.concatenate([self._buffer, samples])[-int(self.window_s * rate):]
        if self.admit(*stamp):
            fields = JobFields(stamp[0], stamp[1], received_s, self.now_s(), self.malformed)
            window = self._buffer                 # replaced, never changed in place: safe to hand over
            self.release(fields, header.frame_id, (window, self._rate), lambda: sound_job(
                header, stamp, self._rate, float32_array(window), received_s, fields.released_s, self.malformed,
                self.guard.count_list()))


def composed_task_nodes(sink, taskset_file: str, camera_topic: str, sound_topic: str, input_filter: bool,
                        use_sim_time: bool, guard: dict | None = None) -> list[TaskNode]:
    """A task node per task of the task set in this process, handing its jobs to `sink` (the
    executor). They take no global arguments: the process's `__node:=rtmdl_executor` would
    rename them too; namespace and use_sim_time follow the executor's."""
    from rclpy.parameter import Parameter
    nodes = []
    for task, (kind, params) in task_node_params(taskset_file, camera_topic, sound_topic).items():
        params = {**params, 'input_filter': input_filter, 'use_sim_time': use_sim_time, **(guard or {})}
        nodes.append((SoundTaskNode if kind == SOUND else CameraTaskNode)(
            task, sink=sink, subscribe=False, namespace=sink.get_namespace(), use_global_arguments=False,
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
    # One subscription per topic: one take of each frame in this process, for every task on it.
    by_topic: dict[str, list] = {}
    for node in nodes:
        by_topic.setdefault(node.input_topic, []).append(node)
    unfiltered = [topic for topic, readers in by_topic.items()
                  if not readers[0].subscribe(readers, widest_filter(readers[0].envelope.kind,
                                                                      [n.envelope for n in readers])
                                              if input_filter and readers[0].input_filter else None)
                  and readers[0].input_filter]
    if input_filter and unfiltered:
        sink.get_logger().info(f'no DDS content filter on {", ".join(unfiltered)} (they need rclpy >= 9 and an '
                               'RMW with filters): every input reaches the Python checks')
    return nodes


def camera_task_main() -> int:
    return run_node(CameraTaskNode, 'camera_task_node', (TasksetError, ValueError))


def sound_task_main() -> int:
    return run_node(SoundTaskNode, 'sound_task_node', (TasksetError, ValueError))
