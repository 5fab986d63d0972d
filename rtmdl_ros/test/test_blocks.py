"""Declared pre/post-processing blocks of user families, on inputs built by hand."""
import numpy as np
import pytest

from rtmdl_ros.models import InputError
from rtmdl_ros.models.blocks import ImagePre, LogMelPre, Placement, Post


def test_stretch_resize_colour_layout_and_normalisation():
    pre = ImagePre.from_spec({'resize': [4, 2], 'colour': 'rgb', 'layout': 'nchw', 'scale': 1.0,
                              'mean': [1, 2, 3], 'std': [2, 2, 2]}, 'pre')
    frame = np.zeros((20, 40, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 30          # b, g, r
    x, place = pre(frame)
    assert x.shape == (1, 3, 2, 4) and x.dtype == np.float32
    assert np.allclose(x[0, 0], (30 - 1) / 2) and np.allclose(x[0, 2], (10 - 3) / 2)   # rgb order
    assert place == Placement(10.0, 10.0, 0, 0, 40, 20)
    nhwc, _ = ImagePre.from_spec({'resize': [4, 2], 'layout': 'nhwc', 'colour': 'bgr'}, 'pre')(frame)
    assert nhwc.shape == (1, 2, 4, 3) and np.allclose(nhwc[0, 0, 0], [10 / 255, 20 / 255, 30 / 255])


def test_letterbox_maps_input_pixels_back_to_the_source_frame():
    pre = ImagePre.from_spec({'resize': [64, 64], 'mode': 'letterbox'}, 'pre')
    frame = np.full((480, 640, 3), 200, np.uint8)
    x, place = pre(frame)
    # 640x480 -> 64x48, padded 8 px top and bottom with grey 114.
    assert np.allclose(x[0, :, 0, 0], 114 / 255) and np.allclose(x[0, :, 32, 32], 200 / 255)
    # The input's (0, 8) corner is the frame's (0, 0); (64, 56) is (640, 480).
    assert (0 * place.scale_x + place.offset_x, 8 * place.scale_y + place.offset_y) == pytest.approx((0, 0))
    assert (64 * place.scale_x + place.offset_x, 56 * place.scale_y + place.offset_y) == pytest.approx((640, 480))


def test_roi_crops_before_resizing_and_offsets_the_boxes():
    pre = ImagePre.from_spec({'resize': [32, 32], 'roi': [0.5, 0.0, 1.0, 0.5]}, 'pre')
    _, place = pre(np.zeros((100, 200, 3), np.uint8))
    assert (place.offset_x, place.offset_y) == (100, 0) and place.scale_x == pytest.approx(100 / 32)


@pytest.mark.parametrize('spec, message', [
    ({}, 'needs resize'),
    ({'resize': [64]}, 'list of 2 numbers'),
    ({'resize': [64, 64], 'mode': 'crop'}, "mode: must be one of ('stretch', 'letterbox')"),
    ({'resize': [64, 64], 'roi': [0.5, 0.5, 0.5001, 0.4]}, 'roi: need'),
    ({'resize': [64, 64], 'std': [1, 0, 1]}, 'std: must be > 0'),
    ({'resize': [64, 64], 'normalise': True}, "unknown keys ['normalise']"),
])
def test_bad_image_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[')):
        ImagePre.from_spec(spec, 'tasks.x.model.pre')


def test_bad_frames_are_input_errors():
    pre = ImagePre.from_spec({'resize': [16, 16]}, 'pre')
    with pytest.raises(InputError, match='H x W x 3'):
        pre(np.zeros((10, 10), np.uint8))


def test_classifier_ranks_softmax_and_checks_the_label_count():
    post = Post.from_spec({'format': 'classifier', 'top_k': 2}, 'post')
    ranked = post.classify(np.array([[0.0, 3.0, 1.0]]), ('a', 'b', 'c'))
    assert [(label, i) for label, i, _ in ranked] == [('b', 1), ('c', 2)]
    assert ranked[0][2] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.exp(1)))
    with pytest.raises(InputError, match='3 values for 2 labels'):
        post.classify(np.zeros(3), ('a', 'b'))


def _yolov8(boxes, scores):
    """[1, 4 + C, N] from per-box (cx, cy, w, h) and per-box class scores."""
    return np.concatenate([np.asarray(boxes, np.float32).T, np.asarray(scores, np.float32).T])[None]


def test_yolov8_decode_suppresses_overlaps_per_class_and_maps_to_source():
    post = Post.from_spec({'format': 'yolov8', 'score_threshold': 0.3, 'iou_threshold': 0.5}, 'post')
    y = _yolov8([(20, 20, 10, 10), (21, 20, 10, 10), (50, 50, 8, 8), (21, 21, 10, 10)],
                [(0.9, 0.0), (0.8, 0.0), (0.0, 0.7), (0.1, 0.2)])          # the last is under the threshold
    dets = post.detect(y, ('person', 'bike'), Placement(2.0, 2.0, 10.0, 0.0))
    assert [(d[0], round(d[2], 2)) for d in dets] == [('person', 0.9), ('bike', 0.7)]
    assert dets[0][3] == pytest.approx((15 * 2 + 10, 15 * 2, 25 * 2 + 10, 25 * 2))


def test_yolov5_decode_multiplies_objectness_and_class_scores():
    post = Post.from_spec({'format': 'yolov5', 'score_threshold': 0.3}, 'post')
    y = np.array([[[10, 10, 4, 4, 0.5, 0.9, 0.1], [30, 30, 4, 4, 0.9, 0.2, 0.3]]], np.float32)
    dets = post.detect(y, ('a', 'b'), Placement(1, 1, 0, 0))
    assert [(d[0], round(d[2], 2)) for d in dets] == [('a', 0.45)]          # 0.9 x 0.3 = 0.27 is dropped
    assert post.classes_in([1, 'N', 7]) == 2 and Post.from_spec({'format': 'yolov8'}, 'p').classes_in([1, 6, 'N']) == 2


def test_logmel_takes_its_declared_rate_only():
    pre = LogMelPre.from_spec({'logmel': {'sample_rate': 8000, 'clip_s': 1.0, 'n_mels': 16, 'n_fft': 256, 'hop': 128}},
                              'pre')
    x, _ = pre(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32), 8000)
    assert x.shape == pre.input_shape == (1, 1, 16, 63)
    with pytest.raises(InputError, match='16000 Hz'):
        pre(np.zeros(100, np.float32), 16000)
    with pytest.raises(InputError, match='finite'):
        pre(np.full(100, np.nan, np.float32), 8000)
