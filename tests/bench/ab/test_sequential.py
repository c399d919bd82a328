"""Sequential paired measuring on an injected clock: block order, calls per sample, early
stopping, the time budget, round-robin, and the error rates of the whole procedure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fake_time import FakeTime

from faceperf.bench.ab.sequential import (
    Pairing,
    block_sums,
    calibrate_inner,
    first_look_rounds,
    measure_sequential,
)
from faceperf.verdicts import Verdict


def _noisy(time: FakeTime, name: str, median_s: float, sigma: float, seed: int):
    rng = np.random.default_rng(seed)
    return time.workload(
        name, (median_s * float(np.exp(rng.normal(0, sigma))) for _ in iter(int, 1))
    )


def _pairing(time: FakeTime, name: str, slowdown: float, sigma: float = 0.02, seed: int = 0):
    return Pairing(
        name,
        _noisy(time, f"{name}:ref", 0.05, sigma, seed),
        _noisy(time, f"{name}:cand", 0.05 * slowdown, sigma, seed + 1),
        threshold=0.05,
    )


def test_each_round_is_an_abba_or_baab_block():
    time = FakeTime()
    pairing = Pairing(
        "m",
        time.workload("A", itertools.repeat(0.01)),
        time.workload("B", itertools.repeat(0.01)),
        0.05,
        warmup=0,
    )
    measure_sequential([pairing], 100.0, clock=time.clock, looks=1)
    timed = time.calls[2:]  # after the calibration call and the first-look sizing sample
    blocks = [tuple(timed[i : i + 4]) for i in range(0, len(timed), 4)]
    assert set(blocks) == {("A", "B", "B", "A"), ("B", "A", "A", "B")}
    firsts = [block[0] for block in blocks]
    assert 0.2 < firsts.count("A") / len(firsts) < 0.8  # the order is drawn, not fixed


def test_fast_calls_are_timed_several_to_a_sample():
    time = FakeTime()
    assert calibrate_inner(time.workload("f", [0.0001]), time.clock) == 50
    assert calibrate_inner(time.workload("g", [0.2]), time.clock) == 1


def test_the_first_look_holds_about_two_seconds_within_limits():
    assert first_look_rounds(0.6) == 8
    assert first_look_rounds(0.05) == 10
    assert first_look_rounds(0.0001) == 32


def test_a_clear_slowdown_is_decided_at_the_first_look():
    time = FakeTime()
    run = measure_sequential([_pairing(time, "m", 1.20)], 1000.0, clock=time.clock)
    (outcome,) = run.outcomes
    assert outcome.verdict is Verdict.SLOWER and outcome.looks == 1
    assert outcome.rounds == outcome.schedule.first
    assert outcome.interval.point == pytest.approx(1.2, rel=0.03)
    assert len(outcome.reference_s) == 2 * outcome.rounds
    assert not run.timed_out


def test_unchanged_is_same_and_a_borderline_change_takes_more_looks():
    time = FakeTime()
    run = measure_sequential(
        [_pairing(time, "same", 1.0, seed=3), _pairing(time, "edge", 1.035, sigma=0.05, seed=5)],
        10_000.0,
        clock=time.clock,
    )
    same, edge = run.outcomes
    assert same.verdict is Verdict.SAME and same.looks <= 2
    assert edge.looks > same.looks


def test_the_time_budget_stops_the_run_and_keeps_what_was_measured():
    time = FakeTime()
    slow = _pairing(time, "slow", 1.04, sigma=0.08, seed=1)
    run = measure_sequential([slow], 5.0, clock=time.clock)
    (outcome,) = run.outcomes
    assert run.timed_out and outcome.verdict is Verdict.UNDECIDED
    assert time.now <= 5.0 + 4 * 0.2  # at most one round beyond the budget
    assert outcome.rounds > 0 and outcome.interval is not None


def test_a_borderline_benchmark_does_not_starve_the_others():
    time = FakeTime()
    edge = _pairing(time, "edge", 1.045, sigma=0.05, seed=5)
    clear = _pairing(time, "clear", 1.3, seed=7)
    run = measure_sequential([edge, clear], 8.0, clock=time.clock)
    assert {o.name: o.verdict for o in run.outcomes}["clear"] is Verdict.SLOWER


def test_pairings_after_the_budget_are_reported_unmeasured():
    time = FakeTime()
    first = _pairing(time, "first", 1.0)
    late = _pairing(time, "late", 1.0, seed=9)
    run = measure_sequential([first, late], 0.3, clock=time.clock)
    assert run.timed_out
    assert run.outcomes[1].rounds == 0 and run.outcomes[1].interval is None


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), float("inf")])
def test_a_budget_must_be_a_positive_number(budget):
    with pytest.raises(ValueError, match="max_time_s"):
        measure_sequential([], budget)


def test_names_must_be_unique():
    time = FakeTime()
    with pytest.raises(ValueError, match="unique"):
        measure_sequential([_pairing(time, "m", 1.0), _pairing(time, "m", 1.0)], 10.0)


def test_block_sums_add_each_rounds_two_samples():
    assert block_sums([1.0, 2.0, 3.0, 4.0]) == [3.0, 7.0]


def _verdicts(slowdown: float, sigma: float, runs: int, seed: int) -> list[Verdict]:
    verdicts = []
    for run in range(runs):
        time = FakeTime()
        pairing = _pairing(time, "m", slowdown, sigma=sigma, seed=seed + 2 * run)
        verdicts.append(measure_sequential([pairing], 600.0, clock=time.clock).outcomes[0].verdict)
    return verdicts


def test_the_whole_procedure_never_calls_identical_sides_slower():
    # 200 A/A runs with 5 % noise per call, every look taken: never "slower", mostly "same".
    verdicts = _verdicts(1.0, 0.05, 200, seed=100)
    assert verdicts.count(Verdict.SLOWER) == 0
    assert verdicts.count(Verdict.SAME) >= 190


def test_the_whole_procedure_flags_a_ten_percent_slowdown():
    verdicts = _verdicts(1.10, 0.05, 100, seed=1000)
    assert verdicts.count(Verdict.SLOWER) >= 99


def test_a_budget_that_ends_as_the_last_benchmark_decides_is_not_a_time_out():
    time = FakeTime()
    # Rounds of about 0.23 s: the budget ends one round short of the first look (9 rounds),
    # and the eight measured already decide.
    run = measure_sequential([_pairing(time, "m", 1.3)], 2.0, clock=time.clock)
    (outcome,) = run.outcomes
    assert outcome.rounds < outcome.schedule.first
    assert outcome.verdict is Verdict.SLOWER and not run.timed_out
