"""sensor_msgs/Image and rtmdl_interfaces/AudioChunk <-> numpy, with strict checks.

Supported image encodings: bgr8, rgb8, mono8 (what USB and CSI cameras on a
small car publish). Every check failure raises InputError with the reason, so
the node can count the frame as malformed and carry on.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from ..models import SAMPLE_RATES_HZ, InputError

ENCODINGS = {'bgr8': 3, 'rgb8': 3, 'mono8': 1}
MAX_PIXELS = 4096 * 4096


def check_image_fields(height: int, width: int, encoding: str, step: int, size: int) -> int:
    """Raise InputError unless the fields describe an image we can read; returns its channels."""
    enc = encoding.lower()
    if enc not in ENCODINGS:
        raise InputError(f'unsupported image encoding {encoding!r}; expected one of {sorted(ENCODINGS)}')
    ch = ENCODINGS[enc]
    h, w = height, width
    if h <= 0 or w <= 0:
        raise InputError(f'empty image ({w}x{h})')
    if h * w > MAX_PIXELS:
        raise InputError(f'image of {w}x{h} pixels is larger than {MAX_PIXELS} pixels')
    if step < w * ch:
        raise InputError(f'step {step} is shorter than a row of {w} {enc} pixels ({w * ch} bytes)')
    if size != step * h:
        raise InputError(f'{size} bytes of data for {h} rows of {step} bytes ({step * h} expected)')
    return ch


def image_to_bgr(msg) -> np.ndarray:
    """A bgr8 H x W x 3 array (a view when the message is bgr8 and tightly packed)."""
    enc = msg.encoding.lower()
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = msg.data
    ch = check_image_fields(h, w, msg.encoding, step, len(data))
    try:
        buf = np.frombuffer(data, np.uint8)       # bytes or array.array('B'): no copy
    except TypeError:
        buf = np.frombuffer(bytes(data), np.uint8)
    rows = buf.reshape(h, step)[:, :w * ch]
    img = rows.reshape(h, w, ch) if ch > 1 else rows.reshape(h, w)
    if enc == 'bgr8':
        return img
    if enc == 'rgb8':
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_GRAY2BGR)


def bgr_to_image(img: np.ndarray, msg_type, header=None, encoding: str = 'bgr8'):
    """A sensor_msgs/Image (msg_type) holding img (H x W x 3 bgr uint8) in `encoding`."""
    if encoding not in ENCODINGS:
        raise InputError(f'unsupported image encoding {encoding!r}')
    if encoding == 'rgb8':
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif encoding == 'mono8':
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    img = np.ascontiguousarray(img, np.uint8)
    msg = msg_type()
    if header is not None:
        msg.header = header
    msg.height, msg.width = img.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = img.shape[1] * ENCODINGS[encoding]
    msg.data = img.tobytes()
    return msg


def check_chunk_fields(rate: int, ch: int, x: np.ndarray) -> None:
    if ch < 1:
        raise InputError(f'AudioChunk with {ch} channels')
    lo, hi = SAMPLE_RATES_HZ
    if not lo <= rate <= hi:
        raise InputError(f'AudioChunk sample rate {rate} Hz is out of range ({lo}..{hi})')
    if x.size == 0:
        raise InputError('empty AudioChunk')
    if x.size % ch:
        raise InputError(f'{x.size} samples do not divide into {ch} channels')
    if not np.all(np.isfinite(x)):
        raise InputError('AudioChunk holds NaN or infinite samples')


def chunk_to_mono(msg) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of an AudioChunk; channels are averaged."""
    rate, ch = int(msg.sample_rate), int(msg.channels)
    x = np.asarray(msg.samples, dtype=np.float32)
    check_chunk_fields(rate, ch, x)
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


class _Cdr:
    """Reads the leading fields of a serialized (CDR) message without deserializing it."""

    def __init__(self, raw: bytes):
        if len(raw) < 12:
            raise InputError(f'serialized message of {len(raw)} bytes is too short for a header')
        self.order = '<' if raw[1] & 1 else '>'
        self.buf, self.pos = memoryview(raw)[4:], 0

    def _take(self, fmt: str, size: int, align: int):
        self.pos += -self.pos % align
        if self.pos + size > len(self.buf):
            raise InputError('serialized message is truncated')
        value = struct.unpack_from(self.order + fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self) -> int:
        return self._take('I', 4, 4)

    def u8(self) -> int:
        return self._take('B', 1, 1)

    def u64(self) -> int:
        return self._take('Q', 8, 8)

    def f64(self) -> float:
        return self._take('d', 8, 8)

    def time_s(self) -> float:
        """A builtin_interfaces/Time (int32 sec, uint32 nanosec) in seconds."""
        return self._take('i', 4, 4) + self.u32() * 1e-9

    def sequence(self, item: int) -> tuple[int, int]:
        """(count, offset into the raw message) of a sequence of `item`-byte values, skipped."""
        n = self.u32()
        if n:                                # an empty sequence has no padding (it may end the message)
            self.pos += -self.pos % min(item, 8)
        if self.pos + n * item > len(self.buf):
            raise InputError(f'{n} values declared, {(len(self.buf) - self.pos) // item} present')
        start = self.pos + 4
        self.pos += n * item
        return n, start

    def string(self) -> str:
        n = self.u32()
        if self.pos + n > len(self.buf):
            raise InputError('serialized message is truncated')
        text = bytes(self.buf[self.pos:self.pos + max(0, n - 1)]).decode('utf-8', 'replace')
        self.pos += n
        return text

    def skip_header(self) -> None:
        self.u32()
        self.u32()                       # stamp
        self.string()                    # frame_id

    def header(self) -> tuple[int, int, str]:
        """(sec, nanosec, frame_id) of a leading std_msgs/Header."""
        sec, nanosec = self._take('i', 4, 4), self.u32()
        return sec, nanosec, self.string()


def check_serialized_chunk(raw: bytes, envelope=None) -> None:
    """The checks of chunk_to_mono on a serialized AudioChunk (NaN included), without decoding
    it; with an envelope, also the rate and length the task was profiled for."""
    r = _Cdr(raw)
    r.skip_header()
    rate, ch = r.u32(), r.u8()
    n = r.u32()
    if r.pos + 4 * n > len(r.buf):
        raise InputError(f'{n} AudioChunk samples declared, {(len(r.buf) - r.pos) // 4} present')
    dtype = np.dtype(np.float32).newbyteorder(r.order)
    check_chunk_fields(int(rate), int(ch), np.frombuffer(r.buf, dtype, count=n, offset=r.pos))
    if envelope is not None:
        envelope.check_sound(int(rate), int(n) // max(1, int(ch)))


def stamp_of_serialized(raw: bytes) -> tuple[int, int]:
    """(sec, nanosec) of the header stamp of a serialized message whose first
    field is a std_msgs/Header (Image, AudioChunk, Job), read without
    deserializing the rest: CDR puts the stamp right after the 4-byte
    encapsulation header, in the byte order that header names."""
    if len(raw) < 12:
        raise InputError(f'serialized message of {len(raw)} bytes is too short for a header')
    order = '<' if raw[1] & 1 else '>'
    sec, nanosec = struct.unpack_from(order + 'iI', raw, 4)
    return sec, nanosec


def write_stamp(raw: bytearray, sec: int, nanosec: int) -> None:
    """Set the header stamp of a serialized message whose first field is a std_msgs/Header
    (the counterpart of stamp_of_serialized)."""
    struct.pack_into(('<' if raw[1] & 1 else '>') + 'iI', raw, 4, sec, nanosec)
