"""The CUDA half: lanes on their own streams, pinned buffers, graphs, packing, the runtime on a GPU.

Every test here needs torch with a CUDA device and skips without one (CI has
none); bench/gpu_check.sh runs them on a GPU machine.
"""
import threading
import time

import numpy as np
import pytest
import torch

from rtmdl_ros.backends import create
from rtmdl_ros.core.runtime import Runtime
from rtmdl_ros.core.scheduling import TaskParams
from rtmdl_ros.data import lights
from rtmdl_ros.models.families import family
from rtmdl_ros.models.jobs import make_segments
from rtmdl_ros.models.catalog import zoo_variants

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')

VISION = ('sign', 'traffic_light')


def sample(task, seed=0):
    return np.random.default_rng(seed).normal(size=(1, *family(task).input_shape)).astype(np.float32)


@pytest.mark.parametrize('task', VISION)
@pytest.mark.parametrize('graphs', [True, False], ids=['graph', 'eager'])
def test_a_cuda_lane_computes_what_the_cpu_computes(task, graphs):
    cpu, gpu = create('torch', 'cpu'), create('torch', 'cuda')
    gpu.cuda_graphs = graphs
    names = sorted(zoo_variants(task, None)[0])
    for variant in (min(names), max(names)):
        for seed in range(3):                  # a replayed graph takes each new input
            x = sample(task, seed)
            np.testing.assert_allclose(gpu.runner(task, variant, lane=1)(x), cpu.runner(task, variant)(x),
                                       rtol=1e-3, atol=1e-3)


def test_a_lane_keeps_its_stream_pinned_buffers_and_graph_between_jobs():
    backend = create('torch', 'cuda')
    run = backend.runner('sign', 'w050_d2', lane=0)
    x = sample('sign')
    run(x)
    lane = backend._lane(0)
    assert lane.stream != torch.cuda.default_stream() and lane.stream != backend._lane(1).stream
    (buf_in,) = lane._pinned_in.values()
    (buf_out,) = lane._pinned_out.values()
    assert buf_in.is_pinned() and buf_out.is_pinned()
    ptrs = buf_in.data_ptr(), buf_out.data_ptr()
    first = run(x)
    second = run(sample('sign', 1))
    assert (buf_in.data_ptr(), buf_out.data_ptr()) == ptrs            # reused, nothing allocated per job
    assert lane.eager_reason is None and len(lane._captured) == 1     # captured once, replayed since
    assert not np.shares_memory(first, second)                        # results do not alias the buffer


def test_two_lanes_streams_run_at_the_same_time():
    backend = create('torch', 'cuda')
    a, b = backend._lane(0).stream, backend._lane(1).stream
    cycles = 50_000_000                     # a spin kernel of some tens of ms at GPU clock rates
    events = {s: (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for s in (a, b)}
    torch.cuda.synchronize()
    for s in (a, b):
        with torch.cuda.stream(s):
            events[s][0].record(s)
            torch.cuda._sleep(cycles)
            events[s][1].record(s)
    torch.cuda.synchronize()
    alone = [events[s][0].elapsed_time(events[s][1]) for s in (a, b)]
    both = events[a][0].elapsed_time(events[b][1])
    # Serialised, b would end a's length after a started: the two kernels overlapped.
    assert both < 0.75 * sum(alone)


def test_the_runtime_runs_jobs_on_two_cuda_lanes():
    backend = create('torch', 'cuda')
    fam = family('traffic_light')
    labels = zoo_variants('traffic_light', None)[1]
    seg = make_segments(fam, backend, labels, decode=lambda m: (m, None))
    results, errors = [], []
    rt = Runtime({'a': TaskParams(0, 1000.0, 'w050_d2'), 'b': TaskParams(1, 1000.0, 'w100_d3')},
                 {'a': seg, 'b': seg}, 2, 2, on_result=results.append,
                 on_error=lambda task, segment, e: errors.append(e))
    rt.start()
    frame = lights.render(np.random.default_rng(0), 640, 480)[0]
    for i in range(1, 41):                    # released together, so both lanes are busy at once
        rt.submit('a', frame)
        rt.submit('b', frame)
        deadline = time.monotonic() + 10
        while len(results) < 2 * i and time.monotonic() < deadline and not errors:
            time.sleep(0.001)
    rt.stop()
    assert not errors
    assert len(results) == 80 and {r.task for r in results} == {'a', 'b'}


def test_profile_on_cuda_measures_every_variants_packing():
    from rtmdl_ros.profiling import measure
    backend = create('torch', 'cuda')
    prof = measure(['sign'], backend, samples=5, warmup=2, lanes=3, packing='each')
    each = prof['packing']['variants']['sign']
    assert set(each) == set(zoo_variants('sign', None)[0])
    slow = prof['platform']['gpu_slowdown']
    assert slow[1] == 1.0 and slow[2] <= slow[3]
    assert slow[3] == max(s[3] for s in each.values())


def test_lanes_in_threads_do_not_corrupt_each_others_results():
    backend = create('torch', 'cuda')
    xs = [sample('traffic_light', s) for s in range(4)]
    expected = [create('torch', 'cpu').runner('traffic_light', 'w075_d2')(x) for x in xs]
    bad = []

    def lane(k):
        run = backend.runner('traffic_light', 'w075_d2', lane=k)
        for _ in range(50):
            if not np.allclose(run(xs[k]), expected[k], rtol=1e-3, atol=1e-3):
                bad.append(k)
    threads = [threading.Thread(target=lane, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


@pytest.mark.skipif('CUDAExecutionProvider' not in __import__('onnxruntime').get_available_providers(),
                    reason='needs onnxruntime-gpu')
def test_onnxruntime_cuda_computes_what_the_cpu_computes():
    x = sample('sign')
    np.testing.assert_allclose(create('onnxruntime', 'cuda').runner('sign', 'w100_d2', lane=1)(x),
                               create('onnxruntime', 'cpu').runner('sign', 'w100_d2')(x), rtol=1e-3, atol=1e-3)
