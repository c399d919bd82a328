"""Two intervals for the merge gate's per-round log ratios: the sign test's, on the median (what
``stats`` uses), and the Wilcoxon signed-rank interval of the Hodges-Lehmann estimate.

The Hodges-Lehmann estimate is the median of the Walsh averages (x_i + x_j) / 2, i <= j, of the
n values. Inverting the Wilcoxon signed-rank test gives its interval: with c the largest count
for which P(T+ <= c) <= (1 - confidence) / 2 under the null (T+ the sum of the ranks of the
positive values), the interval is [W(c+1), W(M-c)] of the M = n(n+1)/2 sorted Walsh averages,
because T+ of the values shifted by d is the number of Walsh averages above d.

The Wilcoxon interval assumes the values are symmetric about their centre; in exchange it is
narrower than the sign test's (asymptotic relative efficiency 1.5 for normal noise), so the gate
would decide in fewer rounds. Under A/A the round ratios are symmetric by construction (random
ABBA / BAAB order, identical artifacts are exchangeable); under a change that alters the shape of
the distribution (an occasional slow path) they are not, and the two estimates then measure
different things: the median ratio, and a centre pulled toward the longer tail.

Critical values: exact below ``EXACT_MAX_N`` values, from SciPy's exact null distribution
(``scipy.stats.wilcoxon(method="exact")``, the same cut-off SciPy's ``method="auto"`` uses); above
it the normal approximation with continuity correction, which the tests check against SciPy's
exact distribution.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm, wilcoxon

from faceperf.bench.ab.stats import RatioInterval, log_ratios, median_interval

# scipy.stats.wilcoxon's own choice between its exact and asymptotic p-values (method="auto").
EXACT_MAX_N = 50


class Estimator(enum.Enum):
    """The interval the gate judges: ``sign`` (median, sign test) or ``wilcoxon``
    (Hodges-Lehmann estimate, Wilcoxon signed-rank interval)."""

    SIGN = "sign"
    WILCOXON = "wilcoxon"

    @classmethod
    def parse(cls, name: str) -> Estimator:
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(e.value for e in cls)
            raise ValueError(f"estimator {name!r}: expected one of {known}") from None


def walsh_averages(values: Sequence[float]) -> np.ndarray:
    """(x_i + x_j) / 2 for every i <= j, sorted: n(n+1)/2 values."""
    x = np.asarray(values, dtype=float)
    i, j = np.triu_indices(x.size)
    return np.sort((x[i] + x[j]) / 2)


def _with_positive_rank_sum(n: int, c: int) -> np.ndarray:
    # Values ±1..±n whose positive ranks add to c: every count 0..n(n+1)/2 is a sum of distinct
    # ranks, taken greedily from the largest. Lets SciPy's public test give P(T+ <= c).
    values = -np.arange(1.0, n + 1)
    remaining = c
    for rank in range(n, 0, -1):
        if rank <= remaining:
            values[rank - 1] = rank
            remaining -= rank
    return values


def _exact_cdf(n: int, c: int) -> float:
    """P(T+ <= c) for n values under the null, SciPy's exact distribution."""
    return float(wilcoxon(_with_positive_rank_sum(n, c), alternative="less", method="exact").pvalue)


@functools.lru_cache(maxsize=4096)
def signed_rank_critical_value(n: int, confidence: float) -> int:
    """The largest c with P(T+ <= c) <= (1 - confidence) / 2 for n values; -1 if none.

    Exact (SciPy) for n <= ``EXACT_MAX_N``; above, the normal approximation with continuity
    correction: P(T+ <= c) ~ Phi((c + 1/2 - mu) / sigma), mu = n(n+1)/4,
    sigma^2 = n(n+1)(2n+1)/24.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r}: expected a number between 0 and 1")
    if n < 1:
        raise ValueError(f"n {n!r}: expected at least one value")
    tail = (1 - confidence) / 2
    if n > EXACT_MAX_N:
        mu = n * (n + 1) / 4
        sigma = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        return max(-1, math.floor(mu - 0.5 + norm.ppf(tail) * sigma))
    # The cdf rises with c: binary search for the last c at or below the tail.
    low, high = -1, n * (n + 1) // 4  # P(T+ <= -1) = 0; past the centre the cdf exceeds 1/2
    while low < high:
        middle = (low + high + 1) // 2
        if _exact_cdf(n, middle) <= tail:
            low = middle
        else:
            high = middle - 1
    return low


def hodges_lehmann_interval(
    values: Sequence[float], confidence: float
) -> tuple[float, float, float]:
    """(low, Hodges-Lehmann estimate, high) of ``values`` with the Wilcoxon signed-rank interval.

    With too few values for any critical value the bounds are infinite, as for the sign test.
    """
    averages = walsh_averages(values)
    if averages.size == 0:
        raise ValueError("no values")
    point = float(np.median(averages))
    c = signed_rank_critical_value(len(values), confidence)
    if c < 0:
        return -math.inf, point, math.inf
    return float(averages[c]), point, float(averages[averages.size - 1 - c])


def estimator_interval(
    estimator: Estimator | str,
    reference_s: Sequence[float],
    candidate_s: Sequence[float],
    confidence: float,
) -> RatioInterval:
    """candidate / reference from paired rounds with the named estimator's interval.

    Args:
        estimator: ``sign`` or ``wilcoxon`` (or the :class:`Estimator`).
        reference_s: the reference's duration in each round (seconds, > 0).
        candidate_s: the candidate's duration in the same rounds.
        confidence: the interval's two-sided confidence level.
    """
    chosen = estimator if isinstance(estimator, Estimator) else Estimator.parse(estimator)
    values = log_ratios(reference_s, candidate_s)
    if chosen is Estimator.SIGN:
        low, point, high = median_interval(values, confidence)
    else:
        low, point, high = hodges_lehmann_interval(values, confidence)
    return RatioInterval(
        math.exp(low), math.exp(point), math.exp(high), confidence, len(reference_s)
    )
