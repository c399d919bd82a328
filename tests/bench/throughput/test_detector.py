"""Detector throughput (bench/throughput/detector.py) on a fake detector that advances a fake
clock."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceperf.bench.throughput.detector import measure_throughput
from faceperf.pipeline.profiler import MODEL_INFERENCE, NullProfiler


class _FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _FakeDetector:
    """Advances a fake clock: 10 ms of "PNet" per frame, plus 4 ms of "RNet" per call."""

    def __init__(self, clock: _FakeClock) -> None:
        self.clock = clock
        self.profiler = NullProfiler()
        self.calls: list[int] = []

    def detect(self, frame):
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames):
        self.calls.append(len(frames))
        for _ in frames:
            with self.profiler.stage("PNet", MODEL_INFERENCE):
                self.clock.now += 0.010
        with self.profiler.stage("RNet", MODEL_INFERENCE):
            self.clock.now += 0.004
        return [[] for _ in frames]


def test_throughput_per_frame_with_a_fake_clock():
    clock = _FakeClock()
    fake = _FakeDetector(clock)
    frames = [np.zeros((2, 2, 3), np.uint8)] * 3
    result = measure_throughput(fake, frames, batch=1, warmup=2, rounds=5, clock=clock)
    assert fake.calls == [1] * (3 * 7)
    assert isinstance(fake.profiler, NullProfiler)  # restored
    assert result.samples_ms == pytest.approx([14.0] * 15)
    assert result.ms_per_frame_median == pytest.approx(14.0)
    assert result.ms_per_frame_p90 == pytest.approx(14.0)
    assert result.fps == pytest.approx(1000 / 14)
    stages = {s.name: s for s in result.stages}
    assert stages["PNet"].ms_per_frame == pytest.approx(10.0)
    assert stages["RNet"].ms_per_frame == pytest.approx(4.0)
    assert stages["RNet"].calls_per_frame == pytest.approx(1.0)


def test_throughput_batched_with_a_fake_clock():
    clock = _FakeClock()
    fake = _FakeDetector(clock)
    frames = [np.zeros((2, 2, 3), np.uint8)] * 4
    result = measure_throughput(fake, frames, batch=3, warmup=1, rounds=4, clock=clock)
    # 4 frames in calls of 3, taken cyclically: 2 calls of 3 per round.
    assert fake.calls == [3] * (2 * 5)
    assert result.frames_per_round == 6
    assert result.ms_per_frame_median == pytest.approx(10 + 4 / 3)
    stages = {s.name: s for s in result.stages}
    assert stages["RNet"].calls_per_frame == pytest.approx(1 / 3)
    assert stages["RNet"].ms_per_frame == pytest.approx(4 / 3)


def test_throughput_median_and_p90_of_uneven_calls():
    clock = _FakeClock()
    durations = itertools.cycle([0.010, 0.020, 0.030, 0.040, 0.050])

    class Uneven(_FakeDetector):
        def detect_batch(self, frames):
            self.clock.now += next(durations)
            return [[] for _ in frames]

    frames = [np.zeros((2, 2, 3), np.uint8)] * 5
    result = measure_throughput(Uneven(clock), frames, batch=1, warmup=0, rounds=2, clock=clock)
    assert result.ms_per_frame_median == pytest.approx(30.0)
    assert result.ms_per_frame_p90 == pytest.approx(np.percentile([10, 20, 30, 40, 50] * 2, 90))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"batch": 0}, "batch"), ({"rounds": 0}, "rounds"), ({"warmup": -1}, "warmup")],
)
def test_throughput_refuses_bad_arguments(kwargs, named):
    fake = _FakeDetector(_FakeClock())
    with pytest.raises(ValueError, match=named):
        measure_throughput(fake, [np.zeros((2, 2, 3), np.uint8)], **kwargs)
    with pytest.raises(ValueError, match="empty"):
        measure_throughput(fake, [])
