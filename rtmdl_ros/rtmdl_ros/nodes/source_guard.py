"""The input guard (core/input_guard.py) in a node: its parameters, the publisher's
identity from rclpy's message info, and a log line that names topic, publisher
and reason.

A subscription callback gets rclpy's MessageInfo when it takes two arguments
(rclpy >= 3.4: Iron, Jazzy, Kilted); its publisher_gid is rclpy >= 9.1 (Kilted).
Where the GID is missing, a publisher is told apart by what its frames say of
themselves (frame_id, encoding, size); on Humble no message info reaches Python.
"""
from __future__ import annotations

import math
import time

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.subscription import Subscription

try:
    from rclpy.subscription import MessageInfo
except ImportError:                                   # rclpy < 3.4 (Humble)
    MessageInfo = None

from ..core.input_guard import FOREIGN, HINTS, GuardLimits, InputGuard, key_text

WITH_INFO = hasattr(Subscription, 'CallbackType')      # callbacks may take (msg, message info)
WITH_GID = WITH_INFO and 'publisher_gid' in getattr(MessageInfo, '__annotations__', {})
LOG_EVERY_S = 10.0

GUARD_PARAMS = {
    'stamp_max_future_ms': (50.0, 0.0, 60_000.0, 'refuse inputs stamped further ahead of this clock (another '
                            'clock, unsynchronised computers)'),
    'stamp_max_age_ms': (0.0, 0.0, 3_600_000.0, 'refuse inputs older than this at receipt (0: the task\'s '
                         'deadline or 1 s, whichever is longer, where it counts from the stamp): another clock or '
                         'a replayed bag; a frame delayed past its deadline within this is a job that misses'),
    'source_timeout_s': (1.0, 0.0, 60.0, 'a task\'s source silent this long gives way to the next publisher '
                         'that passes the stamp checks (a restarted driver)'),
}


def declare_guard_params(node, values: dict | None = None) -> GuardLimits:
    """Declare the guard's thresholds (read-only, with ranges) and return them."""
    got = {}
    for name, (default, low, high, text) in GUARD_PARAMS.items():
        value = (values or {}).get(name, default)
        got[name] = node.declare_parameter(name, float(value), ParameterDescriptor(
            read_only=True, description=text,
            floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)])).value
    return GuardLimits(max_future_ms=got['stamp_max_future_ms'], max_age_ms=got['stamp_max_age_ms'],
                       source_timeout_s=got['source_timeout_s'])


def guard_values(limits: GuardLimits) -> dict:
    """The parameters that give these limits (for task nodes composed into the executor)."""
    return {'stamp_max_future_ms': limits.max_future_ms, 'stamp_max_age_ms': limits.max_age_ms,
            'source_timeout_s': limits.source_timeout_s}


def task_guard(limits: GuardLimits, task) -> InputGuard:
    """The guard of a task-set Task."""
    return InputGuard(limits, task.deadline_ms, task.origin_is_stamp, task.source_frame_id, task.stamp_source)


def with_info(handler):
    """A subscription callback calling handler(msg, info) (info None where rclpy has none)."""
    if WITH_INFO:
        def callback(msg, info):
            handler(msg, info)
    else:
        def callback(msg):
            handler(msg, None)
    return callback


class GuardLog:
    """Throttled warnings for refused inputs: the first of each reason per task at once (with
    what to do), then at most one every LOG_EVERY_S, naming topic, publisher and counts."""

    def __init__(self, node):
        self.node = node
        self._last: dict[tuple, float] = {}

    def refused(self, task: str, topic: str, guard: InputGuard, reason: str, key, source: str = '') -> None:
        now, mark = time.monotonic(), (task, reason)
        if now - self._last.get(mark, -math.inf) < LOG_EVERY_S:
            return
        self._last[mark] = now
        who = publisher_text(self.node, topic, key)
        source = source or (publisher_text(self.node, topic, guard.source) if guard.source is not None else 'none yet')
        detail = f'; the source is {source}' if reason == FOREIGN else ''
        self.node.get_logger().warning(
            f'{task}: input on {topic} from {who} refused ({reason}, {guard.counts[reason]} so far): '
            f'{HINTS[reason]}{detail}')


def publisher_text(node, topic: str, key) -> str:
    """'node /ns/name (GID ...)' where the graph knows the GID, else the key's own text
    and the publishers on the topic (what `ros2 topic info -v` shows)."""
    try:
        infos = node.get_publishers_info_by_topic(node.resolve_topic_name(topic))
    except Exception:                          # noqa: BLE001 - a log line must not fail the callback
        infos = []
    if key and key[0] == 'gid':
        for info in infos:
            if bytes(info.endpoint_gid)[:len(key[1])] == key[1]:
                ns = info.node_namespace.rstrip('/')
                return f'node {ns}/{info.node_name} ({key_text(key)})'
    names = sorted({f'{i.node_namespace.rstrip("/")}/{i.node_name}' for i in infos})
    return f'{key_text(key)} ({len(infos)} publisher(s) on the topic: {", ".join(names) or "none known"})'

