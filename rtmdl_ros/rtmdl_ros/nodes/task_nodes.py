"""Task nodes: release one job per period into the executor, with the newest input.

traffic_light_node, sign_node: subscribe to a camera (sensor_msgs/Image,
sensor-data QoS); every period_ms, if a frame newer than the last released one
has arrived, publish it on jobs/<task>. A frame is never released twice; a
period without a new frame releases nothing (counted).
audio_node: subscribes to AudioChunk, keeps the last CLIP_S seconds, and every
period publishes that window (the chunk header of its newest samples).
Malformed audio chunks (NaN, bad rate) are counted, logged and left out.
"""
from __future__ import annotations


import numpy as np
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rtmdl_interfaces.msg import AudioChunk
from sensor_msgs.msg import Image

from ..core.taskset import TasksetError, read_yaml
from ..data.sounds import CLIP_S
from ..models import InputError
from .conversions import audio_to_mono
from .resources import default_taskset_file
from .spin import float32_array, run_node
from .topics import JOB_QOS, job_topic


class TaskNode(Node):
    task = ''
    msg_type = Image
    default_input = 'image_raw'
    raw_input = False              # True: relay serialized messages without decoding them

    def __init__(self, **kwargs):
        super().__init__(f'{self.task}_node', **kwargs)
        ro = ParameterDescriptor(read_only=True)
        taskset_file = self.declare_parameter('taskset_file', default_taskset_file(), ro).value
        raw = read_yaml(taskset_file, 'task set')
        try:
            default_period = float(raw['tasks'][self.task]['period_ms'])
        except (KeyError, TypeError, ValueError):
            raise TasksetError(f'task set {taskset_file}: no tasks.{self.task}.period_ms') from None
        self.period_ms = self.declare_parameter('period_ms', default_period, ParameterDescriptor(
            description='release period', floating_point_range=[FloatingPointRange(
                from_value=1.0, to_value=60000.0, step=0.0)])).value
        topic = self.declare_parameter('input_topic', self.default_input, ro).value
        self.pub = self.create_publisher(self.msg_type, job_topic(self.task), JOB_QOS)
        self.create_subscription(self.msg_type, topic, self.on_input, qos_profile_sensor_data, raw=self.raw_input)
        self.released = 0
        self.idle_periods = 0          # periods with no new input
        # Own callback group: a sensor flooding the subscription cannot hold the
        # release timer back (under a multi-threaded executor).
        self.timer_group = MutuallyExclusiveCallbackGroup()
        self.timer = self.create_timer(self.period_ms / 1e3, self.release, callback_group=self.timer_group)
        self.add_on_set_parameters_callback(self._on_set)
        self.get_logger().info(f'{self.task}: releasing every {self.period_ms:g} ms from {topic}')

    def _on_set(self, params) -> SetParametersResult:
        for p in params:
            if p.name == 'period_ms':
                self.period_ms = float(p.value)
                self.timer.cancel()
                self.destroy_timer(self.timer)
                self.timer = self.create_timer(self.period_ms / 1e3, self.release, callback_group=self.timer_group)
        return SetParametersResult(successful=True)

    def on_input(self, msg) -> None:
        raise NotImplementedError

    def take(self):
        """The job payload for this period, or None."""
        raise NotImplementedError

    def release(self) -> None:
        msg = self.take()
        if msg is None:
            self.idle_periods += 1
            return
        self.pub.publish(msg)
        self.released += 1


class CameraTaskNode(TaskNode):
    # Frames are relayed as serialized bytes: a 640x480 frame costs a copy here,
    # not a decode, whatever the camera rate; the executor decodes (and
    # validates) only the frames released as jobs.
    raw_input = True

    def __init__(self, **kwargs):
        self._newest = None
        super().__init__(**kwargs)

    def on_input(self, msg: bytes) -> None:
        self._newest = msg

    def take(self):
        msg, self._newest = self._newest, None  # never the same frame twice
        return msg


class TrafficLightNode(CameraTaskNode):
    task = 'traffic_light'


class SignNode(CameraTaskNode):
    task = 'sign'


class AudioNode(TaskNode):
    task = 'audio'
    msg_type = AudioChunk
    default_input = 'audio'

    def __init__(self, **kwargs):
        self._buffer = np.zeros(0, np.float32)
        self._rate = 0
        self._header = None
        self._fresh = False
        self.malformed = 0
        super().__init__(**kwargs)

    def on_input(self, msg: AudioChunk) -> None:
        try:
            samples, rate = audio_to_mono(msg)
        except InputError as e:
            self.malformed += 1
            self.get_logger().warning(f'audio chunk rejected ({self.malformed} so far): {e}',
                                      throttle_duration_sec=5.0)
            return
        if rate != self._rate:
            self._buffer = np.zeros(0, np.float32)      # a new stream: do not splice rates
            self._rate = rate
        keep = int(CLIP_S * rate)
        self._buffer = np.concatenate([self._buffer, samples])[-keep:]
        self._header = msg.header
        self._fresh = True

    def take(self):
        if not self._fresh:
            return None
        self._fresh = False
        out = AudioChunk(header=self._header, sample_rate=self._rate, channels=1)
        out.samples = float32_array(self._buffer)
        return out


def traffic_light_main() -> int:
    return run_node(TrafficLightNode, 'traffic_light_node', (TasksetError, ValueError))


def sign_main() -> int:
    return run_node(SignNode, 'sign_node', (TasksetError, ValueError))


def audio_main() -> int:
    return run_node(AudioNode, 'audio_node', (TasksetError, ValueError))
