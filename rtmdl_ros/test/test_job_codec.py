"""The task node -> executor hand-off (issue #21): the task node encodes a camera frame
into the model's picture and the executor turns that into the network input. What the
model receives must equal what the whole pre-processing makes of the raw frame, bit for
bit, for every encoding the nodes accept; boxes must map back to source pixels through
crop and letterbox; the placement must travel with the frame."""
import math

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rclpy.serialization import serialize_message  # noqa: E402
from rtmdl_interfaces.msg import SoundJob  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from rtmdl_ros.data.drive import DriveSequence  # noqa: E402
from rtmdl_ros.models import IMAGE, InputError  # noqa: E402
from rtmdl_ros.models.blocks import ImagePre, Post  # noqa: E402
from rtmdl_ros.models.envelope import Envelope  # noqa: E402
from rtmdl_ros.models.families import family  # noqa: E402
from rtmdl_ros.models.picture import Placement  # noqa: E402
from rtmdl_ros.nodes.conversions import bgr_to_image, image_to_bgr  # noqa: E402
from rtmdl_ros.nodes.job_codec import (check_image_job, check_sound_job, decode_image_job, decode_sound_job,  # noqa: E402
                                       encode_frame, image_job, read_frame, sound_job)


class UserImage:
    """A user family's image interface around declared blocks (as models/user_family.py)."""

    def __init__(self, **spec):
        self.pre = ImagePre.from_spec(spec, 'test.pre')
        self.picture_size = self.pre.picture_size

    def encode(self, frame, roi=None):
        return self.pre.encode(frame)

    def tensor(self, picture):
        return self.pre.tensor(picture)

    def preprocess(self, frame):
        return self.pre(frame)[0]


FAMILIES = {
    'traffic_light': lambda: family('traffic_light'),
    'sign': lambda: family('sign'),
    'letterbox_rgb': lambda: UserImage(resize=[96, 64], mode='letterbox', roi=[0.1, 0.2, 0.9, 1.0], colour='rgb'),
    'stretch_bgr_nhwc': lambda: UserImage(resize=[40, 30], colour='bgr', layout='nhwc', mean=[0.5, 0.4, 0.3]),
}


def frame_message(encoding='bgr8', pad=0, size=(640, 480)):
    img = DriveSequence(size[0], size[1], seed=3).next().image
    msg = bgr_to_image(img, Image, encoding=encoding)
    if pad:
        rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, -1)
        msg.data = np.hstack([rows, np.full((msg.height, pad), 7, np.uint8)]).tobytes()
        msg.step += pad
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 1700000000, 123456789, 'front_camera'
    return msg


def roi_of(fam):
    return getattr(fam, 'default_roi', None)


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('encoding, pad', [('bgr8', 0), ('rgb8', 0), ('mono8', 0), ('bgr8', 64)])
def test_the_model_receives_what_the_raw_frame_would_have_given_it_bit_for_bit(name, encoding, pad):
    fam = FAMILIES[name]()
    msg = frame_message(encoding, pad)
    expected = fam.preprocess(image_to_bgr(msg), *([roi_of(fam)] if roi_of(fam) else []))
    raw = serialize_message(msg)
    frame = read_frame(raw, Envelope(IMAGE))
    picture = encode_frame(fam, frame, roi_of(fam))
    job = serialize_message(image_job(frame, picture, 1.0, 1.001, 0))
    check_image_job(job, fam.picture_size, Envelope(IMAGE))
    received, header = decode_image_job(job)
    got = fam.tensor(received.image)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert (header.stamp.sec, header.stamp.nanosec, header.frame_id) == (1700000000, 123456789, 'front_camera')
    assert received.place == picture.place                  # the placement travels exactly
    w, h = fam.picture_size
    assert len(job) <= w * h * 3 + 256                      # what crosses is what the model reads


def test_the_job_is_a_fraction_of_the_frame():
    raw = serialize_message(frame_message())
    for name, limit in (('traffic_light', 160 * 120 * 3 + 200), ('sign', 32 * 32 * 3 + 200)):
        fam = family(name)
        frame = read_frame(raw)
        job = serialize_message(image_job(frame, encode_frame(fam, frame, roi_of(fam)), 0.0, 0.0, 0))
        assert len(job) <= limit, (name, len(job))


def _bright_box(img):
    ys, xs = np.nonzero(img.max(axis=2) > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


@pytest.mark.parametrize('name', ['letterbox_rgb', 'sign', 'traffic_light'])
def test_boxes_map_back_to_source_pixels_through_crop_and_letterbox(name):
    fam = FAMILIES[name]()
    frame = np.zeros((480, 640, 3), np.uint8)
    roi = roi_of(fam)
    box = np.array([430, 90, 510, 170] if name == 'sign' else [200, 250, 328, 378], np.float64)
    frame[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 255
    picture, place = fam.encode(frame, roi)
    found = place.to_source(_bright_box(picture))[0]
    # One picture pixel of rounding either way, in source pixels.
    tolerance = max(place.scale_x, place.scale_y) + 1
    np.testing.assert_allclose(found, box, atol=tolerance)


def test_a_detector_reports_boxes_in_source_pixels_through_a_letterbox():
    fam = FAMILIES['letterbox_rgb']()
    frame = np.zeros((480, 640, 3), np.uint8)
    _, place = fam.encode(frame)
    # One yolov5-style detection at picture box (20, 10)-(40, 30): cx, cy, w, h, obj, class scores.
    out = np.array([[[30.0, 20.0, 20.0, 20.0, 0.9, 0.1, 0.95]]], np.float32)
    (label, cid, score, b), = Post.from_spec({'format': 'yolov5'}, 'post').detect(out, ('a', 'b'), place)
    expect = place.to_source(np.array([[20.0, 10.0, 40.0, 30.0]]))[0]
    assert label == 'b' and cid == 1 and np.allclose(b, expect)
    # Picture column 0 lies left of the crop's edge (x = 64) by the letterbox pad: 5 columns of 6 px.
    assert place.offset_x == pytest.approx(0.1 * 640 - 5 * place.scale_x)


def test_placement_clips_boxes_to_the_frame():
    p = Placement(2.0, 2.0, -10.0, 5.0, 100, 80)
    assert p.to_source(np.array([[0, 0, 60, 60]])).tolist() == [[0.0, 5.0, 100.0, 80.0]]


def _job(fam, **changes):
    frame = read_frame(serialize_message(frame_message()))
    msg = image_job(frame, encode_frame(fam, frame, roi_of(fam)), 0.0, 0.0, 3)
    for k, v in changes.items():
        setattr(msg, k, v)
    return serialize_message(msg)


@pytest.mark.parametrize('changes, reason', [
    ({'width': 161}, 'the model reads 160x120'),
    ({'data': bytes(100)}, 'bytes of picture'),
    ({'scale_x': math.nan}, 'placement'),
    ({'scale_y': -1.0}, 'placement'),
    ({'source_width': 0}, 'placement'),
    ({'source_width': 4096, 'source_height': 4096}, 'larger than the 640x480'),
])
def test_the_executor_refuses_a_job_that_is_not_a_picture_of_an_admitted_frame(changes, reason):
    fam = family('traffic_light')
    with pytest.raises(InputError, match=reason):
        check_image_job(_job(fam, **changes), fam.picture_size, Envelope(IMAGE))


def test_the_job_carries_the_task_nodes_times_and_refusals():
    fam = family('traffic_light')
    frame = read_frame(serialize_message(frame_message()))
    job = serialize_message(image_job(frame, encode_frame(fam, frame, None), 1700000000.25, 1700000000.2505, 17,
                                      (4, 0, 2, 0, 9)))
    fields = check_image_job(job, fam.picture_size)
    assert (fields.sec, fields.nanosec, fields.refused) == (1700000000, 123456789, 17)
    assert fields.guard_refused == (4, 0, 2, 0, 9)
    # From a sender with no counts (an older node, a bridge): an empty sequence ends the message.
    empty = check_image_job(serialize_message(image_job(frame, encode_frame(fam, frame, None), 1.0, 1.0, 0)),
                            fam.picture_size)
    assert empty.guard_refused == ()
    assert fields.frame_id == frame.frame_id and fields.signature == (frame.frame_id, frame.width, frame.height)
    assert fields.received_s == pytest.approx(1700000000.25, abs=1e-6)
    assert fields.released_s == pytest.approx(1700000000.2505, abs=1e-6)


def test_sound_jobs_round_trip_and_refuse_bad_samples():
    from std_msgs.msg import Header
    samples = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    job = serialize_message(sound_job(Header(frame_id='mic'), (7, 500), 16000, samples.tolist(), 5.0, 5.001, 2))
    env = Envelope('sound', window_s=2.0, model_rate=16000)
    fields = check_sound_job(job, env)
    assert (fields.refused, fields.guard_refused, fields.sec, fields.nanosec) == (2, (), 7, 500)
    (got, rate), header = decode_sound_job(job)
    assert rate == 16000 and header.frame_id == 'mic' and np.array_equal(got, samples)
    assert (header.stamp.sec, header.stamp.nanosec) == (7, 500)    # the stamp the job counts from
    bad = SoundJob(sample_rate=16000)
    bad.samples = [0.0, float('nan')]
    with pytest.raises(InputError, match='NaN'):
        check_sound_job(serialize_message(bad), env)
    with pytest.raises(InputError, match='of sound in one job'):
        check_sound_job(serialize_message(SoundJob(sample_rate=16000, samples=[0.0] * 16000 * 5)), env)


@pytest.mark.parametrize('mutate, reason', [
    (lambda m: setattr(m, 'encoding', 'yuv422'), 'unsupported image encoding'),
    (lambda m: setattr(m, 'data', bytes(m.data)[:1000]), 'bytes of data'),
    (lambda m: setattr(m, 'step', 10), 'step 10 is shorter'),
])
def test_the_task_node_refuses_malformed_frames_before_reading_pixels(mutate, reason):
    msg = frame_message()
    mutate(msg)
    with pytest.raises(InputError, match=reason):
        read_frame(serialize_message(msg))
