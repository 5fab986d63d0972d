"""rtmdl_executor: hosts the variant pool and the RT-mDL scheduler (a lifecycle node).

Subscribes:  jobs/<task>                 sensor_msgs/Image (camera tasks) or AudioChunk (sound tasks), while active
             jobs/<task>/timing          rtmdl_interfaces/JobTiming (task node times, for the trace)
Publishes:   detections/<task>           rtmdl_interfaces/DetectionArray  (detector tasks)
             classifications/<task>      rtmdl_interfaces/Classification  (classifier tasks)
             status                      rtmdl_interfaces/SchedulerStatus
             trace                       rtmdl_interfaces/JobTraceArray (every job's stages)
             /diagnostics                diagnostic_msgs/DiagnosticArray
Lifecycle:   configure loads and warms every variant on every lane; activate starts the
             scheduler threads (SCHED_FIFO where allowed) and only then subscribes to the
             job topics, so task nodes release nothing before; deactivate unsubscribes and
             lets running segments end. autostart (default true) does configure + activate.
Parameters:  taskset_file, zoo_dir, backend, device, cpu_workers, gpu_lanes, realtime_priority,
             reserve_cores, autostart (read-only), window_s, status_period_s, and per task
             tasks.<name>.{variant, priority, deadline_ms, period_ms} (+ tasks.<name>.roi for a
             task whose model crops a region of the frame). A change
             is checked as a whole (unknown variant, deadline > period, priority clash, out of
             range) and either applied from the task's next job or rejected with the reason.
"""
from __future__ import annotations

import collections
import functools
import math
import os
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.serialization import deserialize_message
from rtmdl_interfaces.msg import (AudioChunk, Classification, Detection, DetectionArray, JobTiming, JobTrace,
                                  JobTraceArray, LabelScore, SchedulerStatus, TaskStatus)
from sensor_msgs.msg import Image

from ..backends import BACKENDS, DEVICES, create
from ..core.analysis import analyze
from ..core.plan import Assignment
from ..core.realtime import RealtimeConfig, fifo_range, reserve_cores
from ..core.release import ADMIT, ReleaseGate
from ..core.runtime import JobReport, Runtime
from ..core.scheduling import TaskParams
from ..core.shedding import LoadShedder
from ..core.settings import PERIOD_RANGE_MS, PRIORITY_MAX, TaskSettings, apply_change, initial_settings
from ..core.taskset import TasksetError, platform_for_device, with_task_changes
from ..core.trace import STAGES
from ..models import zoo
from ..models.jobs import limit_library_threads, make_segments, warm_up
from ..models import SOUND, InputError
from .conversions import (chunk_to_mono, check_serialized_chunk, check_serialized_image, image_to_bgr,
                          stamp_of_serialized)
from .input_filters import INPUT_FILTER_HELP, filtered_subscription
from .resources import default_taskset_file, load_runtime_taskset
from .spin import spin_node, start_node
from .topics import JOB_QOS, STATUS_TOPIC, TRACE_TOPIC, job_timing_topic, job_topic, result_topic

FIELDS = ('variant', 'priority', 'deadline_ms', 'period_ms')


def _ms_to_time(ms: float):
    from builtin_interfaces.msg import Time
    ns = int(round(ms * 1e6))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _ros_to_s(t) -> float:
    return t.sec + t.nanosec * 1e-9


class ExecutorNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__('rtmdl_executor', **kwargs)
        # Python threads hand the GIL over every 5 ms by default: an urgent worker
        # could wait that long behind a callback decoding a frame. 0.5 ms bounds it.
        sys.setswitchinterval(0.0005)
        limit_library_threads()
        ro = ParameterDescriptor(read_only=True)
        taskset_file = self.declare_parameter('taskset_file', default_taskset_file(), ro).value
        zoo_dir = self.declare_parameter('zoo_dir', '', ro).value or None
        self.zoo_dir = zoo_dir
        self.taskset, self.variants, self.accuracy, self.labels, self.families, self.envelopes = \
            load_runtime_taskset(taskset_file, zoo_dir)
        platform = self.taskset.platform
        self.backend_name = self.declare_parameter(
            'backend', 'onnxruntime', ParameterDescriptor(read_only=True, description=f'one of {BACKENDS}')).value
        self.device = self.declare_parameter(
            'device', 'cpu', ParameterDescriptor(read_only=True, description=f'one of {DEVICES}')).value
        self.gpu_lanes = self.declare_parameter('gpu_lanes', platform.gpu_lanes, ParameterDescriptor(
            read_only=True, integer_range=[IntegerRange(from_value=1, to_value=8, step=1)])).value
        # On a CPU-only machine the lanes take cores too (a task set from `rtmdl
        # profile` already says so; a hand-written one may not).
        fitted, platform_note = platform_for_device(
            {'cpu_workers': platform.cpu_workers, 'gpu_lanes': self.gpu_lanes}, self.device)
        self.cpu_workers = self.declare_parameter('cpu_workers', fitted['cpu_workers'], ParameterDescriptor(
            read_only=True, integer_range=[IntegerRange(from_value=1, to_value=64, step=1)])).value
        self.window_s = self.declare_parameter('window_s', 10.0, ParameterDescriptor(
            floating_point_range=[FloatingPointRange(from_value=0.5, to_value=600.0, step=0.0)])).value
        self.status_period = self.declare_parameter('status_period_s', 1.0, ParameterDescriptor(
            read_only=True, floating_point_range=[FloatingPointRange(from_value=0.05, to_value=60.0, step=0.0)])).value
        hi = fifo_range()[1]
        self.rt_priority = self.declare_parameter('realtime_priority', min(50, hi), ParameterDescriptor(
            read_only=True, description='SCHED_FIFO priority of the scheduler threads (0: normal scheduling)',
            integer_range=[IntegerRange(from_value=0, to_value=max(0, hi - 1), step=1)])).value
        self.reserve = self.declare_parameter('reserve_cores', True, ParameterDescriptor(
            read_only=True, description='keep cores for the scheduler threads alone where the machine has '
                                        'more cores than scheduler threads')).value
        self.input_filter = self.declare_parameter('input_filter', True, ParameterDescriptor(
            read_only=True, description=INPUT_FILTER_HELP)).value
        self.autostart = self.declare_parameter('autostart', True, ParameterDescriptor(
            read_only=True, description='configure and activate at start')).value
        # Degraded mode (core/shedding.py): off unless asked for, since shedding a task is a decision
        # about the car's function that its builder must make.
        self.shed_on = self.declare_parameter('shed_on_overload', False, ParameterDescriptor(
            description='under overload stop releasing the least important task (lowest priority) first, '
                        'so that more urgent ones keep their bounds')).value
        self.shed_after_s = self.declare_parameter('shed_after_s', 3.0, ParameterDescriptor(
            description='a more urgent task over its bound this long before one is shed',
            floating_point_range=[FloatingPointRange(from_value=0.5, to_value=600.0, step=0.0)])).value
        self.shed_restore_s = self.declare_parameter('shed_restore_after_s', 20.0, ParameterDescriptor(
            description='every running task within its bound this long before a shed task comes back',
            floating_point_range=[FloatingPointRange(from_value=1.0, to_value=3600.0, step=0.0)])).value

        # Per-task settings: task set + plan (from --params-file) + defaults.
        defaults = initial_settings(self.taskset, None)
        settings = {}
        for name, d in defaults.items():
            t = self.taskset.tasks[name]
            vals = {
                'variant': self.declare_parameter(f'tasks.{name}.variant', d.variant, ParameterDescriptor(
                    description=f'one of {sorted(self.variants[name])}')).value,
                'priority': self.declare_parameter(f'tasks.{name}.priority', d.priority, ParameterDescriptor(
                    description='0 = most urgent; distinct per task',
                    integer_range=[IntegerRange(from_value=0, to_value=PRIORITY_MAX, step=1)])).value,
                'deadline_ms': float(self.declare_parameter(f'tasks.{name}.deadline_ms', t.deadline_ms, ParameterDescriptor(
                    description='relative deadline, <= period_ms', floating_point_range=[FloatingPointRange(
                        from_value=PERIOD_RANGE_MS[0], to_value=PERIOD_RANGE_MS[1], step=0.0)])).value),
                'period_ms': float(self.declare_parameter(f'tasks.{name}.period_ms', t.period_ms, ParameterDescriptor(
                    description='the task\'s period; releases are held to min_interarrival_ms scaled with it',
                    floating_point_range=[FloatingPointRange(
                        from_value=PERIOD_RANGE_MS[0], to_value=PERIOD_RANGE_MS[1], step=0.0)])).value),
            }
            settings[name] = TaskSettings(**vals)
        self.settings = apply_change(settings, {}, self.variants)     # the start-up set must be valid too
        # Tasks whose model crops a region of interest get tasks.<name>.roi (default: the family's).
        roi_doc = ParameterDescriptor(description='crop [x0, y0, x1, y1] as fractions of the frame')
        self.roi = {name: list(self.declare_parameter(f'tasks.{name}.roi', list(self.families[name].default_roi),
                                                      roi_doc).value)
                    for name in self.settings if self.families[name].uses_roi}
        self.malformed_log: dict[str, str] = {}
        self.result_listeners = []          # in-process observers of JobReports (benchmarks, tests)
        self.runtime: Runtime | None = None
        self.backend = None
        self.segments = {}
        self.configure_s = math.nan
        self.realtime_note = ''
        self._active = False
        self._subs, self._timers = [], []
        self._platform_note = platform_note if self.cpu_workers == fitted['cpu_workers'] else ''
        self._rejected = collections.Counter()        # inputs refused at receipt (not jobs)
        self._node_refused = collections.Counter()    # ... and by the task nodes (from their JobTimings)
        self._node_last = {}
        self._rate_limited = collections.Counter()
        self._shed_inputs = collections.Counter()     # valid inputs not released: their task is shed
        self._shedder: LoadShedder | None = None
        self._gates = {n: self._gate(n) for n in self.settings}
        # Receipt checks, including the envelope each task was profiled on (models/envelope.py).
        self._check_input = {n: functools.partial(check_serialized_chunk if self.families[n].input == SOUND
                                                  else check_serialized_image, envelope=self.envelopes[n])
                             for n in self.settings}
        self._logged: dict[tuple[str, str], float] = {}
        self._timings = {n: collections.OrderedDict() for n in self.settings}   # JobTimings before their job
        self._awaiting = {n: collections.OrderedDict() for n in self.settings}  # jobs before their JobTiming
        self.bounds = self._analysed_bounds()

        self.result_pubs = {}
        for name in self.settings:
            kind = self.families[name].kind
            self.result_pubs[name] = self.create_publisher(
                DetectionArray if kind == 'detect' else Classification, result_topic(name, kind), 10)
        self.status_pub = self.create_publisher(SchedulerStatus, STATUS_TOPIC, 10)
        self.trace_pub = self.create_publisher(JobTraceArray, TRACE_TOPIC, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
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
            self.backend = create(self.backend_name, self.device, self.zoo_dir)
            self._preload()
        except (BackendError, zoo.ZooError, TasksetError, OSError, ValueError) as e:
            self.get_logger().error(f'configure failed: {e}')
            self.backend = None
            return TransitionCallbackReturn.FAILURE
        for name in self.settings:
            fam = self.families[name]
            decode = self._decode_chunk if fam.input == SOUND else self._decode_image
            self.segments[name] = make_segments(fam, self.backend, self.labels[name], decode, options=(
                lambda n=name: {'roi': tuple(self.roi[n])} if n in self.roi else {}))
        self.configure_s = time.monotonic() - t0
        self.get_logger().info(f'configured in {self.configure_s:.1f} s: every variant loaded and warmed')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        threads = self.cpu_workers + self.gpu_lanes
        mine, others, core_note = reserve_cores(threads) if self.reserve else (frozenset(), frozenset(), '')
        if mine and others:
            os.sched_setaffinity(0, others)   # this thread, and the ROS threads it starts, off the scheduler's cores
        cfg = RealtimeConfig(priority=self.rt_priority, cpus=mine)
        self.runtime = Runtime({n: self._params(n) for n in self.settings}, self.segments, self.cpu_workers,
                               self.gpu_lanes, on_result=self._publish_result, on_error=self._on_error,
                               window_s=self.window_s, realtime=cfg, keep_traces=20000)
        self.runtime.start()
        self.realtime_note = '; '.join(cfg.problems + ([core_note] if core_note and self.reserve else []))
        if cfg.problems:
            self.get_logger().warning('real-time scheduling: ' + '; '.join(cfg.problems))
        elif core_note:
            self.get_logger().info(core_note)
        self._gates = {n: self._gate(n) for n in self.settings}
        self._active = True
        for name in self.settings:
            msg_type = AudioChunk if self.families[name].input == SOUND else Image
            sub, _ = filtered_subscription(self, msg_type, job_topic(name), lambda msg, n=name: self._on_job(n, msg),
                                           JOB_QOS, self.envelopes[name] if self.input_filter else None, raw=True)
            self._subs.append(sub)
            self._subs.append(self.create_subscription(
                JobTiming, job_timing_topic(name), lambda msg, n=name: self._on_timing(n, msg), JOB_QOS))
        self._timers = [self.create_timer(self.status_period, self._publish_status),
                        self.create_timer(0.25, self._publish_traces)]
        if self._platform_note:
            self.get_logger().info(self._platform_note)
        self.get_logger().info(
            f'executor active: {len(self.settings)} tasks, backend {self.backend_name}/{self.device}, '
            f'{self.cpu_workers} CPU workers, {self.gpu_lanes} lanes'
            + (f' at SCHED_FIFO {self.rt_priority}' if self.rt_priority and not cfg.problems else '')
            + (f' on cores {sorted(mine)}' if mine else '') + '; plan '
            + ', '.join(f'{n}={s.variant}@{s.priority}' for n, s in self.settings.items()))
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_jobs()
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.segments, self.backend = {}, None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_jobs()
        return TransitionCallbackReturn.SUCCESS

    def _stop_jobs(self) -> None:
        """Take no more jobs, let running segments end, stop publishing."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []
        if self.runtime is not None:
            self.runtime.stop()
        self._active = False

    # -- set-up helpers ------------------------------------------------------
    def _params(self, name: str) -> TaskParams:
        s = self.settings[name]
        return TaskParams(s.priority, s.deadline_ms, s.variant, self.taskset.tasks[name].on_overrun)

    def _gate(self, name: str) -> ReleaseGate:
        """The task's admission by stamp: min inter-arrival scaled with its live period."""
        t = self.taskset.tasks[name]
        return ReleaseGate(self.settings[name].period_ms * t.interarrival_ms / t.period_ms)

    def _analysed_bounds(self) -> dict[str, float]:
        """Response bound per task for the live plan, where the task set has measured times."""
        ts = self.taskset
        if not any(v.time('infer').worst > 0 for t in ts.tasks.values() for v in t.variants.values()):
            return {}
        try:
            for name, s in self.settings.items():
                t = ts.tasks[name]
                if (s.period_ms, s.deadline_ms) != (t.period_ms, t.deadline_ms):
                    ts = with_task_changes(ts, name, period_ms=s.period_ms, deadline_ms=s.deadline_ms)
            result = analyze(ts, {n: Assignment(s.variant, s.priority) for n, s in self.settings.items()})
        except (TasksetError, ValueError):
            return {}
        return {n: r.response_bound_ms for n, r in result.items()}

    def _preload(self) -> None:
        """Open and run every variant on every lane now, so that neither the first
        job nor a variant switch pays for loading or compiling anything."""
        warmed = set()
        for name in self.settings:
            fam = self.families[name]
            if id(fam) not in warmed:                # tasks running one family share its sessions
                warm_up(fam, self.backend, self.labels[name], sorted(self.variants[name]), self.gpu_lanes)
                warmed.add(id(fam))

    # Job topics are taken as serialized bytes; decoding them is the first step
    # of pre-processing, so it runs at the job's priority on a CPU worker instead
    # of in the ROS callback thread, and a malformed message fails that job only.
    @staticmethod
    def _decode_chunk(raw: bytes):
        msg = deserialize_message(raw, AudioChunk)
        return chunk_to_mono(msg), msg.header

    @staticmethod
    def _decode_image(raw: bytes):
        msg = deserialize_message(raw, Image)
        return image_to_bgr(msg), msg.header

    # -- jobs ------------------------------------------------------------------
    def _on_job(self, task: str, raw: bytes) -> None:
        """Admit a serialized input: its stamp (read without decoding) must keep the
        task's minimum inter-arrival; its deadline counts from that stamp."""
        receipt = time.monotonic()
        ros_now_s = self.get_clock().now().nanoseconds * 1e-9
        try:
            sec, nanosec = stamp_of_serialized(raw)
            # The cheap checks of the decoder, before the message may count as a release:
            # junk must not supersede a task's valid pending job.
            self._check_input[task](raw)
        except InputError as e:
            self._rejected[task] += 1
            self._on_error(task, 'receipt', e)
            return
        stamp_s = sec + nanosec * 1e-9
        if self._gates[task].check(stamp_s * 1e3) != ADMIT:
            self._rate_limited[task] += 1
            return
        if self._shedder is not None and task in self._shedder.shed:
            self._shed_inputs[task] += 1
            return
        to_clock = receipt - ros_now_s           # ROS time -> the runtime's monotonic clock
        stamp = min(receipt, stamp_s + to_clock)  # a stamp from the future (clock skew) counts as now
        # The task node's JobTiming usually came first; if not, it fills the marks in when it comes.
        marks = [stamp, None, None]
        timing = self._timings[task].pop((sec, nanosec), None)
        if timing is not None:
            self._fill_marks(marks, timing, to_clock, receipt)
        else:
            self._awaiting[task][(sec, nanosec)] = (marks, to_clock, receipt)
            self._trim(self._awaiting[task])
        origin = stamp if self.taskset.tasks[task].origin_is_stamp else None
        self.runtime.submit(task, raw, origin_s=origin, path_marks=marks)

    def _on_timing(self, task: str, msg: JobTiming) -> None:
        # The task node's running count of refused inputs; a restarted node counts from 0 again.
        last = self._node_last.get(task, 0)
        self._node_refused[task] += msg.refused - last if msg.refused >= last else msg.refused
        self._node_last[task] = msg.refused
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        waiting = self._awaiting[task].pop(key, None)
        if waiting is not None:
            self._fill_marks(waiting[0], msg, waiting[1], waiting[2])
        else:
            self._timings[task][key] = msg
            self._trim(self._timings[task])

    @staticmethod
    def _fill_marks(marks: list, timing: JobTiming, to_clock: float, receipt: float) -> None:
        marks[1] = min(receipt, max(marks[0], _ros_to_s(timing.received) + to_clock))
        marks[2] = min(receipt, max(marks[1], _ros_to_s(timing.released) + to_clock))

    @staticmethod
    def _trim(pending: collections.OrderedDict) -> None:
        while len(pending) > 16:                  # a timing whose job never came, or the reverse
            pending.popitem(last=False)

    def _on_error(self, task: str, segment: str, exc: BaseException) -> None:
        reason = f'{type(exc).__name__}: {exc}'
        # One line per task and kind of problem, then at most one every 10 s (a flood of
        # alternating junk must not become a flood of log lines).
        key, now = (task, f'{segment}: {type(exc).__name__}: {str(exc)[:60]}'), time.monotonic()
        if now - self._logged.get(key, -math.inf) >= 10.0:
            self._logged[key] = now
            what = 'input rejected on receipt' if segment == 'receipt' else f'job rejected in {segment}'
            self.get_logger().warning(f'{task}: {what}: {reason}')
        self.malformed_log[task] = reason

    def _publish_result(self, r: JobReport) -> None:
        if not self._active:
            return                              # deactivating: the publishers may be gone
        header = r.result.meta
        if r.result.kind == 'detect':
            msg = DetectionArray(header=header, task=r.task, variant=r.variant, deadline_met=r.deadline_met)
            msg.detections = [Detection(label=label, class_id=cid, score=float(score), x_min=float(b[0]),
                                        y_min=float(b[1]), x_max=float(b[2]), y_max=float(b[3]))
                              for label, cid, score, b in r.result.detections]
        else:
            msg = Classification(header=header, task=r.task, variant=r.variant, deadline_met=r.deadline_met)
            msg.results = [LabelScore(label=label, class_id=cid, score=float(score))
                           for label, cid, score in r.result.labels]
        msg.release_time = self._clock_to_ros(r.release_s)
        msg.finish_time = self._clock_to_ros(r.finish_s)
        self.result_pubs[r.task].publish(msg)
        for listener in self.result_listeners:
            listener(r)

    def _clock_to_ros(self, monotonic_s: float):
        """A runtime (monotonic) instant as ROS time, via the current offset between the clocks."""
        offset_ns = self.get_clock().now().nanoseconds - time.monotonic_ns()
        return _ms_to_time((monotonic_s * 1e9 + offset_ns) / 1e6)

    # -- parameters ------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        changes, roi, window, shed = {}, None, None, {}
        for p in params:
            parts = p.name.split('.')
            if p.name == 'use_sim_time' and self._active:
                # Stamps, deadlines and the scheduler's clock must stay on one time base.
                return SetParametersResult(successful=False, reason='use_sim_time cannot change while the executor '
                                                                    'is active; set it at start (or deactivate first)')
            if len(parts) == 3 and parts[0] == 'tasks' and parts[2] in FIELDS:
                value = p.value
                if parts[2] in ('deadline_ms', 'period_ms') and p.type_ == ParameterType.PARAMETER_INTEGER:
                    value = float(value)
                changes[(parts[1], parts[2])] = value
            elif len(parts) == 3 and parts[0] == 'tasks' and parts[2] == 'roi' and parts[1] in self.roi:
                value = list(p.value)
                if len(value) != 4 or not (0 <= value[0] < value[2] <= 1 and 0 <= value[1] < value[3] <= 1):
                    return SetParametersResult(successful=False, reason=f'{p.name}: need 0 <= x0 < x1 <= 1 '
                                                                        'and 0 <= y0 < y1 <= 1')
                # What the pipeline can run: a 640x480 frame's crop must hold the model's input.
                if (value[2] - value[0]) * 640 < 8 or (value[3] - value[1]) * 480 < 8:
                    return SetParametersResult(successful=False, reason=f'{p.name}: {value} crops fewer than 8 x 8 '
                                                                        'pixels of a 640x480 frame')
                roi = (parts[1], value)
            elif p.name == 'window_s':
                window = float(p.value)
            elif p.name in ('shed_on_overload', 'shed_after_s', 'shed_restore_after_s'):
                shed[p.name] = p.value
        try:
            new = apply_change(self.settings, changes, self.variants)
        except ValueError as e:
            self.get_logger().warning(f'parameter change rejected: {e}')
            return SetParametersResult(successful=False, reason=str(e))
        self.settings = new
        for task in {t for t, _ in changes}:
            if self.runtime is not None:
                self.runtime.configure(task, self._params(task))
            if (task, 'period_ms') in changes:
                self._gates[task] = self._gate(task)
        if changes:
            self.bounds = self._analysed_bounds()
        if shed:
            self._set_shedding(shed)
        if roi is not None:
            self.roi[roi[0]] = roi[1]
        if window is not None:
            self.window_s = window
            if self.runtime is not None:
                self.runtime.window_s = window
        if changes:
            self.get_logger().info('applied from the next job: ' + ', '.join(
                f'tasks.{t}.{f}={v}' for (t, f), v in changes.items()))
        return SetParametersResult(successful=True)

    # -- status ----------------------------------------------------------------
    def status_message(self) -> SchedulerStatus | None:
        """The scheduler's statistics, or None while not active."""
        if self.runtime is None or self.runtime.started_s is None:
            return None
        util = self.runtime.utilisation()
        msg = SchedulerStatus(backend=self.backend_name, device=self.device, cpu_workers=self.cpu_workers,
                              gpu_lanes=self.gpu_lanes, cpu_utilisation=util['cpu'], gpu_utilisation=util['gpu'],
                              realtime=bool(self.rt_priority) and not self.runtime.realtime.problems,
                              realtime_note=self.realtime_note, configure_s=float(self.configure_s),
                              active_s=float(time.monotonic() - self.runtime.started_s))
        msg.header.stamp = self.get_clock().now().to_msg()
        nan = float('nan')
        for name, s in self.settings.items():
            st = self.runtime.stats(name)
            task = self.taskset.tasks[name]
            msg.tasks.append(TaskStatus(
                task=name, variant=s.variant, priority=s.priority, period_ms=s.period_ms, deadline_ms=s.deadline_ms,
                max_miss_rate=task.max_miss_rate, accuracy=self.accuracy[name].get(s.variant, 0.0),
                deadline_from=task.deadline_from, jobs=st.total_jobs, missed=st.total_missed,
                dropped_frames=st.total_dropped, malformed=st.total_failed + self._rejected[name] + self._node_refused[name],
                rate_limited=self._rate_limited[name], window_s=self.runtime.window_s, miss_rate=st.miss_rate,
                shed=self._shedder is not None and name in self._shedder.shed, shed_inputs=self._shed_inputs[name],
                response_p50_ms=st.p50_ms if st.p50_ms is not None else nan,
                response_p99_ms=st.p99_ms if st.p99_ms is not None else nan,
                run_miss_rate=st.run_miss_rate, run_response_p99_ms=st.run_p99_ms if st.run_p99_ms is not None else nan,
                response_bound_ms=self.bounds.get(name, nan), stages=list(STAGES),
                stage_p50_ms=[float(x) for x in st.stage_p50_ms], stage_p99_ms=[float(x) for x in st.stage_p99_ms]))
        return msg

    def _publish_traces(self) -> None:
        traces = self.runtime.drain_traces()
        if not traces or self.trace_pub.get_subscription_count() == 0:
            return
        out = JobTraceArray(stages=list(STAGES))
        out.header.stamp = self.get_clock().now().to_msg()
        to_ros = self.get_clock().now().nanoseconds * 1e-9 - time.monotonic()
        for t in traces:
            jt = JobTrace(task=t.task, seq=t.seq, variant=t.variant, outcome=t.outcome,
                          stages_ms=[float(x) for x in t.stages_ms])
            ns = int(round((t.stamp_s + to_ros) * 1e9))
            jt.stamp.sec, jt.stamp.nanosec = ns // 1_000_000_000, ns % 1_000_000_000
            out.jobs.append(jt)
        self.trace_pub.publish(out)

    def _set_shedding(self, values: dict) -> None:
        """Degraded mode's parameters, once the whole parameter set is known to be valid."""
        self.shed_after_s = float(values.get('shed_after_s', self.shed_after_s))
        self.shed_restore_s = float(values.get('shed_restore_after_s', self.shed_restore_s))
        if self._shedder is not None:
            self._shedder.after_s, self._shedder.restore_after_s = self.shed_after_s, self.shed_restore_s
        if 'shed_on_overload' in values and bool(values['shed_on_overload']) != self.shed_on:
            self.shed_on = bool(values['shed_on_overload'])
            if self._shedder is not None and self._shedder.shed:
                self.get_logger().warning(f'degraded mode off: {", ".join(self._shedder.shed)} run again')
            self._shedder = None

    def _degrade(self, status: SchedulerStatus) -> None:
        """Degraded mode's decision at each status period, from the window miss rates."""
        # The first window after activation holds the start-up (page faults, first
        # inferences, discovery): it says nothing about overload.
        if not self.shed_on or status.active_s < self.window_s + self.shed_after_s:
            return
        order = sorted(self.settings, key=lambda n: self.settings[n].priority)     # most urgent = most important
        if self._shedder is None or self._shedder.order != order:
            kept = self._shedder.shed if self._shedder is not None else []
            self._shedder = LoadShedder(order, self.shed_after_s, self.shed_restore_s, settle_s=self.window_s,
                                        shed=[t for t in kept if t in order])
        over = {t.task: t.miss_rate > t.max_miss_rate for t in status.tasks if not t.shed}
        change = self._shedder.update(time.monotonic(), over)
        if change is None:
            return
        what, task = change
        late = ', '.join(f'{t.task} {t.miss_rate:.3f}' for t in status.tasks if over.get(t.task))
        if what == 'shed':
            self.get_logger().warning(f'degraded mode: shedding {task} (least important running) because '
                                      f'{late or "a task"} missed over its bound for {self.shed_after_s:g} s')
        else:
            self.get_logger().info(f'degraded mode: {task} runs again (every task within its bound '
                                   f'for {self.shed_restore_s:g} s)')

    def _publish_status(self) -> None:
        status = self.status_message()
        if status is None:
            return
        self._degrade(status)
        for t in status.tasks:                  # as decided this period
            t.shed = self._shedder is not None and t.task in self._shedder.shed
        self.status_pub.publish(status)
        diag = DiagnosticArray(header=status.header)
        for t in status.tasks:
            over = t.jobs > 0 and t.miss_rate > t.max_miss_rate
            level = DiagnosticStatus.ERROR if t.shed else DiagnosticStatus.WARN if over or t.malformed \
                else DiagnosticStatus.OK
            text = ('shed under overload (degraded mode): no results' if t.shed else
                    f'miss rate {t.miss_rate:.3f} over bound {t.max_miss_rate:g}' if over else
                    f'{t.malformed} malformed inputs' if t.malformed else 'meeting its bound')
            diag.status.append(DiagnosticStatus(
                level=level, name=f'rtmdl_executor: {t.task}', message=text, hardware_id=self.device,
                values=[KeyValue(key=k, value=str(v)) for k, v in (
                    ('variant', t.variant), ('priority', t.priority), ('jobs', t.jobs), ('missed', t.missed),
                    ('miss_rate', f'{t.miss_rate:.4f}'), ('p99_ms', f'{t.response_p99_ms:.2f}'),
                    ('response_bound_ms', f'{t.response_bound_ms:.2f}'), ('run_miss_rate', f'{t.run_miss_rate:.4f}'),
                    ('malformed', t.malformed), ('rate_limited', t.rate_limited), ('shed_inputs', t.shed_inputs),
                    ('last_error', self.malformed_log.get(t.task, '')))]
                + [KeyValue(key=f'stage.{n}.p50_ms/p99_ms', value=f'{a:.2f}/{b:.2f}')
                   for n, a, b in zip(t.stages, t.stage_p50_ms, t.stage_p99_ms)]))
        self.diag_pub.publish(diag)

    def destroy_node(self):
        self._stop_jobs()
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
