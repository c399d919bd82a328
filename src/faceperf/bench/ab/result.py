"""The merge gate's result: every benchmark's verdict (as it counts, once a reviewer's acceptance
is applied), its memory and its artifact's size, and the JSON that keeps every raw round and
memory record beside the environment and both artifact sets' fingerprints. The exit status is
faceperf.verdicts' rule over :meth:`AbResult.verdicts`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from faceperf.bench.ab.footprint import size_name
from faceperf.bench.ab.sequential import Outcome
from faceperf.bench.explain.coreml import NotExplained, PlanExplanation
from faceperf.bench.explain.diff import Explanation
from faceperf.bench.memory.compare import MemoryChange
from faceperf.bench.memory.size import SizeChange
from faceperf.verdicts import Verdict

AB_JSON_VERSION = 2  # 2: memory and sizes


@dataclass(frozen=True)
class AbResult:
    """One merge-gate run.

    Args:
        outcomes: the judged benchmarks, in measuring order.
        added: ``model/variant`` only the candidate has.
        removed: ``model/variant`` only the reference has.
        accepted: benchmark name → a reviewer's reason to accept its slowdown.
        timed_out: the time budget ended with benchmarks still undecided.
        elapsed_s: seconds the measuring took (sessions opened before it).
        environment: profile, versions, backend, threads, seed, budget, date.
        sides: ``reference`` / ``candidate`` → folder and artifact fingerprints.
        memory: each benchmark's memory, candidate against reference (``<name>:memory``).
        sizes: each single-model benchmark's artifact on disk (``<name>:size``).
        explanations: a ``slower`` benchmark's name → the operations behind it, one per
            profiled artifact (a composite's changed models), bench/explain.
    """

    outcomes: tuple[Outcome, ...]
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    accepted: Mapping[str, str] = field(default_factory=dict)
    timed_out: bool = False
    elapsed_s: float = 0.0
    environment: Mapping[str, object] = field(default_factory=dict)
    sides: Mapping[str, object] = field(default_factory=dict)
    memory: tuple[MemoryChange, ...] = ()
    sizes: tuple[SizeChange, ...] = ()
    explanations: Mapping[str, tuple[Explanation | PlanExplanation | NotExplained, ...]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        object.__setattr__(self, "memory", tuple(self.memory))
        object.__setattr__(self, "sizes", tuple(self.sizes))
        object.__setattr__(
            self,
            "explanations",
            MappingProxyType({k: tuple(v) for k, v in self.explanations.items()}),
        )
        object.__setattr__(self, "accepted", MappingProxyType(dict(self.accepted)))

    def verdict_of(self, outcome: Outcome, strict: bool = False) -> Verdict:
        """The verdict that counts: a blocking one a reviewer accepted is ``accepted``."""
        return self.counted_verdict(outcome.name, outcome.verdict, strict)

    def counted_verdict(self, name: str, verdict: Verdict, strict: bool = False) -> Verdict:
        """A verdict as it counts (time, memory or size): a blocking one a reviewer accepted
        is ``accepted``."""
        if name in self.accepted and verdict.blocks(strict):
            return Verdict.ACCEPTED
        return verdict

    def footprint(self) -> list[tuple[str, Verdict]]:
        """Every memory and size verdict by name, as it counts, memory first."""
        named = [(m.name, m.verdict) for m in self.memory]
        named += [(size_name(s), s.verdict) for s in self.sizes]
        return [(name, self.counted_verdict(name, verdict)) for name, verdict in named]

    def verdicts(self, strict: bool = False) -> list[Verdict]:
        """Every verdict of the run: one per benchmark, its memory and size, then ``added`` and
        ``removed``."""
        return [
            *(self.verdict_of(o, strict) for o in self.outcomes),
            *(verdict for _, verdict in self.footprint()),
            *(Verdict.ADDED for _ in self.added),
            *(Verdict.REMOVED for _ in self.removed),
        ]

    def failing(self, strict: bool = False) -> list[Outcome]:
        """Benchmarks that fail the gate: ``slower`` and not accepted; with ``strict``, also
        ``undecided``."""
        return [o for o in self.outcomes if self.verdict_of(o, strict).blocks(strict)]

    def headline(self, strict: bool = False) -> str:
        """The one verdict line a reviewer reads first."""
        raw = [o.verdict for o in self.outcomes]
        counts = ", ".join(
            f"{raw.count(v)} {v.value}"
            for v in (Verdict.SLOWER, Verdict.SAME, Verdict.FASTER, Verdict.UNDECIDED)
            if raw.count(v) or v is Verdict.SLOWER
        )
        failing = self.failing(strict)
        larger = [name for name, verdict in self.footprint() if verdict.blocks()]
        parts = []
        if failing:
            slower = all(o.verdict is Verdict.SLOWER for o in failing)
            what = "slower" if slower else "slower or not decided"
            parts.append(f"{', '.join(o.name for o in failing)} {what}")
        if larger:
            parts.append(f"{', '.join(larger)} larger")
        status = f"FAIL: {'; '.join(parts)}" if parts else "PASS"
        extra = ""
        if self.memory or self.sizes:
            extra += f"; memory and size: {len(larger)} larger"
        if self.added or self.removed:
            extra += f"; {len(self.added)} added, {len(self.removed)} removed"
        return (
            f"faceperf ab: {status} — {len(self.outcomes)} benchmarks: {counts}{extra} "
            f"({self.elapsed_s:.0f} s)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "faceperf_ab": AB_JSON_VERSION,
            "environment": dict(self.environment),
            "sides": dict(self.sides),
            "timed_out": self.timed_out,
            "elapsed_s": self.elapsed_s,
            "added": list(self.added),
            "removed": list(self.removed),
            "accepted": dict(self.accepted),
            "benchmarks": [outcome_json(o, self.accepted.get(o.name)) for o in self.outcomes],
            "memory": [m.to_json() for m in self.memory],
            "sizes": [{"name": size_name(s), **s.to_json()} for s in self.sizes],
            "explanations": {
                name: [e.to_json() for e in found] for name, found in self.explanations.items()
            },
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def outcome_json(outcome: Outcome, accepted: str | None = None) -> dict[str, object]:
    interval = outcome.interval
    return {
        "name": outcome.name,
        "verdict": outcome.verdict.value,
        "accepted": accepted,
        "threshold": outcome.threshold,
        "ratio": None if interval is None else interval.point,
        # An unbounded side (too few rounds) is null: JSON has no infinity.
        "interval": None if interval is None else [_finite(interval.low), _finite(interval.high)],
        "confidence": outcome.schedule.confidence,
        "rounds": outcome.rounds,
        "looks": outcome.looks,
        "schedule": {
            "first": outcome.schedule.first,
            "looks": outcome.schedule.looks,
            "alpha": outcome.schedule.alpha,
        },
        "calls_per_sample": outcome.inner,
        "reference_s": list(outcome.reference_s),
        "candidate_s": list(outcome.candidate_s),
    }
