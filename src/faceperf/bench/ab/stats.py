"""The merge gate's statistics: paired rounds → a ratio with an interval → a three-way verdict.

Each round times the reference and the candidate side by side (see ``sequential``), so whatever
the machine does at that moment weighs on both. The per-round log ratio log(candidate / reference)
is the unit of evidence; its median is the estimate, and its interval comes from the sign test
(order statistics of the sorted log ratios): exact for any distribution of independent rounds,
no bootstrap, and a stray slow call on one side of a round moves one ratio, not the estimate.

Sequential looks. An undecided benchmark is measured more, and judged again. Judging after each
batch of rounds at the full confidence would let the error rate grow with every look, so the
schedule fixes the largest number of looks in advance and each look spends an equal share of the
error rate (Bonferroni): the chance of any wrong "slower" or "same" over all looks stays within
``alpha``. Round counts double from look to look, so the clear cases stop early and the
borderline ones get many rounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from faceperf.verdicts import Verdict

DEFAULT_ALPHA = 0.05
DEFAULT_LOOKS = 6


@dataclass(frozen=True)
class RatioInterval:
    """candidate / reference: the median per-round ratio and its confidence interval.

    Args:
        low: lower bound (``0.0`` when too few rounds to bound it).
        point: the median of the per-round ratios.
        high: upper bound (``inf`` when too few rounds to bound it).
        confidence: the interval's two-sided confidence level.
        rounds: paired rounds it was computed from.
    """

    low: float
    point: float
    high: float
    confidence: float
    rounds: int

    def __post_init__(self) -> None:
        if not self.low <= self.point <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] must contain {self.point}")

    def text(self) -> str:
        return f"x{self.point:.3f} [{self.low:.3f}, {self.high:.3f}]"


def log_ratios(reference_s: Sequence[float], candidate_s: Sequence[float]) -> np.ndarray:
    """log(candidate / reference) per round.

    Args:
        reference_s: the reference's duration in each round (seconds, > 0).
        candidate_s: the candidate's duration in the same rounds.
    """
    reference = np.asarray(reference_s, dtype=float)
    candidate = np.asarray(candidate_s, dtype=float)
    if reference.shape != candidate.shape or reference.ndim != 1 or reference.size == 0:
        raise ValueError(
            f"paired rounds need as many reference as candidate durations, at least one: "
            f"got {reference.size} and {candidate.size}"
        )
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(candidate))):
        raise ValueError("durations must be finite")
    if np.any(reference <= 0) or np.any(candidate <= 0):
        raise ValueError("durations must be positive (time several calls per sample)")
    return np.log(candidate) - np.log(reference)


def median_interval(values: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """(low, median, high) of ``values`` with the distribution-free sign-test interval.

    The interval is [x(k), x(n+1-k)] of the sorted values, with the largest k whose coverage
    1 - 2·P(Binomial(n, 1/2) < k) is at least ``confidence``. With too few values for any k,
    the bounds are infinite: nothing can be decided yet.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r}: expected a number between 0 and 1")
    ordered = np.sort(np.asarray(values, dtype=float))
    n = ordered.size
    if n == 0:
        raise ValueError("no values")
    median = float(np.median(ordered))
    tail = (1 - confidence) / 2
    # binom.cdf(k - 1, n, 0.5) <= tail; ppf gives the smallest j with cdf(j) >= tail.
    k = int(binom.ppf(tail, n, 0.5))
    if binom.cdf(k, n, 0.5) <= tail:
        k += 1
    if k < 1:
        return -math.inf, median, math.inf
    return float(ordered[k - 1]), median, float(ordered[n - k])


def ratio_interval(
    reference_s: Sequence[float], candidate_s: Sequence[float], confidence: float
) -> RatioInterval:
    """The interval of candidate / reference from paired rounds (see :func:`median_interval`)."""
    low, point, high = median_interval(log_ratios(reference_s, candidate_s), confidence)
    return RatioInterval(
        math.exp(low), math.exp(point), math.exp(high), confidence, len(reference_s)
    )


def judge(interval: RatioInterval, threshold: float) -> Verdict:
    """The merge gate's verdict of one interval against a benchmark's threshold.

    - ``slower``: the whole interval lies above 1 + threshold: slower by more than the
      threshold, with the interval's confidence. A slowdown just under the threshold, or one
      measured too coarsely to tell, is never called slower.
    - ``faster``: the mirror image, the whole interval below 1 / (1 + threshold).
    - ``same``: the whole interval lies within [1 / (1 + threshold), 1 + threshold].
    - ``undecided``: the interval straddles a bound; measure more.

    Calling "slower" on significance plus a point estimate beyond the threshold would flag a
    true 3 % slowdown as "slower than 5 %" in half the runs where few rounds leave the estimate
    noisy; requiring the whole interval is what keeps the gate from crying wolf. The threshold
    is therefore set below the slowdown the gate must catch (a 3 % threshold catches 5 %).
    The band is symmetric in log space, so "x1.05 slower" and "x1.05 faster" are equally far.

    Args:
        interval: candidate / reference.
        threshold: the relative change that matters, e.g. 0.05.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold {threshold!r}: expected a fraction between 0 and 1")
    upper, lower = 1 + threshold, 1 / (1 + threshold)
    if interval.low > upper:
        return Verdict.SLOWER
    if interval.high < lower:
        return Verdict.FASTER
    if lower <= interval.low and interval.high <= upper:
        return Verdict.SAME
    return Verdict.UNDECIDED


@dataclass(frozen=True)
class LookSchedule:
    """When a benchmark is judged: after ``first`` rounds, then after each doubling, at most
    ``looks`` times, each look at confidence 1 - alpha / looks.

    Args:
        first: paired rounds before the first look (at least 2).
        looks: the most looks (fixed in advance: it sets every look's confidence).
        alpha: the error rate shared by all looks.
    """

    first: int = 10
    looks: int = DEFAULT_LOOKS
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if isinstance(self.first, bool) or not isinstance(self.first, int) or self.first < 2:
            raise ValueError(f"first {self.first!r}: expected an integer of at least 2 rounds")
        if isinstance(self.looks, bool) or not isinstance(self.looks, int) or self.looks < 1:
            raise ValueError(f"looks {self.looks!r}: expected a positive integer")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha {self.alpha!r}: expected a number between 0 and 1")

    @property
    def confidence(self) -> float:
        """The confidence of every look's interval."""
        return 1 - self.alpha / self.looks

    def rounds_at(self, look: int) -> int:
        """Paired rounds measured in all by the end of ``look`` (0-based)."""
        if not 0 <= look < self.looks:
            raise ValueError(f"look {look}: expected 0 to {self.looks - 1}")
        return self.first * 2**look
