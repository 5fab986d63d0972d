"""`rtmdl train` on a user's labelled folders (issue 12): a weight-shared width x depth
family with measured accuracy per variant, that a task set points at and the
optimizer chooses from."""
import os

import numpy as np
import pytest
import yaml

pytest.importorskip('torch')

from rtmdl_ros.core.taskset import TasksetError  # noqa: E402
from rtmdl_ros.data import DatasetError  # noqa: E402
from rtmdl_ros.data.rear_scenes import write_example_data  # noqa: E402
from rtmdl_ros.models.catalog import read_task_requirements, task_families  # noqa: E402

from test_cli import rtmdl  # noqa: E402


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('rear')
    write_example_data(str(root), scenes=90, stream=4, seed=3)
    return root


@pytest.fixture(scope='module')
def classifier(data, tmp_path_factory):
    out = tmp_path_factory.mktemp('fam') / 'markings'
    res = rtmdl('train', data / 'markings', '--out', out, '--input', 16, 16, '--epochs', 2, '--roi', 0, 0.5, 1, 1,
                '--threads', 2, '--quiet')
    assert res.returncode == 0, res.stderr
    return out, res.stdout


def test_a_classification_folder_becomes_a_weight_shared_family_with_measured_accuracy(classifier, data):
    out, stdout = classifier
    spec = yaml.safe_load((out / 'family.yaml').read_text())
    assert spec['labels'] == ['crossing', 'none', 'stop_line']            # the subfolders
    assert len(spec['variants']) >= 6
    for name, v in spec['variants'].items():
        assert (out / v['onnx']).is_file() and 0.0 <= v['accuracy'] <= 1.0
    m = spec['accuracy_measured']
    n_images = sum(len(os.listdir(data / 'markings' / c)) for c in spec['labels'])
    assert m['metric'] == 'top-1' and m['images'] == round(0.2 * n_images)
    assert spec['pre']['roi'] == [0.0, 0.5, 1.0, 1.0] and spec['pre']['resize'] == [16, 16]
    st = spec['trained']['storage']
    assert st['shared_checkpoint_bytes'] < st['separate_onnx_bytes']    # the point of weight sharing
    assert spec['trained']['command'].startswith('rtmdl train ')
    assert 'storage: shared' in stdout
    # The ONNX path agrees with torch on the held-out images (same data, same variant).
    for v, acc in spec['trained']['torch_metric'].items():
        assert abs(acc - spec['variants'][v]['accuracy']) <= 0.15, v


def test_a_task_set_points_at_the_family_folder_and_the_optimizer_chooses_in_it(classifier, tmp_path):
    out, _ = classifier
    spec = yaml.safe_load((out / 'family.yaml').read_text())
    sizes = {v: os.path.getsize(out / e['onnx']) / 2 ** 20 for v, e in spec['variants'].items()}
    budget = sorted(sizes.values())[len(sizes) // 2]                     # the larger half does not fit
    config = tmp_path / 'car.yaml'
    config.write_text(yaml.safe_dump({
        'platform': {'cpu_workers': 1, 'gpu_lanes': 1, 'storage_budget_mb': float(budget)},
        'tasks': {'rear_marking': {'model': os.path.relpath(out, tmp_path), 'input_topic': 'rear/image_raw',
                                   'period_ms': 500.0, 'deadline_ms': 500.0, 'max_miss_rate': 0.1}}}))
    fams = task_families(read_task_requirements(str(config)), str(config))
    assert fams['rear_marking'].user and set(fams['rear_marking'].variants) == set(spec['variants'])
    assert fams['rear_marking'].pre.roi == (0.0, 0.5, 1.0, 1.0)
    res = rtmdl('profile', '--config', config, '--out', tmp_path / 'ts.yaml', '--samples', 3, '--warmup', 1, '--quiet')
    assert res.returncode == 0, res.stderr
    res = rtmdl('optimize', tmp_path / 'ts.yaml', '--out', tmp_path / 'plan.yaml')
    assert res.returncode == 0, res.stderr
    plan = yaml.safe_load((tmp_path / 'plan.yaml').read_text())
    chosen = plan['rtmdl_executor']['ros__parameters']['tasks']['rear_marking']['variant']
    fits = [v for v in spec['variants'] if sizes[v] <= budget + 1e-9]
    best = max(spec['variants'][v]['accuracy'] for v in fits)
    assert chosen in fits and spec['variants'][chosen]['accuracy'] == best
    assert 'accuracy of rear_marking: measured (top-1' in (tmp_path / 'plan.yaml').read_text()


def test_a_yolo_set_becomes_a_detector_family_read_as_yolov5(data, tmp_path):
    out = tmp_path / 'obstacles'
    res = rtmdl('train', data / 'obstacles', '--out', out, '--input', 64, 48, '--epochs', 1, '--widths', 0.5, 1.0,
                '--depths', 1, 2, 3, '--threads', 2, '--quiet')
    assert res.returncode == 0, res.stderr
    spec = yaml.safe_load((out / 'family.yaml').read_text())
    assert spec['labels'] == ['cone', 'pedestrian'] and spec['post']['format'] == 'yolov5'
    assert len(spec['variants']) == 6 and spec['accuracy_measured']['metric'] == 'mAP@0.5'
    from rtmdl_ros.models.user_family import _onnx_shapes
    ins, outs = _onnx_shapes(str(out / 'w050_d1.onnx'), 'test')
    assert ins == [1, 3, 48, 64] and outs == [1, (48 // 8) * (64 // 8), 5 + 2]


def test_rtmdl_accuracy_writes_into_the_family_file(classifier, data, tmp_path):
    out, _ = classifier
    config = tmp_path / 'car.yaml'
    config.write_text(yaml.safe_dump({'tasks': {'rear_marking': {'model': str(out), 'period_ms': 200.0,
                                                                  'deadline_ms': 200.0, 'max_miss_rate': 0.1}}}))
    before = (config.read_text(), (out / 'family.yaml').read_text())
    res = rtmdl('accuracy', config, '--task', 'rear_marking', '--data', data / 'markings', '--quiet')
    assert res.returncode == 0, res.stderr
    assert config.read_text() == before[0]                           # the task set is untouched
    spec = yaml.safe_load((out / 'family.yaml').read_text())
    assert spec['accuracy_measured']['images'] == sum(len(os.listdir(data / 'markings' / c)) for c in spec['labels'])
    assert (out / 'family.yaml.bak').read_text() == before[1]


@pytest.mark.parametrize('make, message', [
    (lambda d: (d / 'images').mkdir() or (d / 'labels').mkdir(), 'classes.txt or data.yaml'),
    (lambda d: (d / 'a').mkdir(), 'too few'),
    (lambda d: None, 'neither class subfolders'),
])
def test_bad_training_folders_get_one_clear_line(tmp_path, make, message):
    d = tmp_path / 'data'
    d.mkdir()
    make(d)
    if (d / 'a').exists():
        import cv2
        for k in range(3):
            cv2.imwrite(str(d / 'a' / f'{k}.png'), np.zeros((8, 8, 3), np.uint8))
    res = rtmdl('train', d, '--out', tmp_path / 'fam', '--quiet')
    assert res.returncode == 2 and message in res.stderr and 'Traceback' not in res.stderr, res.stderr
    assert not (tmp_path / 'fam' / 'family.yaml').exists()


def test_a_folder_without_family_file_is_not_a_model(tmp_path):
    (tmp_path / 'half_trained').mkdir()
    config = tmp_path / 'car.yaml'
    config.write_text(yaml.safe_dump({'tasks': {'t': {'model': 'half_trained', 'period_ms': 100.0,
                                                       'deadline_ms': 100.0, 'max_miss_rate': 0.1}}}))
    with pytest.raises(TasksetError, match=r"tasks\.t\.model \('half_trained'\).*family\.yaml"):
        read_task_requirements(str(config))


def test_layout_detection_names_the_folder(tmp_path):
    from rtmdl_ros.models.user_train import layout
    with pytest.raises(DatasetError, match='no such folder'):
        layout(str(tmp_path / 'missing'))


def test_the_two_camera_example_is_five_task_nodes_on_three_sensors(classifier, data, tmp_path):
    """config/two_camera.yaml with its rear families trained here (tiny): the graph it asks for."""
    import shutil

    from rtmdl_ros.nodes.graph import graph_specs
    from rtmdl_ros.nodes.resources import config_dir
    shutil.copy(os.path.join(config_dir(), 'two_camera.yaml'), tmp_path / 'two_camera.yaml')
    shutil.copytree(data, tmp_path / 'data')
    shutil.copytree(classifier[0], tmp_path / 'families' / 'rear_markings')
    res = rtmdl('train', data / 'obstacles', '--out', tmp_path / 'families' / 'rear_obstacles', '--input', 64, 48,
                '--epochs', 1, '--widths', 0.5, 1.0, '--threads', 2, '--quiet')
    assert res.returncode == 0, res.stderr
    specs = graph_specs(str(tmp_path / 'two_camera.yaml'), compose=False)
    tasks = {s.params['task']: s for s in specs if s.role == 'task'}
    assert len(tasks) == 5 and tasks['rear_obstacles'].params['input_topic'] == 'rear/image_raw'
    sensors = {dict(s.remaps).get('image_raw', dict(s.remaps).get('sound')): s for s in specs if s.role == 'sensor'}
    assert set(sensors) == {'front/image_raw', 'rear/image_raw', 'sound'}
    assert sensors['rear/image_raw'].params['source'] == str(tmp_path / 'data' / 'stream')


def test_code_never_names_a_built_in_task():
    """Tasks are data: the engine, the ROS shell, the backends and the launch files
    name no built-in task (the families and data generators define them)."""
    import re
    root = os.path.join(os.path.dirname(__file__), '..')
    pattern = re.compile(r'\b(sign|traffic_light|audio)\b', re.IGNORECASE)
    hits = []
    for folder in ('rtmdl_ros/core', 'rtmdl_ros/nodes', 'rtmdl_ros/backends', 'launch'):
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if name.endswith('.py'):
                    with open(os.path.join(dirpath, name), encoding='utf-8') as f:
                        hits += [f'{folder}/{name}:{k}' for k, line in enumerate(f, 1) if pattern.search(line)]
    assert hits == []
