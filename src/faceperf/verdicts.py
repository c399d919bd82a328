"""The one verdict vocabulary and the one exit-code rule of every faceperf gate.

The merge gate, the baseline gate, the budgets, the accuracy check and the fault catalogue each
judge something different, but they speak these words and turn them into an exit status the
same way, whichever front end (the ``faceperf`` command or the pytest plugins) reports them:

- time: ``slower`` / ``same`` / ``faster`` / ``undecided`` (measure more);
- size and memory: ``larger`` / ``smaller`` (and ``same``);
- a limit, a check or a fault: ``pass`` / ``fail``;
- a sustained run: ``throttled`` (its rate fell over the minutes) or ``pass``;
- and what is reported but never judged: ``accepted`` (a reviewer's reason), ``not gated``
  (budgets.toml says why), ``added`` / ``removed`` (on one side only), ``skipped``.

Exit codes: 0 when nothing blocks, 1 when a verdict blocks (``slower``, ``larger``, ``fail``,
``throttled``; ``undecided`` too under ``strict``), 2 for input the user must fix or a
comparison refused (another CPU's baseline), 130 on Ctrl-C. Library code returns verdicts; only
the CLI and the plugins print them and exit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1  # a verdict blocks: slower, larger, fail, throttled (undecided under strict)
EXIT_USAGE = 2  # bad input the user can fix, or a refused comparison
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


class Verdict(enum.StrEnum):
    """What a gate says of one thing it judged."""

    SLOWER = "slower"
    SAME = "same"
    FASTER = "faster"
    UNDECIDED = "undecided"
    LARGER = "larger"
    SMALLER = "smaller"
    PASS = "pass"
    FAIL = "fail"
    THROTTLED = "throttled"
    ACCEPTED = "accepted"
    NOT_GATED = "not gated"
    ADDED = "added"
    REMOVED = "removed"
    SKIPPED = "skipped"

    def blocks(self, strict: bool = False) -> bool:
        """True when this verdict fails the run (``undecided`` only under ``strict``)."""
        return self in _BLOCKING or (strict and self is Verdict.UNDECIDED)

    @property
    def decides(self) -> bool:
        """True when a reviewer must read this row (it blocks, or something moved); the rest of
        a report (same, not gated, skipped, ...) can fold away."""
        return self in _DECIDING


_BLOCKING = frozenset({Verdict.SLOWER, Verdict.LARGER, Verdict.FAIL, Verdict.THROTTLED})
_DECIDING = _BLOCKING | {
    Verdict.FASTER,
    Verdict.SMALLER,
    Verdict.UNDECIDED,
    Verdict.ACCEPTED,
    Verdict.ADDED,
    Verdict.REMOVED,
}


def combine(parts: Iterable[Verdict]) -> Verdict:
    """One pass/fail verdict for a whole made of checked parts: ``fail`` when any part fails,
    ``skipped`` when every part was skipped (or there are none), else ``pass``."""
    parts = list(parts)
    if Verdict.FAIL in parts:
        return Verdict.FAIL
    if all(v is Verdict.SKIPPED for v in parts):
        return Verdict.SKIPPED
    return Verdict.PASS


def exit_code(verdicts: Iterable[Verdict], strict: bool = False) -> int:
    """The exit status of a run that reached these verdicts: 1 when any blocks, else 0.

    Args:
        verdicts: every verdict of the run, of every gate that ran.
        strict: ``undecided`` blocks too (``--strict``, ``--perf-ab-strict``).
    """
    return EXIT_FAILED if any(v.blocks(strict) for v in verdicts) else EXIT_OK


def worst_exit(*codes: int) -> int:
    """The exit status of several gates run together: usage (2) over failed (1) over ok (0);
    an interruption (130) over all."""
    if EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    return max(codes, default=EXIT_OK)
