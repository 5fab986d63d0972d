"""The hop from a task node to the executor: camera frames in, jobs out, jobs checked.

A task node takes its camera's sensor_msgs/Image serialized and reads it as a
numpy view of the message's own bytes (one copy, made by the middleware; no
Python message). Composed into the executor's process it hands the released
frame over as it is (a LocalJob) and the job's pre segment encodes it; in a
process of its own it encodes the frame into the model-sized picture
(models/picture.py) and sends an ImageJob, so only what the model reads
crosses to the executor; sound goes out as a SoundJob. The executor checks a
serialized job's leading fields before it may count as a release, and decodes
it in the job's pre-processing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from rclpy.serialization import deserialize_message
from rtmdl_interfaces.msg import ImageJob, SoundJob
from std_msgs.msg import Header

from ..models import InputError
from ..models.picture import Picture, Placement
from .conversions import _Cdr, check_chunk_fields, check_image_fields


@dataclass(frozen=True)
class Frame:
    """A camera frame read from its serialized message: a view of its pixels."""
    sec: int
    nanosec: int
    frame_id: str
    pixels: np.ndarray           # H x W x channels, uint8 (rows may be strided)
    encoding: str                # bgr8 | rgb8 | mono8

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]


def read_frame(raw: bytes, envelope=None) -> Frame:
    """A serialized sensor_msgs/Image as a Frame, after the checks of conversions.image_to_bgr
    (and the task's envelope); InputError says what is wrong."""
    r = _Cdr(raw)
    sec, nanosec, frame_id = r.header()
    height, width = r.u32(), r.u32()
    encoding = r.string()
    r.u8()                                   # is_bigendian: meaningless for 8-bit pixels
    step = r.u32()
    size, start = r.sequence(1)
    ch = check_image_fields(height, width, encoding, step, size)
    if envelope is not None:
        envelope.check_frame(int(width), int(height))
    rows = np.frombuffer(raw, np.uint8, count=size, offset=start).reshape(height, step)[:, :width * ch]
    return Frame(sec, nanosec, frame_id, rows.reshape(height, width, ch), encoding.lower())


def encode_frame(fam, frame: Frame, roi) -> Picture:
    """The family's encode on a frame of any supported encoding, giving a bgr picture.
    rgb8 is swapped after scaling (resizing works per channel, so the result is the
    same, on far fewer pixels); mono8 is expanded first."""
    if frame.encoding == 'mono8':
        image, place = fam.encode(cv2.cvtColor(np.ascontiguousarray(frame.pixels[:, :, 0]), cv2.COLOR_GRAY2BGR), roi)
    else:
        image, place = fam.encode(frame.pixels, roi)
        if frame.encoding == 'rgb8':
            image = np.ascontiguousarray(image[:, :, ::-1])
    return Picture(np.ascontiguousarray(image, np.uint8), place)


def _time(msg_time, seconds: float) -> None:
    ns = int(round(seconds * 1e9))
    msg_time.sec, msg_time.nanosec = ns // 1_000_000_000, ns % 1_000_000_000


def image_job(frame: Frame, picture: Picture, received_s: float, released_s: float, refused: int,
              guard_refused=()) -> ImageJob:
    h, w = picture.image.shape[:2]
    p = picture.place
    msg = ImageJob(width=w, height=h, data=picture.image.tobytes(), source_width=frame.width,
                   source_height=frame.height, scale_x=float(p.scale_x), scale_y=float(p.scale_y),
                   offset_x=float(p.offset_x), offset_y=float(p.offset_y), refused=refused,
                   guard_refused=list(guard_refused))
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = frame.sec, frame.nanosec, frame.frame_id
    _time(msg.received, received_s)
    _time(msg.released, released_s)
    return msg


def sound_job(header, stamp: tuple[int, int], rate: int, samples, received_s: float, released_s: float,
              refused: int, guard_refused=()) -> SoundJob:
    """header: the newest chunk's; stamp: (sec, nanosec) the job counts from (the header's, or receipt)."""
    msg = SoundJob(header=Header(frame_id=header.frame_id), sample_rate=int(rate), refused=refused,
                   guard_refused=list(guard_refused))
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.samples = samples
    _time(msg.received, received_s)
    _time(msg.released, released_s)
    return msg


@dataclass(frozen=True)
class JobFields:
    """What the executor reads of a serialized job before it may count as a release."""
    sec: int
    nanosec: int
    received_s: float            # the task node's receipt and release (ROS time, seconds)
    released_s: float
    refused: int                 # inputs the task node refused so far
    guard_refused: tuple = ()    # well-formed inputs its guard refused so far, per reason (input_guard.REASONS)
    frame_id: str = ''
    signature: tuple = ()        # what tells its publisher apart where rclpy gives no GID


@dataclass(frozen=True)
class LocalJob:
    """A job a task node composed into the executor's process hands over directly:
    a camera task's (Frame, roi), left to the pre segment to encode at the job's
    priority, or a sound task's (mono samples, rate); nothing is copied."""
    fields: JobFields
    frame_id: str
    payload: object

    def header(self) -> Header:
        header = Header(frame_id=self.frame_id)
        header.stamp.sec, header.stamp.nanosec = self.fields.sec, self.fields.nanosec
        return header


def image_decoder(fam):
    """A camera task's decode (its pre segment's first step): a LocalJob's frame is encoded
    here, a serialized ImageJob already holds the picture."""
    from .compressed import SHARED_DECODE, CompressedFrame

    def decode(job):
        if isinstance(job, LocalJob):
            frame, roi = job.payload
            if isinstance(frame, CompressedFrame):
                frame = SHARED_DECODE(frame)       # a compressed camera: decoding is pre-processing
            return encode_frame(fam, frame, roi), job.header()
        return decode_image_job(job)
    return decode


def sound_decode(job):
    """A sound task's decode: ((mono samples, rate), header)."""
    return (job.payload, job.header()) if isinstance(job, LocalJob) else decode_sound_job(job)


def check_image_job(raw: bytes, picture_size: tuple[int, int], envelope=None) -> JobFields:
    """An ImageJob's checks on its serialized bytes: the model's picture size, whole
    data, a placement inside a source frame the task admits."""
    r = _Cdr(raw)
    sec, nanosec, frame_id = r.header()
    width, height = r.u32(), r.u32()
    size, _ = r.sequence(1)
    if (width, height) != tuple(picture_size):
        raise InputError(f'picture of {width}x{height}; the model reads {picture_size[0]}x{picture_size[1]}')
    if size != width * height * 3:
        raise InputError(f'{size} bytes of picture for {width}x{height} bgr8 ({width * height * 3} expected)')
    sw, sh = r.u32(), r.u32()
    place = [r.f64() for _ in range(4)]
    if sw == 0 or sh == 0 or not all(math.isfinite(v) for v in place) or place[0] <= 0 or place[1] <= 0:
        raise InputError(f'placement {place} in a {sw}x{sh} source frame is not a picture of it')
    if envelope is not None:
        envelope.check_frame(int(sw), int(sh))
    received, released, refused = r.time_s(), r.time_s(), r.u64()
    return JobFields(sec, nanosec, received, released, refused, _counts(r, raw), frame_id, (frame_id, sw, sh))


def check_sound_job(raw: bytes, envelope=None) -> JobFields:
    """A SoundJob's checks (rate, finite samples, the task's window) on its serialized bytes."""
    r = _Cdr(raw)
    sec, nanosec, frame_id = r.header()
    rate = r.u32()
    n, start = r.sequence(4)
    dtype = np.dtype(np.float32).newbyteorder(r.order)
    check_chunk_fields(int(rate), 1, np.frombuffer(raw, dtype, count=n, offset=start))
    if envelope is not None:
        envelope.check_sound(int(rate), int(n))
    received, released, refused = r.time_s(), r.time_s(), r.u64()
    return JobFields(sec, nanosec, received, released, refused, _counts(r, raw), frame_id, (frame_id, rate))


def _counts(r: _Cdr, raw: bytes) -> tuple:
    """A trailing uint64[] (guard_refused); () where the sender's message had none."""
    if r.pos + 4 > len(r.buf):
        return ()
    n, start = r.sequence(8)
    return tuple(int(x) for x in np.frombuffer(raw, np.dtype(np.uint64).newbyteorder(r.order), count=n,
                                               offset=start))


def decode_image_job(raw: bytes):
    """(Picture, source header) of a serialized ImageJob (in the job's pre-processing)."""
    msg = deserialize_message(raw, ImageJob)
    image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
    place = Placement(msg.scale_x, msg.scale_y, msg.offset_x, msg.offset_y, msg.source_width, msg.source_height)
    return Picture(image, place), msg.header


def decode_sound_job(raw: bytes):
    """((mono samples, rate), header) of a serialized SoundJob."""
    msg = deserialize_message(raw, SoundJob)
    return (np.asarray(msg.samples, np.float32), int(msg.sample_rate)), msg.header

