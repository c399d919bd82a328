"""A merge-gate outcome with a given verdict and interval, for the tests of its rendering."""

from __future__ import annotations

from faceperf.bench.ab.sequential import Outcome
from faceperf.bench.ab.stats import LookSchedule, RatioInterval
from faceperf.verdicts import Verdict


def outcome(name: str, verdict: Verdict, low: float, point: float, high: float) -> Outcome:
    """Sixteen rounds of 0.1 s a side, judged ``verdict`` with the interval [low, high]."""
    return Outcome(
        name=name,
        threshold=0.03,
        verdict=verdict,
        interval=RatioInterval(low, point, high, 0.99, 8),
        reference_s=(0.1,) * 16,
        candidate_s=(0.1,) * 16,
        inner=1,
        looks=1,
        schedule=LookSchedule(8),
    )
