"""rtmdl_executor: hosts the variant pool and the RT-mDL scheduler (a lifecycle node).

Subscribes:  jobs/<task>                 rtmdl_interfaces/ImageJob (camera tasks) or SoundJob (sound tasks), while active
Publishes:   detections/<task>           rtmdl_interfaces/DetectionArray  (detector tasks)
             classifications/<task>      rtmdl_interfaces/Classification  (classifier tasks)
             status                      rtmdl_interfaces/SchedulerStatus
             trace                       rtmdl_interfaces/JobTraceArray (every job's stages)
             /diagnostics                diagnostic_msgs/DiagnosticArray
Lifecycle:   configure reads the task set (taskset_file), declares its tasks' parameters,
             loads and warms every variant on every lane and, with compose_task_nodes, makes a
             task node per task in this process that hands its jobs over directly; activate starts the scheduler threads
             (SCHED_FIFO where allowed) and only then subscribes to the job topics, so task nodes
             release nothing before; deactivate unsubscribes and lets running segments end;
             cleanup forgets the task set, so configure may load another. autostart (default
             true) does configure + activate.
Parameters:  executor_params.py. Per task, tasks.<name>.{variant, priority, deadline_ms, period_ms}: a
             change is checked as a whole (unknown variant, deadline > period, priority clash, out of
             range) and either applied from the task's next job or rejected with the reason.
"""
from __future__ import annotations

import math
import os
import sys
import time

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rtmdl_interfaces.msg import ImageJob, SoundJob

from ..backends import create
from ..core.admission import Admission
from ..core.input_guard import InputGuard, publisher_key
from ..core.realtime import RealtimeConfig, reserve_cores
from ..core.runtime import JobReport, Runtime
from ..core.scheduling import TaskParams
from ..core.settings import PRIORITY_MAX, analysed_bounds, apply_change
from ..core.shedding import DegradedMode
from ..core.taskset import TasksetError, platform_for_device
from ..models import SOUND, InputError, zoo
from ..models.jobs import limit_library_threads, make_segments, warm_up_all
from . import executor_messages as out
from .executor_params import ParameterHandling, declare_node_params, declare_task_params, undeclare_task_params
from .annotate import Annotator
from .vision_out import to_vision
from .executor_reporting import TRACE_PERIOD_S, Reporting
from .input_filters import filtered_subscription, job_filter
from .job_codec import LocalJob, check_image_job, check_sound_job, image_decoder, sound_decode
from .resources import load_runtime_taskset
from .source_guard import GuardLog, guard_values, publisher_text, with_info
from .spin import Pacer, settle_heap, spin_node, start_node
from .task_nodes import composed_task_nodes
from .topics import JOB_QOS, job_topic


class ExecutorNode(ParameterHandling, Reporting, LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('rtmdl_executor', **kwargs)
        # Python threads hand the GIL over every 5 ms by default: an urgent worker
        # could wait that long behind a callback. 0.5 ms bounds it.
        sys.setswitchinterval(0.0005)
        limit_library_threads()
        self.p = declare_node_params(self)
        self.autostart = self.p['autostart']
        self.degraded = DegradedMode(self.p['shed_after_s'], self.p['shed_restore_after_s'])
        self.taskset = None                   # the configured task set and what it needs:
        self.settings, self.segments, self.bounds = {}, {}, {}
        self.runtime: Runtime | None = None
        self.backend = None
        self.configure_s, self.realtime_note = math.nan, ''
        self.malformed_log: dict[str, str] = {}
        self.result_listeners = []          # in-process observers of JobReports (benchmarks, tests)
        self._logged: dict[tuple, float] = {}
        self._declaring = False            # rclpy runs the set-callbacks on declaration too
        self._active = False
        self._subs, self._pubs, self._reporter = [], [], None
        self.task_nodes = []                  # composed into this process (compose_task_nodes)
        self.composed_tasks = frozenset()     # their tasks (asked per job that comes by topic)
        self.annotator = None                 # annotate_hz > 0: pictures on annotated/<task>
        self.annotated_pubs = {}
        self.vision, self.vision_pubs = None, {}    # vision_msgs:=true where the package is installed
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> bool:
        """configure + activate (what autostart does); False if either failed."""
        ok = TransitionCallbackReturn.SUCCESS
        return self.trigger_configure() == ok and self.trigger_activate() == ok

    def on_configure(self, state) -> TransitionCallbackReturn:
        from ..backends import BackendError
        t0 = time.monotonic()
        try:
            self._read_taskset(self.get_parameter('taskset_file').value, self.get_parameter('zoo_dir').value or None)
            self.backend = create(self.p['backend'], self.p['device'], self.zoo_dir)
            warm_up_all(self.families, self.backend, self.labels, self.variants, self.gpu_lanes)
        except (BackendError, zoo.ZooError, TasksetError, OSError, ValueError) as e:
            self.get_logger().error(f'configure failed: {e}')
            self._forget_taskset()
            return TransitionCallbackReturn.FAILURE
        for name, fam in self.families.items():
            decode = sound_decode if fam.input == SOUND else image_decoder(fam)
            self.segments[name] = make_segments(fam, self.backend, self.labels[name], decode)
        self._make_publishers()
        if self.p['compose_task_nodes']:
            self._compose_task_nodes()
        settle_heap()                         # the models, sessions and warm-up buffers stay: no GC pauses over them
        self.configure_s = time.monotonic() - t0
        self.get_logger().info(f'configured in {self.configure_s:.1f} s: every variant loaded and warmed')
        return TransitionCallbackReturn.SUCCESS

    def _read_taskset(self, taskset_file: str, zoo_dir: str | None) -> None:
        self.zoo_dir = zoo_dir
        self.taskset, self.variants, self.accuracy, self.labels, self.families, self.envelopes = \
            load_runtime_taskset(taskset_file, zoo_dir)
        lanes = self.p['gpu_lanes'] or self.taskset.platform.gpu_lanes
        # On a CPU-only machine the lanes take cores too (a task set from `rtmdl profile`
        # already says so; a hand-written one may not).
        fitted, note = platform_for_device({'cpu_workers': self.taskset.platform.cpu_workers, 'gpu_lanes': lanes},
                                           self.p['device'])
        self.gpu_lanes, self.cpu_workers = lanes, self.p['cpu_workers'] or fitted['cpu_workers']
        self._platform_note = note if self.cpu_workers == fitted['cpu_workers'] else ''
        self._declaring = True
        try:
            declared = declare_task_params(self, self.taskset, self.variants)
        finally:
            self._declaring = False
        self.settings = apply_change(declared, {}, self.variants)      # the start-up set must be valid too
        self.admission = Admission({n: t.interarrival_ms for n, t in self.taskset.tasks.items()},
                                   {n: s.period_ms for n, s in self.settings.items()})
        # Jobs from task nodes elsewhere: the same stamp checks (their stamp is the one the
        # task node released with) and one publisher per job topic.
        self.job_guards = {n: InputGuard(self.p['guard'], t.deadline_ms, t.origin_is_stamp, t.source_frame_id)
                           for n, t in self.taskset.tasks.items()}
        self.guard_log = GuardLog(self)
        self._job_bound: dict[str, int] = {}
        self._checks = {n: (lambda raw, e=self.envelopes[n]: check_sound_job(raw, e)) if f.input == SOUND else
                        (lambda raw, e=self.envelopes[n], size=f.picture_size: check_image_job(raw, size, e))
                        for n, f in self.families.items()}
        self.bounds = analysed_bounds(self.taskset, self.settings)

    def _compose_task_nodes(self) -> None:
        self.task_nodes = composed_task_nodes(
            self, self.get_parameter('taskset_file').value, self.p['camera_topic'], self.p['sound_topic'],
            self.p['input_filter'], self.get_parameter('use_sim_time').value, guard_values(self.p['guard']))
        self.composed_tasks = frozenset(node.task for node in self.task_nodes)
        for node in self.task_nodes:
            if self.executor is not None:
                self.executor.add_node(node)

    def _release_task_nodes(self) -> None:
        for node in self.task_nodes:
            if node.executor is not None:
                node.executor.remove_node(node)
            node.destroy_node()
        self.task_nodes, self.composed_tasks = [], frozenset()

    def _forget_taskset(self) -> None:
        self._release_task_nodes()
        if self.taskset is not None:
            undeclare_task_params(self, self.taskset.tasks)
        for pub in self._pubs:
            self.destroy_lifecycle_publisher(pub)
        self._pubs, self.result_pubs, self.annotated_pubs, self.vision_pubs = [], {}, {}, {}
        self.taskset, self.settings, self.segments, self.bounds, self.backend = None, {}, {}, {}, None
        self.runtime = None

    def on_activate(self, state) -> TransitionCallbackReturn:
        threads = self.cpu_workers + self.gpu_lanes
        mine, others, core_note = reserve_cores(threads) if self.p['reserve_cores'] else (frozenset(), frozenset(), '')
        if mine and others:
            os.sched_setaffinity(0, others)   # this thread, and the ROS threads it starts, off the scheduler's cores
        cfg = RealtimeConfig(priority=self.p['realtime_priority'], cpus=mine)
        self.runtime = Runtime({n: self._params(n) for n in self.settings}, self.segments, self.cpu_workers,
                               self.gpu_lanes, on_result=self._publish_result, on_error=self._on_error,
                               window_s=self.p['window_s'], realtime=cfg, keep_traces=20000,
                               job_gate=self.taskset.platform.job_gate)
        self.runtime.start()
        self.realtime_note = '; '.join(cfg.problems + ([core_note] if core_note else []))
        if cfg.problems:
            self.get_logger().warning('real-time scheduling: ' + '; '.join(cfg.problems))
        elif core_note:
            self.get_logger().info(core_note)
        for n, s in self.settings.items():
            self.admission.set_period(n, s.period_ms)           # a fresh gate per activation
        self._active = True
        for name, fam in self.families.items():
            content = job_filter(self.envelopes[name], getattr(fam, 'picture_size', None)) \
                if self.p['input_filter'] else None
            sub, _ = filtered_subscription(self, SoundJob if fam.input == SOUND else ImageJob, job_topic(name),
                                           with_info(lambda raw, info, n=name: self._on_job(n, raw, info)),
                                           JOB_QOS, content, raw=True)
            self._subs.append(sub)
        self._report_period_s, self._status_due = min(TRACE_PERIOD_S, self.p['status_period_s']), 0.0
        self._reporter = Pacer(self._report_period_s, self._report)   # off the ROS thread that takes frames
        if self.annotated_pubs:
            self.annotator = Annotator(self.p['annotate_hz'], self._publish_annotated,
                                       lambda text: self.get_logger().warning(text))
        self._start_cycling()
        if self._platform_note:
            self.get_logger().info(self._platform_note)
        self.get_logger().info(
            f'executor active: {len(self.settings)} tasks, backend {self.p["backend"]}/{self.p["device"]}, '
            f'{self.cpu_workers} CPU workers, {self.gpu_lanes} lanes'
            + (', the job gate on' if self.taskset.platform.job_gate else '')
            + (f' at SCHED_FIFO {self.p["realtime_priority"]}' if self.p['realtime_priority'] and not cfg.problems else '')
            + (f' on cores {sorted(mine)}' if mine else '') + '; plan '
            + ', '.join(f'{n}={s.variant}@{s.priority}' for n, s in self.settings.items()))
        settle_heap()                         # and what activation made (threads, subscriptions, publishers)
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_jobs()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._forget_taskset()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_jobs()
        return TransitionCallbackReturn.SUCCESS

    def _stop_jobs(self) -> None:
        """Take no more jobs, let running segments end, stop publishing."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        if self._reporter is not None:
            self._reporter.stop()
        self._subs, self._reporter = [], None
        if self.annotator is not None:
            self.annotator.stop()
            self.annotator = None
        self._stop_cycling()
        if self.runtime is not None:
            self.runtime.stop()
        self._active = False

    # -- set-up helpers ------------------------------------------------------
    def _params(self, name: str) -> TaskParams:
        s = self.settings[name]
        return TaskParams(s.priority, s.deadline_ms, s.variant, self.taskset.tasks[name].on_overrun)

    # -- jobs ------------------------------------------------------------------
    def accepting(self) -> bool:
        """Composed task nodes release only while the scheduler takes jobs."""
        return self._active

    def priority(self, task: str) -> int:
        s = self.settings.get(task)
        return s.priority if s is not None else PRIORITY_MAX + 1

    def offer(self, task: str, job: LocalJob) -> None:
        """A job from a task node in this process (checked there; its pre segment encodes it)."""
        if self._active:
            self._admit(task, job.fields, time.monotonic(), job)

    def _on_job(self, task: str, raw: bytes, info=None) -> None:
        """A serialized job from a task node elsewhere: its leading fields must pass the
        receipt checks, its stamp and publisher the input guard, before it may count as a
        release. Decoding it is the first step of pre-processing (a CPU worker, the job's priority)."""
        receipt = time.monotonic()
        try:
            job = self._checks[task](raw)
        except InputError as e:
            self.admission.refuse(task)
            self._on_error(task, 'receipt', e)
            return
        guard, key = self.job_guards[task], publisher_key(info, job.signature)
        composed = task in self.composed_tasks
        if composed:
            reason = guard.foreign_input(key)     # its task node is in this process: no job comes by topic
        else:
            reason = guard.check(job.sec * 1e3 + job.nanosec * 1e-6, self.get_clock().now().nanoseconds * 1e-6,
                                 key, job.frame_id)
        if reason is not None:
            self.guard_log.refused(task, job_topic(task), guard, reason, key,
                                   'its task node in this process (no job of it comes by topic)' if composed else '')
            return
        if guard.bindings != self._job_bound.get(task, 0):
            self._job_bound[task] = guard.bindings
            self.get_logger().info(f'{task}: taking jobs from {publisher_text(self, job_topic(task), key)} '
                                   f'on {job_topic(task)}')
        self.admission.node_guard_report(task, job.guard_refused)
        self._admit(task, job, receipt, raw)

    def _admit(self, task: str, job, receipt: float, payload) -> None:
        """Its stamp must keep the task's minimum inter-arrival; its deadline counts from it."""
        self.admission.node_report(task, job.refused)
        stamp_s = job.sec + job.nanosec * 1e-9
        if not self.admission.admit(task, stamp_s * 1e3, shed=task in self.degraded.shed):
            return
        to_clock = time.monotonic() - self.get_clock().now().nanoseconds * 1e-9   # ROS time -> the runtime's clock
        stamp = min(receipt, stamp_s + to_clock)  # a stamp from the future (clock skew) counts as now
        received = min(receipt, max(stamp, job.received_s + to_clock))
        marks = [stamp, received, min(receipt, max(received, job.released_s + to_clock))]
        origin = stamp if self.taskset.tasks[task].origin_is_stamp else None
        self.runtime.submit(task, payload, origin_s=origin, path_marks=marks)

    def _on_error(self, task: str, segment: str, exc: BaseException) -> None:
        reason = f'{type(exc).__name__}: {exc}'
        what = 'input rejected on receipt' if segment == 'receipt' else f'job rejected in {segment}'
        # One line per task and kind of problem, then at most one every 10 s (a flood of
        # alternating junk must not become a flood of log lines).
        key, now = (task, segment, type(exc).__name__, str(exc)[:60]), time.monotonic()
        if now - self._logged.get(key, -math.inf) >= 10.0:
            self._logged[key] = now
            self.get_logger().warning(f'{task}: {what}: {reason}')
        self.malformed_log[task] = reason

    def _to_ros_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9 - time.monotonic()

    def _publish_result(self, r: JobReport) -> None:
        if not self._active or not self.context.ok():
            return                              # deactivating, or a stop signal ended the context
        try:
            msg = out.result_message(r, self._to_ros_s())
            self.result_pubs[r.task].publish(msg)
            if r.task in self.vision_pubs:
                self.vision_pubs[r.task].publish(to_vision(self.vision, msg))
            if self.annotator is not None and r.task in self.annotated_pubs and isinstance(r.payload, LocalJob):
                self.annotator.offer(r.task, r.payload.payload[0], r.result, r.result.meta)
        except Exception:                       # noqa: BLE001 - rclpy's RCLError has no stable import path
            if not self.context.ok():           # the signal came while this job was in flight
                return
            raise
        for listener in self.result_listeners:
            listener(r)

    def destroy_node(self):
        self._stop_jobs()
        self._release_task_nodes()
        return super().destroy_node()


def main() -> int:
    from ..backends import BackendError
    node, executor = start_node(ExecutorNode, 'rtmdl_executor',
                                (TasksetError, zoo.ZooError, BackendError, ValueError))

    def start() -> bool:
        ok = node.start()
        if not ok and node.context.ok():
            print('rtmdl_executor: error: configure/activate failed (see the log above)', file=sys.stderr)
        return ok
    # One ROS thread: the callbacks only admit jobs and publish; the work runs on the scheduler's threads.
    return spin_node(node, executor, prepare=start if node.autostart else None)
