"""A pre-processing that runs in steps on the runtime's threads: with one CPU
worker a more urgent segment takes the worker over between steps; asserted
through the order of what ran, not through timing."""
import math
import threading

from rtmdl_ros.core.runtime import Runtime, Segments
from rtmdl_ros.core.scheduling import TaskParams
from rtmdl_ros.core.trace import STAGES

from test_runtime import Recorder, reports, running  # noqa: F401  (reports: a fixture)
from waiting import wait_for


def stepped(log, task, steps=4, step_s=0.02, started=None):
    """Segments whose pre runs `steps` steps of step_s seconds, logging each."""
    import time

    def pre_steps(payload, variant):
        for k in range(steps):
            if k:
                yield
            if started is not None and k == 0:
                started.set()
            time.sleep(step_s)
            log.append((task, f'step{k}'))
        return payload

    def pre(payload, variant):
        raise AssertionError('the runtime runs pre_steps where given')

    def infer(variant, lane, x):
        return x

    def post(y, payload, variant):
        log.append((task, 'post'))
        return payload
    return Segments(pre, infer, post, pre_steps)


def urgent(log, task):
    rec = Recorder()
    seg = rec.segments(task)

    def pre(payload, variant):
        log.append((task, 'pre'))
        return seg.pre(payload, variant)
    return Segments(pre, seg.infer, seg.post)


def _run(workers, reports):
    log, started = [], threading.Event()
    tasks = {'camera': TaskParams(0, 5000.0, 'v'), 'audio': TaskParams(1, 5000.0, 'v')}
    rt = Runtime(tasks, {'camera': urgent(log, 'camera'), 'audio': stepped(log, 'audio', started=started)},
                 workers, 1, on_result=reports, keep_traces=10)
    with running(rt):
        rt.submit('audio', 'clip')
        assert started.wait(5.0)
        rt.submit('camera', 'frame')                 # ready while audio's first step runs
        assert wait_for(lambda: len(reports.items) == 2)
        traces = rt.drain_traces()
    return log, {t.task: t for t in traces}


def test_a_more_urgent_segment_takes_the_lone_worker_between_steps(reports):
    log, traces = _run(1, reports)
    # The camera's pre runs right after audio's first step, not after all four.
    assert log.index(('camera', 'pre')) == log.index(('audio', 'step0')) + 1
    assert log.index(('camera', 'pre')) < log.index(('audio', 'step3'))
    assert [e for e in log if e[0] == 'audio'][:4] == [('audio', f'step{k}') for k in range(4)]
    audio = traces['audio']
    assert audio.outcome == 'met' and [r.payload for r in reports.items if r.task == 'audio'] == ['clip']
    pre, pre_wait = audio.stages_ms[STAGES.index('pre')], audio.stages_ms[STAGES.index('pre_wait')]
    # Its pre stage is its run time (4 x 20 ms); the time handed over is in its wait.
    assert 75.0 <= pre < 200.0
    assert pre_wait >= 0.0
    assert len(audio.steps_ms) == 3 and 15.0 <= audio.steps_ms[0] < 100.0
    assert math.isnan(audio.steps_ms[1]) and math.isnan(audio.steps_ms[2])
    assert traces['camera'].steps_ms == ()


def test_with_two_workers_the_steps_run_back_to_back(reports):
    log, traces = _run(2, reports)
    audio = [e for e in log if e[0] == 'audio']
    assert audio[:4] == [('audio', f'step{k}') for k in range(4)]
    assert traces['audio'].outcome == 'met' and traces['audio'].steps_ms[0] >= 15.0


def test_a_step_that_raises_fails_the_job_and_the_worker_goes_on(reports):
    def bad_steps(payload, variant):
        yield
        raise ValueError('bad clip')

    errors = []
    ok = urgent([], 'camera')
    bad = Segments(ok.pre, ok.infer, ok.post, bad_steps)
    rt = Runtime({'audio': TaskParams(0, 5000.0, 'v')}, {'audio': bad}, 1, 1, on_result=reports,
                 on_error=lambda task, seg, exc: errors.append((task, seg, str(exc))))
    with running(rt):
        rt.submit('audio', 'clip')
        assert wait_for(lambda: errors)
        rt.configure('audio', TaskParams(0, 5000.0, 'v'), ok)
        rt.submit('audio', 'next')
        assert wait_for(lambda: len(reports.items) == 1)
    assert errors == [('audio', 'pre', 'bad clip')]
    assert rt.stats('audio').total_failed == 1


def test_audio_pre_processing_runs_in_steps_to_the_same_input():
    import numpy as np

    from rtmdl_ros.models.families import AUDIO_FRAMES, FAMILIES, STFT_BLOCK, audio_pre_steps, run_steps
    from rtmdl_ros.models.jobs import make_segments
    rng = np.random.default_rng(0)
    clip = rng.normal(0, 0.1, 16000).astype(np.float32)
    steps = audio_pre_steps(clip, 16000)
    yielded = 0
    while True:
        try:
            next(steps)
            yielded += 1
        except StopIteration as stop:
            x = stop.value
            break
    # check and resample | each block of STFT frames | (the end) mel, log, standardise
    assert yielded == 1 + math.ceil(AUDIO_FRAMES / STFT_BLOCK)
    np.testing.assert_array_equal(x, FAMILIES['audio'].tensor(clip, 16000))
    np.testing.assert_array_equal(x, run_steps(audio_pre_steps(clip, 16000)))
    seg = make_segments(FAMILIES['audio'], backend=None, labels=FAMILIES['audio'].labels,
                        decode=lambda m: (m, 'meta'))
    assert seg.pre_steps is not None
    got = run_steps(seg.pre_steps((clip, 16000), 'w100_d3'))
    np.testing.assert_array_equal(got[0], x)
    assert got[2] == 'meta'
    # Bad input is refused at the first step, as before.
    import pytest

    from rtmdl_ros.models import InputError
    with pytest.raises(InputError, match='NaN'):
        run_steps(seg.pre_steps((np.full(100, np.nan, np.float32), 16000), 'w100_d3'))
    assert make_segments(FAMILIES['sign'], None, FAMILIES['sign'].labels, decode=lambda m: m).pre_steps is None
