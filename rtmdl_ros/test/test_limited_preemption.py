"""CPU segments that run in steps (limited preemption on one CPU worker).

A segment with `<segment>_chunk_ms` hands the worker over between steps to a
more urgent ready segment: it blocks others for a step, not its whole length,
and its own end is charged the higher-priority work that arrives until it ends.
The bounds are checked against the simulator, which splits such segments into
steps and hands over as the runtime does.
"""
import math
from dataclasses import replace

import numpy as np
import pytest

from rtmdl_ros.core.analysis import Analyzer, analyze
from rtmdl_ros.core.plan import Assignment
from rtmdl_ros.core.scheduling import Scheduler, TaskParams
from rtmdl_ros.core.simulator import simulate
from rtmdl_ros.core.synthetic import random_taskset
from rtmdl_ros.core.taskset import ExecTime, TasksetError, taskset_from_dict

from test_analysis_vs_simulation import _check_against_simulator, _random_plan, _with_release_paths


def _in_steps(ts, rng, share=0.6):
    """About `share` of the tasks run their pre (and some their post) in steps, each step
    a random fraction of the segment (constant, so every bound is the worst case)."""
    tasks = {}
    for name, t in ts.tasks.items():
        if rng.random() > share:
            tasks[name] = t
            continue
        segs = ['pre'] + (['post'] if rng.random() < 0.5 else [])
        frac = float(rng.uniform(0.15, 0.7))
        variants = {v: replace(var, chunks={s: ExecTime.of(round(var.time(s).worst * frac, 4), f'{name}.{s}')
                                            for s in segs})
                    for v, var in t.variants.items()}
        tasks[name] = replace(t, variants=variants)
    return replace(ts, tasks=tasks)


STEP_CASES = [(seed, n) for seed in range(70) for n in (2, 3, 4, 5)]


@pytest.mark.parametrize('seed,n', STEP_CASES)
def test_segments_in_steps_stay_within_the_bound(seed, n):
    rng = np.random.default_rng(31000 + seed)
    ts = _in_steps(random_taskset(seed, n, 3, utilisation=float(rng.uniform(0.3, 1.1)), cpu_workers=1,
                                  gpu_lanes=1), rng)
    _check_against_simulator(ts, _random_plan(ts, rng), seed, ('zero', 'random'), lambda t: t.deadline_ms)


@pytest.mark.parametrize('seed,n', STEP_CASES[::4])
def test_segments_in_steps_with_release_jitter(seed, n):
    rng = np.random.default_rng(32000 + seed)
    ts = _in_steps(_with_release_paths(random_taskset(seed, n, 3, utilisation=float(rng.uniform(0.3, 1.0)),
                                                      cpu_workers=1, gpu_lanes=1), rng), rng)
    _check_against_simulator(ts, _random_plan(ts, rng), seed, ('random',), lambda t: t.effective_deadline_ms)


def test_steps_lower_the_more_urgent_bounds_on_a_share_of_the_sets():
    # Guard against a vacuous property: steps must change bounds, never raise a more
    # urgent task's above what the same set without steps gets.
    lower = 0
    for seed, n in STEP_CASES[::3]:
        rng = np.random.default_rng(31000 + seed)
        plain = random_taskset(seed, n, 3, utilisation=float(rng.uniform(0.3, 1.1)), cpu_workers=1, gpu_lanes=1)
        stepped = _in_steps(plain, rng)
        plan = _random_plan(stepped, rng)
        a, b = analyze(plain, plan), analyze(stepped, plan)
        for name in a:
            above = [t for t in a if plan[t].priority > plan[name].priority]
            # a task not in steps whose lower-priority tasks are: its bound can only fall
            if name not in [t for t in stepped.tasks if stepped.tasks[t].variants[plan[t].variant].chunks]:
                assert b[name].worst_response_bound_ms <= a[name].worst_response_bound_ms + 1e-9 or not above
                lower += b[name].worst_response_bound_ms < a[name].worst_response_bound_ms - 1e-9
    assert lower >= 10


def _two_tasks(cpu_workers=1, camera=(12, 1.0, 2.0, 0.5), audio=(50, 10.0, 2.0, 0.5)):
    """A camera (period 20) above audio, whose pre runs in 3 ms steps: camera (deadline,
    pre, infer, post), audio (period = deadline, pre, infer, post)."""
    def spec(pre, infer, post, **more):
        return {'v': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': pre, 'infer_ms': infer, 'post_ms': post, **more}}
    return taskset_from_dict({
        'platform': {'cpu_workers': cpu_workers, 'gpu_lanes': 1},
        'tasks': {
            'camera': {'period_ms': 20, 'deadline_ms': camera[0], 'max_miss_rate': 0.0, 'variants': spec(*camera[1:])},
            'audio': {'period_ms': audio[0], 'deadline_ms': audio[0], 'max_miss_rate': 0.0,
                      'variants': spec(*audio[1:], pre_chunk_ms=3.0)}}})


def test_the_camera_is_blocked_for_a_step_and_the_audio_pays_for_it():
    ts = _two_tasks()
    plan = {'camera': Assignment('v', 0), 'audio': Assignment('v', 1)}
    stepped = analyze(ts, plan)
    whole = analyze(replace(ts, tasks={**ts.tasks, 'audio': replace(ts.tasks['audio'], variants={
        'v': replace(ts.tasks['audio'].variants['v'], chunks={})})}), plan)
    # Camera: blocked by a 3 ms step instead of the 10 ms pre-processing (twice at most: pre and post).
    assert stepped['camera'].worst_response_bound_ms <= whole['camera'].worst_response_bound_ms - 7.0 + 1e-9
    assert stepped['camera'].worst_response_bound_ms <= 12.0
    assert whole['camera'].worst_response_bound_ms > 12.0
    # Audio: its pre-processing may now be taken over, so its own bound is no lower.
    assert stepped['audio'].worst_response_bound_ms >= whole['audio'].worst_response_bound_ms - 1e-9
    sim = simulate(ts, plan, duration_s=5.0, seed=3)
    assert sim.tasks['camera'].missed == 0
    assert max(sim.tasks['camera'].responses) <= stepped['camera'].worst_response_bound_ms + 1e-9
    assert max(sim.tasks['audio'].responses) <= stepped['audio'].worst_response_bound_ms + 1e-9


def test_steps_count_only_on_one_cpu_worker():
    # With two workers the runtime runs the steps back to back: the analysis must not count on them.
    ts = _two_tasks(cpu_workers=2)
    a = Analyzer(ts)
    assert a.times('audio', 'v', 100.0).stepped == (False, False, False)
    assert Analyzer(_two_tasks()).times('audio', 'v', 100.0).stepped == (True, False, False)


def test_a_step_list_on_the_inference_is_refused():
    raw = {'tasks': {'t': {'period_ms': 10, 'max_miss_rate': 0.1, 'variants': {'v': {
        'accuracy': 0.5, 'storage_mb': 1, 'pre_ms': 1, 'infer_ms': 1, 'post_ms': 1, 'infer_chunk_ms': 0.5}}}}}
    with pytest.raises(TasksetError, match=r'infer_chunk_ms: only CPU segments'):
        taskset_from_dict(raw)


def test_hand_over_puts_the_job_back_and_a_more_urgent_one_goes_first():
    seen = []
    sched = Scheduler({'hi': TaskParams(0, 100.0, 'v'), 'lo': TaskParams(1, 100.0, 'v')},
                      lambda task, outcome, job, now: seen.append((task, outcome)))
    lo = sched.release('lo', 0.0)
    assert sched.pop_ready('cpu', 0.0) is lo
    assert not sched.more_urgent_ready('cpu', lo)
    hi = sched.release('hi', 1.0)
    assert sched.more_urgent_ready('cpu', lo)
    assert sched.hand_over(lo, 2.0) == 'ready' and lo.stage == 0
    assert sched.pop_ready('cpu', 2.0) is hi
    assert sched.pop_ready('cpu', 2.0) is lo and lo.stage == 0
    # Handed over past its deadline: dropped when it would resume, as at a segment boundary.
    sched.hand_over(lo, 50.0)
    assert sched.pop_ready('cpu', 150.0) is None
    assert ('lo', 'dropped') in seen


def test_a_superseded_job_is_not_resumed():
    seen = []
    sched = Scheduler({'lo': TaskParams(0, 100.0, 'v')}, lambda task, outcome, job, now: seen.append(outcome))
    old = sched.release('lo', 0.0)
    assert sched.pop_ready('cpu', 0.0) is old
    new = sched.release('lo', 5.0)                    # replaces the running one
    assert sched.hand_over(old, 6.0) == 'dropped'
    assert sched.pop_ready('cpu', 6.0) is new
    assert seen == ['replaced']


def test_the_simulator_hands_over_between_steps():
    # Audio's 10 ms pre-processing in 3 ms steps: the camera never waits longer than a step for the worker.
    ts = _two_tasks()
    plan = {'camera': Assignment('v', 0), 'audio': Assignment('v', 1)}
    sim = simulate(ts, plan, duration_s=10.0, seed=1)
    # camera alone: 3.5 ms of CPU + 2 ms GPU; blocked by at most a 3 ms step before pre and one before post
    assert max(sim.tasks['camera'].responses) <= 3.5 + 2.0 + 2 * 3.0 + 1e-9
    whole = replace(ts, tasks={**ts.tasks, 'audio': replace(ts.tasks['audio'], variants={
        'v': replace(ts.tasks['audio'].variants['v'], chunks={})})})
    assert max(simulate(whole, plan, duration_s=10.0, seed=1).tasks['camera'].responses) > 3.5 + 2.0 + 6.0
    assert math.isclose(sim.cpu_busy_ms, simulate(whole, plan, duration_s=10.0, seed=1).cpu_busy_ms, rel_tol=0.05)


def test_one_execution_in_steps_can_block_both_cpu_segments_of_a_job():
    # The camera's pre waits for one 3 ms step of audio's pre-processing, which resumes while the
    # camera infers (0.1 ms) and holds the worker for another step when the camera's post is ready.
    ts = _two_tasks(camera=(20, 1.0, 0.1, 0.5), audio=(47, 12.0, 0.1, 0.1))
    plan = {'camera': Assignment('v', 0), 'audio': Assignment('v', 1)}
    bound = analyze(ts, plan)['camera'].worst_response_bound_ms
    worst = max(max(simulate(ts, plan, duration_s=20.0, seed=s).tasks['camera'].responses) for s in range(3))
    assert worst <= bound + 1e-9
    assert worst > 1.6 + 0.1 + 3.0 + 1.0          # blocked by more than one step


def test_two_steps_of_one_execution_block_for_no_more_than_its_length():
    # Audio's 10 ms pre in steps of up to 8 ms: the camera's pre and post may each wait for a
    # step of one execution, but those two steps add up to at most 10 ms (8 + 2), so steps
    # that are nearly the whole never make the camera's bound worse than the whole segment.
    ts = _two_tasks()
    audio = ts.tasks['audio']
    long_steps = replace(ts, tasks={**ts.tasks, 'audio': replace(audio, variants={'v': replace(
        audio.variants['v'], chunks={'pre': ExecTime.of(8.0, 'audio.pre_chunk_ms')})})})
    whole = replace(ts, tasks={**ts.tasks, 'audio': replace(audio, variants={'v': replace(
        audio.variants['v'], chunks={})})})
    plan = {'camera': Assignment('v', 0), 'audio': Assignment('v', 1)}
    stepped = analyze(long_steps, plan)['camera'].worst_response_bound_ms
    assert stepped <= analyze(whole, plan)['camera'].worst_response_bound_ms + 1e-9
    assert stepped == pytest.approx(3.5 + 2.0 + 8.0 + 2.0)   # own, audio's infer on the lane, 8 + 2
    worst = max(max(simulate(long_steps, plan, duration_s=10.0, seed=s).tasks['camera'].responses) for s in range(3))
    assert worst <= stepped + 1e-9
