"""Image and audio message conversion (issue #4), cross-checked against cv_bridge
where it is installed (a ROS install with vision_opencv)."""
import numpy as np
import pytest

pytest.importorskip('sensor_msgs')
from rtmdl_interfaces.msg import AudioChunk  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from rtmdl_ros.models.families import InputError  # noqa: E402
from rtmdl_ros.nodes.conversions import chunk_to_mono, bgr_to_image, image_to_bgr  # noqa: E402
from rtmdl_ros.nodes.spin import float32_array  # noqa: E402

RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8'])
def test_colour_round_trip_is_exact(encoding):
    msg = bgr_to_image(BGR, Image, encoding=encoding)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (48, 64, 64 * 3, encoding)
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


def test_rgb8_bytes_are_in_rgb_order():
    msg = bgr_to_image(BGR, Image, encoding='rgb8')
    first = np.frombuffer(bytes(msg.data[:3]), np.uint8)
    np.testing.assert_array_equal(first, BGR[0, 0, ::-1])


def test_mono8_becomes_grey_bgr():
    msg = bgr_to_image(BGR, Image, encoding='mono8')
    out = image_to_bgr(msg)
    assert out.shape == (48, 64, 3)
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()


def test_row_padding_is_skipped():
    msg = bgr_to_image(BGR, Image)
    pad = 8
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(48, 64 * 3)
    msg.data = np.hstack([rows, np.zeros((48, pad), np.uint8)]).tobytes()
    msg.step = 64 * 3 + pad
    np.testing.assert_array_equal(image_to_bgr(msg), BGR)


@pytest.mark.parametrize('mutate, match', [
    (lambda m: setattr(m, 'encoding', '16UC1'), 'unsupported image encoding'),
    (lambda m: setattr(m, 'data', bytes(m.data)[:-1]), 'bytes of data'),
    (lambda m: setattr(m, 'step', 10), 'shorter than a row'),
    (lambda m: (setattr(m, 'height', 0), setattr(m, 'data', b'')), 'empty image'),
])
def test_malformed_images_are_rejected_with_a_reason(mutate, match):
    msg = bgr_to_image(BGR, Image)
    mutate(msg)
    with pytest.raises(InputError, match=match):
        image_to_bgr(msg)


def test_audio_chunk_to_mono():
    stereo = np.stack([np.full(100, 0.5), np.full(100, -0.1)], axis=1).astype(np.float32)
    msg = AudioChunk(sample_rate=22050, channels=2)
    msg.samples = float32_array(stereo.reshape(-1))
    x, rate = chunk_to_mono(msg)
    assert rate == 22050 and x.shape == (100,)
    np.testing.assert_allclose(x, 0.2, atol=1e-6)


@pytest.mark.parametrize('rate, channels, samples, match', [
    (16000, 1, [float('nan'), 0.0], 'NaN'),
    (16000, 1, [], 'empty'),
    (100, 1, [0.0], 'out of range'),
    (16000, 2, [0.0, 0.1, 0.2], 'do not divide'),
    (16000, 0, [0.0], 'channels'),
])
def test_bad_audio_chunks_are_rejected(rate, channels, samples, match):
    msg = AudioChunk(sample_rate=rate, channels=channels)
    msg.samples = float32_array(np.asarray(samples, np.float32))
    with pytest.raises(InputError, match=match):
        chunk_to_mono(msg)


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8'])
def test_agrees_with_cv_bridge(encoding):
    cv_bridge = pytest.importorskip('cv_bridge', reason='cv_bridge is not installed (no ROS vision_opencv)')
    bridge = cv_bridge.CvBridge()
    src = BGR if encoding != 'mono8' else BGR[:, :, 0].copy()
    theirs = bridge.cv2_to_imgmsg(src if encoding != 'rgb8' else src[:, :, ::-1].copy(), encoding=encoding)
    np.testing.assert_array_equal(image_to_bgr(theirs), bridge.imgmsg_to_cv2(theirs, desired_encoding='bgr8'))
    ours = bgr_to_image(BGR, Image, encoding=encoding)
    np.testing.assert_array_equal(bridge.imgmsg_to_cv2(ours, desired_encoding='bgr8'), image_to_bgr(ours))


def _serialized_image(frame_id='cam', encoding='bgr8', data=None, shape=(7, 5)):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    msg = bgr_to_image(np.zeros((*shape, 3), np.uint8), Image, encoding=encoding)
    msg.header.frame_id = frame_id
    if data is not None:
        msg.data = data
    return msg, serialize_message(msg)


@pytest.mark.parametrize('frame_id', ['', 'a', 'cam', 'front_camera_optical'])
@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8'])
def test_serialized_image_checks_read_the_fields_without_decoding(frame_id, encoding):
    from rtmdl_ros.nodes.job_codec import read_frame
    pytest.importorskip('rclpy')
    read_frame(_serialized_image(frame_id, encoding)[1])      # header of any length, any encoding


@pytest.mark.parametrize('change, message', [
    (lambda m: setattr(m, 'encoding', 'yuv422'), "unsupported image encoding 'yuv422'"),
    (lambda m: setattr(m, 'data', bytes(10)), '10 bytes of data for 7 rows of 15 bytes'),
    (lambda m: (setattr(m, 'height', 100000), setattr(m, 'width', 100000)), 'larger than'),
    (lambda m: setattr(m, 'step', 3), 'step 3 is shorter'),
])
def test_serialized_image_checks_match_the_decoder(change, message):
    from rclpy.serialization import serialize_message

    from rtmdl_ros.nodes.job_codec import read_frame
    pytest.importorskip('rclpy')
    msg, _ = _serialized_image()
    change(msg)
    with pytest.raises(InputError, match=message):
        read_frame(serialize_message(msg))
    with pytest.raises(InputError, match=message):
        image_to_bgr(msg)


def test_serialized_checks_refuse_truncated_messages_and_nan_audio():
    from rclpy.serialization import serialize_message
    from rtmdl_interfaces.msg import AudioChunk

    from rtmdl_ros.nodes.conversions import check_serialized_chunk
    from rtmdl_ros.nodes.job_codec import read_frame
    from rtmdl_ros.nodes.spin import float32_array
    pytest.importorskip('rclpy')
    with pytest.raises(InputError, match='declared'):
        read_frame(_serialized_image()[1][:60])
    chunk = AudioChunk(sample_rate=16000, channels=1)
    chunk.samples = float32_array(np.ones(64))
    check_serialized_chunk(serialize_message(chunk))
    chunk.samples = float32_array(np.full(64, np.nan))
    with pytest.raises(InputError, match='NaN'):
        check_serialized_chunk(serialize_message(chunk))


# --------------------------------------------------------------------------- the profiled envelope

def test_the_envelope_bounds_frame_size_rate_and_length():
    from rtmdl_ros.models import IMAGE, SOUND
    from rtmdl_ros.models.envelope import Envelope
    cam = Envelope(IMAGE, 640, 480)
    cam.check_frame(640, 480)
    cam.check_frame(480, 640)                          # the same pixels, rotated
    with pytest.raises(InputError, match='4096x4096 is larger than the 640x480'):
        cam.check_frame(4096, 4096)
    with pytest.raises(InputError, match='4096x75 has a side longer than the 640 px'):
        cam.check_frame(4096, 75)                     # fewer pixels, but no camera's shape
    mic = Envelope(SOUND, window_s=2.0, model_rate=16000)
    for rate in (8000, 16000, 22050, 44100, 48000, 96000):
        mic.check_sound(rate, 2 * rate)
    with pytest.raises(InputError, match='191999 Hz resamples to 16000 Hz by 16000/191999'):
        mic.check_sound(191999, 1000)
    with pytest.raises(InputError, match='600.00 s of sound in one job; the task takes 2 s'):
        mic.check_sound(48000, 600 * 48000)
    fixed = Envelope(SOUND, window_s=1.0, model_rate=16000, resamples=False)
    with pytest.raises(InputError, match='the model takes 16000 Hz'):
        fixed.check_sound(44100, 100)


def test_envelopes_come_from_max_frame_or_the_sensor_size(tmp_path):
    import yaml

    from rtmdl_ros.core.taskset import TasksetError
    from rtmdl_ros.models.catalog import read_task_requirements, task_envelopes, task_families
    from rtmdl_ros.nodes.resources import default_taskset_file
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['tasks']['sign']['max_frame'] = [1280, 720]
    raw['tasks']['traffic_light']['input_topic'] = 'front/image_raw'
    raw['sensors'] = {'front/image_raw': {'width': 320, 'height': 240}}
    path = tmp_path / 'ts.yaml'
    path.write_text(yaml.safe_dump(raw))
    env = task_envelopes(raw, str(path), task_families(read_task_requirements(str(path)), str(path)))
    assert (env['sign'].max_width, env['sign'].max_height) == (1280, 720)
    assert (env['traffic_light'].max_width, env['traffic_light'].max_height) == (320, 240)
    assert env['audio'].window_s == 2.0 and env['audio'].model_rate == 16000 and env['audio'].resamples
    raw['tasks']['sign']['max_frame'] = [1280]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(TasksetError, match=r'tasks\.sign\.max_frame: expected \[width, height\]'):
        read_task_requirements(str(path))


def test_a_stamp_written_into_a_serialized_frame_is_the_one_read_back():
    """The simulated camera re-stamps prebuilt serialized frames instead of re-serializing them."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from rtmdl_ros.nodes.conversions import bgr_to_image, stamp_of_serialized, write_stamp
    msg = bgr_to_image(np.zeros((8, 12, 3), np.uint8), Image)
    msg.header.frame_id = 'front'
    raw = bytearray(serialize_message(msg))
    write_stamp(raw, 1700000123, 999_000_001)
    assert stamp_of_serialized(bytes(raw)) == (1700000123, 999_000_001)
    back = deserialize_message(bytes(raw), Image)
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (1700000123, 999_000_001, 'front')
    assert bytes(back.data) == bytes(msg.data)
