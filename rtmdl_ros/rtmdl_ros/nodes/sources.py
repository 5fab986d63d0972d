"""Sensor sources for demos and tests.

camera_source: publishes image_raw (sensor_msgs/Image, sensor-data QoS) at
`fps` from a synthetic F1/10 driving sequence (default), a video file or an
image folder (`source` parameter: 'synthetic', a file path or a folder).
microphone_source: publishes sound (AudioChunk, mono float32) in chunks of
`chunk_s` from synthetic urban sounds (default) or a WAV file, looping.
"""
from __future__ import annotations

import glob
import os

import cv2
import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from rtmdl_interfaces.msg import AudioChunk
from sensor_msgs.msg import CompressedImage, Image

from ..data import sounds
from ..data.drive import DriveSequence
from .compressed import FORMATS, compress
from .conversions import bgr_to_image, write_stamp
from .spin import Pacer, float32_array, run_node
from .topics import DEFAULT_CAMERA_TOPIC, DEFAULT_SOUND_TOPIC

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm')
PRERENDER = 60                    # camera frames looped by the synthetic camera (2 s at 30 fps)
PRERENDER_SOUND_S = 20.0          # seconds of sound looped by the synthetic microphone


class SourceError(ValueError):
    """A source that cannot be opened; the message says why."""


class _Frames:
    """bgr frames from a video file or an image folder, looping."""

    def __init__(self, source: str, width: int, height: int):
        self.size = (width, height)
        if os.path.isdir(source):
            self.files = sorted(f for f in glob.glob(os.path.join(source, '*')) if f.lower().endswith(IMAGE_EXTENSIONS))
            if not self.files:
                raise SourceError(f'{source}: no images ({", ".join(IMAGE_EXTENSIONS)})')
            self.cap, self.k = None, 0
        else:
            if not os.path.exists(source):
                raise SourceError(f'{source}: no such file or folder')
            self.cap = cv2.VideoCapture(source)
            if not self.cap.isOpened():
                raise SourceError(f'{source}: not a video OpenCV can read')

    def next(self) -> np.ndarray:
        if self.cap is None:
            img = cv2.imread(self.files[self.k % len(self.files)], cv2.IMREAD_COLOR)
            self.k += 1
            if img is None:
                return self.next() if self.k < 10 * len(self.files) else np.zeros((self.size[1], self.size[0], 3), np.uint8)
        else:
            ok, img = self.cap.read()
            if not ok:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, img = self.cap.read()
                if not ok:
                    raise SourceError('video ended and cannot be rewound')
        return cv2.resize(img, self.size, interpolation=cv2.INTER_AREA) if img.shape[1::-1] != self.size else img


class CameraSource(Node):
    def __init__(self, **kwargs):
        super().__init__('camera_source', **kwargs)
        ro = ParameterDescriptor(read_only=True)
        source = self.declare_parameter('source', 'synthetic', ro).value
        fps = self.declare_parameter('fps', 30.0, ro).value
        width = self.declare_parameter('width', 640, ro).value
        height = self.declare_parameter('height', 480, ro).value
        self.encoding = self.declare_parameter('encoding', 'bgr8', ro).value
        self.frame_id = self.declare_parameter('frame_id', 'camera', ro).value
        # '' raw sensor_msgs/Image; jpeg or png: sensor_msgs/CompressedImage (image_transport's <topic>/compressed)
        self.compression = self.declare_parameter('compression', '', ro).value
        self.quality = self.declare_parameter('jpeg_quality', 90, ro).value
        if self.compression not in ('',) + FORMATS:
            raise SourceError(f'parameter compression: one of {("",) + FORMATS}, got {self.compression!r}')
        seed = self.declare_parameter('seed', 0, ro).value
        # prerender > 0: make that many frames now and loop them, serialized, so a simulated
        # camera costs a publish per frame, as a camera driver does, not a render (-1: 60
        # frames, 2 s at 30 fps, for the synthetic drive; 0 for a file or folder, read live).
        prerender = self.declare_parameter('prerender', -1, ro).value
        if prerender < 0:
            prerender = PRERENDER if source == 'synthetic' else 0
        self.frames = DriveSequence(width, height, fps, seed=seed) if source == 'synthetic' else _Frames(source, width, height)
        self._loop = [bytearray(serialize_message(self._image(self.frames.next()))) for _ in range(prerender)]
        self.pub = self.create_publisher(CompressedImage if self.compression else Image, DEFAULT_CAMERA_TOPIC,
                                         qos_profile_sensor_data)
        self.published = 0
        self.pacer = Pacer(1.0 / fps, self.tick)
        self.get_logger().info(f'camera_source: {source} at {fps:g} fps, {width}x{height} '
                               + (self.compression if self.compression else self.encoding))

    def destroy_node(self):
        self.pacer.stop()
        return super().destroy_node()

    def _image(self, frame):
        bgr = frame.image if hasattr(frame, 'image') else frame
        if self.compression:
            msg = CompressedImage(format=f'bgr8; {self.compression} compressed bgr8',
                                  data=compress(bgr, self.compression, self.quality))
        else:
            msg = bgr_to_image(bgr, Image, encoding=self.encoding)
        msg.header.frame_id = self.frame_id
        return msg

    def tick(self) -> None:
        # Capture time = when the frame exists: rendering a new scene now and then takes
        # ~100 ms, which a real camera would show as a late frame, not as an old one.
        stamp = self.get_clock().now().to_msg()
        if self._loop:
            raw = self._loop[self.published % len(self._loop)]
            write_stamp(raw, stamp.sec, stamp.nanosec)
            self.pub.publish(bytes(raw))
        else:
            msg = self._image(self.frames.next())
            msg.header.stamp = stamp
            self.pub.publish(msg)
        self.published += 1


class MicrophoneSource(Node):
    def __init__(self, **kwargs):
        super().__init__('microphone_source', **kwargs)
        ro = ParameterDescriptor(read_only=True)
        source = self.declare_parameter('source', 'synthetic', ro).value
        self.chunk_s = self.declare_parameter('chunk_s', 0.125, ro).value
        self.frame_id = self.declare_parameter('frame_id', 'microphone', ro).value
        seed = self.declare_parameter('seed', 0, ro).value
        self.rng = np.random.default_rng(seed)
        if source == 'synthetic':
            self.rate, self.stream = sounds.SAMPLE_RATE, np.zeros(0, np.float32)
            self.wav = None
        else:
            import soundfile
            try:
                data, self.rate = soundfile.read(source, dtype='float32', always_2d=True)
            except Exception as e:
                raise SourceError(f'{source}: cannot read a sound file: {e}') from None
            self.wav = data.mean(axis=1).astype(np.float32)
            self.stream = np.zeros(0, np.float32)
        if self.wav is None:
            # 20 s of synthetic sound made now and looped: the sensor then costs its publishes.
            self.wav = np.concatenate([sounds.clip(int(self.rng.integers(0, len(sounds.CLASSES))), self.rng)
                                       for _ in range(int(PRERENDER_SOUND_S / sounds.CLIP_S))]).astype(np.float32)
        self.pub = self.create_publisher(AudioChunk, DEFAULT_SOUND_TOPIC, qos_profile_sensor_data)
        self.published = 0
        self.pacer = Pacer(self.chunk_s, self.tick)
        self.get_logger().info(f'microphone_source: {source}, {self.rate} Hz, chunks of {self.chunk_s:g} s')

    def destroy_node(self):
        self.pacer.stop()
        return super().destroy_node()

    def tick(self) -> None:
        n = int(self.chunk_s * self.rate)
        while self.stream.size < n:
            self.stream = np.concatenate([self.stream, self.wav])
        chunk, self.stream = self.stream[:n], self.stream[n:]
        msg = AudioChunk(sample_rate=int(self.rate), channels=1)
        # The chunk's first sample was heard chunk_s ago (AudioChunk: stamp = its capture time).
        msg.header.stamp = (self.get_clock().now() - Duration(nanoseconds=int(self.chunk_s * 1e9))).to_msg()
        msg.header.frame_id = self.frame_id
        msg.samples = float32_array(chunk)
        self.pub.publish(msg)
        self.published += 1


def camera_main() -> int:
    return run_node(CameraSource, 'camera_source', (SourceError, ValueError))


def microphone_main() -> int:
    return run_node(MicrophoneSource, 'microphone_source', (SourceError, ValueError))
