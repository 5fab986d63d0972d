"""Degraded mode's decisions (core/shedding.py), on an explicit clock."""
import pytest

from rtmdl_ros.core.shedding import LoadShedder


def feed(shedder, start, end, over, step=1.0):
    events, t = [], start
    while t <= end + 1e-9:
        e = shedder.update(t, over(t) if callable(over) else over)
        if e:
            events.append((t, *e))
        t += step
    return events


def test_sustained_overload_sheds_the_least_important_then_the_next():
    s = LoadShedder(['urgent', 'mid', 'low'], after_s=3, restore_after_s=10, settle_s=5)
    events = feed(s, 0, 20, {'urgent': True})
    assert events[0] == (3.0, 'shed', 'low')
    assert events[1] == (8.0, 'shed', 'mid')          # still over 5 s (settle) after the first
    assert len(events) == 2 and s.running() == ['urgent']  # the most important task is never shed


def test_a_short_spike_sheds_nothing():
    s = LoadShedder(['urgent', 'low'], after_s=3)
    assert feed(s, 0, 20, lambda t: {'urgent': 5 <= t < 7}) == []


def test_tasks_come_back_most_important_first_once_all_are_calm():
    s = LoadShedder(['urgent', 'mid', 'low'], after_s=1, restore_after_s=4, settle_s=2)
    feed(s, 0, 4, {'urgent': True})
    assert s.shed == ['low', 'mid']
    events = feed(s, 5, 20, {})
    assert [(e[1], e[2]) for e in events] == [('restore', 'mid'), ('restore', 'low')]
    assert events[1][0] - events[0][0] >= 4            # one at a time, each after a calm stretch
    assert s.shed == []


def test_overload_again_after_a_restore_sheds_again():
    s = LoadShedder(['urgent', 'low'], after_s=2, restore_after_s=3, settle_s=0)
    feed(s, 0, 3, {'urgent': True})
    assert s.shed == ['low']
    feed(s, 4, 8, {})
    assert s.shed == []
    assert feed(s, 9, 12, {'urgent': True})[0][1:] == ('shed', 'low')


def test_the_least_important_task_missing_alone_is_not_shed():
    s = LoadShedder(['urgent', 'mid', 'low'], after_s=1, settle_s=0)
    assert feed(s, 0, 10, {'low': True}) == []
    assert feed(s, 11, 14, {'mid': True})[0][1:] == ('shed', 'low')


def test_bad_orders_are_refused():
    with pytest.raises(ValueError):
        LoadShedder(['a', 'a'])
    with pytest.raises(ValueError):
        LoadShedder([])
