"""sensor_msgs/CompressedImage input: sizes read before decoding, bombs refused, decode checked."""
import zlib

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from rtmdl_ros.data.drive import DriveSequence  # noqa: E402
from rtmdl_ros.models import InputError  # noqa: E402
from rtmdl_ros.models.envelope import Envelope  # noqa: E402
from rtmdl_ros.nodes.compressed import (compress, decode, image_header_size, is_compressed_topic,  # noqa: E402
                                        read_compressed)


def _message(data: bytes, fmt='jpeg', frame_id='camera'):
    msg = CompressedImage(format=fmt, data=data)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_790_000_000, 5
    return serialize_message(msg)


@pytest.mark.parametrize('fmt', ['jpeg', 'png'])
def test_a_compressed_frame_reads_its_size_and_decodes_to_it(fmt):
    bgr = DriveSequence(seed=1).next().image                         # 640x480
    frame = read_compressed(_message(compress(bgr, fmt), fmt))
    assert (frame.encoding, frame.width, frame.height) == (fmt, 640, 480)
    assert (frame.sec, frame.nanosec, frame.frame_id) == (1_790_000_000, 5, 'camera')
    pixels = decode(frame).pixels
    assert pixels.shape == bgr.shape
    err = np.abs(pixels.astype(int) - bgr.astype(int)).mean()
    assert err == 0 if fmt == 'png' else err < 6                    # png is lossless, jpeg close


def _png_bomb(width, height):
    """A real PNG of width x height zeros: a few kilobytes that decode to width*height*3 bytes."""
    def chunk(kind, body):
        return (len(body).to_bytes(4, 'big') + kind + body
                + zlib.crc32(kind + body).to_bytes(4, 'big'))
    ihdr = width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes([8, 2, 0, 0, 0])
    rows = zlib.compressobj(9)
    raw = rows.compress(bytes(1 + width * 3) * 64) + rows.flush()   # a header is all the check reads
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', raw) + chunk(b'IEND', b'')


def test_a_decompression_bomb_is_refused_by_its_header_before_it_is_decoded():
    bomb = _message(_png_bomb(30000, 30000), 'png')                  # 2.7 GB of pixels
    frame = read_compressed(bomb)
    assert (frame.width, frame.height) == (30000, 30000) and len(frame.data) < 100_000
    envelope = Envelope('image', max_width=640, max_height=480)
    with pytest.raises(InputError, match='30000x30000'):
        envelope.check_frame(frame.width, frame.height)              # what the task node does next


@pytest.mark.parametrize('data, reason', [
    (b'', 'no data'),
    (b'GIF89a' + bytes(100), 'neither jpeg nor png'),
    (b'\xff\xd8\xff\xe0\x00\x10JFIF' + bytes(50), 'jpeg'),
    (b'\x89PNG\r\n\x1a\n' + bytes(30), 'IHDR'),
])
def test_malformed_compressed_frames_are_refused_with_the_reason(data, reason):
    with pytest.raises(InputError, match=reason):
        read_compressed(_message(data))


def test_a_frame_that_decodes_to_another_size_than_its_header_says_is_refused():
    good = bytearray(compress(DriveSequence(seed=2).next().image, 'png'))
    good[16:24] = (600).to_bytes(4, 'big') + (460).to_bytes(4, 'big')     # the header lies: 600x460
    frame = read_compressed(_message(bytes(good), 'png'))
    with pytest.raises(InputError):
        decode(frame)
    good[16:24] = (320).to_bytes(4, 'big') + (240).to_bytes(4, 'big')     # more bytes than 2x its pixels
    with pytest.raises(InputError, match='bytes of png for a 320x240 frame'):
        read_compressed(_message(bytes(good), 'png'))


def test_truncated_data_does_not_decode():
    data = compress(DriveSequence(seed=3).next().image, 'jpeg')
    frame = read_compressed(_message(data[:600]))
    with pytest.raises(InputError, match='decode'):
        decode(frame)


def test_image_transport_topic_names():
    assert is_compressed_topic('image_raw/compressed') and is_compressed_topic('/front/image_raw/compressed/')
    assert not is_compressed_topic('image_raw') and not is_compressed_topic('compressed_images')
    with pytest.raises(InputError):
        image_header_size(b'\xff\xd8\xff' + b'\x00' * 10)


def test_a_composed_jobs_pre_segment_decodes_then_cuts_the_models_picture():
    from rtmdl_ros.models.families import family
    from rtmdl_ros.nodes.job_codec import JobFields, LocalJob, encode_frame, image_decoder
    fam = family('traffic_light')
    bgr = DriveSequence(seed=4).next().image
    frame = read_compressed(_message(compress(bgr, 'png'), 'png'))
    picture, header = image_decoder(fam)(LocalJob(JobFields(1, 2, 0.0, 0.0, 0), 'camera', (frame, None)))
    want = encode_frame(fam, decode(frame), None)
    assert np.array_equal(picture.image, want.image) and (header.stamp.sec, header.frame_id) == (1, 'camera')


def test_two_composed_tasks_on_one_camera_decode_each_frame_once_and_a_second_publishers_apart():
    from rtmdl_ros.models.families import family
    from rtmdl_ros.nodes.compressed import SharedDecoder
    from rtmdl_ros.nodes.job_codec import encode_frame
    shared = SharedDecoder(keep=2)
    bgr = DriveSequence(seed=5).next().image
    raw = _message(compress(bgr, 'jpeg'))
    first, second = read_compressed(raw), read_compressed(bytes(raw))     # two subscriptions' copies
    a, b = shared(first), shared(second)
    assert shared.decoded == 1 and a is b and np.array_equal(a.pixels, decode(first).pixels)
    with pytest.raises(ValueError):
        a.pixels[0, 0, 0] = 1                                             # shared: read-only
    for name in ('traffic_light', 'sign'):                                # each task cuts its own picture
        fam = family(name)
        assert encode_frame(fam, a, fam.default_roi).image.shape[:2][::-1] == fam.picture_size
    # Same stamp and frame_id, other content (another publisher): decoded on its own.
    other = read_compressed(_message(compress(DriveSequence(seed=6).next().image, 'jpeg')))
    assert (other.sec, other.nanosec) == (first.sec, first.nanosec)
    assert not np.array_equal(shared(other).pixels, a.pixels) and shared.decoded == 2
    for seed in (7, 8):                                                   # keeps only the latest frames
        shared(read_compressed(_message(compress(DriveSequence(seed=seed).next().image, 'jpeg'))))
    shared(first)
    assert shared.decoded == 5


def test_a_task_node_on_a_compressed_topic_releases_jpeg_frames_and_refuses_a_bomb(tmp_path):
    import time
    import rclpy
    from rclpy.parameter import Parameter
    from rtmdl_ros.nodes.task_nodes import CameraTaskNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = CameraTaskNode(namespace='compressed_test', context=ctx, parameter_overrides=[
            Parameter('task', value='traffic_light'), Parameter('input_topic', value='image_raw/compressed')])
        node.executor_active = lambda: True               # no executor here: count what it would send
        sent = []
        node.pub.publish = sent.append
        try:
            assert node.msg_type is CompressedImage and node.input_filter is None
            jpeg = compress(DriveSequence(seed=5).next().image, 'jpeg')
            for k in range(3):
                msg = CompressedImage(format='jpeg', data=jpeg)
                ns = time.time_ns() - (3 - k) * 40_000_000
                msg.header.stamp.sec, msg.header.stamp.nanosec = ns // 10**9, ns % 10**9
                node.on_input(serialize_message(msg))
            assert node.released == 3 and len(sent) == 3
            assert (sent[0].source_width, sent[0].source_height) == (640, 480)      # the decoded frame's picture
            bomb = CompressedImage(format='png', data=_png_bomb(30000, 30000))
            bomb.header.stamp.sec = int(time.time())
            node.on_input(serialize_message(bomb))
            assert node.released == 3 and node.malformed == 1
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
