"""sensor_msgs/CompressedImage input (jpeg, png), as image_transport's `<camera>/compressed`.

A compressed frame is read from its serialized message like a raw one (a view,
no Python message), and its size is read from the image's own header (JPEG's
start-of-frame, PNG's IHDR) before anything is decoded: the task's envelope
refuses a frame too large for it there, so a decompression bomb (a few
kilobytes that decode to gigabytes) never costs a core or the memory. What
passes is decoded in the job's pre-processing (composed task nodes: on a CPU
worker, at the job's priority, inside the profiled and analysed pre segment)
or, for a task node in a process of its own, before its picture is sent.
Composed tasks that read the same camera decode each frame once (SharedDecoder).
"""
from __future__ import annotations

import struct
import threading
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from ..models import InputError
from .conversions import _Cdr
from .job_codec import Frame

FORMATS = ('jpeg', 'png')
COMPRESSED_SUFFIX = '/compressed'
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}   # start-of-frame markers


def is_compressed_topic(topic: str) -> bool:
    """image_transport's naming: a camera's compressed stream is `<camera topic>/compressed`."""
    return topic.rstrip('/').endswith(COMPRESSED_SUFFIX)


@dataclass(frozen=True)
class CompressedFrame:
    """A compressed camera frame read from its serialized message; decode() gives its pixels."""
    sec: int
    nanosec: int
    frame_id: str
    data: np.ndarray             # the compressed bytes (a view of the message)
    encoding: str                # jpeg | png: what the bytes are
    width: int                   # from the image's own header
    height: int


def image_header_size(data) -> tuple[str, int, int]:
    """(format, width, height) from a JPEG or PNG header, without decoding; InputError otherwise."""
    b = bytes(data[:64 * 1024]) if len(data) > 64 * 1024 else bytes(data)
    if b[:8] == b'\x89PNG\r\n\x1a\n':
        if len(b) < 24 or b[12:16] != b'IHDR':
            raise InputError('png without its IHDR header')
        width, height = struct.unpack('>II', b[16:24])
        return 'png', width, height
    if b[:3] == b'\xff\xd8\xff':
        k = 2
        while k + 4 <= len(b):
            if b[k] != 0xFF:
                raise InputError(f'jpeg: no marker at byte {k}')
            marker = b[k + 1]
            if marker == 0xFF:                 # fill byte
                k += 1
                continue
            length = struct.unpack('>H', b[k + 2:k + 4])[0]
            if marker in _SOF:
                if k + 9 > len(b):
                    break
                height, width = struct.unpack('>HH', b[k + 5:k + 9])
                return 'jpeg', width, height
            if marker in (0xD9, 0xDA):         # end, or entropy-coded data before any frame header
                break
            k += 2 + length
        raise InputError('jpeg without a frame header (start-of-frame) in its first 64 KiB')
    raise InputError('neither jpeg nor png (the first bytes are not either signature)')


def read_compressed(raw: bytes) -> CompressedFrame:
    """A serialized sensor_msgs/CompressedImage as a CompressedFrame, its size from the image's
    header; InputError says what is wrong. The caller checks the size against the envelope."""
    r = _Cdr(raw)
    sec, nanosec, frame_id = r.header()
    r.string()                               # format: advisory (image_transport writes e.g. "bgr8; jpeg ...")
    size, start = r.sequence(1)
    if size == 0:
        raise InputError('compressed image with no data')
    data = np.frombuffer(raw, np.uint8, count=size, offset=start)
    fmt, width, height = image_header_size(data)
    if width == 0 or height == 0:
        raise InputError(f'{fmt} of {width}x{height}')
    # A compressed frame larger than twice its raw pixels is not a camera's (and not worth reading).
    if size > 2 * width * height * 3 + 4096:
        raise InputError(f'{size} bytes of {fmt} for a {width}x{height} frame')
    return CompressedFrame(sec, nanosec, frame_id, data, fmt, int(width), int(height))


def decode(frame: CompressedFrame) -> Frame:
    """The frame's pixels (bgr8); InputError if it does not decode to the size its header gave."""
    pixels = cv2.imdecode(frame.data, cv2.IMREAD_COLOR)
    if pixels is None:
        raise InputError(f'{frame.encoding} frame does not decode')
    if pixels.shape[1] != frame.width or pixels.shape[0] != frame.height:
        raise InputError(f'{frame.encoding} decoded to {pixels.shape[1]}x{pixels.shape[0]}, its header says '
                         f'{frame.width}x{frame.height}')
    return Frame(frame.sec, frame.nanosec, frame.frame_id, pixels, 'bgr8')


class SharedDecoder:
    """decode() for tasks composed in one process that read the same compressed camera:
    each frame is decoded once. A frame is the same when its stamp, frame_id, format,
    size and a CRC of its bytes agree, so a second publisher's different frame under
    the same stamp is decoded on its own. The pixels are read-only (shared). Jobs of
    two workers may both miss and decode; both get the same pixels."""

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._recent: dict = {}            # key -> Frame, oldest first
        self._lock = threading.Lock()
        self.decoded = 0                   # frames decoded (misses), for the tests

    def __call__(self, frame: CompressedFrame) -> Frame:
        key = (frame.sec, frame.nanosec, frame.frame_id, frame.encoding, frame.data.size, zlib.crc32(frame.data))
        with self._lock:
            hit = self._recent.get(key)
        if hit is not None:
            return hit
        out = decode(frame)
        out.pixels.flags.writeable = False
        with self._lock:
            self.decoded += 1
            self._recent[key] = out
            while len(self._recent) > self.keep:
                self._recent.pop(next(iter(self._recent)))
        return out


SHARED_DECODE = SharedDecoder()


def compress(bgr: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """A bgr frame as jpeg or png bytes (the simulated camera's compressed stream)."""
    if fmt not in FORMATS:
        raise ValueError(f'compression: one of {FORMATS}, got {fmt!r}')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == 'jpeg' else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, buf = cv2.imencode('.jpg' if fmt == 'jpeg' else '.png', bgr, params)
    if not ok:
        raise ValueError(f'{fmt} encoding failed')
    return buf.tobytes()
