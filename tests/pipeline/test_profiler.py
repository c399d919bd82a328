"""The stage profiler: exact times from a fake clock, its report layouts, and its own cost."""

from __future__ import annotations

import json

import pytest

from faceperf.pipeline.profiler import (
    CATEGORIES,
    MODEL_INFERENCE,
    POSTPROCESSING,
    PREPROCESSING,
    NullProfiler,
    StageProfiler,
)


class FakeClock:
    """Returns the given instants in order and counts how often it was read."""

    def __init__(self, *instants: float) -> None:
        self.instants = list(instants)
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.instants.pop(0)


class TickingClock:
    """Advances by a fixed step on every read (never runs out)."""

    def __init__(self, step: float = 0.001) -> None:
        self.now = 0.0
        self.step = step
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


def _profile() -> StageProfiler:
    """STAR 2 calls (0.2 s, 0.1 s), MTL 1 call (0.05 s), one preprocess, one postprocess."""
    clock = FakeClock(
        *(10.0, 10.2),  # STAR_onnx
        *(11.0, 11.1),  # STAR_onnx
        *(12.0, 12.05),  # MTL_onnx
        *(13.0, 13.03),  # STAR_preprocess
        *(14.0, 14.02),  # STAR_postprocess
    )
    profiler = StageProfiler(clock=clock)
    for name, category in (
        ("STAR_onnx", MODEL_INFERENCE),
        ("STAR_onnx", MODEL_INFERENCE),
        ("MTL_onnx", MODEL_INFERENCE),
        ("STAR_preprocess", PREPROCESSING),
        ("STAR_postprocess", POSTPROCESSING),
    ):
        with profiler.stage(name, category):
            pass
    return profiler


def test_stage_records_the_clock_difference_exactly():
    stats = {row.name: row for row in _profile().stats()}
    star = stats["STAR_onnx"]
    assert star.count == 2
    assert star.total_s == pytest.approx(0.3, abs=1e-12)
    assert star.avg_ms == pytest.approx(150.0, abs=1e-9)
    assert star.min_ms == pytest.approx(100.0, abs=1e-9)
    assert star.max_ms == pytest.approx(200.0, abs=1e-9)
    assert star.percent == pytest.approx(100 * 0.3 / 0.4, abs=1e-9)
    assert stats["MTL_onnx"].total_s == pytest.approx(0.05, abs=1e-12)
    assert sum(row.percent for row in stats.values()) == pytest.approx(100.0)


def test_stats_group_by_category_then_slowest_first():
    rows = _profile().stats()
    assert [(r.category, r.name) for r in rows] == [
        (MODEL_INFERENCE, "STAR_onnx"),
        (MODEL_INFERENCE, "MTL_onnx"),
        (PREPROCESSING, "STAR_preprocess"),
        (POSTPROCESSING, "STAR_postprocess"),
    ]


def test_a_failing_stage_is_still_timed_and_the_error_propagates():
    profiler = StageProfiler(clock=FakeClock(1.0, 1.5))
    with (
        pytest.raises(RuntimeError, match="model failed"),
        profiler.stage("STAR_onnx", MODEL_INFERENCE),
    ):
        raise RuntimeError("model failed")
    assert profiler.raw()["STAR_onnx"]["seconds"] == [0.5]


def test_text_layout():
    lines = _profile().text().splitlines()
    assert lines[0] == "PERFORMANCE PROFILE"
    assert lines[1] == "total profiled time: 0.400 s"
    assert lines[2] == ""
    header = (
        f"{'operation':<28}{'count':>8}{'total s':>11}{'avg ms':>10}{'min ms':>10}"
        f"{'max ms':>10}{'% total':>9}"
    )
    assert lines[3] == "model_inference (87.5 %)"
    assert lines[4] == header
    assert lines[5] == (
        f"{'STAR_onnx':<28}{2:>8}{0.3:>11.3f}{150.0:>10.2f}{100.0:>10.2f}{200.0:>10.2f}{75.0:>9.1f}"
    )
    assert lines[6].split() == ["MTL_onnx", "1", "0.050", "50.00", "50.00", "50.00", "12.5"]
    assert lines[7] == ""
    assert lines[8] == "preprocessing (7.5 %)"
    assert lines[9] == header
    assert lines[10].split() == ["STAR_preprocess", "1", "0.030", "30.00", "30.00", "30.00", "7.5"]
    assert lines[12] == "postprocessing (5.0 %)"
    assert lines[14].split()[0] == "STAR_postprocess"
    assert len(lines) == 15  # no trailing blank line
    # Every data row has the header's width, so the columns line up.
    assert {len(lines[i]) for i in (4, 5, 6, 10, 14)} == {len(header)}


def test_text_leaves_out_empty_categories():
    profiler = StageProfiler(clock=FakeClock(0.0, 1.0))
    with profiler.stage("MTL_postprocess", POSTPROCESSING):
        pass
    text = profiler.text()
    assert "postprocessing (100.0 %)" in text
    assert "model_inference" not in text
    assert "preprocessing (" not in text


def test_json_holds_every_raw_time_and_is_serialisable():
    document = json.loads(json.dumps(_profile().to_json()))
    raw = document["raw_seconds"]
    assert raw["STAR_onnx"]["category"] == MODEL_INFERENCE
    assert raw["STAR_onnx"]["seconds"] == pytest.approx([0.2, 0.1], abs=1e-12)  # call order
    assert raw["MTL_onnx"]["seconds"] == pytest.approx([0.05], abs=1e-12)
    assert set(raw) == {"STAR_onnx", "MTL_onnx", "STAR_preprocess", "STAR_postprocess"}
    operations = {op["name"]: op for op in document["operations"]}
    assert operations["STAR_onnx"]["count"] == 2
    assert operations["STAR_onnx"]["total_s"] == pytest.approx(0.3, abs=1e-12)
    assert set(operations["STAR_onnx"]) == {
        "name", "category", "count", "total_s", "avg_ms", "min_ms", "max_ms", "percent"
    }  # fmt: skip


def test_unknown_category_is_refused_naming_the_choices():
    profiler = StageProfiler(clock=TickingClock())
    with pytest.raises(ValueError, match="model_inference, preprocessing, postprocessing"):
        profiler.add("STAR_onnx", "inference", 0.1)
    with pytest.raises(ValueError, match="'gpu'"), profiler.stage("STAR_onnx", "gpu"):
        pass
    assert profiler.stats() == []


def test_one_operation_cannot_change_category():
    profiler = StageProfiler(clock=TickingClock())
    profiler.add("STAR_onnx", MODEL_INFERENCE, 0.1)
    with pytest.raises(ValueError, match="STAR_onnx was recorded as model_inference"):
        profiler.add("STAR_onnx", PREPROCESSING, 0.1)
    assert profiler.raw()["STAR_onnx"]["seconds"] == [0.1]


def test_empty_profile():
    profiler = StageProfiler(clock=TickingClock())
    assert profiler.stats() == []
    assert profiler.raw() == {}
    assert profiler.text() == "PERFORMANCE PROFILE\ntotal profiled time: 0.000 s\n"


def test_null_profiler_records_nothing_and_never_reads_the_clock():
    clock = TickingClock()
    profiler = NullProfiler(clock=clock)
    for category in CATEGORIES:
        with profiler.stage("STAR_onnx", category):
            pass
        profiler.add("MTL_onnx", category, 1.0)
    with pytest.raises(KeyError), profiler.stage("X", MODEL_INFERENCE):
        raise KeyError("bodies still run and raise")
    assert clock.reads == 0
    assert profiler.stats() == []
    assert profiler.raw() == {}
    assert profiler.to_json() == {"operations": [], "raw_seconds": {}}


@pytest.mark.parametrize("stages", [1, 10, 1000])
def test_overhead_is_exactly_two_clock_reads_per_stage(stages):
    clock = TickingClock()
    profiler = StageProfiler(clock=clock)
    for i in range(stages):
        with profiler.stage(f"op{i % 3}", CATEGORIES[i % 3]):
            pass
    assert clock.reads == 2 * stages
    # Reporting reads no clock either.
    profiler.stats()
    profiler.text()
    profiler.to_json()
    assert clock.reads == 2 * stages
    assert sum(row.count for row in profiler.stats()) == stages


def test_a_profile_read_back_from_json_reports_exactly_the_same():
    original = _profile()
    again = StageProfiler.from_raw(json.loads(json.dumps(original.raw())))
    assert again.text() == original.text()
    assert again.stats() == original.stats()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"STAR_onnx": [0.1]}, "expected a category and a list of seconds"),
        ({"STAR_onnx": {"category": MODEL_INFERENCE, "seconds": []}}, "a list of seconds"),
        ({"STAR_onnx": {"category": MODEL_INFERENCE, "seconds": ["fast"]}}, "'fast' is not"),
        ({"STAR_onnx": {"category": MODEL_INFERENCE, "seconds": [True]}}, "True is not a number"),
        ({"STAR_onnx": {"category": MODEL_INFERENCE, "seconds": [-1.0]}}, "-1.0 is not a dur"),
        ({"STAR_onnx": {"category": "gpu", "seconds": [0.1]}}, "category 'gpu'"),
    ],
)
def test_a_malformed_raw_profile_is_refused_naming_the_stage(raw, expected):
    with pytest.raises(ValueError, match=expected):
        StageProfiler.from_raw(raw)


def test_reset_forgets_the_warm_up():
    profiler = _profile()
    profiler.reset()
    assert profiler.stats() == []
    profiler.add("MTL_onnx", MODEL_INFERENCE, 0.25)
    assert [(r.name, r.count, r.total_s) for r in profiler.stats()] == [("MTL_onnx", 1, 0.25)]
