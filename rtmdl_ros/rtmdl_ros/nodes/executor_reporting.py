"""What the executor publishes (mixed into ExecutorNode): results (its lifecycle
publishers, made on configure) and each status period status, /diagnostics and job traces, and degraded mode's decision, which follows the
window miss rates it reports."""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from rtmdl_interfaces.msg import Classification, DetectionArray, JobTraceArray, SchedulerStatus

from ..core.input_guard import key_text
from ..models import SOUND
from . import executor_messages as out
from .conversions import bgr_to_image
from .topics import STATUS_TOPIC, TRACE_TOPIC, result_topic
from .vision_out import MISSING_NOTE, load_vision_msgs, vision_topic, vision_type


TRACE_PERIOD_S = 0.25             # job traces go out this often (or each status, if more often)


class Reporting:
    def _report(self) -> None:
        """One tick of the reporting thread: traces, and status when its period is due."""
        self._publish_traces()
        now = time.monotonic()
        if now >= self._status_due:
            self._status_due = now + self.p['status_period_s'] - self._report_period_s / 2
            self._publish_status()

    def _make_publishers(self) -> None:
        self.result_pubs = {}
        for name, fam in self.families.items():
            self.result_pubs[name] = self.create_lifecycle_publisher(
                DetectionArray if fam.kind == 'detect' else Classification, result_topic(name, fam.kind), 10)
        self.status_pub = self.create_lifecycle_publisher(SchedulerStatus, STATUS_TOPIC, 10)
        self.trace_pub = self.create_lifecycle_publisher(JobTraceArray, TRACE_TOPIC, 10)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, '/diagnostics', 10)
        self.annotated_pubs = {name: self.create_lifecycle_publisher(Image, f'annotated/{name}', 2)
                               for name, fam in self.families.items()
                               if self.p['annotate_hz'] > 0 and fam.input != SOUND}
        self.vision, self.vision_pubs = (load_vision_msgs() if self.p['vision_msgs'] else None), {}
        if self.p['vision_msgs'] and self.vision is None:
            self.get_logger().warning(MISSING_NOTE)
        elif self.vision is not None:
            self.vision_pubs = {name: self.create_lifecycle_publisher(vision_type(self.vision, fam.kind),
                                                                      vision_topic(name), 10)
                                for name, fam in self.families.items()}
        self._pubs = [*self.result_pubs.values(), self.status_pub, self.trace_pub, self.diag_pub,
                      *self.annotated_pubs.values(), *self.vision_pubs.values()]

    def status_message(self) -> SchedulerStatus | None:
        """The scheduler's statistics, or None while not active."""
        if self.runtime is None or self.runtime.started_s is None:
            return None
        rows = [out.task_status(n, s, self.taskset.tasks[n], self.runtime.stats(n), self.accuracy[n].get(s.variant, 0.0),
                                self.bounds.get(n, out.NAN), self.admission, n in self.degraded.shed,
                                self.runtime.window_s, self._guarded(n))
                for n, s in self.settings.items()]
        return out.scheduler_status(
            self.get_clock().now().to_msg(), self.p['backend'], self.p['device'], self.cpu_workers, self.gpu_lanes,
            self.runtime.utilisation(), bool(self.p['realtime_priority']) and not self.runtime.realtime.problems,
            self.realtime_note, self.configure_s, time.monotonic() - self.runtime.started_s, rows)

    def _guarded(self, task: str) -> tuple[list[int], str]:
        """(refusals per input_guard.REASONS, the source) of a task: its composed task node's
        guard, the guard on its job topic and what a task node elsewhere reports in its jobs."""
        counts = list(self.job_guards[task].count_list())
        source = ''
        for k, n in enumerate(self.admission.node_guard.get(task, ())[:len(counts)]):
            counts[k] += n
        for node in self.task_nodes:
            if node.task == task:
                counts = [a + b for a, b in zip(counts, node.guard.count_list())]
                source = node.source_text
        if not source and self.job_guards[task].source is not None:
            source = f'task node, {key_text(self.job_guards[task].source)}'
        return counts, source

    def _publish_annotated(self, task: str, bgr, header) -> None:
        """The annotator thread's picture (nodes/annotate.py), with the source frame's header."""
        if self._active and self.context.ok():
            msg = bgr_to_image(bgr, Image)
            msg.header = header
            self.annotated_pubs[task].publish(msg)

    def _publish_traces(self) -> None:
        traces = self.runtime.drain_traces()
        if traces and self.trace_pub.get_subscription_count() > 0:
            self.trace_pub.publish(out.trace_message(traces, self.get_clock().now().to_msg(), self._to_ros_s()))

    def _degrade(self, status: SchedulerStatus) -> None:
        """Degraded mode's decision at each status period, from the window miss rates."""
        if not self.p['shed_on_overload']:
            return
        over = {t.task: t.miss_rate > t.max_miss_rate for t in status.tasks if not t.shed}
        change = self.degraded.update(time.monotonic(), status.active_s, self.runtime.window_s,
                                      {n: s.priority for n, s in self.settings.items()}, over)
        if change is None:
            return
        what, task = change
        if what == 'shed':
            late = ', '.join(f'{t.task} {t.miss_rate:.3f}' for t in status.tasks if over.get(t.task))
            self.get_logger().warning(f'degraded mode: shedding {task} (least important running) because '
                                      f'{late or "a task"} missed over its bound for {self.p["shed_after_s"]:g} s')
        else:
            self.get_logger().info(f'degraded mode: {task} runs again (every task within its bound '
                                   f'for {self.p["shed_restore_after_s"]:g} s)')

    def _publish_status(self) -> None:
        status = self.status_message()
        if status is None:
            return
        self._degrade(status)
        for t in status.tasks:                  # as decided this period
            t.shed = t.task in self.degraded.shed
        self.status_pub.publish(status)
        self.diag_pub.publish(out.diagnostics(status, self.p['device'], self.malformed_log))

