"""What the merge gate judges besides time: each benchmark's memory, and its artifact's size.

For every benchmark the gate times (``<model>-<variant>``, ``mtcnn``, ``pipeline``; session
creation is the memory's ``load`` phase, so ``-load`` benchmarks add nothing), both sides'
peak memory is measured in fresh child processes (bench/memory/peak.py) before any timing, and
compared phase by phase (bench/memory/compare.py): ``<benchmark>:memory``. Every single-model
benchmark's artifact is also weighed on disk: ``<benchmark>:size``, ``larger`` beyond 1 %.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from faceperf.bench.ab.pairings import COMPOSITES, MTCNN, PIPELINE, AbRequest, is_load
from faceperf.bench.memory import peak
from faceperf.bench.memory.compare import (
    Measure,
    MemoryChange,
    MemoryThreshold,
    compare_peaks,
    measure_pairs,
)
from faceperf.bench.memory.size import GROWTH_TOLERANCE, SizeChange, artifact_size, size_verdict

MEMORY_SUFFIX = ":memory"
SIZE_SUFFIX = ":size"
_SUBJECTS = {MTCNN: peak.MTCNN, PIPELINE: peak.PIPELINE}


@dataclass(frozen=True)
class MemorySubject:
    """One benchmark's memory measurement: the child's subject, variant and calls."""

    benchmark: str
    subject: str
    variant: str
    calls: int

    @property
    def name(self) -> str:
        return f"{self.benchmark}{MEMORY_SUFFIX}"


def memory_subjects(request: AbRequest, judged: Sequence[str]) -> tuple[MemorySubject, ...]:
    """What the memory gate measures for the judged benchmarks, in their order."""
    subjects = []
    for name in judged:
        if is_load(name):
            continue
        if name in COMPOSITES:
            frames = peak.GATE_PIPELINE_FRAMES if name == PIPELINE else peak.GATE_MTCNN_FRAMES
            subject = MemorySubject(name, _SUBJECTS[name], str(request.gated_variant), frames)
        else:
            model, variant = name.rsplit("-", 1)
            subject = MemorySubject(name, model, variant, peak.GATE_CALLS)
        subjects.append(subject)
    return tuple(subjects)


def footprint_names(request: AbRequest, judged: Sequence[str]) -> tuple[str, ...]:
    """Every name the memory and size verdicts go by (what ``--accept`` may name)."""
    memory = [s.name for s in memory_subjects(request, judged)]
    sizes = [f"{name}{SIZE_SUFFIX}" for name in _sized(judged)]
    return (*memory, *sizes)


def measure_memory(
    request: AbRequest,
    judged: Sequence[str],
    threshold_of: Callable[[str], MemoryThreshold],
    workers: int | None = None,
    measure: Measure = peak.measure_peaks,
) -> tuple[MemoryChange, ...]:
    """Both sides' memory for every judged benchmark, each judged by ``threshold_of`` its
    benchmark's name.

    Args:
        workers: children at a time (default: the machine's cores).
        measure: measures one request in a child; injected so tests can stand in for it.

    Raises:
        MemoryMeasurementError: a child failed (the artifact does not load or run).
    """
    subjects = memory_subjects(request, judged)
    with tempfile.TemporaryDirectory(prefix="faceperf-ab-memory-") as folder:

        def side(directory: Path, role: str, subject: MemorySubject) -> peak.MemoryRequest:
            # Each side's own input (its manifest may declare another dtype), in its own folder.
            return peak.subject_request(
                directory,
                subject.subject,
                subject.variant,
                Path(folder) / role,
                backend=request.backend,
                threads=request.threads,
                calls=subject.calls,
            )

        pairs = [
            (side(request.reference, "reference", s), side(request.candidate, "candidate", s))
            for s in subjects
        ]
        measured = measure_pairs(pairs, workers or os.cpu_count() or 1, measure)
    return tuple(
        compare_peaks(subject.name, reference, candidate, threshold_of(subject.benchmark))
        for subject, (reference, candidate) in zip(subjects, measured, strict=True)
    )


def size_changes(
    request: AbRequest, judged: Sequence[str], tolerance: float = GROWTH_TOLERANCE
) -> tuple[SizeChange, ...]:
    """Each single-model benchmark's artifact, its bytes on disk on both sides."""
    changes = []
    for name in _sized(judged):
        model, variant = name.rsplit("-", 1)
        before = artifact_size(request.reference, model, variant).bytes
        after = artifact_size(request.candidate, model, variant).bytes
        verdict = size_verdict(before, after, tolerance)
        changes.append(SizeChange(model, variant, before, after, verdict, tolerance))
    return tuple(changes)


def size_name(change: SizeChange) -> str:
    """``star-optimized:size``: how the gate names an artifact's size verdict."""
    return f"{change.model}-{change.variant}{SIZE_SUFFIX}"


def _sized(judged: Sequence[str]) -> list[str]:
    return [name for name in judged if not is_load(name) and name not in COMPOSITES]
