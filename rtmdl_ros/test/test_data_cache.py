"""Generated data sets are keyed by what made them (issue #20): a changed generator,
constant or drawing library is a new cache entry, never an old file; and the sign
and scene sets are the same whichever OpenCV release draws them."""
import importlib
import linecache
import sys

import cv2
import numpy as np
import pytest

from rtmdl_ros.data import cache, lights, signs, sounds
from rtmdl_ros.data.render import perspective_matrix, warp_perspective


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('RTMDL_CACHE', str(tmp_path))
    return tmp_path


def test_changing_a_generator_parameter_changes_its_cache_key(monkeypatch):
    base = cache.cache_key('signs', {'split': 'test', 'n': 16, 'rng_seed': 19}, signs)
    assert cache.cache_key('signs', {'split': 'test', 'n': 17, 'rng_seed': 19}, signs) != base
    assert cache.cache_key('signs', {'split': 'test', 'n': 16, 'rng_seed': 20}, signs) != base
    monkeypatch.setattr(signs, 'SIZE', 40)                   # a module constant of the generator
    assert cache.cache_key('signs', {'split': 'test', 'n': 16, 'rng_seed': 19}, signs) != base
    monkeypatch.undo()
    import rtmdl_ros.data.render as render
    monkeypatch.setattr(render, '_scratch', 1, raising=False)      # not a constant
    assert cache.cache_key('signs', {'split': 'test', 'n': 16, 'rng_seed': 19}, signs) == base


def test_changing_a_generator_or_its_helper_source_changes_the_key(tmp_path, monkeypatch):
    pkg = tmp_path / 'fakegen'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    (pkg / 'helper.py').write_text('def shade(x):\n    return x * 2\n')
    (pkg / 'gen.py').write_text('import numpy as np\n\nfrom .helper import shade\n\nSIZE = 8\n\n'
                                'def generate(n, seed):\n    return {"x": shade(np.zeros(n))}\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    gen = importlib.import_module('fakegen.gen')
    first = cache.maker_fingerprint(gen)
    assert first['libraries'] == {'numpy': np.__version__}
    (pkg / 'helper.py').write_text('def shade(x):\n    return x * 3\n')     # the helper, not the generator
    linecache.clearcache()
    importlib.reload(sys.modules['fakegen.helper'])
    assert cache.maker_fingerprint(gen)['source'] != first['source']


def test_the_key_names_the_libraries_that_draw_the_data():
    assert cache.maker_fingerprint(signs)['libraries'] == {'cv2': cv2.__version__, 'numpy': np.__version__}
    # sounds imports scipy inside its functions: still part of the key
    assert 'scipy' in cache.maker_fingerprint(sounds)['libraries']


def test_a_changed_generator_never_reads_the_old_cache_entry(empty_cache, monkeypatch):
    calls = []

    def build():
        calls.append(1)
        return {'x': np.arange(3)}
    cache.cached('lights', {'n': 3}, build, lights)
    cache.cached('lights', {'n': 3}, build, lights)
    assert len(calls) == 1 and len(list(empty_cache.glob('lights-*.npz'))) == 1
    monkeypatch.setattr(lights, 'MAX_LIGHTS', 5)
    cache.cached('lights', {'n': 3}, build, lights)
    assert len(calls) == 2 and len(list(empty_cache.glob('lights-*.npz'))) == 2


def test_a_split_is_generated_into_the_cache_it_is_pointed_at(empty_cache):
    a = signs.load_split('test', size=8)
    assert [p.name.startswith('signs-') for p in empty_cache.iterdir()] == [True]
    b = signs.load_split('test', size=8)
    assert np.array_equal(a['images'], b['images'])
    assert cache.split_digest(a['images']) != cache.split_digest(a['images'][:4])


def test_the_sign_crops_do_not_depend_on_opencvs_font_or_warp_tables():
    # The digest of 32 crops that OpenCV 4.14, 5.0 and 5.1 all draw (checked side by side on
    # 2026-12-02; with cv2.putText and cv2.warpPerspective the three releases gave three sets).
    d = signs.generate(32, 19)
    assert cache.split_digest(d['images'], d['labels']) == 'b6b68a53c6c04d84'


def test_numpy_warp_matches_opencv_within_its_fixed_point_error():
    rng = np.random.default_rng(4)
    src = np.float32([[0, 0], [96, 0], [96, 96], [0, 96]])
    for _ in range(50):
        img = rng.uniform(0, 255, (96, 96, 3)).astype(np.float32)
        dst = rng.uniform(-30, 80, (4, 2)).astype(np.float32)
        m = perspective_matrix(src, dst)
        corners = np.c_[src, np.ones(4)] @ m.T
        np.testing.assert_allclose(corners[:, :2] / corners[:, 2:], dst, atol=1e-4)
        ours = warp_perspective(img, m, (48, 48))
        theirs = cv2.warpPerspective(img, m, (48, 48), flags=cv2.INTER_LINEAR)
        # OpenCV 5 is within 0.014 of the exact warp; 4.x samples at 1/32 pixel (up to 255/32 off).
        assert ours.dtype == img.dtype and np.abs(ours - theirs).max() < 255 / 32


def test_the_key_follows_the_blas_kernel_that_draws_the_split(monkeypatch):
    monkeypatch.setenv('OPENBLAS_CORETYPE', 'Haswell')
    haswell = cache.cache_key('sounds', {'split': 'test', 'n': 8, 'rng_seed': 3}, sounds)
    monkeypatch.setenv('OPENBLAS_CORETYPE', 'SkylakeX')
    assert cache.cache_key('sounds', {'split': 'test', 'n': 8, 'rng_seed': 3}, sounds) != haswell
