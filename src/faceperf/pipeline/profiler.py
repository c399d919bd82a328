"""The stage profiler: every pipeline stage timed under the original application's names.

Operations are named as the Face Mirror application named them (``STAR_<backend>``,
``MTL_<backend>``, ``RetinaFace_<backend>``, ``*_preprocess``, ``*_postprocess``) and grouped in
its categories, so reports compare line by line with the application's own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

MODEL_INFERENCE = "model_inference"
PREPROCESSING = "preprocessing"
POSTPROCESSING = "postprocessing"
CATEGORIES = (MODEL_INFERENCE, PREPROCESSING, POSTPROCESSING)

Clock = Callable[[], float]


@dataclass(frozen=True)
class StageStats:
    """Summary of one operation's calls."""

    name: str
    category: str
    count: int
    total_s: float
    avg_ms: float
    min_ms: float
    max_ms: float
    percent: float  # of all profiled time


@dataclass
class _Operation:
    category: str
    seconds: list[float] = field(default_factory=list)


class StageProfiler:
    """Collects per-call durations by operation name.

    Args:
        clock: returns seconds; injected so tests control time (default ``time.perf_counter``).
    """

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock
        self._operations: dict[str, _Operation] = {}

    @contextmanager
    def stage(self, name: str, category: str) -> Iterator[None]:
        """Time the body of the ``with`` block as one call of ``name``."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, category, self._clock() - start)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Mapping[str, object]]) -> StageProfiler:
        """A profiler holding the calls :meth:`raw` returned (e.g. read back from a report).

        Args:
            raw: operation → {"category": ..., "seconds": [...]}, as :meth:`raw` returns it.

        Raises:
            ValueError: an entry is not in that layout, or a duration is not a finite,
                non-negative number of seconds.
        """
        profiler = cls()
        for name, operation in raw.items():
            seconds = operation.get("seconds") if isinstance(operation, Mapping) else None
            if not isinstance(seconds, list) or not seconds:
                raise ValueError(f"stage {name!r}: expected a category and a list of seconds")
            for value in seconds:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"stage {name!r}: duration {value!r} is not a number")
                if not math.isfinite(value) or value < 0:
                    raise ValueError(f"stage {name!r}: duration {value!r} is not a duration")
                profiler.add(name, str(operation.get("category")), float(value))
        return profiler

    def reset(self) -> None:
        """Forget every recorded call (a warm-up's, say), keeping the clock."""
        self._operations.clear()

    def add(self, name: str, category: str, seconds: float) -> None:
        """Record one call measured elsewhere."""
        if category not in CATEGORIES:
            raise ValueError(f"category {category!r}: expected one of {', '.join(CATEGORIES)}")
        operation = self._operations.setdefault(name, _Operation(category))
        if operation.category != category:
            raise ValueError(f"{name} was recorded as {operation.category}, not {category}")
        operation.seconds.append(seconds)

    def stats(self) -> list[StageStats]:
        """One row per operation, grouped by category, slowest total first within a group."""
        grand = sum(sum(op.seconds) for op in self._operations.values()) or 1.0
        rows = [
            StageStats(
                name=name,
                category=op.category,
                count=len(op.seconds),
                total_s=sum(op.seconds),
                avg_ms=1e3 * sum(op.seconds) / len(op.seconds),
                min_ms=1e3 * min(op.seconds),
                max_ms=1e3 * max(op.seconds),
                percent=100.0 * sum(op.seconds) / grand,
            )
            for name, op in self._operations.items()
        ]
        return sorted(rows, key=lambda r: (CATEGORIES.index(r.category), -r.total_s))

    def raw(self) -> dict[str, dict]:
        """Every call's duration in seconds, by operation (for the JSON report)."""
        return {
            n: {"category": op.category, "seconds": list(op.seconds)}
            for n, op in self._operations.items()
        }

    def to_json(self) -> dict:
        return {
            "operations": [row.__dict__ for row in self.stats()],
            "raw_seconds": self.raw(),
        }

    def text(self) -> str:
        """The report as text: per category, count, total s, avg/min/max ms and % of total."""
        rows = self.stats()
        total = sum(r.total_s for r in rows)
        lines = ["PERFORMANCE PROFILE", f"total profiled time: {total:.3f} s", ""]
        header = (
            f"{'operation':<28}{'count':>8}{'total s':>11}{'avg ms':>10}{'min ms':>10}"
            f"{'max ms':>10}{'% total':>9}"
        )
        for category in CATEGORIES:
            members = [r for r in rows if r.category == category]
            if not members:
                continue
            share = sum(r.percent for r in members)
            lines += [f"{category} ({share:.1f} %)", header]
            lines += [
                f"{r.name:<28}{r.count:>8}{r.total_s:>11.3f}{r.avg_ms:>10.2f}{r.min_ms:>10.2f}"
                f"{r.max_ms:>10.2f}{r.percent:>9.1f}"
                for r in members
            ]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


class NullProfiler(StageProfiler):
    """A profiler that records nothing, so pipeline code needs no ``if profiler`` branches."""

    @contextmanager
    def stage(self, name: str, category: str) -> Iterator[None]:
        yield

    def add(self, name: str, category: str, seconds: float) -> None:
        return None
