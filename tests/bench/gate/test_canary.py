"""The canary: paired with each round, it lets the gate tell a slower artifact from a slower
machine. Synthetic timings (seeded), and a fake clock for the pairing."""

from __future__ import annotations

import re

import numpy as np
import pytest

from faceperf.bench.gate.canary import CANARY_KEY, Canary, canary_ratios, pedantic_with_canary
from faceperf.bench.gate.compare import GatePolicy, compare_runs
from faceperf.bench.gate.storage import BenchmarkRun, BenchmarkSamples
from faceperf.verdicts import Verdict

PROFILE = "linux-x86_64-avx512/ort-cpu"
NAME = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[star-optimized]"


def _machine(seed: int, n: int = 20) -> np.ndarray:
    """How slow the machine is at each round: slow phases of +30 % come and go."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.5, 1.0, 1.3) * np.exp(rng.normal(0, 0.01, n))


def _run(work_s: float, machine: np.ndarray, seed: int, with_canary: bool = True) -> BenchmarkRun:
    rng = np.random.default_rng(seed)
    samples = work_s * machine * np.exp(rng.normal(0, 0.01, len(machine)))
    pulses = 0.004 * machine * np.exp(rng.normal(0, 0.01, len(machine)))
    extra = {CANARY_KEY: pulses.tolist()} if with_canary else {}
    return BenchmarkRun.of(PROFILE, {}, [BenchmarkSamples(NAME, tuple(samples), extra)])


def _row(base: BenchmarkRun, cur: BenchmarkRun):
    (row,) = compare_runs(base, cur, GatePolicy()).rows
    return row


def test_a_slower_machine_is_not_a_regression_when_the_canary_saw_it():
    base = _run(0.2, np.ones(20), seed=1)
    for seed in range(20):
        cur = _run(0.2, 1.3 * np.ones(20), seed=100 + seed)  # the whole run 30 % slower
        row = _row(base, cur)
        assert row.verdict is Verdict.SAME, row
        machine, raw = re.search(r"machine ([+-]\d+)%, raw ([+-][\d.]+)%", row.note).groups()
        assert abs(float(machine) - 30) <= 3 and abs(float(raw) - 30) <= 3


def test_without_the_canary_the_same_runs_are_a_false_alarm():
    # The control: what the canary is for.
    base = _run(0.2, np.ones(20), seed=1, with_canary=False)
    cur = _run(0.2, 1.3 * np.ones(20), seed=2, with_canary=False)
    assert _row(base, cur).verdict is Verdict.SLOWER


def test_a_slower_artifact_is_flagged_whatever_the_machine_did():
    for seed in range(20):
        base = _run(0.2, _machine(seed), seed=seed)
        cur = _run(0.2 * 1.15, _machine(50 + seed), seed=50 + seed)
        row = _row(base, cur)
        assert row.verdict is Verdict.SLOWER, row
        assert row.change == pytest.approx(0.15, abs=0.03)


def test_ratios_need_one_positive_pulse_per_round():
    assert canary_ratios([2.0, 4.0], [1.0, 2.0]) == (2.0, 2.0)
    assert canary_ratios([2.0, 4.0], [1.0]) is None
    assert canary_ratios([2.0], None) is None
    assert canary_ratios([2.0], [0.0]) is None
    assert canary_ratios([2.0], [True]) is None


class _FakeBenchmark:
    """pytest-benchmark's pedantic: setup before every round, warm-up rounds first."""

    def __init__(self, disabled: bool = False) -> None:
        self.disabled = disabled
        self.extra_info: dict = {}

    def pedantic(self, target, setup, rounds, warmup_rounds):
        result = None
        for _ in range(warmup_rounds + rounds):
            args, kwargs = setup()
            result = target(*args, **kwargs)
        return result


def test_one_pulse_is_kept_per_timed_round_not_for_warm_up():
    pulses = iter([0.1, 0.2, 0.3, 0.4, 0.5])
    benchmark = _FakeBenchmark()
    result = pedantic_with_canary(
        benchmark, lambda x: x * 2, (21,), rounds=3, warmup_rounds=2, canary=lambda: next(pulses)
    )
    assert result == 42
    assert benchmark.extra_info[CANARY_KEY] == [0.3, 0.4, 0.5]


def test_smoke_mode_records_no_pulses():
    benchmark = _FakeBenchmark(disabled=True)
    pedantic_with_canary(benchmark, lambda: None, rounds=1, warmup_rounds=0, canary=lambda: 1.0)
    assert CANARY_KEY not in benchmark.extra_info


def test_the_canary_times_itself_with_the_injected_clock():
    ticks = iter([10.0, 10.004])
    canary = Canary(threads=1, clock=lambda: next(ticks))
    assert canary.time_once() == pytest.approx(0.004)
