"""nodes/spin.py: the spin loop every node and the bringup use."""
import pytest

pytest.importorskip('rclpy')


def test_spin_goes_on_past_an_entity_destroyed_under_the_wait_set():
    """rclpy before 9 (Jazzy) raises InvalidHandle from spin() when another thread destroyed a
    subscription while the wait set was built; the spin resumes, and ends with the context."""
    from rclpy.exceptions import InvalidHandle
    from rtmdl_ros.nodes.spin import spin_through_destroyed

    class Context:
        up = True

        def ok(self):
            return self.up

    class Executor:
        context = Context()
        calls = 0

        def spin(self):
            self.calls += 1
            if self.calls == 1:
                raise InvalidHandle('cannot use Destroyable because destruction was requested')

    ex = Executor()
    spin_through_destroyed(ex)
    assert ex.calls == 2                           # resumed once, then spin returned
    ex.calls, ex.context.up = 0, False
    spin_through_destroyed(ex)
    assert ex.calls == 1                           # the context is down: no second spin
