"""The job gate (platform.job_gate): while a job is in flight nothing less urgent starts,
so a job is blocked once, at its release. Checked in the scheduler, on the runtime's
threads (through the order of what ran), in the analysis against the simulator on
random sets, and in the optimizer against enumeration."""
import math
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from rtmdl_ros.core.analysis import analyze
from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import Scheduler, TaskParams
from rtmdl_ros.core.simulator import simulate
from rtmdl_ros.core.synthetic import random_taskset
from rtmdl_ros.core.taskset import TasksetError, taskset_from_dict

from test_analysis_vs_simulation import _random_plan, _with_release_paths
from test_limited_preemption import _in_steps
from test_optimizer import optimizer_is_exact
from test_runtime import running


def _gated(ts, on=True):
    return replace(ts, platform=replace(ts.platform, job_gate=on))


def test_the_task_set_reads_the_gate_and_refuses_what_is_not_a_yes_or_no():
    tasks = {'a': {'period_ms': 10, 'deadline_ms': 10, 'max_miss_rate': 0.1,
                   'variants': {'v': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': 1, 'infer_ms': 1,
                                       'post_ms': 1}}}}
    assert taskset_from_dict({'tasks': tasks}).platform.job_gate is False
    assert taskset_from_dict({'platform': {'job_gate': True}, 'tasks': tasks}).platform.job_gate is True
    with pytest.raises(TasksetError, match=r"platform.job_gate: must be true or false, got 'yes'"):
        taskset_from_dict({'platform': {'job_gate': 'yes'}, 'tasks': tasks})


def test_a_less_urgent_segment_waits_while_a_more_urgent_job_runs_on_the_other_resource():
    for gate in (False, True):
        sched = Scheduler({'cam': TaskParams(0, 100.0, 'v'), 'mic': TaskParams(1, 100.0, 'v')},
                          lambda *a: None, job_gate=gate)
        cam = sched.release('cam', 0.0)
        assert sched.pop_ready('cpu', 0.0) is cam
        sched.finish_segment(cam, 1.0)                  # cam's inference is next, on the lane
        assert sched.pop_ready('gpu', 1.0) is cam
        sched.release('mic', 1.5)
        mic = sched.pop_ready('cpu', 2.0)
        if not gate:
            assert mic is not None and mic.task == 'mic'   # the free worker takes it
            continue
        assert mic is None                              # held while cam is in flight
        sched.finish_segment(cam, 3.0)
        assert sched.pop_ready('cpu', 3.0) is cam       # cam's post first
        assert sched.pop_ready('cpu', 3.0) is None
        sched.finish_segment(cam, 4.0)                  # cam done: the gate opens
        mic = sched.pop_ready('cpu', 4.0)
        assert mic is not None and mic.task == 'mic'
        # A running step hands the worker over once a more urgent job is released anywhere.
        sched.release('cam', 5.0)
        assert sched.more_urgent_ready('cpu', mic)


def _run_on_threads(gate: bool) -> list:
    log = []

    def step(name):
        log.append(name)

    def cam_segments():
        def pre(payload, variant):
            step('cam pre')
            return payload

        def infer(variant, lane, x):
            time.sleep(0.15)
            step('cam infer')
            return x

        def post(y, payload, variant):
            step('cam post')
            return payload
        return Segments(pre, infer, post)

    started = threading.Event()

    def mic_steps(payload, variant):
        for k in range(4):
            if k:
                yield
            started.set()
            time.sleep(0.02)
            step(f'mic step{k}')
        return payload

    mic = Segments(lambda p, v: p, lambda v, lane, x: x, lambda y, p, v: p, mic_steps)
    done = []
    rt = Runtime({'cam': TaskParams(0, 5000.0, 'v'), 'mic': TaskParams(1, 5000.0, 'v')},
                 {'cam': cam_segments(), 'mic': mic}, 1, 1, on_result=done.append, job_gate=gate)
    with running(rt):
        rt.submit('mic', 'clip')
        assert started.wait(5.0)
        rt.submit('cam', 'frame')
        deadline = time.monotonic() + 10.0
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(done) == 2
    return log


def test_on_the_runtime_threads_the_gate_keeps_less_urgent_steps_off_the_worker_until_the_job_ends():
    # Without the gate the lone worker runs the mic's next steps while the camera's
    # inference runs on the lane; with it, they wait for the camera's post.
    free = _run_on_threads(False)
    assert free.index('mic step1') < free.index('cam infer')
    gated = _run_on_threads(True)
    assert gated[:2] == ['mic step0', 'cam pre']
    assert gated.index('cam post') < gated.index('mic step1')
    assert [e for e in gated if e.startswith('mic')] == [f'mic step{k}' for k in range(4)]


GATE_CASES = [(seed, n, cpu, lanes) for seed in range(30)
              for n, cpu, lanes in [(2, 1, 1), (3, 1, 1), (4, 1, 1), (3, 2, 1), (4, 2, 2)]]


@pytest.mark.parametrize('seed,n,cpu,lanes', GATE_CASES)
def test_under_the_gate_no_simulated_response_exceeds_the_bound(seed, n, cpu, lanes):
    # Constant times (every bound is the worst case), release jitter, segments in steps
    # and overrun policies at random; both phases.
    rng = np.random.default_rng(77000 + seed)
    ts = random_taskset(seed, n, 3, utilisation=float(rng.uniform(0.3, 1.1)), cpu_workers=cpu, gpu_lanes=lanes,
                        job_gate=True)
    if rng.random() < 0.5:
        ts = _with_release_paths(ts, rng)
    if cpu == 1 and rng.random() < 0.5:
        ts = _in_steps(ts, rng)
    plan = _random_plan(ts, rng)
    bounds = analyze(ts, plan)
    for phase in ('zero', 'random'):
        sim = simulate(ts, plan, duration_s=1.5, seed=seed, phase=phase)
        for name, stats in sim.tasks.items():
            bound = bounds[name].worst_response_bound_ms
            if stats.responses and math.isfinite(bound):
                assert max(stats.responses) <= bound + 1e-6, (name, phase, max(stats.responses), bound)
            if bound <= ts.tasks[name].effective_deadline_ms:
                assert stats.missed == 0, (name, phase, stats.outcomes)


def test_on_one_worker_and_one_lane_the_gate_charges_the_most_urgent_task_less_and_never_more():
    # (Not a rule elsewhere: where the gate makes less urgent tasks overrun, each may hold
    # two servers of a resource with several, and the shortest of those grows.)
    single = [case for case in GATE_CASES if case[2:] == (1, 1)]
    tighter = 0
    for seed, n, cpu, lanes in single:
        rng = np.random.default_rng(77000 + seed)
        ts = random_taskset(seed, n, 3, utilisation=float(rng.uniform(0.3, 1.1)), cpu_workers=cpu, gpu_lanes=lanes)
        plan = _random_plan(ts, rng)
        top = min(plan, key=lambda t: plan[t].priority)
        free, gated = analyze(ts, plan)[top], analyze(_gated(ts), plan)[top]
        assert gated.worst_response_bound_ms <= free.worst_response_bound_ms + 1e-9
        tighter += gated.worst_response_bound_ms < free.worst_response_bound_ms - 1e-9
    assert tighter >= len(single) // 2


@pytest.mark.parametrize('seed', range(12))
def test_under_the_gate_the_optimizer_matches_brute_force(seed):
    # The branch and bound's forward checks (least spans under the gate) prune no plan
    # that enumeration finds.
    rng = np.random.default_rng(seed)
    n, v, cpu, samples = [(2, 4, 1, 0), (3, 3, 1, 20), (3, 3, 2, 0)][seed % 3]
    ts = random_taskset(seed, n, v, utilisation=float(rng.uniform(0.4, 1.2)), cpu_workers=cpu, samples=samples,
                        storage_budget_mb=float(rng.choice([15.0, 30.0, 1e9])), job_gate=True)
    optimizer_is_exact(ts)
