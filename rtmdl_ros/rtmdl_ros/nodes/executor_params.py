"""The executor's parameters: descriptors and ranges, and what a change request means.

Node-wide parameters are declared at start; the per-task ones
(tasks.<name>.{variant, priority, deadline_ms, period_ms}) when a task set is
configured, from the plan (--params-file) or the task set, and undeclared on
cleanup, so that cleanup -> configure can load another task set.
"""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult

from ..backends import BACKENDS, DEVICES
from ..core.realtime import fifo_range
from ..core.settings import PERIOD_RANGE_MS, PRIORITY_MAX, TaskSettings, analysed_bounds, apply_change, initial_settings
from ..core.shedding import DegradedMode
from .input_filters import INPUT_FILTER_HELP
from .resources import default_taskset_file
from .source_guard import declare_guard_params

TASK_FIELDS = ('variant', 'priority', 'deadline_ms', 'period_ms')
SHED_PARAMS = ('shed_on_overload', 'shed_after_s', 'shed_restore_after_s')
UNCONFIGURED_ONLY = ('taskset_file', 'zoo_dir')          # what a configured executor has read


def _floats(lo: float, hi: float, description: str, read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(description=description, read_only=read_only, floating_point_range=[
        FloatingPointRange(from_value=lo, to_value=hi, step=0.0)])


def _ints(lo: int, hi: int, description: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=description, read_only=True,
                               integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


def declare_node_params(node) -> dict:
    """The executor's own parameters -> {name: value}."""
    hi = fifo_range()[1]
    specs = {
        'taskset_file': (default_taskset_file(), ParameterDescriptor(
            description='the task set; may change only while unconfigured (cleanup, set, configure)')),
        'zoo_dir': ('', ParameterDescriptor(description='a zoo folder instead of the shipped one (unconfigured only)')),
        'backend': ('onnxruntime', ParameterDescriptor(read_only=True, description=f'one of {BACKENDS}')),
        'device': ('cpu', ParameterDescriptor(read_only=True, description=f'one of {DEVICES}')),
        'gpu_lanes': (0, _ints(0, 8, 'concurrent inference lanes (0: the task set\'s)')),
        'cpu_workers': (0, _ints(0, 64, 'CPU workers for pre/post-processing (0: the task set\'s, fitted to '
                                        'the cores on a CPU-only machine)')),
        'window_s': (10.0, _floats(0.5, 600.0, 'seconds of jobs the window statistics cover')),
        'cycle_variants_s': (0.0, _floats(0.0, 600.0, 'calibration (rtmdl calibrate): every this many seconds '
                                                      'each task moves to its next variant; 0: off', read_only=True)),
        'status_period_s': (1.0, _floats(0.05, 60.0, 'status and /diagnostics period', read_only=True)),
        'annotate_hz': (0.0, _floats(0.0, 30.0, 'pictures a second per camera task on annotated/<task> (the source '
                                                'frame with what the model found; composed task nodes); 0: none',
                                     read_only=True)),
        'vision_msgs': (False, ParameterDescriptor(read_only=True, description=(
            'also publish each result as vision_msgs (Detection2DArray / Classification) on vision/<task>, '
            'where the vision_msgs package is installed'))),
        'realtime_priority': (min(50, hi), ParameterDescriptor(
            read_only=True, description='SCHED_FIFO priority of the scheduler threads (0: normal scheduling)',
            integer_range=[IntegerRange(from_value=0, to_value=max(0, hi - 1), step=1)])),
        'reserve_cores': (True, ParameterDescriptor(read_only=True, description=(
            'keep cores for the scheduler threads alone where the machine has more cores than scheduler threads'))),
        'input_filter': (True, ParameterDescriptor(read_only=True, description=INPUT_FILTER_HELP)),
        'autostart': (True, ParameterDescriptor(read_only=True, description='configure and activate at start')),
        'compose_task_nodes': (False, ParameterDescriptor(read_only=True, description=(
            'run a task node per task in this process (made on configure), handing jobs over directly'))),
        'camera_topic': ('image_raw', ParameterDescriptor(read_only=True, description=(
            'composed task nodes: the camera topic of tasks whose task set names none'))),
        'sound_topic': ('sound', ParameterDescriptor(read_only=True, description=(
            'composed task nodes: the sound topic of tasks whose task set names none'))),
        # Degraded mode (core/shedding.py): off unless asked for, since shedding a task is a decision
        # about the car's function that its builder must make.
        'shed_on_overload': (False, ParameterDescriptor(description=(
            'under overload stop releasing the least important task (lowest priority) first, so that more '
            'urgent ones keep their bounds'))),
        'shed_after_s': (3.0, _floats(0.5, 600.0, 'a more urgent task over its bound this long before one is shed')),
        'shed_restore_after_s': (20.0, _floats(1.0, 3600.0, 'every running task within its bound this long '
                                                            'before a shed task comes back')),
    }
    values = {name: node.declare_parameter(name, default, desc).value for name, (default, desc) in specs.items()}
    # The input guard's thresholds: its job topics' guards and the composed task nodes' (source_guard.py).
    values['guard'] = declare_guard_params(node)
    return values


def declare_task_params(node, taskset, variants: dict) -> dict[str, TaskSettings]:
    """tasks.<name>.* for every task of the task set (plan values from the overrides) -> settings."""
    settings = {}
    for name, d in initial_settings(taskset, None).items():
        t = taskset.tasks[name]
        values = {
            'variant': (d.variant, ParameterDescriptor(description=f'one of {sorted(variants[name])}')),
            'priority': (d.priority, ParameterDescriptor(description='0 = most urgent; distinct per task',
                                                         integer_range=[IntegerRange(from_value=0, to_value=PRIORITY_MAX,
                                                                                     step=1)])),
            'deadline_ms': (t.deadline_ms, _floats(*PERIOD_RANGE_MS, 'relative deadline, <= period_ms')),
            'period_ms': (t.period_ms, _floats(*PERIOD_RANGE_MS, 'the task\'s period; releases are held to '
                                                              'min_interarrival_ms scaled with it')),
        }
        got = {f: node.declare_parameter(f'tasks.{name}.{f}', default, desc).value
               for f, (default, desc) in values.items()}
        settings[name] = TaskSettings(variant=got['variant'], priority=got['priority'],
                                      period_ms=float(got['period_ms']), deadline_ms=float(got['deadline_ms']))
    return settings


def undeclare_task_params(node, tasks) -> None:
    for name in tasks:
        for f in TASK_FIELDS:
            if node.has_parameter(f'tasks.{name}.{f}'):
                node.undeclare_parameter(f'tasks.{name}.{f}')


def read_changes(params) -> tuple[dict, float | None, dict, dict]:
    """A change request -> (task field changes {(task, field): value}, window_s or None,
    degraded-mode settings, other {name: value}) for the node to check and apply."""
    changes, window, shed, other = {}, None, {}, {}
    for p in params:
        parts = p.name.split('.')
        if len(parts) == 3 and parts[0] == 'tasks' and parts[2] in TASK_FIELDS:
            value = p.value
            if parts[2] in ('deadline_ms', 'period_ms') and p.type_ == ParameterType.PARAMETER_INTEGER:
                value = float(value)
            changes[(parts[1], parts[2])] = value
        elif p.name == 'window_s':
            window = float(p.value)
        elif p.name in SHED_PARAMS:
            shed[p.name] = p.value
        else:
            other[p.name] = p.value
    return changes, window, shed, other


class ParameterHandling:
    """The executor's answer to a parameter change (mixed into ExecutorNode): checked as a
    whole, applied from each task's next job, or refused with the reason and nothing changed."""

    def _on_set_parameters(self, params) -> SetParametersResult:
        if self._declaring:
            return SetParametersResult(successful=True)      # checked as a whole once all are declared
        changes, window, shed, other = read_changes(params)
        if 'use_sim_time' in other and self._active:
            # Stamps, deadlines and the scheduler's clock must stay on one time base.
            return SetParametersResult(successful=False, reason='use_sim_time cannot change while the executor '
                                                                'is active; set it at start (or deactivate first)')
        late = [n for n in UNCONFIGURED_ONLY if n in other and self.taskset is not None]
        if late:
            return SetParametersResult(successful=False, reason=f'{", ".join(late)}: the executor has read it; '
                                                                'cleanup first, then configure again')
        if not changes and window is None and not shed:
            return SetParametersResult(successful=True)
        try:
            new = apply_change(self.settings, changes, self.variants) if changes else self.settings
        except ValueError as e:
            self.get_logger().warning(f'parameter change rejected: {e}')
            return SetParametersResult(successful=False, reason=str(e))
        self.settings = new
        for task in {t for t, _ in changes}:
            if self.runtime is not None:
                self.runtime.configure(task, self._params(task))
            if (task, 'period_ms') in changes:
                self.admission.set_period(task, new[task].period_ms)
        if changes:
            self.bounds = analysed_bounds(self.taskset, self.settings)
            self.get_logger().info('applied from the next job: ' + ', '.join(
                f'tasks.{t}.{f}={v}' for (t, f), v in changes.items()))
        if shed:
            self._set_shedding(shed)
        if window is not None:
            self.p['window_s'] = window
            if self.runtime is not None:
                self.runtime.window_s = window
        return SetParametersResult(successful=True)

    def _start_cycling(self) -> None:
        """cycle_variants_s > 0: rotate every task through its variants, as a user's parameter
        change would (so each variant's segments are measured in the running graph)."""
        if self.p['cycle_variants_s'] > 0:
            self._cycler = self.create_timer(self.p['cycle_variants_s'], self._next_variants)

    def _next_variants(self) -> None:
        from rclpy.parameter import Parameter
        params = []
        for name, s in self.settings.items():
            names = sorted(self.taskset.tasks[name].variants)
            params.append(Parameter(f'tasks.{name}.variant', value=names[(names.index(s.variant) + 1) % len(names)]))
        result = self.set_parameters_atomically(params)
        if not result.successful:
            self.get_logger().warning(f'variant cycling stopped: {result.reason}')
            self._stop_cycling()

    def _stop_cycling(self) -> None:
        if getattr(self, '_cycler', None) is not None:
            self.destroy_timer(self._cycler)
        self._cycler = None

    def _set_shedding(self, values: dict) -> None:
        """Degraded mode's parameters, once the whole parameter set is known to be valid."""
        switched = 'shed_on_overload' in values and bool(values['shed_on_overload']) != self.p['shed_on_overload']
        self.p.update(values)
        self.degraded.set_times(float(self.p['shed_after_s']), float(self.p['shed_restore_after_s']))
        if switched:
            if self.degraded.shed:
                self.get_logger().warning(f'degraded mode off: {", ".join(self.degraded.shed)} run again')
            self.degraded = DegradedMode(float(self.p['shed_after_s']), float(self.p['shed_restore_after_s']))

