"""Replaying one benchmark's recorded rounds through the merge gate's sequential procedure with
another estimator: the same looks (``LookSchedule``), the same verdict rule (``judge``), only the
interval differs.

A recorded run stops measuring a benchmark once it decides, so its rounds are a prefix: an
estimator that would have needed more rounds than were recorded ends "undecided (recorded rounds
exhausted)", never with a verdict drawn from rounds that were not measured. Because the recording
stopped when *its* estimator decided, this censoring favours the estimator that made the
recording; a recording meant for comparison should be made with a threshold the benchmark is
unlikely to meet, and replayed at the real one (``threshold=``).

A look that the time budget cut short was judged on the rounds it had, so the replay judges a
final partial look too, as the gate did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import median_abs_deviation, skew

from faceperf.bench.ab.estimators import Estimator, estimator_interval
from faceperf.bench.ab.sequential import block_sums
from faceperf.bench.ab.stats import LookSchedule, RatioInterval, judge
from faceperf.verdicts import Verdict


@dataclass(frozen=True)
class Recorded:
    """One benchmark's rounds as a run recorded them (``Outcome`` / ab.json).

    Args:
        name: the benchmark.
        threshold: the relative change that matters.
        schedule: the looks it was judged on.
        reference_s, candidate_s: per-call seconds of every sample, two per round in order.
        verdict: the verdict the run gave.
    """

    name: str
    threshold: float
    schedule: LookSchedule
    reference_s: tuple[float, ...]
    candidate_s: tuple[float, ...]
    verdict: Verdict

    def __post_init__(self) -> None:
        if len(self.reference_s) != len(self.candidate_s) or len(self.reference_s) % 2:
            raise ValueError(
                f"{self.name}: expected two samples a round on each side, got "
                f"{len(self.reference_s)} and {len(self.candidate_s)}"
            )

    @property
    def rounds(self) -> int:
        return len(self.reference_s) // 2

    @classmethod
    def from_json(cls, bench: Mapping[str, Any]) -> Recorded:
        """One entry of ab.json's ``benchmarks`` (result.outcome_json)."""
        try:
            schedule = bench["schedule"]
            return cls(
                name=str(bench["name"]),
                threshold=float(bench["threshold"]),
                schedule=LookSchedule(
                    int(schedule["first"]), int(schedule["looks"]), float(schedule["alpha"])
                ),
                reference_s=tuple(float(s) for s in bench["reference_s"]),
                candidate_s=tuple(float(s) for s in bench["candidate_s"]),
                verdict=Verdict(bench["verdict"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"{bench.get('name')!r}: not a recorded benchmark: {error}") from None


@dataclass(frozen=True)
class Replay:
    """What one estimator decides on recorded rounds.

    Args:
        estimator: the interval used.
        verdict: its verdict at its last look.
        looks: looks taken (0: fewer than two rounds recorded).
        rounds: rounds its last look was judged on.
        interval: its last look's interval (None: no look).
        exhausted: undecided because the recorded rounds ended before its looks did.
    """

    estimator: Estimator
    verdict: Verdict
    looks: int
    rounds: int
    interval: RatioInterval | None
    exhausted: bool

    @property
    def decided(self) -> bool:
        return self.verdict is not Verdict.UNDECIDED

    def text(self) -> str:
        if self.interval is None:
            return "undecided (fewer than two rounds recorded)"
        verdict = self.verdict.value
        if self.exhausted:
            verdict += " (recorded rounds exhausted)"
        return f"{verdict} at look {self.looks}, {self.rounds} rounds: {self.interval.text()}"


def replay(
    recorded: Recorded, estimator: Estimator | str, threshold: float | None = None
) -> Replay:
    """The sequential procedure on ``recorded``'s rounds with ``estimator``'s interval.

    Args:
        recorded: one benchmark's rounds.
        estimator: ``sign`` or ``wilcoxon``.
        threshold: judge at this threshold instead of the recorded one.
    """
    chosen = estimator if isinstance(estimator, Estimator) else Estimator.parse(estimator)
    limit = recorded.threshold if threshold is None else threshold
    reference, candidate = block_sums(recorded.reference_s), block_sums(recorded.candidate_s)
    schedule = recorded.schedule
    verdict, interval, looks, rounds = Verdict.UNDECIDED, None, 0, 0
    for look in range(schedule.looks):
        # Rounds of this look, or what was recorded of it if the budget cut it short.
        target = min(schedule.rounds_at(look), recorded.rounds)
        if target <= rounds or target < 2:
            break
        rounds, looks = target, look + 1
        interval = estimator_interval(
            chosen, reference[:rounds], candidate[:rounds], schedule.confidence
        )
        verdict = judge(interval, limit)
        if verdict is not Verdict.UNDECIDED:
            break
    exhausted = verdict is Verdict.UNDECIDED and looks < schedule.looks
    return Replay(chosen, verdict, looks, rounds, interval, exhausted)


def replay_all(recorded: Recorded, threshold: float | None = None) -> dict[Estimator, Replay]:
    """:func:`replay` with every estimator."""
    return {e: replay(recorded, e, threshold) for e in Estimator}


def symmetry(values: Sequence[float]) -> tuple[float, float]:
    """(skewness, (mean - median) / MAD-sigma) of per-round log ratios: both near 0 when the
    values are symmetric, as the Wilcoxon interval assumes. NaN for fewer than three values."""
    x = np.asarray(values, dtype=float)
    if x.size < 3:
        return math.nan, math.nan
    spread = float(median_abs_deviation(x, scale="normal"))
    shift = (float(np.mean(x)) - float(np.median(x))) / spread if spread > 0 else math.nan
    return float(skew(x, bias=False)), shift
