"""Task set files: what is accepted, and one clear error for what is not."""
import copy

import pytest
import yaml

from rtmdl_ros.core.taskset import ExecTime, TasksetError, load_taskset, platform_for_device, taskset_from_dict

GOOD = {
    'platform': {'cpu_workers': 2, 'gpu_lanes': 2, 'storage_budget_mb': 64, 'gpu_slowdown': {2: 1.4}},
    'tasks': {'lights': {'period_ms': 33.3, 'deadline_ms': 30, 'max_miss_rate': 0.05, 'extra_key': 'kept out',
                         'variants': {'w100': {'accuracy': 0.94, 'storage_mb': 9.3, 'weight_group': 'g',
                                               'pre_ms': 3, 'infer_ms': [10, 11, 12.5], 'post_ms': 1.5}}}},
}


def broken(path, value):
    raw = copy.deepcopy(GOOD)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


def test_good_file_loads_with_defaults(tmp_path):
    ts = taskset_from_dict(GOOD)
    t = ts.tasks['lights']
    assert t.on_overrun == 'replace' and ts.percentile == 99.0
    assert t.variants['w100'].time('infer').worst == 12.5
    assert ts.platform.slowdown(2) == 1.4
    assert (t.stamp_source, t.source_frame_id) == ('header', None)
    assert ts.uncalibrated == ['lights'] and 'rtmdl calibrate' in ts.calibration_note()


def test_source_settings_and_a_measured_path_are_read():
    raw = copy.deepcopy(GOOD)
    raw['tasks']['lights'].update(stamp_source='receipt', source_frame_id='front_camera', release_path_ms=[1.0, 2.0])
    ts = taskset_from_dict(raw)
    t = ts.tasks['lights']
    assert (t.stamp_source, t.source_frame_id) == ('receipt', 'front_camera')
    assert ts.uncalibrated == [] and ts.calibration_note() == ''


@pytest.mark.parametrize('path,value,needle', [
    (('tasks', 'lights', 'period_ms'), KeyError, "missing required key 'period_ms'"),
    (('tasks', 'lights', 'period_ms'), -5, 'period_ms: must be > 0'),
    (('tasks', 'lights', 'deadline_ms'), 40, 'exceeds period_ms'),
    (('tasks', 'lights', 'max_miss_rate'), 1.5, 'max_miss_rate'),
    (('tasks', 'lights', 'variants'), {}, 'at least one entry under variants'),
    (('tasks', 'lights', 'variants', 'w100', 'infer_ms'), [], 'empty'),
    (('tasks', 'lights', 'variants', 'w100', 'infer_ms'), [1, float('nan')], 'finite'),
    (('tasks', 'lights', 'variants', 'w100', 'pre_ms'), 'fast', 'number or a list'),
    (('tasks', 'lights', 'variants', 'w100', 'accuracy'), 94, 'fraction'),
    (('tasks', 'lights', 'variants', 'w100', 'job_ms'), [9.0, -1.0], 'tasks.lights.variants.w100.job_ms'),
    (('tasks', 'lights', 'variants', 'w100', 'job_ms'), 'slow', 'tasks.lights.variants.w100.job_ms'),
    (('tasks', 'lights', 'on_overrun'), 'queue', 'on_overrun'),
    (('tasks', 'lights', 'stamp_source'), 'camera', 'tasks.lights.stamp_source'),
    (('tasks', 'lights', 'source_frame_id'), 7, 'tasks.lights.source_frame_id'),
    (('platform', 'cpu_workers'), 0, 'cpu_workers'),
    (('platform', 'gpu_slowdown'), {2: 0.5}, 'factor >= 1'),
    (('tasks',), {}, "non-empty 'tasks'"),
])
def test_bad_input_gives_one_clear_error(path, value, needle):
    with pytest.raises(TasksetError) as err:
        taskset_from_dict(broken(path, value))
    assert needle in str(err.value)
    assert '\n' not in str(err.value)


def test_unmeasured_packing_is_assumed_to_gain_nothing():
    raw = broken(('platform', 'gpu_slowdown'), {})
    raw['platform']['gpu_lanes'] = 3
    assert taskset_from_dict(raw).platform.gpu_slowdown == {1: 1.0, 2: 2.0, 3: 3.0}


def test_profiles_file_is_merged_underneath(tmp_path):
    (tmp_path / 'profiles.yaml').write_text(yaml.safe_dump({
        'platform': {'gpu_slowdown': {2: 1.2}},
        'tasks': {'lights': {'variants': {'w100': {'infer_ms': [20, 21]}}},
                  'not_in_set': {'variants': {}}}}))
    raw = copy.deepcopy(GOOD)
    del raw['tasks']['lights']['variants']['w100']['infer_ms']
    del raw['platform']['gpu_slowdown']
    raw['profiles'] = 'profiles.yaml'
    (tmp_path / 'set.yaml').write_text(yaml.safe_dump(raw))
    ts = load_taskset(str(tmp_path / 'set.yaml'))
    assert ts.tasks['lights'].variants['w100'].time('infer').worst == 21
    assert ts.platform.slowdown(2) == 1.2 and list(ts.tasks) == ['lights']


@pytest.mark.parametrize('content', ['tasks: [unclosed', '- a list', '\x00\x01binary'])
def test_corrupt_files_are_reported(tmp_path, content):
    path = tmp_path / 'bad.yaml'
    path.write_text(content)
    with pytest.raises(TasksetError):
        load_taskset(str(path))


def test_missing_file_is_reported():
    with pytest.raises(TasksetError, match='no such file'):
        load_taskset('/nonexistent/set.yaml')


def test_quantile_is_a_sample_at_or_above_the_percentile():
    t = ExecTime.of(list(range(1, 101)), 'x')
    assert t.quantile(99) == 99 and t.quantile(50) == 50 and t.quantile(100) == 100
    for p in (50, 90, 99, 99.9):
        q = t.quantile(p)
        assert sum(1 for x in t.samples if x > q) <= len(t.samples) * (1 - p / 100) + 1e-9
        assert sum(1 for x in t.samples if x > q - 1) > len(t.samples) * (1 - p / 100) - 1e-9


def test_cpu_only_platform_counts_lanes_against_cores():
    jetson = {'cpu_workers': 2, 'gpu_lanes': 1, 'storage_budget_mb': 3.0}
    assert platform_for_device(jetson, 'cuda', cpus=2) == (jetson, '')
    assert platform_for_device(jetson, 'cpu', cpus=8) == (jetson, '')
    fitted, note = platform_for_device(jetson, 'cpu', cpus=2)
    assert fitted == {**jetson, 'cpu_workers': 1} and 'cpu_workers 2 -> 1' in note
    assert platform_for_device({'cpu_workers': 4, 'gpu_lanes': 2}, 'cpu', cpus=2)[0]['cpu_workers'] == 1
    assert jetson['cpu_workers'] == 2                     # the caller's dict is left alone


def test_a_job_draw_is_read_and_its_cut_counts_in_the_task_sets_top():
    # A calibrated draw cut at the 99.8th-percentile bound: the worst-case bound is then a
    # union term at that level (analysis.miss_rate_bound), as for a cut segment list.
    raw = copy.deepcopy(GOOD)
    raw['tasks']['lights']['variants']['w100'].update(job_ms=[9.0, 10.0, 14.0], job_tail={99.0: 13.5},
                                                      job_top=99.8)
    ts = taskset_from_dict(raw)
    job = ts.tasks['lights'].variants['w100'].job
    assert job.quantile(99.0) == 14.0 and job.worst == 14.0 and ts.tail_top == 99.8
    assert taskset_from_dict(GOOD).tasks['lights'].variants['w100'].job is None    # optional
