"""The Face Mirror loop's frame rate: frames per second of the loop's own work.

Reading or synthesising the frames is not the pipeline's work, so it is timed apart and left
out of the rate; the share of the loop's time spent outside model inference says how much of
it the models leave to pre- and post-processing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from faceperf.pipeline.profiler import MODEL_INFERENCE, Clock, StageProfiler

if TYPE_CHECKING:
    from faceperf.pipeline.face_mirror import FrameResult


class FrameLoop(Protocol):
    """What is measured: a loop over frames that times its stages (``FaceMirrorLoop``)."""

    profiler: StageProfiler

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]: ...


@dataclass(frozen=True)
class FrameRate:
    """One timed pass of a loop over a frame source.

    Args:
        frames: frames the loop produced a result for.
        seconds: the loop's time, frame production excluded.
        frame_source_seconds: time spent reading or making the frames (not in ``seconds``).
        inference_seconds: model inference time the loop's profiler recorded.
    """

    frames: int
    seconds: float
    frame_source_seconds: float
    inference_seconds: float

    @property
    def fps(self) -> float | None:
        """Frames per second of the loop's own time; None when no time passed."""
        return self.frames / self.seconds if self.seconds > 0 else None

    @property
    def share_outside_inference(self) -> float | None:
        """The fraction of the loop's time spent outside model inference; None when no time
        passed."""
        return 1.0 - self.inference_seconds / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict[str, float | int | None]:
        """The keys ``pipeline.json`` records, in its order."""
        return {
            "frames": self.frames,
            "seconds": self.seconds,
            "frame_source_seconds": self.frame_source_seconds,
            "fps": self.fps,
            "share_outside_inference": self.share_outside_inference,
        }


@dataclass(frozen=True)
class TimedRun:
    """The loop's results, in frame order, and how fast it produced them."""

    results: tuple[FrameResult, ...]
    rate: FrameRate


def measure_frame_rate(
    loop: FrameLoop, frames: Iterable[np.ndarray], clock: Clock = time.perf_counter
) -> TimedRun:
    """Run ``loop`` over ``frames`` once and time it.

    Args:
        loop: the loop; its profiler's model inference time is read after the run, so give it
            a fresh profiler (a NullProfiler records none: the share outside inference is 1).
        frames: the frame source; its own time is measured and subtracted.
        clock: returns seconds; injected so tests control time.
    """
    source = _TimedIterator(frames, clock)
    start = clock()
    results = tuple(loop.run(source))
    elapsed = clock() - start - source.seconds
    inference = sum(s.total_s for s in loop.profiler.stats() if s.category == MODEL_INFERENCE)
    return TimedRun(results, FrameRate(len(results), elapsed, source.seconds, inference))


class _TimedIterator:
    """Passes items through and adds up the time spent producing them."""

    def __init__(self, items: Iterable[np.ndarray], clock: Clock) -> None:
        self._items = iter(items)
        self._clock = clock
        self.seconds = 0.0

    def __iter__(self) -> _TimedIterator:
        return self

    def __next__(self) -> np.ndarray:
        start = self._clock()
        try:
            return next(self._items)
        finally:
            self.seconds += self._clock() - start
