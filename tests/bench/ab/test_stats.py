"""The merge gate's statistics: the sign-test interval of the median ratio, the three-way
verdict, and the look schedule that keeps the error rate across looks within alpha."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from faceperf.bench.ab.stats import (
    LookSchedule,
    RatioInterval,
    judge,
    log_ratios,
    median_interval,
    ratio_interval,
)
from faceperf.verdicts import Verdict


def test_the_interval_of_twenty_values_is_the_sixth_to_fifteenth_at_95_percent():
    # The textbook sign-test interval: [x(6), x(15)] of 20, coverage 1 - 2·P(B(20, .5) <= 5).
    values = np.arange(1.0, 21.0)
    low, median, high = median_interval(values, 0.95)
    assert (low, median, high) == (6.0, 10.5, 15.0)
    assert 1 - 2 * binom.cdf(5, 20, 0.5) >= 0.95 > 1 - 2 * binom.cdf(6, 20, 0.5)


def test_too_few_values_give_an_unbounded_interval():
    low, median, high = median_interval([1.0, 2.0, 3.0, 4.0, 5.0], 0.99)
    assert (low, high) == (-math.inf, math.inf) and median == 3.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=200),
    st.floats(0.5, 0.999),
)
def test_the_interval_holds_the_median_and_its_bounds_are_observed_values(values, confidence):
    low, median, high = median_interval(values, confidence)
    assert low <= median <= high
    assert (math.isinf(low) and math.isinf(high)) or (low in values and high in values)


def test_the_interval_covers_the_true_median_as_often_as_it_claims():
    # 2000 samples of 30 heavy-tailed (Cauchy) values around a known median.
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        low, _, high = median_interval(rng.standard_cauchy(30) + 0.3, 0.95)
        hits += low <= 0.3 <= high
    assert hits / 2000 >= 0.94


def test_ratios_are_candidate_over_reference():
    interval = ratio_interval([1.0, 1.0, 1.0], [1.1, 1.2, 1.3], 0.5)
    assert interval.point == pytest.approx(1.2)
    assert log_ratios([2.0], [1.0])[0] == pytest.approx(-math.log(2))


@pytest.mark.parametrize(
    "reference, candidate",
    [([], []), ([1.0], [1.0, 2.0]), ([0.0], [1.0]), ([1.0], [math.inf])],
)
def test_bad_durations_are_refused(reference, candidate):
    with pytest.raises(ValueError):
        log_ratios(reference, candidate)


def _interval(low: float, point: float, high: float) -> RatioInterval:
    return RatioInterval(low, point, high, 0.99, 20)


@pytest.mark.parametrize(
    "low, point, high, verdict",
    [
        (1.06, 1.08, 1.10, Verdict.SLOWER),  # all of it beyond the threshold
        (1.01, 1.07, 1.12, Verdict.UNDECIDED),  # significantly slower, maybe by less than 5 %
        (1.01, 1.03, 1.04, Verdict.SAME),  # significantly slower, but by less than 5 %
        (0.97, 1.06, 1.12, Verdict.UNDECIDED),  # maybe not slower at all
        (0.97, 1.00, 1.03, Verdict.SAME),
        (0.90, 0.92, 0.94, Verdict.FASTER),
        (0.90, 0.93, 0.96, Verdict.UNDECIDED),
        (0.90, 1.00, 1.10, Verdict.UNDECIDED),
        (0.0, 1.00, math.inf, Verdict.UNDECIDED),
    ],
)
def test_three_way_verdict(low, point, high, verdict):
    assert judge(_interval(low, point, high), 0.05) is verdict


def test_the_same_band_is_symmetric_in_log_space():
    assert judge(_interval(1 / 1.049, 1.0, 1.049), 0.05) is Verdict.SAME
    assert judge(_interval(1 / 1.051, 1.0, 1.0), 0.05) is Verdict.UNDECIDED


def test_threshold_must_be_a_fraction():
    with pytest.raises(ValueError, match="threshold"):
        judge(_interval(0.9, 1.0, 1.1), 0.0)


def test_looks_share_alpha_and_double_their_rounds():
    schedule = LookSchedule(first=8, looks=5, alpha=0.05)
    assert schedule.confidence == pytest.approx(0.99)
    assert [schedule.rounds_at(k) for k in range(5)] == [8, 16, 32, 64, 128]
    with pytest.raises(ValueError):
        schedule.rounds_at(5)


@pytest.mark.parametrize("kwargs", [{"first": 1}, {"looks": 0}, {"alpha": 1.0}, {"first": True}])
def test_schedule_refuses_nonsense(kwargs):
    with pytest.raises(ValueError):
        LookSchedule(**kwargs)


def test_the_first_look_can_bound_its_interval():
    # With the fewest first-look rounds the sequential measurement uses, a look at the
    # schedule's confidence must already have a finite interval, or no verdict could come early.
    from faceperf.bench.ab.sequential import FIRST_ROUNDS

    low, _, high = median_interval(np.arange(FIRST_ROUNDS[0]), LookSchedule().confidence)
    assert math.isfinite(low) and math.isfinite(high)
