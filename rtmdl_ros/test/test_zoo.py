"""The shipped model zoo (issue #3): it loads, every variant runs on both
backends with matching outputs, accuracy targets hold on the held-out synthetic
test splits, and accuracy does not rise as variants shrink."""
import os

import numpy as np
import pytest
import torch

from rtmdl_ros.backends import create
from rtmdl_ros.models import SOUND, export, zoo
from rtmdl_ros.models.families import FAMILIES, family
from rtmdl_ros.models.supernet import VariantSpec, VariantView
from rtmdl_ros.models.train import evaluate, load_data

# (metric of the largest variant must reach, smallest may lose at most)
TARGETS = {'sign': (0.95, 0.10), 'traffic_light': (0.85, 0.10), 'audio': (0.90, 0.10)}
# Binomial noise on test splits of 600-1600 examples is about 1 point; mAP is noisier.
NOISE = 0.03


TASKS = tuple(FAMILIES)


def test_targets_cover_every_zoo_family():
    assert set(TARGETS) == set(FAMILIES)


@pytest.fixture(scope='module')
def measured():
    """Every variant's metric, recomputed here on each task's test split, and the split's digest."""
    torch.set_num_threads(2)
    out = {}
    for task in TASKS:
        net, _ = zoo.load(task)
        data = load_data(family(task), 'test')
        out[task] = ({s.name: evaluate(net, family(task).kind, data, s.name) for s in net.variants}, data.digest)
    return out


@pytest.fixture(scope='module')
def metrics(measured):
    return {task: m for task, (m, _) in measured.items()}


@pytest.mark.parametrize('task', TASKS)
def test_shipped_zoo_loads_with_twelve_weight_shared_variants(task):
    net, meta = zoo.load(task)
    assert len(net.variants) == 12
    assert {s.width for s in net.variants} == {0.25, 0.5, 0.75, 1.0}
    assert {s.depth for s in net.variants} == {1, 2, 3}
    assert 'command' in meta and 'seed' in meta
    # Sub-networks read the supernet's tensors: the smallest variant's first conv
    # weight is a view into the same storage, not a copy.
    first = net.stem.conv.weight
    view = first[:4]
    assert view.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()


@pytest.mark.parametrize('task', TASKS)
def test_largest_meets_target_and_smallest_stays_close(metrics, task):
    target, spread = TARGETS[task]
    m = metrics[task]
    assert m['w100_d3'] >= target, m
    assert m['w025_d1'] >= m['w100_d3'] - spread, m


@pytest.mark.parametrize('task', TASKS)
def test_accuracy_does_not_rise_as_variants_shrink(metrics, task):
    m = metrics[task]
    specs = [VariantSpec.parse(v) for v in m]
    for big in specs:
        for small in specs:
            if small.width <= big.width and small.depth <= big.depth:
                assert m[small.name] <= m[big.name] + NOISE, (small.name, big.name, m)


@pytest.mark.parametrize('task', TASKS)
def test_stored_metrics_are_the_ones_measured(measured, task):
    _, meta = zoo.load(task)
    metrics, split = measured[task]
    # The split first: a changed generator (or library that draws it) is told apart from a changed model.
    assert split == meta['test_split'], (
        f'{task}: the test split generated here (digest {split}) is not the one the stored metrics were '
        f'measured on ({meta["test_split"]}): its generator changed; retrain with {meta["command"]!r}')
    for v, value in metrics.items():
        assert meta['test_metric'][v] == pytest.approx(value, abs=1e-6)


@pytest.fixture(scope='module')
def onnx_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('onnx')
    for task in TASKS:
        export.export_task(task, out_dir=str(root), check=True)
    return str(root)


@pytest.mark.parametrize('task', TASKS)
def test_every_variant_matches_between_onnxruntime_and_torch_on_real_inputs(task, onnx_root):
    from rtmdl_ros.profiling import sample_input
    fam = family(task)
    ort_backend = create('onnxruntime', 'cpu', onnx_root=onnx_root)
    torch_backend = create('torch', 'cpu')
    rng = np.random.default_rng(3)
    payload = sample_input(task, rng)
    x = fam.preprocess(*payload) if fam.input == SOUND else fam.preprocess(payload)
    for spec in zoo.load(task)[0].variants:
        a = ort_backend.runner(task, spec.name)(x)
        b = torch_backend.runner(task, spec.name)(x)
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=export.ATOL, rtol=1e-3)


@pytest.mark.parametrize('task', TASKS)
def test_storage_figures_match_file_sizes(task, onnx_root):
    folder = export.onnx_dir(task, out_dir=onnx_root)
    import yaml
    manifest = yaml.safe_load(open(os.path.join(folder, 'manifest.yaml')))
    net, _ = zoo.load(task)
    for v, entry in manifest['variants'].items():
        size = os.path.getsize(os.path.join(folder, entry['file']))
        assert entry['bytes'] == size
        # The file holds the variant's own weights (float32) and little else:
        # constant folding left no full-size supernet tensor behind.
        weights = 4 * net.variant_parameters(v)
        assert weights <= size <= weights * 1.1 + 40_000, (v, weights, size)
    assert manifest['checkpoint_bytes'] == os.path.getsize(zoo.checkpoint_path(task))
    report = export.storage_report(manifest)
    # Shared weights are stored once: the whole pool costs far less as one checkpoint.
    assert report['shared_checkpoint_mb'] < report['separate_files_mb']


def test_variant_view_holds_no_copy_of_the_weights():
    net, _ = zoo.load('sign')
    view = VariantView(net, 'w050_d2')
    assert list(view.parameters()) and all(
        any(p is q for q in net.parameters()) for p in view.parameters())


def test_corrupt_checkpoint_gives_one_clear_error(tmp_path):
    (tmp_path / 'sign.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(zoo.ZooError, match='cannot be loaded'):
        zoo.load('sign', str(tmp_path))
    with pytest.raises(zoo.ZooError, match='rtmdl train audio'):
        zoo.load('audio', str(tmp_path))
