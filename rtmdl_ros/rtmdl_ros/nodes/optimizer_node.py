"""rtmdl_optimizer: plans variants and priorities; offline, or online beside the executor.

offline (mode:=offline): reads the profiled task set, writes the plan parameters
  file atomically (plan_file) and exits: 0 planned, 1 no plan meets the bounds.
online (mode:=online): plans once at start, then re-plans when
  - the executor's deadline or period of a task changes (/parameter_events), or
  - a task's measured miss rate (status topic) exceeds its bound over at least
    min_jobs jobs: the execution times are then re-planned with a margin
    (x margin_step, the machine runs slower than profiled); once every miss
    rate has stayed under half its bound for relax_after_s, the margin is
    lowered a step again. Status counts only while the executor it serves is
    the topic's one publisher and has been active settle_s (start-up jobs
    say nothing of the plan), or
  - the ~/replan service is called;
  and pushes the new variants and priorities to the executor in one atomic
  parameter call (so that swapped priorities never clash), and rewrites plan_file.
"""
from __future__ import annotations

import threading
import time

import rclpy
from rcl_interfaces.msg import (FloatingPointRange, Parameter, ParameterDescriptor, ParameterEvent, ParameterType,
                                ParameterValue)
from rcl_interfaces.srv import SetParametersAtomically
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rtmdl_interfaces.msg import SchedulerStatus
from rtmdl_interfaces.srv import Replan

from ..core.plan import write_plan
from ..core.policies import POLICIES, plan_with
from ..core.taskset import TasksetError, load_taskset, with_task_changes, with_time_margin
from .spin import spin_node, start_node
from .topics import STATUS_TOPIC


class OptimizerNode(Node):
    def __init__(self, **kwargs):
        super().__init__('rtmdl_optimizer', **kwargs)
        ro = ParameterDescriptor(read_only=True)
        path = self.declare_parameter('taskset_file', '', ro).value
        if not path:
            raise TasksetError('parameter taskset_file is empty: give the profiled task set '
                               '(rtmdl profile writes one)')
        self.plan_file = self.declare_parameter('plan_file', '', ro).value
        self.mode = self.declare_parameter('mode', 'offline', ro).value
        if self.mode not in ('offline', 'online'):
            raise ValueError(f"mode must be 'offline' or 'online', got {self.mode!r}")
        self.policy = self.declare_parameter('policy', 'rtmdl', ro).value
        if self.policy not in POLICIES:
            raise ValueError(f'policy must be one of {POLICIES}, got {self.policy!r}')
        self.time_limit_s = self.declare_parameter('time_limit_s', 10.0, ParameterDescriptor(
            description='planning budget: the best plan found within it is pushed (exact search up to 8 '
                        'tasks, anytime local search above)',
            floating_point_range=[FloatingPointRange(from_value=0.1, to_value=600.0, step=0.0)])).value
        self.executor_name = self.declare_parameter('executor', 'rtmdl_executor', ro).value
        self.min_jobs = self.declare_parameter('min_jobs', 20).value
        self.margin_step = self.declare_parameter('margin_step', 1.25).value
        self.cooldown_s = self.declare_parameter('cooldown_s', 5.0).value
        self.settle_s = self.declare_parameter('settle_s', 5.0, ParameterDescriptor(
            description='ignore status until the executor has been active this long (start-up)')).value
        self.relax_after_s = self.declare_parameter('relax_after_s', 60.0, ParameterDescriptor(
            description='lower the margin a step after every miss rate stayed under half its bound this long')).value
        self.quiet_since = None
        self._foreign_seen: list = []
        self.base = load_taskset(path)
        self.margin = 1.0
        self.last_plan = None
        self.last_replan = -1e9
        self.replans = 0
        self._lock = threading.Lock()
        self.done = threading.Event()
        if self.mode == 'online':
            group = ReentrantCallbackGroup()
            ns = self.get_namespace().rstrip('/')
            self.executor_fqn = f'{ns}/{self.executor_name}'
            self.client = self.create_client(SetParametersAtomically, f'{self.executor_fqn}/set_parameters_atomically',
                                             callback_group=group)
            self.status_topic = f'{ns}/{STATUS_TOPIC}'
            self.create_subscription(SchedulerStatus, STATUS_TOPIC, self._on_status, 10, callback_group=group)
            self.create_subscription(ParameterEvent, '/parameter_events', self._on_parameter_event, 50,
                                     callback_group=group)
            self.create_service(Replan, '~/replan', self._on_replan_service, callback_group=group)
            self.create_timer(0.5, self._initial_push, callback_group=MutuallyExclusiveCallbackGroup())
        self.ok = self.replan('start')

    # -- planning ----------------------------------------------------------------
    def replan(self, reason: str):
        """Plan the current task set; write and (online) push it. Returns the plan or None."""
        with self._lock:
            taskset = with_time_margin(self.base, self.margin) if self.margin > 1.0 else self.base
            res = plan_with(taskset, self.policy, time_limit_s=self.time_limit_s)
            self.last_replan = time.monotonic()
            if res.plan is None:
                self.get_logger().error(f'no plan meets the bounds ({reason}): {res.reason}')
                return None
            self.last_plan = res.plan
            self.replans += 1
            summary = ', '.join(f'{n}={a.variant}@{a.priority}' for n, a in
                                sorted(res.plan.items(), key=lambda kv: kv[1].priority))
            search = '' if res.search is None else (
                f'; {res.search.method} search, ' + ('proven optimal' if res.search.optimal else
                                                     f'gap <= {res.search.gap:.4f}') + f' in {res.search.elapsed_s:.1f} s')
            self.get_logger().info(f'plan ({reason}; time margin x{self.margin:.2f}{search}): {summary}')
            note = self.base.calibration_note()
            if note:
                self.get_logger().warning(note, once=True)
            if self.plan_file:
                write_plan(self.plan_file, res.plan, header=f'written by rtmdl_optimizer ({reason})'
                           + (f'\n{note}' if note else ''))
            return res.plan

    def _push(self, plan) -> bool:
        if not self.client.wait_for_service(timeout_sec=2.0):
            self.get_logger().warning(f'{self.executor_fqn} has no parameter service yet')
            return False
        req = SetParametersAtomically.Request()
        for name, a in plan.items():
            req.parameters.append(Parameter(name=f'tasks.{name}.variant', value=ParameterValue(
                type=ParameterType.PARAMETER_STRING, string_value=a.variant)))
            req.parameters.append(Parameter(name=f'tasks.{name}.priority', value=ParameterValue(
                type=ParameterType.PARAMETER_INTEGER, integer_value=int(a.priority))))
        future = self.client.call_async(req)
        end = time.monotonic() + 5.0
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        result = future.result() if future.done() else None
        if result is None or not result.result.successful:
            why = result.result.reason if result is not None else 'no answer'
            self.get_logger().error(f'executor refused the plan: {why}')
            return False
        return True

    def _replan_and_push(self, reason: str) -> bool:
        plan = self.replan(reason)
        return plan is not None and self._push(plan)

    # -- triggers ----------------------------------------------------------------
    def _initial_push(self) -> None:
        if self.last_plan is not None and not self.done.is_set() and self._push(self.last_plan):
            self.done.set()

    def _on_parameter_event(self, event: ParameterEvent) -> None:
        if event.node != self.executor_fqn:
            return
        changed = False
        for p in list(event.changed_parameters) + list(event.new_parameters):
            parts = p.name.split('.')
            if len(parts) == 3 and parts[0] == 'tasks' and parts[2] in ('deadline_ms', 'period_ms') \
                    and parts[1] in self.base.tasks:
                v = p.value
                value = v.double_value if v.type == ParameterType.PARAMETER_DOUBLE else float(v.integer_value)
                t = self.base.tasks[parts[1]]
                if getattr(t, parts[2]) != value:
                    try:
                        self.base = with_task_changes(self.base, parts[1], **{parts[2]: value})
                        changed = True
                    except TasksetError as e:
                        self.get_logger().warning(f'ignoring {p.name}={value}: {e}')
        if changed:
            self._replan_and_push('task set changed on the executor')

    def _trusted(self, msg: SchedulerStatus) -> bool:
        """Status counts only from the executor this node serves, once it has settled: any
        node on the domain can publish on `status`, and start-up jobs say nothing of the plan."""
        foreign = sorted({f'{i.node_namespace.rstrip("/")}/{i.node_name}'
                          for i in self.get_publishers_info_by_topic(self.status_topic)} - {self.executor_fqn})
        if foreign:
            if foreign != self._foreign_seen:
                self.get_logger().warning(f'ignoring {self.status_topic}: published by {foreign} too, not only by '
                                          f'{self.executor_fqn}')
            self._foreign_seen = foreign
            return False
        self._foreign_seen = []
        return msg.active_s >= self.settle_s and {t.task for t in msg.tasks} == set(self.base.tasks)

    def _on_status(self, msg: SchedulerStatus) -> None:
        if not self._trusted(msg):
            return
        now = time.monotonic()
        counted = [t for t in msg.tasks if t.jobs >= self.min_jobs]
        quiet = len(counted) == len(msg.tasks) and all(t.miss_rate <= 0.5 * t.max_miss_rate for t in counted)
        self.quiet_since = (self.quiet_since or now) if quiet else None
        if now - self.last_replan < self.cooldown_s:
            return
        over = [t for t in counted if t.miss_rate > t.max_miss_rate]
        if over:
            self.margin *= self.margin_step
            names = ', '.join(f'{t.task} ({t.miss_rate:.3f} > {t.max_miss_rate:g})' for t in over)
            self._replan_and_push(f'measured miss rate over bound: {names}')
        elif self.margin > 1.0 and self.quiet_since is not None and now - self.quiet_since >= self.relax_after_s:
            # Load went away: give the accuracy back, one step at a time.
            self.margin = max(1.0, self.margin / self.margin_step)
            self.quiet_since = None
            self._replan_and_push(f'miss rates under half their bounds for {self.relax_after_s:g} s')

    def _on_replan_service(self, request, response):
        plan = self.replan(request.reason or 'service call')
        if plan is None:
            response.success, response.message = False, 'no plan meets the bounds'
            return response
        ok = self._push(plan)
        response.success = ok
        response.message = 'pushed to the executor' if ok else 'planned, but the executor refused it'
        for name, a in sorted(plan.items(), key=lambda kv: kv[1].priority):
            response.tasks.append(name)
            response.variants.append(a.variant)
            response.priorities.append(int(a.priority))
        return response


def main() -> int:
    node, executor = start_node(OptimizerNode, 'rtmdl_optimizer', (TasksetError, ValueError), threads=4)
    if node.mode == 'offline':
        code = 0 if node.ok is not None else 1
        node.destroy_node()
        rclpy.try_shutdown()
        return code
    return spin_node(node, executor)
