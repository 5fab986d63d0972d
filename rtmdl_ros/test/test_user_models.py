"""A robot builder's own models, by config alone (issue 12).

The test makes two foreign ONNX families itself (a small torch classifier and a
tiny detector with a YOLOv8-style [1, 4 + C, N] output, neither from the zoo),
writes a task set with a fourth and a fifth task on a second camera topic, and
runs profile -> optimize -> executor over DDS -> typed results with the source
header on the new tasks' topics. No Python file of the package is edited.
"""
import threading
import time

import numpy as np
import pytest
import yaml

torch = pytest.importorskip('torch')
rclpy = pytest.importorskip('rclpy')

from rtmdl_ros.core.taskset import TasksetError  # noqa: E402
from rtmdl_ros.nodes.resources import default_taskset_file  # noqa: E402
from rtmdl_ros.nodes.spin import spin_through_destroyed  # noqa: E402


class TinyClassifier(torch.nn.Module):
    def __init__(self, width, classes=3):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, stride=2), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                        torch.nn.Linear(width, classes))

    def forward(self, x):
        return self.body(x)


class TinyYoloV8(torch.nn.Module):
    """[1, 3, 64, 64] -> [1, 4 + C, 1024]: boxes (cx, cy, w, h in input pixels) and class scores."""

    def __init__(self, width, classes=2):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, stride=2, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(width, 4 + classes, 1))

    def forward(self, x):
        y = torch.sigmoid(self.body(x)).flatten(2)
        return torch.cat([y[:, :2] * 64.0, y[:, 2:4] * 16.0, y[:, 4:]], dim=1)


def _export(net, shape, path):
    torch.manual_seed(0)
    net.eval()
    with open(path, 'wb') as f:
        torch.onnx.export(net, (torch.zeros(*shape),), f, input_names=['images'], output_names=['out'],
                          opset_version=17, dynamo=False)
    return path


@pytest.fixture(scope='module')
def user_taskset(tmp_path_factory):
    d = tmp_path_factory.mktemp('byom')
    (d / 'models').mkdir()
    for w in (4, 8):
        _export(TinyClassifier(w), (1, 3, 32, 32), d / 'models' / f'stop_line_w{w}.onnx')
        _export(TinyYoloV8(w), (1, 3, 64, 64), d / 'models' / f'person_w{w}.onnx')
    (d / 'stop_line.txt').write_text('none\nstop_line\ncrossing\n')
    raw = yaml.safe_load(open(default_taskset_file()))
    raw['platform']['storage_budget_mb'] = 100.0
    raw['tasks']['rear_stop_line'] = {
        'input_topic': 'rear/image_raw', 'period_ms': 100.0, 'deadline_ms': 100.0, 'min_interarrival_ms': 90.0,
        'max_miss_rate': 0.1,
        'model': {'labels_file': 'stop_line.txt', 'weight_group': 'stop_line',
                  'variants': {'w4': {'onnx': 'models/stop_line_w4.onnx', 'accuracy': 0.8},
                               'w8': {'onnx': 'models/stop_line_w8.onnx', 'accuracy': 0.9}},
                  'pre': {'resize': [32, 32], 'roi': [0.0, 0.5, 1.0, 1.0]}, 'post': {'format': 'classifier'}}}
    raw['tasks']['rear_person'] = {
        'input_topic': 'rear/image_raw', 'period_ms': 100.0, 'deadline_ms': 100.0, 'min_interarrival_ms': 90.0,
        'max_miss_rate': 0.1,
        'model': {'labels': ['person', 'bicycle'],
                  'variants': {'w4': {'onnx': 'models/person_w4.onnx', 'accuracy': 0.5},
                               'w8': {'onnx': 'models/person_w8.onnx', 'accuracy': 0.6}},
                  'pre': {'resize': [64, 64], 'mode': 'letterbox'},
                  'post': {'format': 'yolov8', 'score_threshold': 0.5}}}
    path = d / 'car.yaml'
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return d, raw, str(path)


def _write(d, raw, name='bad.yaml'):
    path = d / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def test_profile_optimize_and_run_the_user_tasks_over_dds(user_taskset):
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rtmdl_interfaces.msg import Classification, DetectionArray
    from sensor_msgs.msg import Image

    from rtmdl_ros.bringup import build_graph
    from rtmdl_ros.core.plan import write_plan
    from rtmdl_ros.core.policies import plan_with
    from rtmdl_ros.core.taskset import load_taskset
    from rtmdl_ros.data.drive import DriveSequence
    from rtmdl_ros.nodes.conversions import bgr_to_image
    from rtmdl_ros.profiling import profile
    d, _, config = user_taskset
    out, prof = profile(config, str(d / 'profiled' / 'taskset.yaml'), samples=5, warmup=1)
    ts = load_taskset(out)
    assert set(ts.tasks['rear_person'].variants) == {'w4', 'w8'}
    assert ts.tasks['rear_stop_line'].variants['w8'].weight_group == 'stop_line'
    assert ts.tasks['rear_person'].variants['w4'].time('infer').worst > 0         # measured, not declared
    res = plan_with(ts, 'rtmdl', time_limit_s=10)
    plan = res.plan or plan_with(ts, 'dm-nmc').plan                             # the pipeline is the point here
    plan_file = str(d / 'plan.yaml')
    write_plan(plan_file, plan)

    rclpy.init(args=['--ros-args', '--params-file', plan_file])
    executor_node, nodes = build_graph(out, 'onnxruntime', 'cpu', '', sim_sensors=False)
    probe = rclpy.create_node('byom_probe')
    got = {'rear_person': [], 'rear_stop_line': []}
    probe.create_subscription(DetectionArray, 'detections/rear_person', got['rear_person'].append, 10)
    probe.create_subscription(Classification, 'classifications/rear_stop_line', got['rear_stop_line'].append, 10)
    camera = probe.create_publisher(Image, 'rear/image_raw', qos_profile_sensor_data)
    spinner = MultiThreadedExecutor(num_threads=3)
    for n in nodes + [probe]:
        spinner.add_node(n)
    thread = threading.Thread(target=spin_through_destroyed, args=(spinner,), daemon=True)
    thread.start()
    try:
        assert executor_node.settings['rear_person'].variant == plan['rear_person'].variant
        sent = set()
        seq = DriveSequence(seed=3)
        end = time.monotonic() + 20
        while time.monotonic() < end and not (got['rear_person'] and got['rear_stop_line']):
            msg = bgr_to_image(seq.next().image, Image)
            msg.header.frame_id = 'rear_cam'
            msg.header.stamp = probe.get_clock().now().to_msg()
            sent.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            camera.publish(msg)
            time.sleep(0.2)
        assert got['rear_person'] and got['rear_stop_line'], {k: len(v) for k, v in got.items()}
        for task, msgs in got.items():
            m = msgs[0]
            assert m.task == task and m.header.frame_id == 'rear_cam'
            assert (m.header.stamp.sec, m.header.stamp.nanosec) in sent
        labels = got['rear_stop_line'][0].results
        assert {r.label for r in labels} <= {'none', 'stop_line', 'crossing'} and len(labels) == 3
        for det in got['rear_person'][0].detections:
            assert det.label in ('person', 'bicycle') and 0 <= det.x_min <= det.x_max <= 640
        status = executor_node.status_message()
        assert {t.task for t in status.tasks} >= {'rear_person', 'rear_stop_line', 'traffic_light'}
    finally:
        spinner.shutdown()
        for n in nodes + [probe]:
            n.destroy_node()
        rclpy.try_shutdown()
        thread.join(5)


def _broken(raw, task, change):
    bad = yaml.safe_load(yaml.safe_dump(raw))
    change(bad['tasks'][task]['model'])
    return bad


@pytest.mark.parametrize('change, message', [
    (lambda m: m.update(normalise=True), "tasks.rear_person.model: unknown keys ['normalise']"),
    (lambda m: m['variants']['w4'].update(onnx='models/missing.onnx'),
     'tasks.rear_person.model.variants.w4.onnx: '),
    (lambda m: m['pre'].update(resize=[320, 320]), 'takes input [1, 3, 64, 64], but tasks.rear_person.model.pre'),
    (lambda m: m.update(labels=['person']), 'i.e. 2 classes, but there are 1 labels'),
    (lambda m: m['post'].update(format='ssd'), "post.format: must be one of"),
    (lambda m: m['variants']['w8'].pop('accuracy'), 'variants.w8.accuracy: a fraction in [0, 1] is required'),
])
def test_bad_user_families_are_refused_with_file_and_key(user_taskset, change, message):
    from rtmdl_ros.models.catalog import read_task_requirements
    d, raw, _ = user_taskset
    path = _write(d, _broken(raw, 'rear_person', change))
    with pytest.raises(TasksetError) as err:
        read_task_requirements(path)
    assert message in str(err.value) and path in str(err.value)


def test_a_corrupt_onnx_file_is_named(user_taskset):
    from rtmdl_ros.models.catalog import read_task_requirements
    d, raw, _ = user_taskset
    (d / 'models' / 'cut.onnx').write_bytes((d / 'models' / 'person_w4.onnx').read_bytes()[:200])
    path = _write(d, _broken(raw, 'rear_person', lambda m: m['variants']['w4'].update(onnx='models/cut.onnx')))
    with pytest.raises(TasksetError, match='cut.onnx is not a readable ONNX model'):
        read_task_requirements(path)


def test_two_tasks_with_one_name_are_refused(user_taskset):
    from rtmdl_ros.models.catalog import read_task_requirements
    d, _, config = user_taskset
    text = open(config).read().replace('rear_person:', 'rear_stop_line:')
    path = d / 'dup.yaml'
    path.write_text(text)
    with pytest.raises(TasksetError, match="key 'rear_stop_line' appears twice"):
        read_task_requirements(str(path))


def test_a_topic_read_as_two_message_types_is_refused(user_taskset):
    from rtmdl_ros.nodes.graph import graph_specs
    d, raw, _ = user_taskset
    bad = yaml.safe_load(yaml.safe_dump(raw))
    bad['tasks']['audio']['input_topic'] = 'rear/image_raw'
    with pytest.raises(TasksetError, match=r"tasks\.\w+ reads (image|sound) from 'rear/image_raw', which task "
                                           r"'\w+' reads as (sound|image)"):
        graph_specs(_write(d, bad))


def test_user_detector_runs_through_the_same_segments_as_the_runtime(user_taskset):
    from rtmdl_ros.backends import create
    from rtmdl_ros.models.catalog import task_families
    from rtmdl_ros.models.jobs import make_segments, raw_decoder
    d, raw, config = user_taskset
    fam = task_families(raw, config)['rear_person']
    encode = raw_decoder(fam)                          # what the task node does to a frame
    seg = make_segments(fam, create('onnxruntime', 'cpu'), fam.labels, decode=lambda p: (encode(p)[0], 'meta'))
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    result = seg.post(seg.infer('w8', 0, seg.pre(frame, 'w8')), frame, 'w8')
    assert result.kind == 'detect' and result.meta == 'meta'
    assert all(0 <= d[3][0] <= d[3][2] <= 640 and 0 <= d[3][1] <= d[3][3] <= 480 and d[2] >= 0.5
               for d in result.detections)


def _copy_set(user_taskset, tmp_path):
    import shutil
    d, raw, config = user_taskset
    shutil.copytree(d / 'models', tmp_path / 'models')
    shutil.copy(d / 'stop_line.txt', tmp_path / 'stop_line.txt')
    path = tmp_path / 'car.yaml'
    shutil.copy(config, path)
    return str(path)


def test_rtmdl_accuracy_measures_top1_and_writes_it_back(user_taskset, tmp_path):
    import cv2

    from rtmdl_ros.accuracy import accuracy
    from rtmdl_ros.core.taskset import read_yaml
    config = _copy_set(user_taskset, tmp_path)
    rng = np.random.default_rng(0)
    for label in ('none', 'stop_line', 'crossing'):
        (tmp_path / 'data' / label).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(tmp_path / 'data' / label / f'{k}.png'), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    measured, metric, n, _ = accuracy(config, 'rear_stop_line', str(tmp_path / 'data'))
    assert metric == 'top-1' and n == 9 and set(measured) == {'w4', 'w8'}
    assert all(v in {k / 9 for k in range(10)} for v in measured.values())
    model = read_yaml(config, 'task set')['tasks']['rear_stop_line']['model']
    assert model['variants']['w8']['accuracy'] == round(measured['w8'], 4)
    assert model['accuracy_measured']['images'] == 9 and (tmp_path / 'car.yaml.bak').exists()
    from rtmdl_ros.cli import _accuracy_lines
    assert any('rear_stop_line: measured (top-1 on 9 images' in line for line in _accuracy_lines(config))


def test_rtmdl_accuracy_measures_map_on_a_yolo_set(user_taskset, tmp_path):
    import cv2

    from rtmdl_ros.accuracy import accuracy
    config = _copy_set(user_taskset, tmp_path)
    (tmp_path / 'yolo' / 'images').mkdir(parents=True)
    (tmp_path / 'yolo' / 'labels').mkdir()
    rng = np.random.default_rng(1)
    for k in range(3):
        cv2.imwrite(str(tmp_path / 'yolo' / 'images' / f'{k}.jpg'), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        (tmp_path / 'yolo' / 'labels' / f'{k}.txt').write_text('0 0.5 0.5 0.2 0.3\n1 0.2 0.2 0.1 0.1\n')
    measured, metric, n, _ = accuracy(config, 'rear_person', str(tmp_path / 'yolo'))
    assert metric == 'mAP@0.5' and n == 3 and all(0.0 <= v <= 1.0 for v in measured.values())


def test_rtmdl_accuracy_names_a_folder_that_is_not_a_label(user_taskset, tmp_path):
    from rtmdl_ros.accuracy import accuracy
    from rtmdl_ros.data import DatasetError
    config = _copy_set(user_taskset, tmp_path)
    (tmp_path / 'data' / 'zebra').mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"subfolders \['zebra'\] are not labels"):
        accuracy(config, 'rear_stop_line', str(tmp_path / 'data'))
