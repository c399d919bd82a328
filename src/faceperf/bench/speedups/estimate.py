"""Speedup claims inside the perf suite: interleaved blocks a benchmark can time, and the record
a speedup test leaves in its benchmark's ``extra_info`` (render.py makes the report's section
from it).

A speedup test hands :class:`InterleavedBlocks` to pytest-benchmark as the function to time. One
call is one ABBA block of :func:`~.interleaved.measure_interleaved` (the pair in
both orders, so a steady drift adds the same to both sides), so pytest-benchmark's rounds are
blocks and its samples are block durations; the per-call durations of each side are kept by
the blocks object and go into the :class:`SpeedupRecord`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from faceperf.bench.budgets import SPEEDUP_MEASURES, SpeedupFloor
from faceperf.bench.gate.storage import BenchmarkRun
from faceperf.bench.speedups.interleaved import (
    Clock,
    InterleavedSamples,
    SpeedupInterval,
    measure_interleaved,
    speedup_interval,
)

SPEEDUP_KEY = "speedup"  # the extra_info key a speedup test records its SpeedupRecord under
_RECORD_VERSION = 1


@dataclass(frozen=True)
class Side:
    """One side of a speedup: an artifact variant on a runner backend."""

    variant: str
    backend: str

    @property
    def label(self) -> str:
        return f"{self.variant} on {self.backend}"


def speedup_sides(backend: str) -> tuple[Side, Side]:
    """The (slow, fast) sides the speedup tests compare on a profile's backend.

    On an ONNX Runtime backend, ``baseline`` against ``optimized`` on that backend. On Core ML,
    which cannot run an ONNX file, the first shipped ``baseline`` on ONNX Runtime's CPU
    provider against the ``coreml`` package: what moving the model to Core ML bought, the pair
    the published Apple Silicon figures compare.

    Args:
        backend: the profile's runner backend (``ort-cpu``, ``ort-coreml``, ``coreml`` ...).
    """
    if backend == "coreml":
        return Side("baseline", "ort-cpu"), Side("coreml", "coreml")
    return Side("baseline", backend), Side("optimized", backend)


class InterleavedBlocks:
    """Times ``slow`` and ``fast`` in ABBA blocks and keeps every call's duration.

    Args:
        slow: the callable expected to be slower (the baseline artifact's run).
        fast: the callable expected to be faster (the optimized artifact's run).
        clock: returns seconds; injected so tests control time.
    """

    def __init__(
        self,
        slow: Callable[[], object],
        fast: Callable[[], object],
        clock: Clock = time.perf_counter,
    ) -> None:
        self._slow, self._fast, self._clock = slow, fast, clock
        self._slow_s: list[float] = []
        self._fast_s: list[float] = []

    def __call__(self) -> None:
        """Run one block: slow, fast, fast, slow, each call timed."""
        block = measure_interleaved(self._slow, self._fast, rounds=2, warmup=0, clock=self._clock)
        self._slow_s.extend(block.a_s)
        self._fast_s.extend(block.b_s)

    def samples(self) -> InterleavedSamples:
        """Every recorded call so far: ``a_s`` the slow side's, ``b_s`` the fast side's."""
        return InterleavedSamples(tuple(self._slow_s), tuple(self._fast_s))


def blocks_for(block_s: float, target_s: float = 3.0, minimum: int = 10, maximum: int = 250) -> int:
    """How many blocks fit in ``target_s``, within [minimum, maximum].

    The minimum keeps the bootstrap interval of slow models meaningful (20 calls a side); the
    maximum stops sub-millisecond models from spending the time budget on thousands of calls
    that narrow the interval no further than scheduler noise allows.

    Args:
        block_s: the duration of one block (e.g. of a warm-up block), in seconds.
        target_s: the time the measurement should take.
        minimum: the fewest blocks, whatever they cost.
        maximum: the most blocks, however cheap.
    """
    if not math.isfinite(block_s) or block_s < 0:
        raise ValueError(f"block duration {block_s!r}: expected a finite, non-negative number")
    if not 1 <= minimum <= maximum:
        raise ValueError(f"need 1 <= minimum <= maximum, got {minimum} and {maximum}")
    if block_s == 0:
        return maximum
    return max(minimum, min(maximum, math.floor(target_s / block_s)))


@dataclass(frozen=True)
class SpeedupRecord:
    """One speedup measurement of a model and what it was held to.

    Args:
        model: the model, e.g. ``star``.
        measure: ``steady_state`` or ``cold_load``.
        slow: what the slow side ran, e.g. ``baseline on ort-cpu``.
        fast: what the fast side ran, e.g. ``optimized on ort-cpu``.
        samples: per-call seconds, ``a_s`` of the slow side and ``b_s`` of the fast side.
        interval: the bootstrap interval of median(slow) / median(fast).
        floor: the floor the interval's lower bound must exceed, when the profile has one.
        floor_reason: why that floor.
    """

    model: str
    measure: str
    slow: str
    fast: str
    samples: InterleavedSamples
    interval: SpeedupInterval
    floor: float | None = None
    floor_reason: str | None = None

    def __post_init__(self) -> None:
        if self.measure not in SPEEDUP_MEASURES:
            raise ValueError(
                f"measure {self.measure!r}: expected one of {', '.join(SPEEDUP_MEASURES)}"
            )
        if (self.floor is None) != (self.floor_reason is None):
            raise ValueError("a floor needs its reason, and a reason its floor")

    @classmethod
    def measure_of(
        cls,
        model: str,
        measure: str,
        labels: tuple[str, str],
        samples: InterleavedSamples,
        floor: SpeedupFloor | None,
    ) -> SpeedupRecord:
        """The record of ``samples``, with their bootstrap interval and the profile's floor.

        Args:
            model: the model.
            measure: ``steady_state`` or ``cold_load``.
            labels: what the slow and the fast side ran.
            samples: the interleaved per-call durations (a: slow, b: fast).
            floor: the profile's floor for this model and measure, if any.
        """
        interval = speedup_interval(samples.a_s, samples.b_s)
        return cls(
            model,
            measure,
            *labels,
            samples=samples,
            interval=interval,
            floor=None if floor is None else floor.floor,
            floor_reason=None if floor is None else floor.reason,
        )

    @property
    def holds(self) -> bool | None:
        """Whether the whole interval lies above the floor (None without a floor)."""
        return None if self.floor is None else self.interval.supports(self.floor)

    def describe(self) -> str:
        """One line: the speedup, its interval, and the floor it was held to."""
        i = self.interval
        text = (
            f"{self.model} {self.measure.replace('_', ' ')}: median({self.slow}) / "
            f"median({self.fast}) = {i.point:.2f}x ({100 * i.confidence:g} % interval "
            f"{i.low:.2f}-{i.high:.2f}x, {len(self.samples.a_s)} calls a side)"
        )
        if self.floor is not None:
            text += f"; floor {self.floor:g}x ({self.floor_reason})"
        return text

    def to_extra_info(self) -> dict[str, object]:
        """A JSON-ready dict for ``benchmark.extra_info[SPEEDUP_KEY]``."""
        i = self.interval
        return {
            "version": _RECORD_VERSION,
            "model": self.model,
            "measure": self.measure,
            "slow": self.slow,
            "fast": self.fast,
            "slow_s": list(self.samples.a_s),
            "fast_s": list(self.samples.b_s),
            "interval": {
                "low": i.low,
                "point": i.point,
                "high": i.high,
                "confidence": i.confidence,
            },
            "floor": self.floor,
            "floor_reason": self.floor_reason,
        }

    @classmethod
    def from_extra_info(cls, document: Mapping[str, object]) -> SpeedupRecord:
        """Read a record back from a results file.

        Raises:
            ValueError: the document is not a record this version wrote.
        """
        try:
            if document["version"] != _RECORD_VERSION:
                raise ValueError(f"speedup record version {document['version']!r} is not 1")
            interval = document["interval"]
            return cls(
                model=str(document["model"]),
                measure=str(document["measure"]),
                slow=str(document["slow"]),
                fast=str(document["fast"]),
                samples=InterleavedSamples(tuple(document["slow_s"]), tuple(document["fast_s"])),
                interval=SpeedupInterval(
                    float(interval["low"]),
                    float(interval["point"]),
                    float(interval["high"]),
                    float(interval["confidence"]),
                ),
                floor=None if document["floor"] is None else float(document["floor"]),
                floor_reason=document["floor_reason"],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a speedup record ({type(exc).__name__}: {exc})") from None


def speedup_records(run: BenchmarkRun) -> dict[str, SpeedupRecord]:
    """Benchmark name → the speedup record it carries, for every benchmark that has one.

    Raises:
        ValueError: a benchmark's record is malformed (the message names the benchmark).
    """
    found = {}
    for name, samples in sorted(run.benchmarks.items()):
        document = samples.extra_info.get(SPEEDUP_KEY)
        if document is None:
            continue
        if not isinstance(document, Mapping):
            raise ValueError(f"benchmark {name}: extra_info.{SPEEDUP_KEY} must be an object")
        try:
            found[name] = SpeedupRecord.from_extra_info(document)
        except ValueError as exc:
            raise ValueError(f"benchmark {name}: {exc}") from None
    return found
