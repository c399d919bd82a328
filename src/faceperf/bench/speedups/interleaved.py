"""A/B speedup measurement: interleaved rounds and a bootstrap interval of the ratio of medians.

A speedup claim ("optimized is 1.3x faster than baseline") compares two callables measured in
the same process, alternating between them, so that whatever the machine does meanwhile (thermal
throttling, a background job, frequency scaling) affects both alike. The claim is gated on the
lower bound of a bootstrap confidence interval of median(slow) / median(fast): "faster" means
the whole interval is above 1, not that one number happened to be.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

Clock = Callable[[], float]


@dataclass(frozen=True)
class InterleavedSamples:
    """Per-call durations of A and B in seconds, one of each per round.

    Args:
        a_s: durations of ``a``, in round order.
        b_s: durations of ``b``, in round order.
    """

    a_s: tuple[float, ...]
    b_s: tuple[float, ...]

    def __post_init__(self) -> None:
        a_s, b_s = tuple(self.a_s), tuple(self.b_s)
        if not a_s or len(a_s) != len(b_s):
            raise ValueError(
                f"interleaved samples need as many A as B rounds, at least one: "
                f"got {len(a_s)} and {len(b_s)}"
            )
        for value in a_s + b_s:
            # Zero is allowed: a coarse clock can read the same value twice around a fast call.
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"duration {value!r}: expected a finite, non-negative number")
        object.__setattr__(self, "a_s", tuple(float(v) for v in a_s))
        object.__setattr__(self, "b_s", tuple(float(v) for v in b_s))


@dataclass(frozen=True)
class SpeedupInterval:
    """A confidence interval of median(slow) / median(fast); above 1 means "fast" is faster.

    Args:
        low: lower bound of the interval (what a speedup claim is gated on).
        point: the ratio of the medians of all samples.
        high: upper bound of the interval.
        confidence: the interval's confidence level.
    """

    low: float
    point: float
    high: float
    confidence: float

    def __post_init__(self) -> None:
        if not self.low <= self.point <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] must contain {self.point}")

    def supports(self, min_speedup: float) -> bool:
        """True when the whole interval lies above ``min_speedup``.

        Args:
            min_speedup: the claimed factor, e.g. 1.0 for "faster at all", 1.5 for "1.5x".
        """
        return self.low > min_speedup


def measure_interleaved(
    a: Callable[[], object],
    b: Callable[[], object],
    rounds: int,
    warmup: int = 2,
    clock: Clock = time.perf_counter,
) -> InterleavedSamples:
    """Time ``a`` and ``b`` alternately, one call each per round.

    Rounds run in the order A B, B A, A B, B A, … (ABBA ABBA). Plain ABAB would always run A
    first in a pair: under a steady drift (the CPU heating up and slowing down) B would always
    come later and look slower. Alternating which goes first makes a linear drift add the same
    total to both sides over every two rounds.

    Args:
        a: the first callable (e.g. the baseline artifact's run).
        b: the second callable (e.g. the optimized artifact's run).
        rounds: recorded calls of each callable (an even number cancels drift exactly).
        warmup: untimed calls of each, in AB order, before the first recorded round (caches,
            lazy initialisation, JIT and allocator warm-up).
        clock: returns seconds; injected so tests control time.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds {rounds!r}: expected a positive integer")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup {warmup!r}: expected a non-negative integer")
    for _ in range(warmup):
        a()
        b()
    a_s: list[float] = []
    b_s: list[float] = []
    for index in range(rounds):
        pair = ((a, a_s), (b, b_s)) if index % 2 == 0 else ((b, b_s), (a, a_s))
        for function, durations in pair:
            durations.append(_time_call(function, clock))
    return InterleavedSamples(tuple(a_s), tuple(b_s))


def speedup_interval(
    slow_samples: Sequence[float],
    fast_samples: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> SpeedupInterval:
    """Bootstrap confidence interval of median(slow) / median(fast).

    The two samples are resampled independently (they are two runs, not pairs). The interval is
    the percentile bootstrap, not BCa: BCa's acceleration comes from a jackknife, and the
    jackknife is known to be inconsistent for the median (a non-smooth statistic), so its
    "correction" would be noise; BCa also degenerates (NaN and a warning) when the resampled
    medians are all equal, which happens with coarse timers. The percentile interval is
    unaffected by both, and it transforms with the statistic, so the interval of fast / slow is
    exactly the reciprocal of this one.

    Args:
        slow_samples: durations of the supposedly slower variant (seconds, > 0).
        fast_samples: durations of the supposedly faster variant (seconds, > 0).
        confidence: confidence level of the interval.
        resamples: bootstrap resamples.
        seed: seeds the resampling, so the same samples always give the same interval.
    """
    slow = _positive_array("slow_samples", slow_samples)
    fast = _positive_array("fast_samples", fast_samples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence!r}: expected a number between 0 and 1")
    if resamples < 1:
        raise ValueError(f"resamples {resamples!r}: expected a positive integer")
    result = bootstrap(
        (slow, fast),
        _ratio_of_medians,
        n_resamples=resamples,
        vectorized=True,
        paired=False,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    point = float(_ratio_of_medians(slow, fast))
    low = float(result.confidence_interval.low)
    high = float(result.confidence_interval.high)
    # Percentile bounds come from the resampled medians; with tiny samples the point estimate
    # can sit a hair outside them. Widen to include it rather than report an interval without it.
    return SpeedupInterval(min(low, point), point, max(high, point), confidence)


def _time_call(function: Callable[[], object], clock: Clock) -> float:
    start = clock()
    function()
    return clock() - start


def _ratio_of_medians(slow: np.ndarray, fast: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(slow, axis=axis) / np.median(fast, axis=axis)


def _positive_array(what: str, values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{what}: expected at least 2 durations, got {array.size}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{what}: durations must be finite and positive")
    return array
