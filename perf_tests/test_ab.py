"""The merge gate in pytest: `pytest -m perf --perf-reference DIR|GITREF|merge-base` judges the
candidate artifacts (--artifacts, default weights/build) against the reference's, interleaved in
one run, one test per benchmark; a `slower` verdict fails its test. Without a reference every
test is skipped with the reason. The measuring and the verdicts live in faceperf.bench.ab."""

from __future__ import annotations

import pytest

from faceperf.bench.ab.render import terminal
from faceperf.verdicts import Verdict

pytestmark = pytest.mark.perf


def test_candidate_vs_reference(ab_result, ab_strict, ab_benchmark):
    outcome = next(o for o in ab_result.outcomes if o.name == ab_benchmark)
    interval = "no rounds" if outcome.interval is None else outcome.interval.text()
    described = (
        f"{ab_benchmark}: candidate / reference {interval} over {outcome.rounds} rounds "
        f"(threshold ±{100 * outcome.threshold:g} %)"
    )
    verdict = ab_result.verdict_of(outcome, ab_strict)
    if verdict is Verdict.UNDECIDED:
        undecided = f"{described}: undecided when the time budget ended"
        if verdict.blocks(ab_strict):
            pytest.fail(f"{undecided} (--perf-ab-strict)")
        pytest.skip(f"{undecided}; more --perf-ab-max-time")
    assert not verdict.blocks(ab_strict), f"{described}: SLOWER\n{terminal(ab_result, ab_strict)}"
