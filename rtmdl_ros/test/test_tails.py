"""The tail estimator never under-estimates a quantile more often than its stated confidence allows."""
import math

import numpy as np
import pytest

from rtmdl_ros.core.tails import quantile_upper_bound, samples_needed


@pytest.mark.parametrize('dist,true_q', [
    ('exponential', lambda p: -math.log(1 - p)),                 # light tail
    ('pareto', lambda p: (1 - p) ** (-1 / 2.5) - 1),             # heavy tail (numpy's Lomax, a = 2.5)
    ('bimodal', None),                                           # two modes, like a path through a busy core
])
@pytest.mark.parametrize('n', [600, 1500])
def test_bound_covers_the_true_quantile_at_its_confidence(dist, true_q, n):
    rng = np.random.default_rng(7)
    p, conf, trials = 99.5, 0.9, 1500
    if dist == 'bimodal':
        # 90 % around 4 ms, 10 % around 15 ms: the true p99.5 by a very large sample.
        def draw(size):
            fast = rng.normal(4.0, 0.8, size)
            slow = rng.normal(15.0, 1.0, size)
            return np.where(rng.random(size) < 0.9, fast, slow)
        q = float(np.quantile(draw(4_000_000), p / 100))
    else:
        def draw(size):
            return rng.exponential(1.0, size) if dist == 'exponential' else rng.pareto(2.5, size)
        q = true_q(p / 100)
    under = 0
    for _ in range(trials):
        est = quantile_upper_bound(draw(n), p, conf)
        assert est.ok
        under += est.bound < q
    # Binomial(trials, 0.1) exceeds 0.1 * trials + 4 sigma with negligible probability.
    assert under <= trials * (1 - conf) + 4 * math.sqrt(trials * conf * (1 - conf)), under
    # ...and the bound is not the plain maximum: it uses the sample size it has.
    assert est.rank < n or n < 2 * samples_needed(p, conf)


def test_too_few_samples_say_how_many_are_needed():
    est = quantile_upper_bound(np.arange(100.0), 99.5, 0.9)
    assert not est.ok and est.needed == samples_needed(99.5, 0.9) == 460
    assert est.bound_or_max == 99.0
    assert '460 needed' in est.describe() and '39%' in est.describe()


def test_empirical_percentile_is_a_sample_at_or_above_it():
    est = quantile_upper_bound(np.arange(1, 1001, dtype=float), 99.0, 0.95)
    assert est.empirical == 990.0
    assert est.ok and est.bound >= est.empirical and est.rank > 990


def test_with_spare_samples_the_bound_can_leave_out_that_many_outliers():
    # 230 samples bound p99 at 90 % by their largest; 388 by their second largest.
    assert samples_needed(99.0, 0.9) == 230 and samples_needed(99.0, 0.9, spare=1) == 388
    assert samples_needed(99.0, 0.9, spare=2) > samples_needed(99.0, 0.9, spare=1)
    for n, rank in ((387, 387), (388, 387)):
        stall = np.r_[np.ones(n - 1), 18.0]          # one stall among n samples
        est = quantile_upper_bound(stall, 99.0, 0.9)
        assert est.rank == rank and est.bound == (18.0 if rank == n else 1.0)
