"""bench/memory/leak.py: sampling, the slopes, and plateau told from leak.

The logic runs on fake memory readers (no real time, no real memory); the real cases run a
real loop (MTCNN O-Net) in a fresh process: a list keeping every call's outputs must fail, the
unchanged loop and an allocator-like plateau must pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_time import FakeTime

from faceperf.bench.memory.leak import (
    FLAT,
    GROWING,
    PLATEAU,
    LeakPolicy,
    MemoryTrace,
    judge_leak,
    run_and_judge,
    sample_run,
    sampling_interval,
)
from faceperf.bench.memory.peak import write_feed
from faceperf.verdicts import Verdict

PAGE = 4096
LOOPS = Path(__file__).with_name("loops.py")


class FakeMemory:
    """Resident memory that the fake workload moves: ``figure(call)`` bytes after each call,
    rounded down to whole pages as a resident set is."""

    def __init__(self, figure) -> None:
        self.figure = figure
        self.calls = 0

    def step(self) -> None:
        self.calls += 1

    def read(self) -> int:
        return int(self.figure(self.calls)) // PAGE * PAGE


def _judge(figure, calls: int = 2000, every: int = 10, **policy) -> tuple:
    memory = FakeMemory(figure)
    return run_and_judge("fake", memory.step, calls, every, memory.read, LeakPolicy(**policy))


def test_sampling_reads_before_the_first_call_and_every_k_calls():
    memory = FakeMemory(lambda call: 1_000_000 + 8192 * call)
    fake = FakeTime()
    step = fake.workload("call", [0.5] * 25)

    def both() -> None:
        step()
        memory.step()

    trace = sample_run("fake", both, 25, 10, memory.read, clock=fake.clock)
    assert trace.calls == (0, 10, 20, 25)
    assert trace.bytes == tuple(int(memory.figure(c)) // PAGE * PAGE for c in (0, 10, 20, 25))
    assert trace.seconds == pytest.approx(12.5)


def test_a_steady_leak_fails_with_its_slope():
    trace, verdict = _judge(lambda call: 200e6 + 1000 * call)
    assert verdict.verdict is Verdict.FAIL and verdict.shape == GROWING
    assert verdict.last_half == pytest.approx(1000, rel=0.05)
    assert verdict.first_half == pytest.approx(1000, rel=0.05)
    assert len(trace.calls) == 201


def test_a_leak_below_the_threshold_passes_and_one_above_fails():
    _, small = _judge(lambda call: 200e6 + 100 * call, threshold=256)
    _, large = _judge(lambda call: 200e6 + 400 * call, threshold=256)
    assert small.verdict is Verdict.PASS
    assert large.verdict is Verdict.FAIL


def test_an_allocator_that_grows_then_stops_is_a_plateau():
    # An arena taking 1 MB blocks for the first 900 calls (new shapes), none after.
    _, verdict = _judge(lambda call: 200e6 + 2**20 * min(call // 100, 9))
    assert verdict.shape == PLATEAU and verdict.verdict is Verdict.PASS, verdict.describe()
    assert verdict.first_half > verdict.threshold >= verdict.last_half


def test_growth_that_has_not_settled_by_the_last_half_fails():
    # Still growing at the end: a plateau further on is possible but not shown; run longer.
    _, verdict = _judge(lambda call: 200e6 + 2**20 * min(call // 100, 18))
    assert verdict.verdict is Verdict.FAIL


def test_page_noise_around_a_flat_line_passes():
    rng = np.random.default_rng(0)
    noise = rng.integers(-3, 4, size=3000) * PAGE
    _, verdict = _judge(lambda call: 300e6 + noise[call])
    assert verdict.shape == FLAT and verdict.verdict is Verdict.PASS, verdict.describe()


def test_the_warm_up_is_dropped():
    # Everything grows in the first 10 % (loading, first calls); nothing after.
    _, verdict = _judge(lambda call: 200e6 + 50_000 * min(call, 200))
    assert verdict.shape == FLAT
    assert verdict.growth_bytes == 0


def test_too_few_samples_for_two_halves_is_refused():
    memory = FakeMemory(lambda call: 1e8)
    trace = sample_run("fake", memory.step, 40, 10, memory.read)
    with pytest.raises(ValueError, match="4 samples after warm-up; expected at least 10"):
        judge_leak(trace)


def test_a_trace_must_be_consistent():
    with pytest.raises(ValueError, match="2 call counts for 1 samples"):
        MemoryTrace("x", (0, 1), (5,))
    with pytest.raises(ValueError, match="must increase"):
        MemoryTrace("x", (0, 0), (5, 5))


@pytest.mark.parametrize("calls", [10, 2000, 100_000])
def test_about_two_hundred_samples_per_run(calls):
    assert calls // sampling_interval(calls) <= 200 or sampling_interval(calls) == 1


def test_the_verdict_round_trips_to_json():
    _, verdict = _judge(lambda call: 200e6 + 1000 * call)
    doc = json.loads(json.dumps(verdict.to_json()))
    assert doc["verdict"] == "fail" and doc["shape"] == GROWING
    assert doc["last_half_bytes_per_call"] == pytest.approx(verdict.last_half)


# --- real loops, real memory -----------------------------------------------------------------


@pytest.fixture(scope="module")
def onet_feed(artifacts_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("feed")
    return write_feed(artifacts_dir, "mtcnn_onet", "optimized", folder)


def _real(mode: str, artifacts_dir: Path, feed: Path, calls: int = 600, every: int = 3):
    done = subprocess.run(
        [sys.executable, str(LOOPS), mode, str(artifacts_dir), str(feed), str(calls), str(every)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return judge_leak(MemoryTrace(**json.loads(done.stdout)))


def test_a_loop_that_keeps_every_output_is_caught(artifacts_dir, onet_feed):
    verdict = _real("leak", artifacts_dir, onet_feed)
    assert verdict.verdict is Verdict.FAIL, verdict.describe()
    assert verdict.last_half > 2 * verdict.threshold


def test_the_unchanged_loop_passes(artifacts_dir, onet_feed):
    verdict = _real("clean", artifacts_dir, onet_feed)
    assert verdict.verdict is Verdict.PASS, verdict.describe()


def test_a_real_allocation_that_plateaus_passes(artifacts_dir, onet_feed):
    # 80 chunks of 256 kB over the first 80 calls of 200, sampled every call: growth in the
    # first half after the warm-up (calls 40-120), none in the last.
    verdict = _real("plateau", artifacts_dir, onet_feed, calls=200, every=1)
    assert verdict.shape == PLATEAU and verdict.verdict is Verdict.PASS, verdict.describe()
