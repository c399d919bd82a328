"""Leaks: memory sampled over a long run, a robust slope after warm-up, plateau told from leak.

An allocator may grow for a while and then stop: ONNX Runtime's arena takes a new block for each
input shape it has not seen (MTCNN's batches vary with the faces found), Python's allocator
keeps freed arenas. A leak keeps growing. So the run is sampled every ``every`` calls, the first
``warmup_fraction`` is dropped, and what is left is cut in two halves, each with its
Theil-Sen slope (bytes per call; robust to the odd page-sized step a sample catches):

- the **last half** decides: above the threshold, memory still grows at the end of the run →
  ``fail`` (a leak, or growth that has not settled yet: run longer to tell);
- the **first half** only describes: above the threshold while the last half is not, the
  memory grew and stopped → ``plateau`` (pass); neither → ``flat`` (pass).

The threshold is in bytes per call: a leak of a few hundred bytes a call is the app's
30 FPS x 8 h of running = 860,000 frames, hundreds of MB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceperf.bench.memory.meters import Reader
from faceperf.pipeline.profiler import Clock
from faceperf.verdicts import Verdict

FLAT, PLATEAU, GROWING = "flat", "plateau", "growing"
DEFAULT_THRESHOLD = 256.0  # bytes per call; see docs/memory.md for the A/A slopes behind it


@dataclass(frozen=True)
class MemoryTrace:
    """Memory after call ``calls[i]`` was ``bytes[i]``.

    Args:
        subject: what ran (``mtcnn_onet/optimized``, ``face_mirror/optimized``).
        calls: call counts at each sample, increasing (0: before the first call).
        bytes: the memory figure at each sample.
        method: how memory was read (meters.resident_reader's figure).
        seconds: the run's duration.
    """

    subject: str
    calls: tuple[int, ...]
    bytes: tuple[int, ...]
    method: str = "resident set"
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "calls", tuple(int(c) for c in self.calls))
        object.__setattr__(self, "bytes", tuple(int(b) for b in self.bytes))
        if len(self.calls) != len(self.bytes):
            raise ValueError(f"{len(self.calls)} call counts for {len(self.bytes)} samples")
        if any(b <= a for a, b in zip(self.calls, self.calls[1:], strict=False)):
            raise ValueError(f"{self.subject}: call counts must increase")

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "calls": list(self.calls),
            "bytes": list(self.bytes),
            "method": self.method,
            "seconds": self.seconds,
        }


def sample_run(
    subject: str,
    step: Callable[[], object],
    calls: int,
    every: int,
    reader: Reader,
    method: str = "resident set",
    clock: Clock = time.perf_counter,
) -> MemoryTrace:
    """Call ``step`` ``calls`` times, reading memory before the first and every ``every`` calls.

    Args:
        subject: names the run in the trace.
        step: one call (one model inference, one pipeline frame).
        calls: calls in all.
        every: calls between two samples.
        reader: bytes of memory now (meters.resident_reader(), or a stand-in in tests).
        method: how the reader reads, for the record.
        clock: returns seconds; injected so tests control time.
    """
    if calls < 1 or every < 1:
        raise ValueError(f"calls {calls}, every {every}: expected positive counts")
    points, figures = [0], [reader()]
    start = clock()
    for done in range(1, calls + 1):
        step()
        if done % every == 0 or done == calls:
            points.append(done)
            figures.append(reader())
    return MemoryTrace(subject, tuple(points), tuple(figures), method, clock() - start)


@dataclass(frozen=True)
class LeakPolicy:
    """How a trace is judged.

    Args:
        threshold: bytes per call above which the last half's slope is growth.
        warmup_fraction: share of the run (by calls) dropped before the slopes.
        min_samples: samples each half needs for a slope worth stating.
    """

    threshold: float = DEFAULT_THRESHOLD
    warmup_fraction: float = 0.2
    min_samples: int = 5

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"threshold {self.threshold}: expected positive bytes per call")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction {self.warmup_fraction}: expected in [0, 1)")
        if self.min_samples < 3:
            raise ValueError(f"min_samples {self.min_samples}: expected at least 3")


@dataclass(frozen=True)
class LeakVerdict:
    """A trace judged: the slopes in bytes per call, the shape, and pass or fail.

    Args:
        subject: what ran.
        calls: calls in the run.
        slope: Theil-Sen slope over the whole run after warm-up.
        first_half, last_half: the slopes of the two halves after warm-up.
        last_half_low, last_half_high: the 95 % interval of the last half's slope.
        growth_bytes: memory at the end minus at the end of warm-up.
        shape: ``flat``, ``plateau`` or ``growing``.
        verdict: Verdict.PASS, or Verdict.FAIL when growing.
        threshold: the policy's bytes per call.
    """

    subject: str
    calls: int
    slope: float
    first_half: float
    last_half: float
    last_half_low: float
    last_half_high: float
    growth_bytes: int
    shape: str
    verdict: Verdict
    threshold: float

    def describe(self) -> str:
        """``mtcnn_onet/optimized: fail (growing): +1.6 kB/call over the last half ...``."""
        return (
            f"{self.subject}: {self.verdict} ({self.shape}): last half "
            f"{self.last_half:+.0f} B/call (95 % {self.last_half_low:+.0f} to "
            f"{self.last_half_high:+.0f}), first half {self.first_half:+.0f} B/call, "
            f"threshold {self.threshold:.0f} B/call; {self.growth_bytes / 2**20:+.1f} MiB "
            f"after warm-up over {self.calls} calls"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "calls": self.calls,
            "slope_bytes_per_call": self.slope,
            "first_half_bytes_per_call": self.first_half,
            "last_half_bytes_per_call": self.last_half,
            "last_half_interval": [self.last_half_low, self.last_half_high],
            "growth_bytes": self.growth_bytes,
            "shape": self.shape,
            "verdict": str(self.verdict),
            "threshold_bytes_per_call": self.threshold,
        }


def judge_leak(trace: MemoryTrace, policy: LeakPolicy = LeakPolicy()) -> LeakVerdict:
    """Judge ``trace`` as the module's docstring says.

    Raises:
        ValueError: too few samples after warm-up for two halves of ``policy.min_samples``.
    """
    # Imported here: the measuring child imports this module, and scipy.stats would sit in
    # every floor (about 60 MB).
    from scipy import stats

    calls = np.asarray(trace.calls, np.float64)
    figures = np.asarray(trace.bytes, np.float64)
    kept = calls >= policy.warmup_fraction * calls[-1]
    calls, figures = calls[kept], figures[kept]
    half = len(calls) // 2
    if half < policy.min_samples:
        raise ValueError(
            f"{trace.subject}: {len(calls)} samples after warm-up; expected at least "
            f"{2 * policy.min_samples} (sample more often, or run longer)"
        )
    overall = stats.theilslopes(figures, calls)
    first = stats.theilslopes(figures[:half], calls[:half])
    last = stats.theilslopes(figures[half:], calls[half:])
    if last.slope > policy.threshold:
        shape = GROWING
    elif first.slope > policy.threshold:
        shape = PLATEAU
    else:
        shape = FLAT
    return LeakVerdict(
        subject=trace.subject,
        calls=int(trace.calls[-1]),
        slope=float(overall.slope),
        first_half=float(first.slope),
        last_half=float(last.slope),
        last_half_low=float(last.low_slope),
        last_half_high=float(last.high_slope),
        growth_bytes=int(figures[-1] - figures[0]),
        shape=shape,
        verdict=Verdict.FAIL if shape == GROWING else Verdict.PASS,
        threshold=policy.threshold,
    )


def run_and_judge(
    subject: str,
    step: Callable[[], object],
    calls: int,
    every: int,
    reader: Reader,
    policy: LeakPolicy = LeakPolicy(),
    method: str = "resident set",
) -> tuple[MemoryTrace, LeakVerdict]:
    """``sample_run`` then ``judge_leak``: the trace (for the plot) and its verdict."""
    trace = sample_run(subject, step, calls, every, reader, method)
    return trace, judge_leak(trace, policy)


def sampling_interval(calls: int, samples: int = 200) -> int:
    """Calls between samples for about ``samples`` samples over ``calls`` calls."""
    return max(1, calls // samples)
