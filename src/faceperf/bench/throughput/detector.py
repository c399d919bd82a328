"""Throughput of a detector over a set of frames, per frame (batch 1) or cross-frame batched.

A round feeds every frame once, in calls of ``batch`` frames (``detect`` for batch 1,
``detect_batch`` otherwise). When the frame count is not a multiple of the batch, calls take the
frames cyclically, so every call carries exactly ``batch`` frames (with 4 scenes at batch 8, one
call holds each scene twice). One sample is one call's time divided by its frame count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from faceperf.pipeline.profiler import Clock, StageProfiler


class BatchDetector(Protocol):
    """What the benchmark drives: ``MTCNNDetector`` and anything shaped like it."""

    profiler: StageProfiler

    def detect(self, frame: np.ndarray) -> list[Any]: ...

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Any]]: ...


@dataclass(frozen=True)
class StageShare:
    """One profiled operation over the measured rounds."""

    name: str
    category: str
    calls_per_frame: float
    ms_per_frame: float
    percent: float  # of all profiled time


@dataclass(frozen=True)
class ThroughputResult:
    """Steady-state throughput of one detector at one batch size.

    ``samples_ms`` holds every measured call's milliseconds per frame (warm-up excluded).
    """

    batch: int
    frames_per_round: int
    rounds: int
    ms_per_frame_median: float
    ms_per_frame_p90: float
    fps: float  # 1000 / median
    samples_ms: tuple[float, ...]
    stages: tuple[StageShare, ...]


def measure_throughput(
    detector: BatchDetector,
    frames: Sequence[np.ndarray],
    batch: int = 1,
    warmup: int = 2,
    rounds: int = 10,
    clock: Clock = time.perf_counter,
) -> ThroughputResult:
    """Time ``rounds`` rounds over ``frames`` after ``warmup`` untimed rounds.

    The detector's profiler is replaced by a fresh ``StageProfiler(clock)`` for the measured
    rounds (and restored after), so the stage breakdown covers exactly the timed calls.

    Args:
        detector: has ``detect``, ``detect_batch`` and a ``profiler`` attribute.
        frames: BGR uint8 frames; one round feeds each once.
        batch: frames per call; 1 calls ``detect``, more call ``detect_batch``.
        warmup: untimed rounds first (session warm-up, caches).
        rounds: timed rounds.
        clock: seconds; injected so tests control time.
    """
    if not frames:
        raise ValueError("frames is empty: nothing to measure")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    groups = _groups(len(frames), batch)
    calls = [[frames[i] for i in group] for group in groups]

    def run(group: list[np.ndarray]) -> None:
        if batch == 1:
            detector.detect(group[0])
        else:
            detector.detect_batch(group)

    for _ in range(warmup):
        for group in calls:
            run(group)
    original = detector.profiler
    profiler = StageProfiler(clock)
    detector.profiler = profiler
    samples = []
    try:
        for _ in range(rounds):
            for group in calls:
                start = clock()
                run(group)
                samples.append(1e3 * (clock() - start) / len(group))
    finally:
        detector.profiler = original
    measured_frames = rounds * batch * len(groups)
    median = float(np.median(samples))
    return ThroughputResult(
        batch=batch,
        frames_per_round=batch * len(groups),
        rounds=rounds,
        ms_per_frame_median=median,
        ms_per_frame_p90=float(np.percentile(samples, 90)),
        fps=1e3 / median if median > 0 else math.inf,
        samples_ms=tuple(samples),
        stages=tuple(
            StageShare(
                name=row.name,
                category=row.category,
                calls_per_frame=row.count / measured_frames,
                ms_per_frame=1e3 * row.total_s / measured_frames,
                percent=row.percent,
            )
            for row in profiler.stats()
        ),
    )


def _groups(count: int, batch: int) -> list[list[int]]:
    """Frame indices per call: ceil(count / batch) calls of ``batch`` frames, taken cyclically."""
    calls = -(-count // batch)
    return [[(c * batch + i) % count for i in range(batch)] for c in range(calls)]
