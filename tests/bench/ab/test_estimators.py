"""The Wilcoxon / Hodges-Lehmann interval against brute force, the replay of recorded rounds, and
both estimators through the sequential procedure on simulated noise (docs/merge-gate.md,
"Estimators")."""

from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata, skew

from faceperf.bench.ab.estimators import (
    EXACT_MAX_N,
    Estimator,
    estimator_interval,
    hodges_lehmann_interval,
    signed_rank_critical_value,
    walsh_averages,
)
from faceperf.bench.ab.replay import Recorded, Replay, replay, replay_all, symmetry
from faceperf.bench.ab.result import outcome_json
from faceperf.bench.ab.sequential import Outcome, block_sums
from faceperf.bench.ab.stats import LookSchedule, RatioInterval, log_ratios, ratio_interval
from faceperf.verdicts import Verdict

BONFERRONI = 1 - 0.05 / 6  # every look's confidence with the default schedule
TOOL = Path(__file__).parents[3] / "tools" / "estimator_comparison.py"


def _brute_critical_value(n: int, confidence: float) -> int:
    # Every one of the 2^n sign patterns of ranks 1..n is equally likely under the null.
    patterns = itertools.product((0, 1), repeat=n)
    sums = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s) for signs in patterns]
    cdf = np.cumsum(np.bincount(sums)) / 2**n
    below = np.flatnonzero(cdf <= (1 - confidence) / 2)
    return int(below[-1]) if below.size else -1


@pytest.mark.parametrize("confidence", [0.9, 0.95, BONFERRONI])
def test_exact_critical_values_match_the_enumerated_null_distribution(confidence):
    for n in range(1, 15):
        assert signed_rank_critical_value(n, confidence) == _brute_critical_value(n, confidence)


@pytest.mark.parametrize("n", [EXACT_MAX_N + 1, 80, 200])
@pytest.mark.parametrize("confidence", [0.95, BONFERRONI])
def test_the_normal_approximation_is_close_to_the_exact_value_and_never_looser(n, confidence):
    from faceperf.bench.ab.estimators import _exact_cdf

    approx = signed_rank_critical_value(n, confidence)
    tail = (1 - confidence) / 2
    assert _exact_cdf(n, approx) <= tail  # coverage at least as claimed
    exact = approx
    while _exact_cdf(n, exact + 1) <= tail:
        exact += 1
    # It errs on the safe side by a few counts of n(n+1)/2: the interval is wider than the
    # exact one by less than 0.1 point of coverage.
    assert exact - approx <= 10
    assert 2 * (_exact_cdf(n, exact) - _exact_cdf(n, approx)) < 0.001


def test_the_estimate_is_the_median_of_all_pairwise_means():
    rng = np.random.default_rng(1)
    x = rng.normal(size=17)
    brute = [(x[i] + x[j]) / 2 for i in range(17) for j in range(i, 17)]
    assert np.array_equal(walsh_averages(x), np.sort(brute))
    assert hodges_lehmann_interval(x, 0.95)[1] == pytest.approx(statistics.median(brute))


def _positive_rank_sum(x: np.ndarray) -> float:
    return float(rankdata(np.abs(x))[x > 0].sum())


@pytest.mark.parametrize("seed", range(5))
def test_the_interval_is_the_set_of_shifts_the_signed_rank_test_accepts(seed):
    # By definition: d is inside iff the two-sided test of "centre = d" does not reject, i.e.
    # c < T+(x - d) < M - c, with T+ from the ranks, not from the Walsh averages.
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=int(rng.integers(8, 30)))
    low, _, high = hodges_lehmann_interval(x, 0.95)
    c = signed_rank_critical_value(x.size, 0.95)
    m = x.size * (x.size + 1) // 2
    for d in np.linspace(low - 1, high + 1, 401):
        accepted = c < _positive_rank_sum(x - d) < m - c
        assert accepted == (low < d < high), d


def test_too_few_values_give_an_unbounded_interval():
    # Five values: P(T+ = 0) = 1/32 > 0.025, so no 95 % bound exists.
    low, point, high = hodges_lehmann_interval([1.0, 2.0, 3.0, 4.0, 5.0], 0.95)
    assert (low, high) == (-math.inf, math.inf) and point == 3.0


def test_the_interval_covers_a_symmetric_centre_as_often_as_it_claims():
    rng = np.random.default_rng(0)
    hits = sum(
        low <= 0.3 <= high
        for low, _, high in (
            hodges_lehmann_interval(rng.standard_t(3, 30) + 0.3, 0.95) for _ in range(2000)
        )
    )
    assert 0.94 <= hits / 2000 <= 0.97  # exact, neither loose nor needlessly wide


def test_the_sign_estimator_is_the_gates_own_interval():
    rng = np.random.default_rng(2)
    reference, candidate = rng.uniform(1, 2, 40), rng.uniform(1, 2, 40)
    assert estimator_interval("sign", reference, candidate, 0.95) == ratio_interval(
        reference, candidate, 0.95
    )
    wilcoxon = estimator_interval(Estimator.WILCOXON, reference, candidate, 0.95)
    assert isinstance(wilcoxon, RatioInterval) and wilcoxon.rounds == 40
    low, point, high = hodges_lehmann_interval(log_ratios(reference, candidate), 0.95)
    assert (wilcoxon.low, wilcoxon.point, wilcoxon.high) == pytest.approx(
        (math.exp(low), math.exp(point), math.exp(high))
    )


def test_an_unknown_estimator_is_refused():
    with pytest.raises(ValueError, match="expected one of sign, wilcoxon"):
        estimator_interval("bootstrap", [1.0, 1.0], [1.0, 1.0], 0.95)


# Replay.

SCHEDULE = LookSchedule(10)  # 10, 20, 40, 80, 160, 320 rounds


def _recorded(reference_s, candidate_s, threshold=0.05, schedule=SCHEDULE) -> Recorded:
    return Recorded(
        "m", threshold, schedule, tuple(reference_s), tuple(candidate_s), Verdict.UNDECIDED
    )


def _lognormal(sigma: float):
    return lambda rng, n: 0.05 * np.exp(rng.normal(0, sigma, n))


def _spiky(p: float, extra: float):
    """A call is occasionally (probability p) ``extra`` slower: interruptions, a slow path."""
    return lambda rng, n: 0.05 * np.exp(rng.normal(0, 0.02, n)) * (1 + extra * (rng.random(n) < p))


def _simulate(rng, reference, candidate, slowdown=1.0, threshold=0.05) -> dict[Estimator, Replay]:
    # Every round the schedule could ask for is recorded, so each estimator stops on its own.
    samples = 2 * SCHEDULE.rounds_at(SCHEDULE.looks - 1)
    recorded = _recorded(
        reference(rng, samples), slowdown * candidate(rng, samples), threshold=threshold
    )
    return replay_all(recorded)


def _runs(count, seed, reference, candidate, slowdown=1.0) -> dict[Estimator, list[Replay]]:
    rng = np.random.default_rng(seed)
    runs = [_simulate(rng, reference, candidate, slowdown) for _ in range(count)]
    return {e: [run[e] for run in runs] for e in Estimator}


def _verdicts(replays: list[Replay]) -> set[Verdict]:
    return {r.verdict for r in replays}


def _mean_rounds(replays: list[Replay]) -> float:
    return statistics.mean(r.rounds for r in replays)


def test_the_sign_replay_repeats_the_gates_judgement_look_by_look():
    rng = np.random.default_rng(3)
    reference, candidate = _lognormal(0.05)(rng, 640), 1.02 * _lognormal(0.05)(rng, 640)
    result = replay(_recorded(reference, candidate), "sign")
    rounds = SCHEDULE.rounds_at(result.looks - 1)
    assert result.rounds == rounds
    assert result.interval == ratio_interval(
        block_sums(reference[: 2 * rounds]), block_sums(candidate[: 2 * rounds]),
        SCHEDULE.confidence,
    )  # fmt: skip


def test_recorded_rounds_that_end_before_a_decision_say_so():
    rng = np.random.default_rng(4)
    noisy = _lognormal(0.10)
    # 20 rounds of 10 % noise at a 3 % threshold: two looks, neither decides.
    result = replay(_recorded(noisy(rng, 40), noisy(rng, 40), threshold=0.03), "wilcoxon")
    assert result.verdict is Verdict.UNDECIDED and result.exhausted
    assert (result.looks, result.rounds) == (2, 20)
    assert result.text().startswith("undecided (recorded rounds exhausted) at look 2, 20 rounds")


def test_a_look_cut_short_by_the_budget_is_judged_on_what_it_had():
    rng = np.random.default_rng(5)
    clear = _lognormal(0.01)
    # 9 of the first look's 10 rounds: the least that bounds a sign-test interval at 99.2 %.
    result = replay(_recorded(clear(rng, 18), 1.3 * clear(rng, 18)), "sign")
    assert (result.looks, result.rounds, result.verdict) == (1, 9, Verdict.SLOWER)


def test_a_run_with_its_looks_used_up_is_undecided_but_not_exhausted():
    rng = np.random.default_rng(6)
    noisy = _lognormal(0.2)
    schedule = LookSchedule(4, looks=2)
    result = replay(_recorded(noisy(rng, 16), noisy(rng, 16), schedule=schedule), "sign")
    assert result.verdict is Verdict.UNDECIDED and not result.exhausted and result.looks == 2


def test_a_recorded_outcome_is_read_back_from_its_json():
    rng = np.random.default_rng(7)
    reference, candidate = tuple(_lognormal(0.05)(rng, 40)), tuple(_lognormal(0.05)(rng, 40))
    outcome = Outcome(
        "m", 0.03, Verdict.SAME, None, reference, candidate, 1, 2, LookSchedule(10, 6, 0.05)
    )
    recorded = Recorded.from_json(json.loads(json.dumps(outcome_json(outcome))))
    assert recorded == Recorded("m", 0.03, LookSchedule(10), reference, candidate, Verdict.SAME)
    assert recorded.rounds == 20


def test_rounds_must_be_whole():
    with pytest.raises(ValueError, match="two samples a round"):
        _recorded((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))


# Both estimators through the sequential procedure.


def test_symmetric_noise_aa_gives_no_slower_with_either_estimator():
    runs = _runs(200, 10, _lognormal(0.05), _lognormal(0.05))
    for estimator, replays in runs.items():
        assert Verdict.SLOWER not in _verdicts(replays), estimator
        assert Verdict.FASTER not in _verdicts(replays), estimator


def test_a_ten_percent_slowdown_is_caught_by_both():
    runs = _runs(100, 11, _lognormal(0.05), _lognormal(0.05), slowdown=1.10)
    for estimator, replays in runs.items():
        assert _verdicts(replays) == {Verdict.SLOWER}, estimator


def test_wilcoxon_decides_in_fewer_rounds_on_normal_noise():
    # 200 A/A runs, 5 % lognormal noise a call: the sign test needs about 1.5 times the rounds.
    runs = _runs(200, 12, _lognormal(0.05), _lognormal(0.05))
    sign, wilcoxon = _mean_rounds(runs[Estimator.SIGN]), _mean_rounds(runs[Estimator.WILCOXON])
    assert wilcoxon < 0.8 * sign, (sign, wilcoxon)


def test_spiky_noise_aa_stays_symmetric_quiet_and_favours_the_sign_test():
    # Identical sides with 10 % of calls 30 % slower: the per-call noise is skewed, but a round's
    # ratio of two exchangeable sides is symmetric, so neither estimator cries wolf. Its shape is
    # peaked with heavy shoulders (most rounds have no spike on either side), where the median
    # is the more efficient estimate: the sign test decides first.
    runs = _runs(200, 13, _spiky(0.1, 0.3), _spiky(0.1, 0.3))
    for estimator, replays in runs.items():
        assert _verdicts(replays) == {Verdict.SAME}, estimator
    sign, wilcoxon = _mean_rounds(runs[Estimator.SIGN]), _mean_rounds(runs[Estimator.WILCOXON])
    assert wilcoxon > 1.3 * sign, (sign, wilcoxon)
    rng = np.random.default_rng(14)
    ratios = log_ratios(block_sums(_spiky(0.1, 0.3)(rng, 20_000)),
                        block_sums(_spiky(0.1, 0.3)(rng, 20_000)))  # fmt: skip
    assert abs(skew(ratios)) < 0.1


def test_a_candidate_only_slow_path_pulls_the_hodges_lehmann_estimate_off_the_median():
    # The candidate takes a slow path (+20 %) in 20 % of calls: the median round is barely
    # slower, the mean round 4 % slower. The round ratios are skewed, and the two estimators
    # estimate different things: Hodges-Lehmann lands between median and mean.
    rng = np.random.default_rng(15)
    reference, candidate = _lognormal(0.02)(rng, 640), _spiky(0.2, 0.2)(rng, 640)
    ratios = log_ratios(block_sums(reference), block_sums(candidate))
    skewness, shift = symmetry(ratios)
    assert skewness > 0.5 and shift > 0.2
    recorded = _recorded(reference, candidate, schedule=LookSchedule(320, looks=1))
    sign, wilcoxon = (replay(recorded, e).interval.point for e in Estimator)
    assert wilcoxon > sign * 1.01, (sign, wilcoxon)


# The tool.


def _write_run(folder: Path, reference_s, candidate_s, threshold=0.03) -> None:
    outcome = Outcome(
        "m-optimized", threshold, Verdict.SAME, None, tuple(reference_s), tuple(candidate_s), 1,
        1, LookSchedule(10),
    )  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "ab.json").write_text(json.dumps({"benchmarks": [outcome_json(outcome)]}))


def test_the_tool_tallies_both_estimators_over_runs(tmp_path):
    rng = np.random.default_rng(16)
    for index in range(3):
        noise = _lognormal(0.05)
        _write_run(tmp_path / f"run{index:02d}", noise(rng, 80), noise(rng, 80))
    command = [sys.executable, str(TOOL), str(tmp_path), "--threshold", "0.05", "--detail",
               "--resample", "20", "--slowdown", "1.2"]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "3 ab.json files, replayed at threshold 0.05."
    (row,) = [line for line in lines if line.startswith("| m-optimized | 3 |")]
    for column in (3, 4):  # sign, wilcoxon: every run counted once
        counts = row.split("|")[column].split("(")[0].split("/")
        assert sum(int(n) for n in counts) == 3, row
    assert sum(line.startswith("m-optimized run ") for line in lines) == 6
    # Resampled from 5 % noise: A/A is all same, a 20 % slowdown all slower, both estimators.
    assert "| m-optimized | x1 | 0/20/0/0, " in done.stdout
    (slowed,) = [line for line in lines if line.startswith("| m-optimized | x1.2 |")]
    assert slowed.count("20/0/0/0, ") == 2, slowed


def test_the_tool_refuses_a_folder_without_runs(tmp_path):
    command = [sys.executable, str(TOOL), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "no ab.json" in done.stderr
