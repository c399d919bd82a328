"""Every perf summary in one shape, whichever gates ran: the merge gate only, the baseline gate
only, both, or neither deciding anything (a fresh clone: no reference, no baseline). Real
sections built from synthetic runs, laid out by bench/report/render.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_outcomes import outcome
from summary_shape import check_summary_shape

from faceperf.bench.ab.render import PYTEST_FLAGS, ab_section
from faceperf.bench.ab.render import not_run_section as ab_not_run
from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.sequential import Outcome
from faceperf.bench.gate.compare import (
    SUGGEST_MORE_ROUNDS,
    SUGGEST_QUIET_MACHINE,
    GatePolicy,
    compare_runs,
)
from faceperf.bench.gate.render import BASELINE_KEY, gate_section, no_baseline_section
from faceperf.bench.gate.storage import BenchmarkRun, BenchmarkSamples
from faceperf.bench.report.render import summary_markdown, verdict_line
from faceperf.bench.report.summary import Row, Section, Summary
from faceperf.verdicts import EXIT_FAILED, EXIT_OK, Verdict

PROFILE = "linux-x86_64-avx512/ort-cpu"
TITLE = f"faceperf perf on {PROFILE}"
UNDECIDED_ADVICE = "An `undecided` benchmark needs more rounds"


def _outcome(name: str, verdict: Verdict, point: float) -> Outcome:
    if verdict is Verdict.UNDECIDED:
        return outcome(name, verdict, 0.0, point, math.inf)
    return outcome(name, verdict, point - 0.01, point, point + 0.01)


def _ab(*verdicts: Verdict) -> AbResult:
    points = {Verdict.SLOWER: 1.08, Verdict.FASTER: 0.9, Verdict.SAME: 1.0, Verdict.UNDECIDED: 1.0}
    outcomes = [_outcome(f"model{i}-optimized", v, points[v]) for i, v in enumerate(verdicts)]
    return AbResult(outcomes=tuple(outcomes), elapsed_s=93.0)


def _timings(seed: int, median_s: float, noise: float = 0.03, n: int = 30) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(median_s * np.exp(rng.normal(0.0, noise, n)))


def _run(**medians: tuple[float, float]) -> BenchmarkRun:
    """name → (median seconds, noise)."""
    samples = [
        BenchmarkSamples(f"perf_tests/test_latency.py::{name}", _timings(i, median, noise))
        for i, (name, (median, noise)) in enumerate(medians.items())
    ]
    return BenchmarkRun.of(PROFILE, {"onnxruntime": "1.31.1"}, samples)


def _noisy_gate(slower: bool) -> Section:
    """52 benchmarks as a shared runner measures them: 45 of them noisy, one slower or not."""
    names = [f"test_latency[m{i}]" for i in range(52)]
    base = {name: (0.01, 0.2 if i < 45 else 0.01) for i, name in enumerate(names)}
    cur = dict(base)
    if slower:
        cur[names[-1]] = (0.013, 0.01)
    return gate_section(compare_runs(_run(**base), _run(**cur), GatePolicy()))


def _summaries() -> dict[str, Summary]:
    measured = _run(test_a=(0.01, 0.01), test_b=(0.02, 0.01))
    no_baseline = no_baseline_section(measured, f"no baseline for {PROFILE}", "Record one.")
    passing_ab = ab_section(_ab(Verdict.SAME, Verdict.SAME, Verdict.FASTER), flags=PYTEST_FLAGS)
    failing_ab = ab_section(
        _ab(Verdict.SLOWER, Verdict.SAME, Verdict.UNDECIDED, Verdict.UNDECIDED), flags=PYTEST_FLAGS
    )
    return {
        "merge gate only": Summary("faceperf ab", (failing_ab,)),
        "baseline gate only": Summary(TITLE, (_noisy_gate(slower=True),)),
        "both": Summary(TITLE, (passing_ab, _noisy_gate(slower=False))),
        "both failing": Summary(TITLE, (failing_ab, _noisy_gate(slower=True))),
        "neither": Summary(TITLE, (ab_not_run("no --perf-reference"), no_baseline)),
    }


@pytest.mark.parametrize("case", list(_summaries()))
def test_every_summary_has_the_verdict_line_first_the_deciding_rows_and_the_rest_folded(case):
    check_summary_shape(summary_markdown(_summaries()[case]))


def test_the_shape_check_fails_a_summary_that_repeats_advice_or_shows_a_same_row():
    text = summary_markdown(Summary(TITLE, (_noisy_gate(slower=True),)))
    slower = next(line for line in text.splitlines() if "| **slower** |" in line)
    same = next(line for line in text.splitlines() if "| same" in line)
    with pytest.raises(AssertionError, match="outside <details>"):
        check_summary_shape(text.replace(slower, f"{slower}\n{same}"))
    with pytest.raises(AssertionError, match="said more than once"):
        check_summary_shape(text + f"\n- Noisy samples: {SUGGEST_QUIET_MACHINE}.\n")
    with pytest.raises(AssertionError, match="verdict line"):
        check_summary_shape("\n" + text)


def test_advice_is_said_once_and_every_noisy_row_points_at_it():
    text = summary_markdown(Summary(TITLE, (_noisy_gate(slower=True),)))
    assert text.count(SUGGEST_QUIET_MACHINE) == 1
    assert text.count(SUGGEST_MORE_ROUNDS) == 1
    notes = text.split("**Notes**")[1]
    assert f"- ¹ Noisy samples: {SUGGEST_QUIET_MACHINE}." in notes
    assert f"- ² Too few samples, or noisy ones: {SUGGEST_MORE_ROUNDS}." in notes
    noisy = [line for line in text.splitlines() if "⚠ unstable" in line]
    assert len(noisy) == 45 and all(line.endswith(" ¹ ² |") for line in noisy)
    # What is particular to a row stays in it.
    assert all("noisy: interquartile range is" in line for line in noisy)


def test_the_verdict_line_names_what_fails_and_counts_every_gate():
    line = verdict_line(_summaries()["both failing"])
    assert line == (
        f"{TITLE}: FAIL — merge gate: FAIL, model0-optimized slower (4 benchmarks: 1 slower, "
        "1 same, 2 undecided; 93 s) · baseline gate: FAIL, test_latency[m51] slower "
        "(52 benchmarks: 1 slower, 51 same)"
    )
    both = summary_markdown(_summaries()["both"])
    assert both.startswith(f"**{TITLE}: PASS** — merge gate: PASS (3 benchmarks: 2 same, 1 faster")


def test_a_run_that_compared_nothing_says_so_and_why():
    text = summary_markdown(_summaries()["neither"])
    first = text.splitlines()[0]
    assert first == (
        f"**{TITLE}: nothing compared** — merge gate: not run (no --perf-reference) · "
        f"baseline gate: not run (no baseline for {PROFILE})"
    )
    assert "<summary>2 more rows (2 measured)</summary>" in text
    assert "- Baseline gate: Record one." in text


def test_undecided_advice_is_said_once_with_the_flags_of_whoever_ran_the_gate():
    text = summary_markdown(_summaries()["both failing"])
    assert text.count(UNDECIDED_ADVICE) == 1
    assert "(`--perf-ab-max-time`)" in text and "`--perf-ab-strict`" in text
    undecided = [line for line in text.splitlines() if "| undecided" in line]
    assert len(undecided) == 2 and all("undecided ¹" in line for line in undecided)


def test_strict_fails_undecided_and_the_no_gate_run_ignores_the_baseline_gate():
    ab = _ab(Verdict.SAME, Verdict.UNDECIDED)
    assert Summary(TITLE, (ab_section(ab),)).exit_code() == EXIT_OK
    strict = Summary(TITLE, (ab_section(ab, strict=True),))
    assert strict.exit_code() == EXIT_FAILED
    assert verdict_line(strict).startswith(f"{TITLE}: FAIL — merge gate: FAIL, model1-optimized")
    both = Summary(TITLE, (ab_section(ab), _noisy_gate(slower=True)))
    assert both.exit_code() == EXIT_FAILED
    assert both.exit_code(ignore={BASELINE_KEY}) == EXIT_OK


def test_a_run_level_problem_fails_its_section_and_leads_the_verdict_line():
    empty = compare_runs(_run(test_a=(0.01, 0.01)), _run(), GatePolicy())
    summary = Summary(TITLE, (gate_section(empty),))
    assert summary.exit_code() == EXIT_FAILED
    assert verdict_line(summary) == (
        f"{TITLE}: FAIL — baseline gate: FAIL, the current run measured no benchmarks "
        "(1 benchmark: 1 removed)"
    )


def test_many_blocking_rows_are_counted_not_all_named():
    rows = tuple(Row(f"b{i}", Verdict.SLOWER, (f"b{i}", "slower")) for i in range(5))
    section = Section(
        "x", "gate", columns=("benchmark", "verdict"), align=("---", "---"), rows=rows
    )
    assert verdict_line(Summary("t", (section,))) == (
        "t: FAIL — gate: FAIL, b0 slower, b1 slower, b2 slower and 2 more (5 benchmarks: 5 slower)"
    )


def test_a_row_with_the_wrong_number_of_cells_is_refused():
    with pytest.raises(ValueError, match="row 'b' has 1 cells, expected 2"):
        Section("x", "gate", columns=("a", "b"), align=("-", "-"), rows=(Row("b", None, ("1",)),))
