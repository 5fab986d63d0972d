"""The executor's outgoing messages, built from the scheduler's state: results,
status, /diagnostics and job traces. Times in the runtime are monotonic seconds;
`to_ros_s` (ROS time - monotonic time, seconds) places them on the ROS clock."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rtmdl_interfaces.msg import (Classification, Detection, DetectionArray, JobTrace, JobTraceArray, LabelScore,
                                  SchedulerStatus, TaskStatus)

from ..core.health import task_health
from ..core.input_guard import REASONS
from ..core.trace import STAGES

NAN = float('nan')


def ros_time(seconds: float) -> Time:
    ns = int(round(seconds * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def result_message(r, to_ros_s: float):
    """A JobReport as DetectionArray or Classification, with the source frame's header."""
    if r.result.kind == 'detect':
        msg = DetectionArray(header=r.result.meta, task=r.task, variant=r.variant, deadline_met=r.deadline_met)
        msg.detections = [Detection(label=label, class_id=cid, score=float(score), x_min=float(b[0]),
                                    y_min=float(b[1]), x_max=float(b[2]), y_max=float(b[3]))
                          for label, cid, score, b in r.result.detections]
    else:
        msg = Classification(header=r.result.meta, task=r.task, variant=r.variant, deadline_met=r.deadline_met)
        msg.results = [LabelScore(label=label, class_id=cid, score=float(score))
                       for label, cid, score in r.result.labels]
    msg.release_time = ros_time(r.release_s + to_ros_s)
    msg.finish_time = ros_time(r.finish_s + to_ros_s)
    return msg


def _or_nan(x) -> float:
    return float(x) if x is not None else NAN


def task_status(name: str, s, task, stats, accuracy: float, bound_ms: float, admission, shed: bool,
                window_s: float, guarded: tuple = ((), '')) -> TaskStatus:
    """One task's row: settings s, task-set entry task, runtime statistics stats; guarded:
    (counts per input_guard.REASONS, the source's text)."""
    counts, source = guarded
    return TaskStatus(
        stamp_source=task.stamp_source, source=source, refused_reasons=list(REASONS) if counts else [],
        refused_counts=[int(c) for c in counts],
        task=name, variant=s.variant, priority=s.priority, period_ms=s.period_ms, deadline_ms=s.deadline_ms,
        max_miss_rate=task.max_miss_rate, accuracy=accuracy, deadline_from=task.deadline_from,
        jobs=stats.total_jobs, missed=stats.total_missed, dropped_frames=stats.total_dropped,
        malformed=stats.total_failed + admission.malformed(name), rate_limited=admission.rate_limited[name],
        window_s=window_s, miss_rate=stats.miss_rate, shed=shed, shed_inputs=admission.shed_inputs[name],
        response_p50_ms=_or_nan(stats.p50_ms), response_p99_ms=_or_nan(stats.p99_ms),
        run_miss_rate=stats.run_miss_rate, run_response_p99_ms=_or_nan(stats.run_p99_ms),
        response_bound_ms=bound_ms, stages=list(STAGES), stage_p50_ms=[float(x) for x in stats.stage_p50_ms],
        stage_p99_ms=[float(x) for x in stats.stage_p99_ms])


def scheduler_status(header_stamp, backend: str, device: str, cpu_workers: int, gpu_lanes: int, util: dict,
                     realtime: bool, realtime_note: str, configure_s: float, active_s: float, tasks) -> SchedulerStatus:
    msg = SchedulerStatus(backend=backend, device=device, cpu_workers=cpu_workers, gpu_lanes=gpu_lanes,
                          cpu_utilisation=util['cpu'], gpu_utilisation=util['gpu'], realtime=realtime,
                          realtime_note=realtime_note, configure_s=float(configure_s), active_s=float(active_s))
    msg.header.stamp = header_stamp
    msg.tasks = list(tasks)
    return msg


def diagnostics(status: SchedulerStatus, hardware_id: str, last_error: dict) -> DiagnosticArray:
    """Per task OK / WARN / ERROR with its figures (core/health.py decides the level)."""
    out = DiagnosticArray(header=status.header)
    for t in status.tasks:
        refused = dict(zip(t.refused_reasons, t.refused_counts))
        level, text = task_health(t.shed, t.jobs, t.miss_rate, t.max_miss_rate, t.malformed, refused)
        out.status.append(DiagnosticStatus(
            level=bytes([level]), name=f'rtmdl_executor: {t.task}', message=text, hardware_id=hardware_id,
            values=[KeyValue(key=k, value=str(v)) for k, v in (
                ('variant', t.variant), ('priority', t.priority), ('jobs', t.jobs), ('missed', t.missed),
                ('miss_rate', f'{t.miss_rate:.4f}'), ('p99_ms', f'{t.response_p99_ms:.2f}'),
                ('response_bound_ms', f'{t.response_bound_ms:.2f}'), ('run_miss_rate', f'{t.run_miss_rate:.4f}'),
                ('malformed', t.malformed), ('rate_limited', t.rate_limited), ('shed_inputs', t.shed_inputs),
                ('stamp_source', t.stamp_source), ('source', t.source),
                ('last_error', last_error.get(t.task, '')))]
            + [KeyValue(key=f'refused.{r}', value=str(n)) for r, n in refused.items()]
            + [KeyValue(key=f'stage.{n}.p50_ms/p99_ms', value=f'{a:.2f}/{b:.2f}')
               for n, a, b in zip(t.stages, t.stage_p50_ms, t.stage_p99_ms)]))
    return out


def trace_message(traces, header_stamp, to_ros_s: float) -> JobTraceArray:
    out = JobTraceArray(stages=list(STAGES))
    out.header.stamp = header_stamp
    for t in traces:
        jt = JobTrace(task=t.task, seq=t.seq, variant=t.variant, outcome=t.outcome,
                      stages_ms=[float(x) for x in t.stages_ms], steps_ms=[float(x) for x in t.steps_ms])
        jt.stamp = ros_time(t.stamp_s + to_ros_s)
        out.jobs.append(jt)
    return out

