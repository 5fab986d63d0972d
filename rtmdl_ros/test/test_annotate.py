"""annotated/<task>: boxes drawn where the detections say, off the scheduler's thread, throttled."""
import threading
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rtmdl_ros.models.jobs import Result  # noqa: E402
from rtmdl_ros.nodes.annotate import Annotator, draw, to_bgr  # noqa: E402
from rtmdl_ros.nodes.compressed import CompressedFrame, compress, image_header_size  # noqa: E402
from rtmdl_ros.nodes.job_codec import Frame  # noqa: E402


def test_a_box_is_drawn_on_its_edges_and_nowhere_else():
    image = np.zeros((120, 160, 3), np.uint8)
    draw(image, Result('detect', [], [('red', 0, 0.91, (40.0, 50.0, 100.0, 90.0))]))
    assert image[90, 40:101].max() > 0 and image[50:91, 100].max() > 0      # bottom and right edges
    assert image[60:80, 50:90].max() == 0                                    # inside: untouched
    assert image[100:, :].max() == 0 and image[:, 120:].max() == 0           # outside: untouched


def test_a_box_outside_the_frame_is_clipped_not_an_error():
    image = np.zeros((60, 80, 3), np.uint8)
    draw(image, Result('detect', [], [('green', 1, 0.5, (-20.0, -5.0, 500.0, 400.0))]))
    assert image[59, :].max() > 0 and image[:, 79].max() > 0


def test_a_classifier_shows_its_top_class():
    image = np.zeros((120, 160, 3), np.uint8)
    draw(image, Result('classify', [('stop', 3, 0.97), ('yield', 1, 0.02)], []))
    assert image[:40].max() > 0 and image[60:].max() == 0


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8', 'jpeg'])
def test_every_frame_kind_becomes_a_bgr_copy(encoding):
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    if encoding == 'jpeg':
        data = np.frombuffer(compress(bgr, 'jpeg'), np.uint8)
        _, w, h = image_header_size(data)
        frame = CompressedFrame(0, 0, 'c', data, 'jpeg', w, h)
    else:
        pixels = {'bgr8': bgr, 'rgb8': bgr[:, :, ::-1], 'mono8': bgr[:, :, :1]}[encoding]
        frame = Frame(0, 0, 'c', pixels, encoding)
    out = to_bgr(frame)
    assert out.shape == (48, 64, 3) and out.flags.writeable
    if encoding in ('bgr8', 'rgb8'):
        assert np.array_equal(out, bgr)
    out[:] = 0                                                   # a copy: the frame is not drawn on
    assert frame.pixels.max() > 0 if encoding != 'jpeg' else True


def test_the_annotator_throttles_per_task_and_draws_off_the_callers_thread():
    sent, threads = [], set()

    def publish(task, bgr, header):
        threads.add(threading.current_thread().name)
        sent.append((task, header))
    ann = Annotator(5.0, publish)
    frame = Frame(0, 0, 'c', np.zeros((48, 64, 3), np.uint8), 'bgr8')
    result = Result('detect', [], [])
    try:
        end = time.monotonic() + 1.0
        k = 0
        while time.monotonic() < end:                            # 100 offers a second for 1 s, two tasks
            ann.offer('a', frame, result, k)
            ann.offer('b', frame, result, k)
            k += 1
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        ann.stop()
    per_task = {t: sum(1 for x, _ in sent if x == t) for t in ('a', 'b')}
    assert all(4 <= n <= 7 for n in per_task.values()), per_task          # 5 Hz each, not 100
    assert threads == {'annotate'}
