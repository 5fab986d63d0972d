"""Task nodes: release a job into the executor when an input arrives.

camera_task_node (parameter `task`: its name in the task set) subscribes to a
camera (sensor_msgs/Image, sensor-data QoS)
and release a frame on jobs/<task> when its stamp is at least the task's
min_interarrival_ms after the last released one (core/release.py): on
arrival, so releases follow the camera's phase instead of beating against
it, and decimated for a task slower than its camera. Frames are relayed as
serialized bytes, unchanged.
sound_task_node keeps the last `window_s` seconds of AudioChunks (the clip its
model reads; graph.py sets it from the family) and releases that window, with
the header of its newest chunk, under the same rule. Malformed chunks (NaN,
bad rate) are counted, logged and left out.

Before each job a JobTiming on jobs/<task>/timing says when the input came
and when the job left, for the job's stage trace. Nothing is released while
no executor is active (it subscribes to the job topic only then), so start-up
loses no job and counts none as missed.
"""
from __future__ import annotations

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rtmdl_interfaces.msg import AudioChunk, JobTiming
from sensor_msgs.msg import Image

from ..core.release import ADMIT, ReleaseGate
from ..core.taskset import TasksetError, read_yaml
from ..models import InputError
from .conversions import check_serialized_image, chunk_to_mono, stamp_of_serialized
from .input_filters import INPUT_FILTER_HELP, filter_text, filtered_subscription
from .resources import default_taskset_file
from .spin import float32_array, run_node
from .topics import DEFAULT_SOUND_TOPIC, JOB_QOS, job_timing_topic, job_topic


def release_gap_ms(taskset_file: str, task: str) -> float:
    """The task's minimum inter-arrival from the task set (default: its period)."""
    raw = read_yaml(taskset_file, 'task set')
    try:
        spec = raw['tasks'][task]
        return float(spec.get('min_interarrival_ms', spec['period_ms']))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TasksetError(f'task set {taskset_file}: no tasks.{task}.period_ms') from None


def _envelope(taskset_file: str, task: str):
    """The inputs the task was profiled on (models/envelope.py), checked here as in the executor."""
    from ..models.catalog import read_task_requirements, task_envelopes, task_families
    raw = read_task_requirements(taskset_file)
    if task not in raw['tasks']:
        raise TasksetError(f'task set {taskset_file}: no task {task!r}; it has {sorted(raw["tasks"])}')
    return task_envelopes(raw, taskset_file, task_families(raw, taskset_file))[task]


SILENCE_S = 5.0                    # publishers heard, nothing passed the filter: warn


class TaskNode(Node):
    task = ''                      # default of the `task` parameter
    msg_type = Image
    default_input = 'image_raw'
    raw_input = False              # True: relay serialized messages without decoding them

    def __init__(self, task: str = '', **kwargs):
        self.task = task or self.task
        super().__init__(f'{self.task or "task"}_node', **kwargs)
        ro = ParameterDescriptor(read_only=True)
        self.task = self.declare_parameter('task', self.task, ParameterDescriptor(
            read_only=True, description='task name in the task set')).value
        if not self.task:
            raise TasksetError('parameter task: name the task this node releases jobs for')
        taskset_file = self.declare_parameter('taskset_file', default_taskset_file(), ro).value
        self.gate = ReleaseGate(release_gap_ms(taskset_file, self.task))
        self.envelope = _envelope(taskset_file, self.task)
        topic = self.declare_parameter('input_topic', self.default_input, ro).value
        self.pub = self.create_publisher(self.msg_type, job_topic(self.task), JOB_QOS)
        self.timing_pub = self.create_publisher(JobTiming, job_timing_topic(self.task), JOB_QOS)
        use_filter = self.declare_parameter('input_filter', True, ParameterDescriptor(
            read_only=True, description=INPUT_FILTER_HELP)).value
        self.input_sub, filtered = filtered_subscription(
            self, self.msg_type, topic, self.on_input, qos_profile_sensor_data,
            self.envelope if use_filter else None, raw=self.raw_input)
        self.input_topic = topic
        self.released = 0
        self.before_active = 0         # inputs that came while no executor was active
        self.malformed = 0
        self.received = 0              # inputs that reached this node (past the DDS filter)
        self._received_at_check = 0
        if filtered:
            # DDS drops what fails the filter without a trace: say so when a publisher is
            # heard from but nothing arrives, or a mis-set camera looks like a dead one.
            self.create_timer(SILENCE_S, self._check_silence, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f'{self.task}: releasing on arrival from {topic}, at least '
                               f'{self.gate.min_gap_ms:g} ms apart by stamp' +
                               ('; DDS drops inputs outside the profiled envelope' if filtered else ''))

    def _check_silence(self) -> None:
        publishers, heard = self.count_publishers(self.input_topic), self.received - self._received_at_check
        self._received_at_check = self.received
        if publishers == 0 or heard:
            return
        self.get_logger().warning(
            f'{self.task}: no input from {self.input_topic} in {SILENCE_S:g} s, although {publishers} '
            f'publisher(s) are on it. DDS drops inputs outside the profiled envelope ({filter_text(self.envelope)}): '
            'if it is publishing, check its encoding and size against the task set (input_filter:=false '
            'shows why each input is refused)',
            throttle_duration_sec=30.0)

    def executor_active(self) -> bool:
        return self.pub.get_subscription_count() > 0

    def offer(self, sec: int, nanosec: int, received, job) -> bool:
        """Release `job` (a message or serialized bytes) if the gate admits its stamp."""
        if not self.executor_active():
            self.before_active += 1
            return False
        if self.gate.check(sec * 1e3 + nanosec * 1e-6) != ADMIT:
            return False
        timing = JobTiming(received=received.to_msg(), refused=self.malformed)
        timing.header.stamp.sec, timing.header.stamp.nanosec = sec, nanosec
        timing.released = self.get_clock().now().to_msg()
        self.timing_pub.publish(timing)
        self.pub.publish(job)
        self.released += 1
        return True


class CameraTaskNode(TaskNode):
    # Frames are relayed as serialized bytes: a 640x480 frame costs a copy here,
    # not a decode; the executor decodes only released frames. The cheap receipt
    # checks (fields, size, the task's profiled envelope) run here too, so that a
    # malformed or oversized frame never takes a release from a valid one.
    raw_input = True

    def on_input(self, msg: bytes) -> None:
        received = self.get_clock().now()
        self.received += 1
        try:
            sec, nanosec = stamp_of_serialized(msg)
            check_serialized_image(msg, self.envelope)
        except InputError as e:
            self.malformed += 1
            self.get_logger().warning(f'frame rejected ({self.malformed} so far): {e}', throttle_duration_sec=5.0)
            return
        self.offer(sec, nanosec, received, msg)


class SoundTaskNode(TaskNode):
    msg_type = AudioChunk
    default_input = DEFAULT_SOUND_TOPIC

    def __init__(self, task: str = '', **kwargs):
        self._buffer = np.zeros(0, np.float32)
        self._rate = 0
        super().__init__(task, **kwargs)
        self.window_s = self.declare_parameter('window_s', 2.0, ParameterDescriptor(
            read_only=True, description='seconds of sound a job carries (the clip the model reads)',
            floating_point_range=[FloatingPointRange(from_value=0.01, to_value=30.0, step=0.0)])).value

    def on_input(self, msg: AudioChunk) -> None:
        received = self.get_clock().now()
        self.received += 1
        try:
            samples, rate = chunk_to_mono(msg)
            self.envelope.check_sound(rate, samples.size)
        except InputError as e:
            self.malformed += 1
            self.get_logger().warning(f'AudioChunk rejected ({self.malformed} so far): {e}',
                                      throttle_duration_sec=5.0)
            return
        if rate != self._rate:
            self._buffer = np.zeros(0, np.float32)      # a new stream: do not splice rates
            self._rate = rate
        keep = int(self.window_s * rate)
        self._buffer = np.concatenate([self._buffer, samples])[-keep:]
        out = AudioChunk(header=msg.header, sample_rate=self._rate, channels=1)
        out.samples = float32_array(self._buffer)
        self.offer(msg.header.stamp.sec, msg.header.stamp.nanosec, received, out)


def camera_task_main() -> int:
    return run_node(CameraTaskNode, 'camera_task_node', (TasksetError, ValueError))


def sound_task_main() -> int:
    return run_node(SoundTaskNode, 'sound_task_node', (TasksetError, ValueError))
