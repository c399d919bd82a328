"""The pipeline's stage breakdown in the report, rebuilt from results.json alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceperf.bench.gate.storage import BenchmarkRun, BenchmarkSamples
from faceperf.bench.report.stages import (
    STAGE_KEY,
    STAGE_PLOT,
    STAGE_TEXT,
    stage_breakdowns,
    stage_record,
    write_stage_outputs,
)
from faceperf.pipeline.profiler import MODEL_INFERENCE, POSTPROCESSING, PREPROCESSING, StageProfiler

PROFILE = "linux-x86_64-avx512-2core/ort-cpu"
PIPELINE = "perf_tests/test_budgets.py::test_face_mirror_pipeline_frame_rate"


def _profiler() -> StageProfiler:
    profiler = StageProfiler()
    for seconds in (0.2, 0.25, 0.21, 0.22):
        profiler.add("STAR_onnx", MODEL_INFERENCE, seconds)
        profiler.add("STAR_preprocess", PREPROCESSING, seconds / 100)
        profiler.add("STAR_postprocess", POSTPROCESSING, seconds / 1000)
    for seconds in (0.014, 0.013, 0.015, 0.016, 0.012, 0.014, 0.013, 0.015):
        profiler.add("MTL_onnx", MODEL_INFERENCE, seconds)
    profiler.add("RetinaFace_onnx", MODEL_INFERENCE, 0.02)
    return profiler


def _run(extra: dict) -> BenchmarkRun:
    # Through JSON, as the report reads it.
    extra = json.loads(json.dumps(extra))
    samples = [BenchmarkSamples(PIPELINE, (1.8, 1.9, 2.0), extra)]
    return BenchmarkRun.of(PROFILE, {"onnxruntime": "1.31.1"}, samples)


def test_the_text_is_the_profilers_own_layout_with_a_per_frame_header(tmp_path: Path):
    run = _run({STAGE_KEY: stage_record(_profiler(), frames=4), "fps": 2.1})
    written = write_stage_outputs(tmp_path, run)
    assert written == [tmp_path / STAGE_TEXT, tmp_path / STAGE_PLOT]
    text = (tmp_path / STAGE_TEXT).read_text()
    first, rest = text.split("\n", 1)
    total_ms = 1e3 * sum(r.total_s for r in _profiler().stats())
    assert first == (
        f"# test_face_mirror_pipeline_frame_rate: 4 frames, {total_ms / 4:.1f} ms of profiled "
        "stages per frame"
    )
    assert rest == _profiler().text()
    assert (tmp_path / STAGE_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / STAGE_PLOT).stat().st_size > 10_000


def test_a_run_without_stages_writes_nothing(tmp_path: Path):
    assert write_stage_outputs(tmp_path, _run({"fps": 2.1})) == []
    assert list(tmp_path.iterdir()) == []


def test_breakdown_keeps_frames_and_every_call():
    (breakdown,) = stage_breakdowns(_run({STAGE_KEY: stage_record(_profiler(), frames=4)}))
    assert (breakdown.benchmark, breakdown.frames) == (PIPELINE, 4)
    assert breakdown.profiler.stats() == _profiler().stats()


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ([1, 2], "expected an object with 'frames' and 'seconds'"),
        ({"frames": 0, "seconds": {}}, "frames 0: expected a positive integer"),
        ({"frames": True, "seconds": {}}, "frames True"),
        ({"frames": 4, "seconds": {}}, "'seconds' must map each stage"),
        ({"frames": 4, "seconds": {"STAR_onnx": {"category": "gpu", "seconds": [0.1]}}}, "'gpu'"),
        ({"frames": 4, "seconds": {"STAR_onnx": {"category": "preprocessing"}}}, "STAR_onnx"),
    ],
)
def test_a_malformed_stage_record_names_the_benchmark(record, expected):
    with pytest.raises(ValueError, match=r"test_face_mirror_pipeline_frame_rate: extra_info") as e:
        stage_breakdowns(_run({STAGE_KEY: record}))
    assert expected in str(e.value)


def test_stage_record_needs_the_frames_it_covers():
    with pytest.raises(ValueError, match="frames 0"):
        stage_record(_profiler(), frames=0)
