"""Upper confidence bounds on high quantiles from measured samples (order statistics).

The analysis needs the p-th percentile of a time (a release path, a segment)
that the true distribution exceeds with probability at most 1 - p/100. An
empirical quantile of one short window is not that: half the time it lies
below the true one. Distribution-free instead: for n independent samples and
the true quantile q_p, the k-th smallest sample x_(k) is >= q_p unless at
least k samples fall below q_p, so

    P(x_(k) >= q_p) = P(Binomial(n, p) <= k - 1).

The bound is the smallest x_(k) with that probability >= the confidence. It
exists only once n >= ln(1 - confidence) / ln(p) (then even the largest
sample qualifies): 598 samples for p99.5 at 95 %, 460 at 90 %. Samples of one
run are not quite independent (a busy second shows in several jobs), so the
confidence is nominal; calibrate repeats its window rather than trusting one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def samples_needed(percentile: float, confidence: float, spare: int = 0) -> int:
    """Fewest samples whose largest bounds the percentile with that confidence; with
    spare = s, whose (s + 1)-th largest does: then s outlying samples (a stall) can be
    left out of the bound instead of setting it (p99 at 90 %: 230 samples, 388 for s = 1)."""
    p = percentile / 100.0
    if p >= 1.0:
        return math.inf
    n = math.ceil(math.log(1.0 - confidence) / math.log(p))
    if spare <= 0:
        return n
    from scipy.stats import binom
    # x_(n - s) bounds q_p with P(Binomial(n, p) <= n - s - 1); it grows with n.
    while binom.cdf(n - spare - 1, n, p) < confidence:
        n += 1
    return n


@dataclass(frozen=True)
class TailEstimate:
    percentile: float
    confidence: float
    samples: int
    empirical: float          # the plain empirical percentile (a sample at or above it)
    bound: float              # upper confidence bound; nan if there are too few samples
    rank: int                 # the order statistic taken (1-based); 0 if none
    needed: int               # samples needed for a bound at this confidence
    bound_or_max: float = math.nan   # the bound, or the largest sample where there is none

    @property
    def ok(self) -> bool:
        return math.isfinite(self.bound)

    @property
    def achieved_confidence(self) -> float:
        """What the largest sample gives when there are too few for the target."""
        return 1.0 - (self.percentile / 100.0) ** self.samples

    def describe(self) -> str:
        if self.ok:
            return (f'p{self.percentile:g} <= {self.bound:.2f} ms at {self.confidence:.0%} confidence '
                    f'({self.samples} samples, order statistic {self.rank}; empirical {self.empirical:.2f} ms)')
        return (f'p{self.percentile:g}: {self.samples} samples bound it with only {self.achieved_confidence:.0%} '
                f'confidence (the largest, {self.bound_or_max:.2f} ms); {self.needed} needed for '
                f'{self.confidence:.0%}')


def quantile_upper_bound(samples, percentile: float, confidence: float = 0.9) -> TailEstimate:
    """The smallest order statistic that bounds the percentile with the given confidence."""
    from scipy.stats import binom
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    needed = samples_needed(percentile, confidence)
    if n == 0:
        return TailEstimate(percentile, confidence, 0, math.nan, math.nan, 0, needed)
    p = percentile / 100.0
    empirical = float(x[min(n - 1, max(0, math.ceil(p * n) - 1))])
    # P(x_(k) >= q_p) = binom.cdf(k - 1, n, p): the first k where that reaches the confidence.
    cdf = binom.cdf(np.arange(n), n, p)
    k = int(np.searchsorted(cdf, confidence) + 1)
    if k > n:
        return TailEstimate(percentile, confidence, n, empirical, math.nan, 0, needed, bound_or_max=float(x[-1]))
    return TailEstimate(percentile, confidence, n, empirical, float(x[k - 1]), k, needed, bound_or_max=float(x[k - 1]))
