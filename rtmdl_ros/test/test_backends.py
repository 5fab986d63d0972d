"""Backends and the packing measurement, without a GPU (test_cuda.py has the CUDA half)."""
import numpy as np
import pytest

from rtmdl_ros.backends import BackendError, create
from rtmdl_ros.backends.onnxrt import providers
from rtmdl_ros.profiling import default_packing, packing_of_each


def test_cpu_device_runs_on_the_cpu_provider_only():
    assert providers('cpu', ['CPUExecutionProvider']) == ['CPUExecutionProvider']


def test_cuda_without_the_cuda_provider_names_what_is_missing():
    with pytest.raises(BackendError, match='no CUDAExecutionProvider.*available: CPUExecutionProvider'):
        providers('cuda', ['CPUExecutionProvider'])
    with pytest.raises(BackendError, match='no TensorrtExecutionProvider'):
        providers('tensorrt', ['CUDAExecutionProvider', 'CPUExecutionProvider'])


def test_tensorrt_comes_first_then_cuda_then_cpu_for_what_neither_runs(tmp_path, monkeypatch):
    monkeypatch.setenv('RTMDL_CACHE', str(tmp_path))
    chosen = providers('tensorrt', ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider'])
    names = [p[0] if isinstance(p, tuple) else p for p in chosen]
    assert names == ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    assert chosen[0][1]['trt_engine_cache_enable'] == 'True'       # engines are built once, not at every start
    assert chosen[0][1]['trt_engine_cache_path'] == str(tmp_path / 'tensorrt')
    assert [p[0] for p in providers('cuda', ['CUDAExecutionProvider', 'CPUExecutionProvider'])[:1]] \
        == ['CUDAExecutionProvider']


def test_tensorrt_is_an_onnxruntime_device_only():
    with pytest.raises(BackendError, match='use backend onnxruntime'):
        create('torch', 'tensorrt')


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='this machine has CUDA')
def test_torch_on_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(BackendError, match='no CUDA device'):
        create('torch', 'cuda')


def test_packing_is_measured_per_variant_on_a_gpu_and_by_one_probe_on_the_cpu():
    assert default_packing('cuda') == default_packing('tensorrt') == 'each'
    assert default_packing('cpu') == 'probe'


def test_every_variant_is_packed_against_the_heaviest_and_the_plan_takes_the_worst():
    backend = create('onnxruntime', 'cpu')
    profiled = {'sign': {'variants': {'w025_d1': {'infer_ms': [0.2, 0.3]}, 'w100_d2': {'infer_ms': [2.0, 2.5]}}}}
    out = packing_of_each(backend, profiled, lanes=2, seconds=0.05)
    assert out['co_runner'] == 'sign/w100_d2'
    each = out['variants']['sign']
    assert set(each) == {'w025_d1', 'w100_d2'}
    for s in each.values():
        assert s[1] == 1.0 and s[2] >= 1.0
    assert out['gpu_slowdown'] == {1: 1.0, 2: max(s[2] for s in each.values())}


def test_torch_and_onnxruntime_agree_on_the_cpu():
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    a = create('torch', 'cpu').runner('sign', 'w050_d1')(x)
    b = create('onnxruntime', 'cpu').runner('sign', 'w050_d1')(x)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
