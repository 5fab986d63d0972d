"""The online optimizer's trust in what it reads (issue 15), in a DDS context of its own."""
import time

import pytest

rclpy = pytest.importorskip('rclpy')

from conftest import EXAMPLE_TASKSET  # noqa: E402
from waiting import wait_for  # noqa: E402


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def _status(opt, active_s, rate):
    from rtmdl_interfaces.msg import SchedulerStatus, TaskStatus
    return SchedulerStatus(active_s=active_s, tasks=[TaskStatus(task=n, jobs=100, miss_rate=rate, max_miss_rate=0.05)
                                                     for n in opt.base.tasks])


def test_online_optimizer_trusts_only_its_settled_executor_and_lowers_its_margin_again(context):
    from rclpy.parameter import Parameter as P
    from rtmdl_interfaces.msg import SchedulerStatus

    from rtmdl_ros.nodes.optimizer_node import OptimizerNode
    opt = OptimizerNode(context=context, namespace='trust', parameter_overrides=[
        P('taskset_file', value=str(EXAMPLE_TASKSET)), P('mode', value='online'), P('cooldown_s', value=0.0),
        P('relax_after_s', value=0.0), P('min_jobs', value=1)])
    opt._push = lambda plan: True                       # no executor here: only the decisions count
    rogue = rclpy.create_node('rogue', namespace='trust', context=context)
    pub = rogue.create_publisher(SchedulerStatus, '/trust/status', 10)
    try:
        assert wait_for(lambda: opt.get_publishers_info_by_topic('/trust/status'))
        opt._on_status(_status(opt, 60.0, 0.9))
        assert opt.margin == 1.0                       # someone else publishes status: ignored
        rogue.destroy_publisher(pub)
        assert wait_for(lambda: not opt.get_publishers_info_by_topic('/trust/status'))
        opt._on_status(_status(opt, 1.0, 0.9))
        assert opt.margin == 1.0                       # start-up: ignored
        opt._on_status(_status(opt, 60.0, 0.9))
        assert opt.margin == pytest.approx(1.25)       # over its bound: a margin
        time.sleep(0.01)
        opt._on_status(_status(opt, 61.0, 0.0))
        assert opt.margin == 1.0                       # quiet again: the margin goes
    finally:
        rogue.destroy_node()
        opt.destroy_node()
