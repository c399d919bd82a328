"""The merge gate's result and report: exit codes, the ten-second summary, the JSON and plot."""

from __future__ import annotations

import json
import math

from ab_outcomes import outcome

from faceperf.bench.ab.render import PYTEST_FLAGS, markdown, plot, terminal
from faceperf.bench.ab.result import AbResult
from faceperf.verdicts import Verdict, exit_code


def _result(**kwargs) -> AbResult:
    outcomes = (
        outcome("star-optimized", Verdict.SLOWER, 1.05, 1.07, 1.09),
        outcome("mtl-optimized", Verdict.SAME, 0.99, 1.0, 1.01),
        outcome("retinaface-optimized", Verdict.SAME, 0.98, 1.0, 1.02),
        outcome("pipeline", Verdict.UNDECIDED, 0.0, 1.02, math.inf),
    )
    return AbResult(outcomes=outcomes, added=("mtl/coreml",), removed=(), **kwargs)


def _exit(result: AbResult, strict: bool = False) -> int:
    return exit_code(result.verdicts(strict), strict)


def test_slower_fails_undecided_only_when_strict_and_accepted_passes():
    result = _result()
    assert _exit(result) == 1 and _exit(result, strict=True) == 1
    assert [o.name for o in result.failing(strict=True)] == ["star-optimized", "pipeline"]
    accepted = _result(accepted={"star-optimized": "bigger model, reviewed"})
    assert _exit(accepted) == 0 and _exit(accepted, strict=True) == 1
    assert accepted.verdicts() == [
        Verdict.ACCEPTED,
        Verdict.SAME,
        Verdict.SAME,
        Verdict.UNDECIDED,
        Verdict.ADDED,
    ]


def test_the_summary_leads_with_one_verdict_line_and_folds_what_is_the_same():
    text = markdown(_result())
    first, rest = text.split("\n", 1)
    assert first.startswith("**faceperf ab: FAIL** — merge gate: FAIL, star-optimized slower (")
    assert "(5 benchmarks: 1 slower, 2 same, 1 undecided, 1 added; 0 s)" in first
    shown, folded = rest.split("<details>")
    assert "| star-optimized | slower |" in shown and "| pipeline | undecided ¹ |" in shown
    assert "| mtl/coreml | added (candidate only, not judged) |" in shown
    assert "mtl-optimized" not in shown and "| mtl-optimized | same |" in folded
    assert folded.startswith("<summary>2 more rows (2 same)</summary>")
    assert text.count("close other programs") == 1
    assert "- ¹ An `undecided` benchmark needs more rounds" in folded.split("**Notes**")[1]


def test_an_accepted_slowdown_shows_what_it_was_and_why():
    text = markdown(_result(accepted={"star-optimized": "bigger | model"}))
    assert "| star-optimized | accepted (slower): bigger \\| model |" in text
    assert text.startswith("**faceperf ab: PASS** — merge gate: PASS (")


def test_the_advice_names_the_flags_of_whoever_ran_the_gate():
    assert "(`--max-time`)" in markdown(_result()) and "`--strict`" in markdown(_result())
    from_pytest = markdown(_result(), flags=PYTEST_FLAGS)
    assert "(`--perf-ab-max-time`)" in from_pytest and "`--perf-ab-strict`" in from_pytest


def test_the_terminal_lists_the_worst_first():
    lines = terminal(_result()).splitlines()
    assert lines[0].split()[:2] == ["slower", "star-optimized"]
    assert lines[-1].startswith("faceperf ab: FAIL")


def test_json_keeps_raw_samples_and_has_no_infinity():
    document = _result().to_json()
    text = json.dumps(document, allow_nan=False)  # would raise on inf / nan
    pipeline = next(b for b in json.loads(text)["benchmarks"] if b["name"] == "pipeline")
    assert pipeline["interval"] == [None, None] and len(pipeline["reference_s"]) == 16


def test_the_plot_is_written(tmp_path):
    plot(_result(), tmp_path / "ab.png")
    assert (tmp_path / "ab.png").read_bytes()[:4] == b"\x89PNG"


def test_the_summary_says_which_benchmarks_ran_in_a_duet_and_why_none_did():
    env = {
        "modes": {"star-optimized": "duet", "mtl-optimized": "alternating", "pipeline": "duet"},
        "duet_cores": [0, 1],
    }
    text = markdown(_result(environment=env))
    assert "rounds alternate reference and candidate" in text
    assert "on cores 0 and 1, swapped within every round" in text
    assert "weighs on both: star-optimized, pipeline." in text
    all_duet = markdown(_result(environment={**env, "modes": {"star-optimized": "duet"}}))
    assert "rounds alternate" not in all_duet
    refused = {"modes": {"star-optimized": "alternating"}, "duet_unavailable": "one core"}
    text = markdown(_result(environment=refused))
    assert "no duet here, every benchmark alternating: one core." in text
