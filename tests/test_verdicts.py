"""The one verdict vocabulary and exit-code rule (faceperf.verdicts)."""

from __future__ import annotations

import pytest

from faceperf.verdicts import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Verdict,
    combine,
    exit_code,
    worst_exit,
)


@pytest.mark.parametrize("verdict", [Verdict.SLOWER, Verdict.LARGER, Verdict.FAIL])
def test_what_blocks_fails_the_run(verdict: Verdict) -> None:
    assert exit_code([Verdict.SAME, verdict, Verdict.PASS]) == EXIT_FAILED


def test_undecided_blocks_only_under_strict() -> None:
    assert exit_code([Verdict.UNDECIDED]) == EXIT_OK
    assert exit_code([Verdict.UNDECIDED], strict=True) == EXIT_FAILED


def test_nothing_that_blocks_passes() -> None:
    assert exit_code(v for v in Verdict if not v.blocks(strict=True)) == EXIT_OK
    assert exit_code([]) == EXIT_OK


def test_what_a_reviewer_reads_and_what_folds_away() -> None:
    deciding = {v for v in Verdict if v.decides}
    assert {Verdict.SLOWER, Verdict.FASTER, Verdict.FAIL, Verdict.UNDECIDED} <= deciding
    assert not deciding & {Verdict.SAME, Verdict.PASS, Verdict.NOT_GATED, Verdict.SKIPPED}


def test_combine_a_whole_from_its_parts() -> None:
    assert combine([Verdict.PASS, Verdict.FAIL, Verdict.SKIPPED]) is Verdict.FAIL
    assert combine([Verdict.PASS, Verdict.SKIPPED]) is Verdict.PASS
    assert combine([Verdict.SKIPPED, Verdict.SKIPPED]) is Verdict.SKIPPED
    assert combine([]) is Verdict.SKIPPED


def test_gates_run_together_exit_with_the_worst() -> None:
    assert worst_exit(EXIT_OK, EXIT_FAILED, EXIT_USAGE) == EXIT_USAGE
    assert worst_exit(EXIT_USAGE, EXIT_INTERRUPTED) == EXIT_INTERRUPTED
    assert worst_exit() == EXIT_OK
