"""Well-formed but wrong input: stamps from another clock, a second publisher (core/input_guard.py)."""
import math

import pytest

from rtmdl_ros.core.input_guard import (BACKWARDS, FOREIGN, FUTURE, OLD, REASONS, ZERO, GuardLimits, InputGuard,
                                        key_text, publisher_key)

NOW = 1_790_000_000_000.0        # ms, ROS time of a car in 2026
CAM, OTHER = ('gid', b'\x01' * 16), ('gid', b'\x02' * 16)


def guard(**kw):
    limits = GuardLimits(**{k: kw.pop(k) for k in list(kw) if k in ('max_future_ms', 'max_age_ms', 'source_timeout_s')})
    return InputGuard(limits, deadline_ms=kw.pop('deadline_ms', 33.3), **kw)


def camera(g, frames, start=NOW, key=CAM, path_ms=3.0):
    """Frames of a 30 fps camera stamped on this clock, received path_ms later: the refusals."""
    out = []
    for k in range(frames):
        stamp = start + k * 33.3
        out.append(g.check(stamp, stamp + path_ms, key, 'camera'))
    return out


def test_a_camera_on_this_clock_passes_and_binds():
    g = guard()
    assert camera(g, 30) == [None] * 30
    assert g.source == CAM and g.bindings == 1 and g.refused == 0


@pytest.mark.parametrize('stamp, reason', [
    (0.0, ZERO),
    (NOW + 51.0, FUTURE),                # past the 50 ms tolerance
    (NOW - 1001.0, OLD),                 # older than max(deadline, 1 s) at receipt
    (NOW - 3.2e12, OLD),                 # a camera's clock since boot, or a bag from another day
])
def test_each_wrong_clock_is_refused_under_its_reason(stamp, reason):
    g = guard()
    assert g.check(stamp, NOW, CAM, 'camera') == reason
    assert g.counts[reason] == 1 and g.source is None      # a refused frame never binds


def test_a_frame_late_for_its_deadline_is_still_a_job_that_misses():
    # Delayed by the graph (overload), not from another clock: it must count in the miss rate.
    assert guard().check(NOW - 200.0, NOW, CAM) is None
    assert guard(deadline_ms=2500.0).check(NOW - 2000.0, NOW, CAM) is None
    assert guard(deadline_ms=2500.0).check(NOW - 2600.0, NOW, CAM) == OLD


def test_the_limits_are_the_tolerances_they_say():
    g = guard(max_future_ms=5.0, max_age_ms=200.0)
    assert g.check(NOW + 4.9, NOW, CAM) is None
    assert g.check(NOW + 5.2, NOW + 0.1, CAM) == FUTURE
    assert g.check(NOW - 150.0, NOW + 10, CAM) == BACKWARDS      # within 200 ms, behind the last
    assert guard(max_age_ms=200.0).check(NOW - 199.0, NOW, CAM) is None
    assert guard(max_age_ms=200.0).check(NOW - 201.0, NOW, CAM) == OLD


def test_a_deadline_from_release_has_no_age_limit_unless_given():
    assert InputGuard(GuardLimits(), 33.3, deadline_from_stamp=False).check(NOW - 5e3, NOW, CAM) is None
    assert InputGuard(GuardLimits(max_age_ms=1e3), 33.3, deadline_from_stamp=False).check(NOW - 5e3, NOW, CAM) == OLD


def test_stamps_going_backwards_against_the_source_are_refused():
    g = guard()
    assert g.check(NOW, NOW + 1, CAM) is None
    assert g.check(NOW, NOW + 2, CAM) == BACKWARDS             # a repeat
    assert g.check(NOW - 10, NOW + 3, CAM) == BACKWARDS        # reordered
    assert g.check(NOW + 33, NOW + 35, CAM) is None
    assert g.counts[BACKWARDS] == 2


def test_a_clock_that_jumps_back_starts_the_source_over():
    # use_sim_time with a looping bag: /clock and the stamps go back together.
    g = guard()
    assert camera(g, 5, start=NOW) == [None] * 5
    assert camera(g, 5, start=1000.0) == [None] * 5


def test_a_second_publisher_is_foreign_and_counted_per_publisher():
    g = guard()
    out = []
    for k in range(40):
        stamp = NOW + k * 33.3
        out.append(g.check(stamp, stamp + 2, CAM, 'camera'))
        for j in range(4):                   # 4x the camera's rate, current stamps
            s = stamp + 8.0 * j + 1
            out.append(g.check(s, s + 1, OTHER, 'camera'))
    assert out.count(None) == 40 and out.count(FOREIGN) == 160
    assert g.foreign == {OTHER: 160} and g.source == CAM


def test_the_first_publisher_heard_with_a_good_stamp_binds_not_the_first_heard():
    g = guard()
    assert g.check(0.0, NOW, OTHER) == ZERO          # a zero-stamped flood began first
    assert g.check(NOW, NOW + 1, CAM) is None
    assert g.source == CAM


def test_a_declared_frame_id_is_the_source():
    g = guard(frame_id='front_camera')
    assert g.check(NOW, NOW + 1, OTHER, 'rear_camera') == FOREIGN
    assert g.check(NOW + 33, NOW + 34, CAM, 'front_camera') is None
    assert g.foreign == {OTHER: 1} and g.source == CAM


def test_a_silent_source_gives_way_to_the_next_publisher():
    g = guard(source_timeout_s=1.0)
    camera(g, 10)                                      # the driver runs, then dies
    last = NOW + 9 * 33.3
    assert g.check(last + 500, last + 502, OTHER) == FOREIGN       # 0.5 s: still the old source's
    assert g.check(last + 1200, last + 1202, OTHER) is None        # 1.2 s: the restarted driver binds
    assert g.source == OTHER and g.bindings == 2
    assert g.check(last + 1300, last + 1302, CAM) == FOREIGN       # the old one is now foreign


def test_release_forgets_the_source():
    g = guard()
    camera(g, 3)
    g.release()
    assert g.check(NOW + 200, NOW + 201, OTHER) is None and g.source == OTHER


def test_receipt_stamps_skip_the_clock_checks_but_keep_the_binding():
    g = guard(stamp_source='receipt')
    assert g.check(0.0, NOW, CAM) is None
    assert g.check(0.0, NOW + 33, CAM) is None          # the same zero stamp every frame
    assert g.check(0.0, NOW + 40, OTHER) == FOREIGN
    assert g.counts[ZERO] == 0 and g.counts[BACKWARDS] == 0


def test_counts_list_in_reason_order():
    g = guard()
    g.check(0.0, NOW, CAM)
    g.check(NOW + 1e3, NOW, CAM)
    assert g.count_list() == [1, 1, 0, 0, 0] and len(REASONS) == 5 and g.refused == 2


@pytest.mark.parametrize('bad', [dict(max_future_ms=-1.0), dict(max_age_ms=math.nan), dict(source_timeout_s='1')])
def test_bad_limits_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        GuardLimits(**bad)


def test_bad_stamp_source_is_refused():
    with pytest.raises(ValueError, match='stamp_source'):
        InputGuard(GuardLimits(), 33.3, stamp_source='camera')


def test_publisher_keys_use_the_gid_where_rclpy_gives_it():
    gid = {'implementation_identifier': 'rmw_fastrtps_cpp', 'data': list(range(16))}
    assert publisher_key({'publisher_gid': gid}, ('camera', 'bgr8', 640, 480)) == ('gid', bytes(range(16)))
    assert publisher_key({'publisher_gid': None}, ('camera', 'bgr8', 640, 480)) == \
        ('signature', 'camera', 'bgr8', 640, 480)
    assert publisher_key(None, ('camera',)) == ('signature', 'camera')
    assert key_text(('gid', bytes(range(16)))).startswith('publisher 0001')
    assert 'camera, bgr8' in key_text(('signature', 'camera', 'bgr8', 640, 480))


def test_a_task_whose_jobs_come_from_elsewhere_takes_none_by_topic():
    g = guard()
    assert g.foreign_input(OTHER) == FOREIGN and g.foreign == {OTHER: 1} and g.source is None
