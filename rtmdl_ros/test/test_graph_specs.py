"""The graph a task set asks for: one task node per task on its topic, a sensor per topic."""
import ast
import importlib
import pathlib
import re

import pytest
import yaml

from rtmdl_ros.core.taskset import TasksetError
from rtmdl_ros.evaluation import with_extra_cameras
from rtmdl_ros.models.catalog import read_task_requirements, task_models
from rtmdl_ros.nodes.graph import ENTRY_POINTS, graph_specs
from rtmdl_ros.nodes.resources import default_taskset_file


def _write(tmp_path, raw):
    path = tmp_path / 'taskset.yaml'
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_f1tenth_graph_composes_its_task_nodes_into_the_executors_process(tmp_path):
    specs = graph_specs(default_taskset_file(), camera_topic='front/image_raw')
    assert [s.executable for s in specs] == ['rtmdl_executor', 'camera_source', 'microphone_source']
    params = specs[0].params
    assert params['compose_task_nodes'] is True and params['camera_topic'] == 'front/image_raw'
    assert dict(specs[1].remaps) == {'image_raw': 'front/image_raw'}


def test_a_compressed_camera_topic_gets_a_compressing_simulated_camera(tmp_path):
    specs = graph_specs(default_taskset_file(), camera_topic='image_raw/compressed')
    camera = next(s for s in specs if s.executable == 'camera_source')
    assert camera.params['compression'] == 'jpeg' and dict(camera.remaps) == {'image_raw': 'image_raw/compressed'}
    assert 'compression' not in next(s for s in graph_specs(default_taskset_file())
                                     if s.executable == 'camera_source').params


def test_f1tenth_graph_is_one_executor_three_task_nodes_and_two_sensors(tmp_path):
    plan = tmp_path / 'plan.yaml'
    plan.write_text('rtmdl_executor: {ros__parameters: {tasks: {sign: {variant: w050_d2, priority: 1}}}}\n')
    specs = graph_specs(default_taskset_file(), str(plan), compose=False)
    assert 'compose_task_nodes' not in specs[0].params
    assert [s.executable for s in specs] == ['rtmdl_executor', 'camera_task_node', 'camera_task_node',
                                             'sound_task_node', 'camera_source', 'microphone_source']
    assert specs[0].params_file == str(plan)
    assert specs[3].params['window_s'] == 2.0                     # the clip the sound family reads
    assert dict(specs[5].remaps) == {'sound': 'sound'}
    assert {s.params['task'] for s in specs[1:4]} == {'traffic_light', 'sign', 'audio'}
    args = specs[1].ros_args('car1')
    assert '__ns:=/car1' in args and 'task:=traffic_light' in ' '.join(args)


def test_extra_cameras_get_a_topic_a_sensor_and_the_detector_model(tmp_path):
    base = yaml.safe_load(open(default_taskset_file()))
    cfg, models = with_extra_cameras(base, 2)
    path = _write(tmp_path, cfg)
    assert task_models(read_task_requirements(path))['traffic_light_cam3'] == 'traffic_light'
    specs = graph_specs(path, camera_params={'prerender': 30}, compose=False)
    nodes = {s.params.get('task'): s for s in specs if s.executable == 'camera_task_node'}
    assert nodes['traffic_light_cam2'].params['input_topic'] == 'cam2/image_raw'
    cameras = [s for s in specs if s.executable == 'camera_source']
    assert [dict(s.remaps)['image_raw'] for s in cameras] == ['image_raw', 'cam2/image_raw', 'cam3/image_raw']
    assert all(s.params['prerender'] == 30 for s in cameras)
    assert len({s.name for s in specs}) == len(specs)              # node names are unique


def test_an_unknown_model_names_the_task_and_key(tmp_path):
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['tasks']['front_person'] = dict(raw['tasks']['sign'], model='yolo_people')
    with pytest.raises(TasksetError, match=r"tasks\.front_person\.model \('yolo_people'\)"):
        graph_specs(_write(tmp_path, raw))


def test_sensors_section_configures_the_simulated_sensor_of_a_topic(tmp_path):
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['tasks']['sign']['input_topic'] = 'rear/image_raw'
    (tmp_path / 'frames').mkdir()
    raw['sensors'] = {'rear/image_raw': {'source': 'frames', 'fps': 10}}
    specs = graph_specs(_write(tmp_path, raw))
    rear = [s for s in specs if s.role == 'sensor' and dict(s.remaps).get('image_raw') == 'rear/image_raw']
    assert len(rear) == 1 and rear[0].params['source'] == str(tmp_path / 'frames')
    assert rear[0].params['fps'] == 10.0 and isinstance(rear[0].params['fps'], float)


@pytest.mark.parametrize('sensors, message', [
    ({'lidar/points': {'fps': 10}}, "sensors ['lidar/points']: no task reads these topics"),
    ({'image_raw': {'zoom': 2}}, 'sensors.image_raw.zoom: unknown'),
    ({'image_raw': {'fps': 'fast'}}, 'sensors.image_raw.fps: expected a float'),
    ({'image_raw': 5}, 'sensors.image_raw: expected a mapping'),
])
def test_a_bad_sensors_section_is_named(tmp_path, sensors, message):
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['sensors'] = sensors
    with pytest.raises(TasksetError, match=re.escape(message)):
        graph_specs(_write(tmp_path, raw))


def test_a_bad_input_topic_is_named(tmp_path):
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['tasks']['sign']['input_topic'] = ''
    with pytest.raises(TasksetError, match=r'tasks\.sign\.input_topic'):
        graph_specs(_write(tmp_path, raw))


@pytest.mark.parametrize('text, message', [
    ('', 'expected a ROS 2 parameters file'),
    ('# only a comment\n', 'expected a ROS 2 parameters file'),
    ('rtmdl_executor:\n  ros__parameters:\n    tasks: {sign: {variant: w050_d2\n', 'not valid YAML'),
    ('rtmdl_executor: {ros__parameters: {tasks: {lidar: {variant: a, priority: 0}}}}\n', "tasks ['lidar']"),
])
def test_a_bad_plan_file_is_refused_before_any_node_starts(tmp_path, text, message):
    plan = tmp_path / 'plan.yaml'
    plan.write_text(text)
    with pytest.raises(TasksetError, match=re.escape(message)) as err:
        graph_specs(default_taskset_file(), str(plan))
    assert str(plan) in str(err.value)


def _console_scripts() -> dict[str, str]:
    """setup.py's console_scripts as {executable: 'module:function'}, read without running it."""
    tree = ast.parse((pathlib.Path(__file__).resolve().parents[1] / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return dict((part.strip() for part in e.value.split('=')) for e in value.elts)
    raise AssertionError('setup.py has no console_scripts')


def test_bringup_starts_each_node_by_the_entry_point_setup_py_installs():
    """ros2 launch runs setup.py's console scripts, bringup runs ENTRY_POINTS where launch is
    absent: the same function for each name, every executable the graph names among them,
    and every entry (and the node function a light entry imports) exists."""
    scripts = _console_scripts()
    assert {name: scripts.get(name) for name in ENTRY_POINTS} == ENTRY_POINTS
    specs = graph_specs(default_taskset_file(), compose=False) + graph_specs(default_taskset_file())
    assert {s.executable for s in specs} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(':')
        entry = getattr(importlib.import_module(module), func)
        inner = getattr(entry, 'target', target)
        module, func = inner.split(':')
        assert callable(getattr(importlib.import_module(module), func)), (name, inner)
