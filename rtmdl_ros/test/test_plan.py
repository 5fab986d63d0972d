"""Plan files: validated on load, written atomically."""
import os

import pytest
import yaml

from rtmdl_ros.core import files as files_mod
from rtmdl_ros.core.plan import Assignment, load_plan, plan_to_params, write_plan
from rtmdl_ros.core.taskset import TasksetError, load_taskset

from conftest import EXAMPLE_TASKSET

PLAN = {'traffic_light': Assignment('w050_d2', 0), 'sign': Assignment('w075_d3', 1), 'audio': Assignment('w100_d3', 2)}


def test_round_trip(tmp_path):
    ts = load_taskset(str(EXAMPLE_TASKSET))
    path = tmp_path / 'plan.yaml'
    write_plan(str(path), PLAN, header='made by a test')
    assert load_plan(str(path), ts) == PLAN
    assert path.read_text().startswith('# made by a test\n')


@pytest.mark.parametrize('mutate,needle', [
    (lambda t: t['sign'].update(variant='w999'), "no variant 'w999'"),
    (lambda t: t['sign'].update(priority=0), 'share priority 0'),
    (lambda t: t.pop('audio'), "no entry for task(s) ['audio']"),
    (lambda t: t.update(radar={'variant': 'x', 'priority': 7}), 'unknown task'),
    (lambda t: t['sign'].update(priority='high'), 'priority must be an integer'),
])
def test_invalid_plans_are_rejected(tmp_path, mutate, needle):
    ts = load_taskset(str(EXAMPLE_TASKSET))
    params = plan_to_params(PLAN)
    mutate(params['rtmdl_executor']['ros__parameters']['tasks'])
    path = tmp_path / 'plan.yaml'
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(TasksetError, match=needle.replace('(', r'\(').replace(')', r'\)').replace('[', r'\[').replace(']', r'\]')):
        load_plan(str(path), ts)


def test_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / 'plan.yaml'
    write_plan(str(path), PLAN)
    before = path.read_text()

    def boom(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(files_mod.os, 'replace', boom)
    with pytest.raises(OSError):
        write_plan(str(path), {**PLAN, 'sign': Assignment('w025_d2', 1)})
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ['plan.yaml']           # no temp file left behind
