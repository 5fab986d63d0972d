"""Calibration: measured release paths, and segments stretched to what the running graph showed."""
import pytest

from rtmdl_ros.calibrate import apply_calibration, graph_ratios
from rtmdl_ros.core.taskset import taskset_from_dict
from rtmdl_ros.core.trace import STAGES, JobTrace


def _traces(n=50):
    out = []
    for k in range(n):
        st = dict.fromkeys(STAGES, 0.0)
        st.update(sensor=2.0 + k * 0.01, node=0.1, transport=1.0, pre=3.0, infer=6.0, post=0.5, publish=0.2)
        out.append(JobTrace('cam', k, 'big', 'met', 0.0, tuple(st[s] for s in STAGES)))
    return out


PROFILES = {'tasks': {'cam': {'variants': {
    'big': {'accuracy': 0.9, 'storage_mb': 1, 'pre_ms': [2.0] * 5, 'infer_ms': [4.0] * 5, 'post_ms': [0.7] * 5},
    'small': {'accuracy': 0.8, 'storage_mb': 1, 'pre_ms': [1.0] * 5, 'infer_ms': [2.0] * 5, 'post_ms': [0.3] * 5}}}}}


def test_ratios_compare_the_graphs_p99_with_the_profile_post_including_the_publish():
    ts = taskset_from_dict({'tasks': {'cam': {'period_ms': 33.3, 'max_miss_rate': 0.05,
                                              'variants': PROFILES['tasks']['cam']['variants']}}})
    ratios = graph_ratios(_traces(), ts, {'cam': 'big'})['cam']
    assert ratios == pytest.approx({'pre': 1.5, 'infer': 1.5, 'post': 1.0})


def test_apply_calibration_writes_paths_and_stretches_only_what_ran_slower():
    out = apply_calibration(PROFILES, _traces(), {'cam': {'pre': 1.5, 'infer': 1.5, 'post': 0.9}})['tasks']['cam']
    assert min(out['release_path_ms']) == pytest.approx(3.1) and len(out['release_path_ms']) == 50
    small = out['variants']['small']
    assert small['pre_ms'] == [1.5] * 5 and small['infer_ms'] == [3.0] * 5 and small['post_ms'] == [0.3] * 5
    assert PROFILES['tasks']['cam']['variants']['small']['infer_ms'] == [2.0] * 5      # the input is untouched
