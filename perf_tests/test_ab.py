"""The merge gate in pytest: `pytest -m perf --perf-reference DIR|GITREF|merge-base` judges the
candidate artifacts (--artifacts, default weights/build) against the reference's, interleaved in
one run, one test per benchmark; a `slower` verdict fails its test, and one test per benchmark's
memory and artifact size, which a `larger` verdict fails (unless accepted). Without a reference
every test is skipped with the reason. The measuring and the verdicts live in faceperf.bench.ab."""

from __future__ import annotations

import pytest

from faceperf.bench.ab.footprint import size_name
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


def test_candidate_memory_and_size_vs_reference(ab_result, ab_footprint):
    verdicts = dict(ab_result.footprint())
    assert ab_footprint in verdicts, f"{ab_footprint}: not measured ({ab_result.headline()})"
    described = {m.name: m.describe() for m in ab_result.memory}
    described |= {size_name(s): s.describe() for s in ab_result.sizes}
    assert not verdicts[ab_footprint].blocks(), (
        f"{ab_footprint}: {described[ab_footprint]} "
        f"(threshold {_threshold(ab_result, ab_footprint)})"
    )


def _threshold(result, name: str) -> str:
    for change in result.memory:
        if change.name == name:
            return change.threshold.describe()
    return next(f"±{100 * s.tolerance:g} %" for s in result.sizes if size_name(s) == name)
