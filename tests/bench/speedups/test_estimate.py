"""Speedup tests' building blocks: ABBA blocks on a fake clock, calibration, the record a test
leaves in extra_info, and the report section rebuilt from it."""

from __future__ import annotations

import itertools
import json

import pytest
from fake_time import FakeTime

from faceperf.bench.budgets import SpeedupFloor
from faceperf.bench.gate.storage import BenchmarkRun, BenchmarkSamples
from faceperf.bench.report.render import summary_markdown
from faceperf.bench.report.summary import Summary
from faceperf.bench.speedups.estimate import (
    SPEEDUP_KEY,
    InterleavedBlocks,
    Side,
    SpeedupRecord,
    blocks_for,
    speedup_records,
    speedup_sides,
)
from faceperf.bench.speedups.interleaved import InterleavedSamples
from faceperf.bench.speedups.render import speedup_section
from faceperf.verdicts import Verdict

PROFILE = "linux-x86_64-avx512-2core/ort-cpu"


def test_each_call_is_one_abba_block_and_every_duration_is_kept():
    time = FakeTime()
    slow = time.workload("slow", [4.0, 5.0, 6.0, 7.0])
    fast = time.workload("fast", [1.0, 0.5, 0.25, 0.125])
    blocks = InterleavedBlocks(slow, fast, clock=time.clock)
    blocks()
    assert time.calls == ["slow", "fast", "fast", "slow"]
    blocks()
    assert time.calls[4:] == ["slow", "fast", "fast", "slow"]  # every block starts over
    assert blocks.samples() == InterleavedSamples((4.0, 5.0, 6.0, 7.0), (1.0, 0.5, 0.25, 0.125))


def test_no_block_yet_has_no_samples():
    blocks = InterleavedBlocks(lambda: None, lambda: None)
    with pytest.raises(ValueError, match="at least one"):
        blocks.samples()


@pytest.mark.parametrize(
    ("block_s", "expected"),
    [
        (0.1, 30),  # 3 s / 0.1 s
        (1.0, 10),  # 3 blocks would fit; the minimum wins
        (1e-4, 250),  # 30,000 would fit; the maximum wins
        (0.0, 250),  # a clock too coarse to see the block at all
        (0.29, 10),
        (0.011, 250),
        (0.013, 230),
    ],
)
def test_blocks_fit_the_time_budget_within_bounds(block_s, expected):
    assert blocks_for(block_s, target_s=3.0, minimum=10, maximum=250) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"block_s": -1.0}, "finite, non-negative"),
        ({"block_s": float("nan")}, "finite, non-negative"),
        ({"block_s": 0.1, "minimum": 0}, "1 <= minimum <= maximum"),
        ({"block_s": 0.1, "minimum": 20, "maximum": 10}, "1 <= minimum <= maximum"),
    ],
)
def test_blocks_for_refuses_nonsense(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        blocks_for(**kwargs)


def _samples(slow_ms: float, fast_ms: float, n: int = 20) -> InterleavedSamples:
    # A fixed +-1 % wobble: deterministic, and the medians are exactly slow_ms and fast_ms.
    wobble = list(itertools.islice(itertools.cycle([0.99, 1.0, 1.01]), n))
    return InterleavedSamples(
        tuple(slow_ms * w / 1e3 for w in wobble), tuple(fast_ms * w / 1e3 for w in wobble)
    )


def _floor(value: float) -> SpeedupFloor:
    return SpeedupFloor(PROFILE, "star", "cold_load", value, "measured 2.0x")


LABELS = ("baseline on ort-cpu", "optimized on ort-cpu")


@pytest.mark.parametrize(("floor", "holds"), [(1.5, True), (1.9, True), (2.1, False), (3.0, False)])
def test_a_floor_holds_only_when_the_whole_interval_is_above_it(floor, holds):
    record = SpeedupRecord.measure_of(
        "star", "cold_load", LABELS, _samples(200.0, 100.0), _floor(floor)
    )
    assert record.interval.point == pytest.approx(2.0)
    assert record.interval.low <= 2.0 <= record.interval.high
    assert record.holds is holds
    assert record.floor_reason == "measured 2.0x"


def test_an_interval_straddling_the_floor_does_not_hold():
    # Equal medians: the interval contains 1.0, so "faster than 1.0x" is not shown...
    record = SpeedupRecord.measure_of(
        "star", "steady_state", LABELS, _samples(100.0, 100.0), _floor(1.0)
    )
    assert record.interval.low < 1.0 < record.interval.high
    assert record.holds is False
    # ...while "not more than 10 % slower" is.
    lenient = SpeedupRecord.measure_of(
        "star", "steady_state", LABELS, _samples(100.0, 100.0), _floor(0.9)
    )
    assert lenient.holds is True


def test_without_a_floor_nothing_is_claimed():
    record = SpeedupRecord.measure_of("star", "cold_load", LABELS, _samples(2.0, 1.0), None)
    assert record.holds is None and record.floor is None
    assert "floor" not in record.describe()


def test_describe_says_what_was_compared_and_the_floor():
    record = SpeedupRecord.measure_of(
        "star", "cold_load", LABELS, _samples(200.0, 100.0), _floor(1.3)
    )
    text = record.describe()
    assert text.startswith(
        "star cold load: median(baseline on ort-cpu) / median(optimized on ort-cpu) = 2.00x (95 %"
    )
    assert "20 calls a side" in text and text.endswith("floor 1.3x (measured 2.0x)")


def test_record_validation():
    samples = _samples(2.0, 1.0)
    record = SpeedupRecord.measure_of("star", "cold_load", LABELS, samples, None)
    with pytest.raises(ValueError, match="measure 'warm'"):
        SpeedupRecord("star", "warm", *LABELS, samples=samples, interval=record.interval)
    with pytest.raises(ValueError, match="a floor needs its reason"):
        SpeedupRecord("star", "cold_load", *LABELS, samples, record.interval, floor=1.0)


def test_the_record_survives_json_exactly():
    record = SpeedupRecord.measure_of(
        "mtl", "steady_state", LABELS, _samples(15.0, 14.0), _floor(0.9)
    )
    again = SpeedupRecord.from_extra_info(json.loads(json.dumps(record.to_extra_info())))
    assert again == record


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("interval"), "KeyError"),
        (lambda d: d.update(version=2), "version 2 is not 1"),
        (lambda d: d.update(slow_s=[]), "at least one"),
        (lambda d: d.update(fast_s=[0.1]), "as many A as B"),
        (
            lambda d: d.update(interval={"low": 2, "point": 1, "high": 3, "confidence": 0.95}),
            "contain",
        ),
    ],
)
def test_a_malformed_record_is_refused(change, expected):
    document = SpeedupRecord.measure_of(
        "mtl", "steady_state", LABELS, _samples(15.0, 14.0), None
    ).to_extra_info()
    change(document)
    with pytest.raises(ValueError, match=expected):
        SpeedupRecord.from_extra_info(document)


def _run(extra: dict[str, dict]) -> BenchmarkRun:
    return BenchmarkRun.of(
        PROFILE,
        {"onnxruntime": "1.31.1"},
        [BenchmarkSamples(name, (0.1, 0.2), info) for name, info in extra.items()],
    )


def test_the_report_section_lists_every_speedup_benchmark_with_its_verdict():
    holds = SpeedupRecord.measure_of(
        "star", "cold_load", LABELS, _samples(200.0, 100.0), _floor(1.3)
    )
    fails = SpeedupRecord.measure_of(
        "star", "cold_load", LABELS, _samples(100.0, 100.0), _floor(1.3)
    )
    free = SpeedupRecord.measure_of("mtl", "steady_state", LABELS, _samples(15.0, 14.0), None)
    run = _run(
        {
            "p.py::test_cold_load_speedup[star]": {SPEEDUP_KEY: holds.to_extra_info()},
            "p.py::test_x[fails]": {SPEEDUP_KEY: fails.to_extra_info()},
            "p.py::test_steady_state_speedup[mtl]": {SPEEDUP_KEY: free.to_extra_info()},
            "p.py::test_latency[star]": {"model": "star"},
        }
    )
    assert set(speedup_records(run)) == {
        "p.py::test_cold_load_speedup[star]",
        "p.py::test_x[fails]",
        "p.py::test_steady_state_speedup[mtl]",
    }
    section = speedup_section(speedup_records(run))
    assert section is not None
    verdicts = {row.name: row.verdict for row in section.rows}
    assert verdicts == {
        "test_cold_load_speedup[star]": Verdict.PASS,
        "test_x[fails]": Verdict.FAIL,
        "test_steady_state_speedup[mtl]": Verdict.NOT_GATED,
    }
    lines = summary_markdown(Summary("perf", (section,))).splitlines()
    rows = {line.split(" | ")[0].strip("| `"): line for line in lines if line.startswith("| `")}
    assert rows["test_cold_load_speedup[star]"] == (
        "| `test_cold_load_speedup[star]` | 200 | 100 | 2.00x | "
        f"{holds.interval.low:.2f}-{holds.interval.high:.2f}x | 1.3x | pass |"
    )
    assert rows["test_x[fails]"].endswith("| 1.3x | **fail** |")
    assert rows["test_steady_state_speedup[mtl]"].endswith("| — | not gated |")
    assert lines[0].startswith("**perf: FAIL** — speedup floors: FAIL, test_x[fails] fail")


def test_no_speedup_benchmarks_no_section():
    records = speedup_records(_run({"p.py::test_latency[star]": {"model": "star"}}))
    assert records == {}
    assert speedup_section(records) is None


def test_a_malformed_record_in_a_run_names_the_benchmark():
    with pytest.raises(ValueError, match=r"benchmark p\.py::test_a: not a speedup record"):
        speedup_records(_run({"p.py::test_a": {SPEEDUP_KEY: {"version": 1}}}))
    with pytest.raises(ValueError, match=r"p\.py::test_a: extra_info.speedup must be an object"):
        speedup_records(_run({"p.py::test_a": {SPEEDUP_KEY: [1, 2]}}))


def test_sides_per_backend():
    assert speedup_sides("ort-cpu") == (Side("baseline", "ort-cpu"), Side("optimized", "ort-cpu"))
    assert speedup_sides("ort-coreml")[1].label == "optimized on ort-coreml"
    # Core ML cannot open an ONNX file: the shipped baseline runs on ONNX Runtime's CPU provider.
    assert speedup_sides("coreml") == (Side("baseline", "ort-cpu"), Side("coreml", "coreml"))
