"""rtmdl_executor: hosts the variant pool and the RT-mDL scheduler.

Subscribes:  jobs/<task>                 sensor_msgs/Image (camera tasks) or AudioChunk (audio)
Publishes:   detections/<task>           rtmdl_interfaces/DetectionArray  (detector tasks)
             classifications/<task>      rtmdl_interfaces/Classification  (classifier tasks)
             status                      rtmdl_interfaces/SchedulerStatus
             /diagnostics                diagnostic_msgs/DiagnosticArray
Parameters:  taskset_file, zoo_dir, backend, device, cpu_workers, gpu_lanes (read-only),
             window_s, status_period_s, and per task tasks.<name>.{variant, priority,
             deadline_ms, period_ms} (+ tasks.sign.roi). A change is checked as a whole
             (unknown variant, deadline > period, priority clash, out of range) and
             either applied from the task's next job or rejected with the reason.
"""
from __future__ import annotations

import sys
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rtmdl_interfaces.msg import (AudioChunk, Classification, Detection, DetectionArray, LabelScore,
                                  SchedulerStatus, TaskStatus)
from sensor_msgs.msg import Image

from ..backends import BACKENDS, DEVICES, create
from ..core.runtime import JobReport, Runtime
from ..core.scheduling import TaskParams
from ..core.settings import PERIOD_RANGE_MS, PRIORITY_MAX, TaskSettings, apply_change, initial_settings
from ..core.taskset import TasksetError, platform_for_device
from ..data.drive import SIGN_ROI
from ..models import zoo
from ..models.families import family
from ..models.jobs import limit_library_threads, make_segments, warm_up
from .conversions import audio_to_mono, image_to_bgr
from .resources import default_taskset_file, load_runtime_taskset
from .spin import run_node
from .topics import JOB_QOS, STATUS_TOPIC, job_topic, result_topic

FIELDS = ('variant', 'priority', 'deadline_ms', 'period_ms')
DEFAULT_SIGN_ROI = list(SIGN_ROI)     # right-hand side of the frame, where the camera source puts signs


def _ms_to_time(ms: float):
    from builtin_interfaces.msg import Time
    ns = int(round(ms * 1e6))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class ExecutorNode(Node):
    def __init__(self, **kwargs):
        super().__init__('rtmdl_executor', **kwargs)
        # Python threads hand the GIL over every 5 ms by default: an urgent worker
        # could wait that long behind a callback decoding a frame. 0.5 ms bounds it.
        sys.setswitchinterval(0.0005)
        limit_library_threads()
        ro = ParameterDescriptor(read_only=True)
        taskset_file = self.declare_parameter('taskset_file', default_taskset_file(), ro).value
        zoo_dir = self.declare_parameter('zoo_dir', '', ro).value or None
        self.taskset, self.variants, self.accuracy, self.labels = load_runtime_taskset(taskset_file, zoo_dir)
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
        status_period = self.declare_parameter('status_period_s', 1.0, ParameterDescriptor(
            read_only=True, floating_point_range=[FloatingPointRange(from_value=0.05, to_value=60.0, step=0.0)])).value

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
                    description='release period of the task node', floating_point_range=[FloatingPointRange(
                        from_value=PERIOD_RANGE_MS[0], to_value=PERIOD_RANGE_MS[1], step=0.0)])).value),
            }
            settings[name] = TaskSettings(**vals)
        self.settings = apply_change(settings, {}, self.variants)     # the start-up set must be valid too
        self.roi = list(self.declare_parameter('tasks.sign.roi', DEFAULT_SIGN_ROI, ParameterDescriptor(
            description='sign crop [x0, y0, x1, y1] as fractions of the frame')).value) \
            if 'sign' in self.settings else DEFAULT_SIGN_ROI
        self.malformed_log: dict[str, str] = {}
        self.result_listeners = []          # in-process observers of JobReports (benchmarks, bringup)

        self.backend = create(self.backend_name, self.device, zoo_dir)
        self._preload()
        segments = {}
        for name in self.settings:
            decode = self._decode_audio if name == 'audio' else self._decode_image
            segments[name] = make_segments(name, self.backend, self.labels[name], decode,
                                           options=(lambda: {'roi': tuple(self.roi)}))
        self.runtime = Runtime({n: self._params(n) for n in self.settings}, segments, self.cpu_workers,
                               self.gpu_lanes, on_result=self._publish_result, on_error=self._on_error,
                               window_s=self.window_s)

        self.result_pubs = {}
        for name in self.settings:
            kind = family(name).kind
            self.result_pubs[name] = self.create_publisher(
                DetectionArray if kind == 'detect' else Classification, result_topic(name, kind), 10)
            msg_type = AudioChunk if name == 'audio' else Image
            self.create_subscription(msg_type, job_topic(name), lambda msg, n=name: self._on_job(n, msg), JOB_QOS,
                                     raw=True)
        self.status_pub = self.create_publisher(SchedulerStatus, STATUS_TOPIC, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(status_period, self._publish_status)
        self.runtime.start()
        if platform_note and self.cpu_workers == fitted['cpu_workers']:
            self.get_logger().info(platform_note)
        self.get_logger().info(
            f'executor up: {len(self.settings)} tasks, backend {self.backend_name}/{self.device}, '
            f'{self.cpu_workers} CPU workers, {self.gpu_lanes} lanes; plan '
            + ', '.join(f'{n}={s.variant}@{s.priority}' for n, s in self.settings.items()))

    # -- set-up helpers ------------------------------------------------------
    def _params(self, name: str) -> TaskParams:
        s = self.settings[name]
        return TaskParams(s.priority, s.deadline_ms, s.variant, self.taskset.tasks[name].on_overrun)

    def _preload(self) -> None:
        """Open and run every variant on every lane now, so that neither the first
        job nor a variant switch pays for loading or compiling anything."""
        for name in self.settings:
            warm_up(name, self.backend, self.labels[name], sorted(self.variants[name]), self.gpu_lanes)

    # Job topics are taken as serialized bytes; decoding them is the first step
    # of pre-processing, so it runs at the job's priority on a CPU worker instead
    # of in the ROS callback thread, and a malformed message fails that job only.
    @staticmethod
    def _decode_audio(raw: bytes):
        msg = deserialize_message(raw, AudioChunk)
        return audio_to_mono(msg), msg.header

    @staticmethod
    def _decode_image(raw: bytes):
        msg = deserialize_message(raw, Image)
        return image_to_bgr(msg), msg.header

    # -- jobs ------------------------------------------------------------------
    def _on_job(self, task: str, msg) -> None:
        self.runtime.submit(task, msg)

    def _on_error(self, task: str, segment: str, exc: BaseException) -> None:
        reason = f'{type(exc).__name__}: {exc}'
        if self.malformed_log.get(task) != reason:       # log each new kind of problem once
            self.get_logger().warning(f'{task}: job rejected in {segment}: {reason}')
        self.malformed_log[task] = reason

    def _publish_result(self, r: JobReport) -> None:
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
        changes, roi, window = {}, None, None
        for p in params:
            parts = p.name.split('.')
            if len(parts) == 3 and parts[0] == 'tasks' and parts[2] in FIELDS:
                value = p.value
                if parts[2] in ('deadline_ms', 'period_ms') and p.type_ == ParameterType.PARAMETER_INTEGER:
                    value = float(value)
                changes[(parts[1], parts[2])] = value
            elif p.name == 'tasks.sign.roi':
                roi = list(p.value)
                if len(roi) != 4 or not (0 <= roi[0] < roi[2] <= 1 and 0 <= roi[1] < roi[3] <= 1):
                    return SetParametersResult(successful=False, reason='tasks.sign.roi: need 0 <= x0 < x1 <= 1 '
                                                                        'and 0 <= y0 < y1 <= 1')
            elif p.name == 'window_s':
                window = float(p.value)
        try:
            new = apply_change(self.settings, changes, self.variants)
        except ValueError as e:
            self.get_logger().warning(f'parameter change rejected: {e}')
            return SetParametersResult(successful=False, reason=str(e))
        self.settings = new
        for task in {t for t, _ in changes}:
            self.runtime.configure(task, self._params(task))
        if roi is not None:
            self.roi = roi
        if window is not None:
            self.runtime.window_s = window
        if changes:
            self.get_logger().info('applied from the next job: ' + ', '.join(
                f'tasks.{t}.{f}={v}' for (t, f), v in changes.items()))
        return SetParametersResult(successful=True)

    # -- status ----------------------------------------------------------------
    def status_message(self) -> SchedulerStatus:
        util = self.runtime.utilisation()
        msg = SchedulerStatus(backend=self.backend_name, device=self.device, cpu_workers=self.cpu_workers,
                              gpu_lanes=self.gpu_lanes, cpu_utilisation=util['cpu'], gpu_utilisation=util['gpu'])
        msg.header.stamp = self.get_clock().now().to_msg()
        for name, s in self.settings.items():
            st = self.runtime.stats(name)
            msg.tasks.append(TaskStatus(
                task=name, variant=s.variant, priority=s.priority, period_ms=s.period_ms, deadline_ms=s.deadline_ms,
                max_miss_rate=self.taskset.tasks[name].max_miss_rate, accuracy=self.accuracy[name].get(s.variant, 0.0),
                jobs=st.total_jobs, missed=st.total_missed, dropped_frames=st.total_dropped,
                malformed=st.total_failed, window_s=self.runtime.window_s, miss_rate=st.miss_rate,
                response_p50_ms=st.p50_ms if st.p50_ms is not None else float('nan'),
                response_p99_ms=st.p99_ms if st.p99_ms is not None else float('nan')))
        return msg

    def _publish_status(self) -> None:
        status = self.status_message()
        self.status_pub.publish(status)
        diag = DiagnosticArray(header=status.header)
        for t in status.tasks:
            over = t.jobs > 0 and t.miss_rate > t.max_miss_rate
            level = DiagnosticStatus.WARN if over or t.malformed else DiagnosticStatus.OK
            text = (f'miss rate {t.miss_rate:.3f} over bound {t.max_miss_rate:g}' if over else
                    f'{t.malformed} malformed inputs' if t.malformed else 'meeting its bound')
            diag.status.append(DiagnosticStatus(
                level=level, name=f'rtmdl_executor: {t.task}', message=text, hardware_id=self.device,
                values=[KeyValue(key=k, value=str(v)) for k, v in (
                    ('variant', t.variant), ('priority', t.priority), ('jobs', t.jobs), ('missed', t.missed),
                    ('miss_rate', f'{t.miss_rate:.4f}'), ('p99_ms', f'{t.response_p99_ms:.2f}'),
                    ('malformed', t.malformed), ('last_error', self.malformed_log.get(t.task, '')))]))
        self.diag_pub.publish(diag)

    def destroy_node(self):
        if hasattr(self, 'runtime'):
            self.runtime.stop()
        return super().destroy_node()


def main() -> int:
    from ..backends import BackendError
    return run_node(ExecutorNode, 'rtmdl_executor', (TasksetError, zoo.ZooError, BackendError, ValueError), threads=2)
