"""Interleaved A/B timing with a programmed clock, and the bootstrap interval of a speedup."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fake_time import FakeTime
from hypothesis import given, settings
from hypothesis import strategies as st

from faceperf.bench.speedups.interleaved import (
    InterleavedSamples,
    SpeedupInterval,
    measure_interleaved,
    speedup_interval,
)


def test_abba_order_and_exact_durations() -> None:
    time = FakeTime()
    # Dyadic durations: every clock difference is exact in floating point.
    a = time.workload("a", [100.0, 100.0, 1.0, 2.0, 3.0, 4.0])  # two warm-ups, then 4 rounds
    b = time.workload("b", [100.0, 100.0, 0.5, 0.25, 0.125, 0.0625])
    samples = measure_interleaved(a, b, rounds=4, warmup=2, clock=time.clock)
    warmups, rounds = ["a", "b", "a", "b"], ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert time.calls == [*warmups, *rounds]
    assert samples == InterleavedSamples((1.0, 2.0, 3.0, 4.0), (0.5, 0.25, 0.125, 0.0625))
    assert time.reads == 4 * 2 * 2  # two reads per recorded call; warm-ups are not timed


def test_an_odd_round_count_ends_with_ab() -> None:
    time = FakeTime()
    a, b = time.workload("a", itertools.repeat(1.0)), time.workload("b", itertools.repeat(2.0))
    samples = measure_interleaved(a, b, rounds=3, warmup=0, clock=time.clock)
    assert time.calls == ["a", "b", "b", "a", "a", "b"]
    assert samples.a_s == (1.0, 1.0, 1.0) and samples.b_s == (2.0, 2.0, 2.0)


def test_a_linear_drift_adds_the_same_to_both_sides() -> None:
    # The machine slows down by 1/64 s per call (heating up); A and B do the same work.
    time = FakeTime()
    durations = (1.0 + k / 64 for k in itertools.count())
    a, b = time.workload("a", durations), time.workload("b", durations)
    samples = measure_interleaved(a, b, rounds=10, warmup=0, clock=time.clock)
    assert sum(samples.a_s) == sum(samples.b_s)


@settings(derandomize=True, database=None, max_examples=50, deadline=None)
@given(
    durations=st.lists(st.integers(0, 2**20), min_size=4, max_size=40).map(
        lambda ticks: [t / 1024 for t in ticks]
    ),
    warmup=st.integers(0, 3),
)
def test_recorded_durations_are_the_programmed_ones(durations: list[float], warmup: int) -> None:
    rounds = len(durations) // 2
    a_wanted, b_wanted = durations[:rounds], durations[rounds : 2 * rounds]
    time = FakeTime()
    a = time.workload("a", [0.5] * warmup + a_wanted)
    b = time.workload("b", [0.5] * warmup + b_wanted)
    samples = measure_interleaved(a, b, rounds=rounds, warmup=warmup, clock=time.clock)
    assert samples.a_s == tuple(a_wanted)
    assert samples.b_s == tuple(b_wanted)


@pytest.mark.parametrize(("rounds", "warmup"), [(0, 2), (-1, 2), (2.0, 2), (True, 2), (2, -1)])
def test_bad_round_counts_are_refused(rounds: object, warmup: object) -> None:
    with pytest.raises(ValueError):
        measure_interleaved(lambda: None, lambda: None, rounds, warmup, clock=lambda: 0.0)  # type: ignore[arg-type]


def test_samples_are_validated() -> None:
    with pytest.raises(ValueError, match="as many A as B"):
        InterleavedSamples((1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="non-negative"):
        InterleavedSamples((1.0,), (-1.0,))


# -- speedup interval ---------------------------------------------------------------------------


def _timings(seed: int, median_s: float, n: int = 30, noise: float = 0.05) -> np.ndarray:
    return median_s * np.exp(np.random.default_rng(seed).normal(0.0, noise, n))


def test_a_twofold_speedup_is_bracketed() -> None:
    interval = speedup_interval(_timings(0, 0.020), _timings(1, 0.010))
    assert 1.8 < interval.low < 2.0 < interval.high < 2.2
    assert interval.supports(1.0) and interval.supports(1.5)
    assert not interval.supports(2.0)
    assert interval.confidence == 0.95


def test_the_interval_covers_the_true_ratio_about_as_often_as_it_claims() -> None:
    # A 95 % interval misses now and then by design; over many seeded experiments it must not
    # miss much more often (the percentile bootstrap of a median undercovers on small samples).
    covered = [
        speedup_interval(_timings(2 * seed, 0.020), _timings(2 * seed + 1, 0.010), seed=seed)
        for seed in range(100)
    ]
    coverage = sum(i.low < 2.0 < i.high for i in covered) / len(covered)
    assert coverage >= 0.9
    assert all(i.supports(1.0) for i in covered)


def test_identical_samples_give_an_interval_around_one() -> None:
    samples = _timings(3, 0.010)
    interval = speedup_interval(samples, samples)
    assert interval.point == 1.0
    assert 0.95 < interval.low < 1.0 < interval.high < 1.05
    assert not interval.supports(1.0)


def test_constant_samples_give_exactly_one_without_warnings() -> None:
    # A coarse timer reads the same value every round; BCa would warn and return NaN here.
    interval = speedup_interval([0.01] * 10, [0.01] * 10)
    assert (interval.low, interval.point, interval.high) == (1.0, 1.0, 1.0)


def test_the_interval_is_reproducible_and_seeded() -> None:
    slow, fast = _timings(1, 0.012, n=12), _timings(2, 0.010, n=12)
    first = speedup_interval(slow, fast, seed=7)
    assert speedup_interval(slow, fast, seed=7) == first
    assert speedup_interval(slow, fast, seed=8) != first


def test_more_confidence_gives_a_wider_interval() -> None:
    slow, fast = _timings(1, 0.012), _timings(2, 0.010)
    narrow = speedup_interval(slow, fast, confidence=0.80)
    wide = speedup_interval(slow, fast, confidence=0.99)
    assert wide.low < narrow.low and narrow.high < wide.high


@pytest.mark.parametrize(
    ("slow", "fast", "kwargs", "expected"),
    [
        ([0.1], [0.1, 0.2], {}, "at least 2 durations"),
        ([0.1, 0.0], [0.1, 0.2], {}, "finite and positive"),
        ([0.1, float("nan")], [0.1, 0.2], {}, "finite and positive"),
        ([0.1, 0.2], [0.1, 0.2], {"confidence": 1.0}, "confidence"),
        ([0.1, 0.2], [0.1, 0.2], {"resamples": 0}, "resamples"),
    ],
)
def test_bad_input_is_refused(slow: list, fast: list, kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        speedup_interval(slow, fast, **kwargs)


def test_an_interval_must_contain_its_point() -> None:
    with pytest.raises(ValueError, match="must contain"):
        SpeedupInterval(low=1.2, point=1.0, high=1.5, confidence=0.95)
