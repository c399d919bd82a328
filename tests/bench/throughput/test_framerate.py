"""The Face Mirror loop's frame rate, measured on a fake clock: frame production is left out,
the share outside inference comes from the loop's profiler."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np
import pytest

from faceperf.bench.throughput.framerate import FrameRate, measure_frame_rate
from faceperf.pipeline.profiler import MODEL_INFERENCE, PREPROCESSING, StageProfiler


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLoop:
    """Spends 0.25 s per frame: 0.2 s of it in inference, 0.05 s preprocessing."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.profiler = StageProfiler(clock)

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[int]:
        for index, _ in enumerate(frames):
            with self.profiler.stage("Model_onnx", MODEL_INFERENCE):
                self.clock.advance(0.2)
            with self.profiler.stage("Model_preprocess", PREPROCESSING):
                self.clock.advance(0.05)
            yield index


def slow_source(clock: FakeClock, count: int) -> Iterator[np.ndarray]:
    for _ in range(count):
        clock.advance(0.5)  # decoding a frame: not the pipeline's time
        yield np.zeros((2, 2, 3), np.uint8)


def test_the_rate_leaves_out_the_time_spent_making_frames():
    clock = FakeClock()
    run = measure_frame_rate(FakeLoop(clock), slow_source(clock, 4), clock=clock)
    rate = run.rate
    assert run.results == (0, 1, 2, 3)
    assert rate.frames == 4
    assert rate.seconds == pytest.approx(1.0)
    assert rate.frame_source_seconds == pytest.approx(2.0)
    assert rate.fps == pytest.approx(4.0)
    assert rate.inference_seconds == pytest.approx(0.8)
    assert rate.share_outside_inference == pytest.approx(0.2)


def test_the_json_has_the_keys_of_pipeline_json_in_order():
    rate = FrameRate(frames=3, seconds=1.5, frame_source_seconds=0.25, inference_seconds=1.2)
    document = rate.to_json()
    assert list(document) == [
        "frames",
        "seconds",
        "frame_source_seconds",
        "fps",
        "share_outside_inference",
    ]
    assert document["fps"] == pytest.approx(2.0)
    assert document["share_outside_inference"] == pytest.approx(0.2)


def test_no_frames_in_no_time_has_no_rate():
    clock = FakeClock()
    rate = measure_frame_rate(FakeLoop(clock), [], clock=clock).rate
    assert (rate.frames, rate.seconds, rate.fps, rate.share_outside_inference) == (0, 0, None, None)


def test_the_record_is_frozen():
    rate = FrameRate(frames=1, seconds=1.0, frame_source_seconds=0.0, inference_seconds=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rate.frames = 2  # type: ignore[misc]
