"""Two artifacts' memory, phase by phase: ``larger``, ``smaller`` or ``same``.

What is compared is each phase's peak above the process's floor (what opening the artifact, or
running it, added), never the absolute figure: the floor is the interpreter and its libraries,
which both sides share. A phase is ``larger`` when the candidate adds more than the threshold
allows over the reference: a fraction of the reference's figure, and never less than a fixed
number of bytes (page and allocator granularity moves a small model's figure by a fixed amount,
not a fraction). Memory is far steadier than time (docs/memory.md: repeats of one build spread
by at most 0.77 MiB in 10 A/A runs of two separate builds), so one fresh process a side decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from faceperf.bench.memory.peak import (
    PHASES,
    MemoryPeaks,
    MemoryRequest,
    measure_many,
    measure_peaks,
)
from faceperf.verdicts import Verdict

MIB = 2**20
DEFAULT_RELATIVE = 0.01
DEFAULT_MIN_MIB = 2.0


@dataclass(frozen=True)
class MemoryThreshold:
    """How much more a candidate's phase may add before it is ``larger``: ``relative`` of the
    reference's figure, and at least ``min_mib`` MiB.

    Raises:
        ValueError: ``relative`` not in [0, 1), or ``min_mib`` negative.
    """

    relative: float = DEFAULT_RELATIVE
    min_mib: float = DEFAULT_MIN_MIB

    def __post_init__(self) -> None:
        if not 0 <= self.relative < 1:
            raise ValueError(f"memory threshold {self.relative!r}: expected a fraction in [0, 1)")
        if not self.min_mib >= 0:
            raise ValueError(f"memory min_mib {self.min_mib!r}: expected 0 or more MiB")

    def allowed_bytes(self, reference_bytes: int) -> float:
        """The most bytes the candidate may differ by from ``reference_bytes``."""
        return max(self.relative * abs(reference_bytes), self.min_mib * MIB)

    def describe(self) -> str:
        """``max(1 %, 2 MiB)``."""
        return f"max({100 * self.relative:g} %, {self.min_mib:g} MiB)"

    def to_json(self) -> dict[str, float]:
        return {"relative": self.relative, "min_mib": self.min_mib}


def memory_verdict(
    reference_bytes: int, candidate_bytes: int, threshold: MemoryThreshold
) -> Verdict:
    """LARGER when the candidate adds more than the threshold allows, SMALLER when it adds as
    much less, else SAME."""
    allowed = threshold.allowed_bytes(reference_bytes)
    if candidate_bytes - reference_bytes > allowed:
        return Verdict.LARGER
    if reference_bytes - candidate_bytes > allowed:
        return Verdict.SMALLER
    return Verdict.SAME


@dataclass(frozen=True)
class PhaseChange:
    """One phase, reference against candidate: each side's peak above its floor."""

    phase: str
    reference_bytes: int
    candidate_bytes: int
    verdict: Verdict

    @property
    def delta_bytes(self) -> int:
        return self.candidate_bytes - self.reference_bytes

    @property
    def ratio(self) -> float | None:
        return self.candidate_bytes / self.reference_bytes if self.reference_bytes > 0 else None

    def describe(self) -> str:
        """``steady +245.6 -> +346.1 MiB (+100.5 MiB, x1.409)``."""
        ratio = "" if self.ratio is None else f", x{self.ratio:.3f}"
        return (
            f"{self.phase} {self.reference_bytes / MIB:+.1f} -> {self.candidate_bytes / MIB:+.1f} "
            f"MiB ({self.delta_bytes / MIB:+.1f} MiB{ratio})"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "reference_above_floor_bytes": self.reference_bytes,
            "candidate_above_floor_bytes": self.candidate_bytes,
            "delta_bytes": self.delta_bytes,
            "ratio": self.ratio,
            "verdict": str(self.verdict),
        }


@dataclass(frozen=True)
class MemoryChange:
    """One subject's memory, candidate against reference, every phase judged.

    Args:
        name: what the report calls it (the merge gate's benchmark, ``star-optimized``).
        threshold: what each phase was judged by.
        phases: the ``load`` and ``steady`` changes.
        reference, candidate: each side's measurement (one fresh process each).
    """

    name: str
    threshold: MemoryThreshold
    phases: tuple[PhaseChange, ...]
    reference: MemoryPeaks
    candidate: MemoryPeaks

    @property
    def verdict(self) -> Verdict:
        """``larger`` when any phase is, else ``smaller`` when any phase is, else ``same``."""
        verdicts = {change.verdict for change in self.phases}
        for verdict in (Verdict.LARGER, Verdict.SMALLER):
            if verdict in verdicts:
                return verdict
        return Verdict.SAME

    @property
    def worst(self) -> PhaseChange:
        """The phase that decides: the largest growth (the largest shrink when none grew)."""
        return max(
            self.phases, key=lambda change: (change.verdict is Verdict.LARGER, change.delta_bytes)
        )

    def describe(self) -> str:
        """``larger in steady: +245.6 -> +346.1 MiB above the floor (+100.5 MiB, x1.409)``."""
        decided = [c for c in self.phases if c.verdict is self.verdict]
        where = ", ".join(c.phase for c in decided) if self.verdict is not Verdict.SAME else ""
        head = f"{self.verdict} in {where}" if where else str(self.verdict)
        return f"{head}: " + "; ".join(c.describe() for c in self.phases) + " above the floor"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "verdict": str(self.verdict),
            "threshold": self.threshold.to_json(),
            "phases": [change.to_json() for change in self.phases],
            "reference": self.reference.to_json(),
            "candidate": self.candidate.to_json(),
        }


def compare_peaks(
    name: str, reference: MemoryPeaks, candidate: MemoryPeaks, threshold: MemoryThreshold
) -> MemoryChange:
    """Judge every phase of the candidate's measurement against the reference's."""
    phases = []
    for phase in PHASES:
        ref = reference.phase(phase).above_floor_bytes
        cand = candidate.phase(phase).above_floor_bytes
        phases.append(PhaseChange(phase, ref, cand, memory_verdict(ref, cand, threshold)))
    return MemoryChange(name, threshold, tuple(phases), reference, candidate)


Measure = Callable[[MemoryRequest], MemoryPeaks]


def measure_pairs(
    pairs: Sequence[tuple[MemoryRequest, MemoryRequest]],
    workers: int = 2,
    measure: Measure = measure_peaks,
) -> list[tuple[MemoryPeaks, MemoryPeaks]]:
    """Measure each (reference, candidate) pair, every measurement in its own fresh child,
    ``workers`` children at a time (peak.measure_many).

    Raises:
        MemoryMeasurementError: a child failed (the first failure, after the others finished).
        ValueError: ``workers`` below 1.
    """
    flat = measure_many([r for pair in pairs for r in pair], workers, measure)
    return list(zip(flat[0::2], flat[1::2], strict=True))
