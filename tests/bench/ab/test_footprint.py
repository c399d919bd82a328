"""The merge gate's memory and size verdicts: what is measured for which benchmark, sizes on
real artifact folders, and how the verdicts count, read and are stored."""

from __future__ import annotations

import json
import math

import onnx
import pytest
from ab_outcomes import outcome
from memory_folders import one_model_folder, replace_variant
from summary_shape import check_summary_shape

from faceperf.artifacts.layout import artifact_path
from faceperf.bench.ab.footprint import (
    footprint_names,
    measure_memory,
    memory_subjects,
    size_changes,
)
from faceperf.bench.ab.pairings import AbRequest
from faceperf.bench.ab.render import markdown, terminal
from faceperf.bench.ab.result import AbResult
from faceperf.bench.memory.compare import MIB, MemoryThreshold, compare_peaks
from faceperf.bench.memory.peak import MemoryPeaks, MemoryRequest
from faceperf.bench.memory.size import SizeChange
from faceperf.verdicts import Verdict, exit_code

JUDGED = ("star-optimized", "mtcnn_pnet-optimized_fp16", "star-optimized-load", "mtcnn", "pipeline")


def _request(reference, candidate) -> AbRequest:
    return AbRequest(reference=reference, candidate=candidate, threads=1)


def test_every_timed_benchmark_but_session_creation_gets_a_memory_and_models_a_size(tmp_path):
    request = _request(tmp_path / "r", tmp_path / "c")
    subjects = memory_subjects(request, JUDGED)
    assert [(s.benchmark, s.subject, s.variant) for s in subjects] == [
        ("star-optimized", "star", "optimized"),
        ("mtcnn_pnet-optimized_fp16", "mtcnn_pnet", "optimized_fp16"),
        ("mtcnn", "mtcnn", "optimized"),
        ("pipeline", "face_mirror", "optimized"),
    ]
    assert footprint_names(request, JUDGED) == (
        "star-optimized:memory",
        "mtcnn_pnet-optimized_fp16:memory",
        "mtcnn:memory",
        "pipeline:memory",
        "star-optimized:size",
        "mtcnn_pnet-optimized_fp16:size",
    )


def _fake_peaks(request: MemoryRequest) -> MemoryPeaks:
    grows = request.directory.name == "candidate" and request.subject == "mtcnn_onet"
    steady = (140 if grows else 40) * MIB
    return MemoryPeaks(
        request.subject, request.variant, request.backend, request.threads, request.calls,
        "fake", 50 * MIB, 60 * MIB, 60 * MIB, 50 * MIB + steady, 50 * MIB + steady, 0.1, 0.1,
    )  # fmt: skip


def test_both_sides_are_measured_with_their_own_feeds_and_judged_by_benchmark(
    artifacts_dir, tmp_path
):
    reference = one_model_folder(
        artifacts_dir, tmp_path / "reference", "mtcnn_onet", ("optimized",)
    )
    candidate = one_model_folder(
        artifacts_dir, tmp_path / "candidate", "mtcnn_onet", ("optimized",)
    )
    seen: list[MemoryRequest] = []

    def measure(request: MemoryRequest) -> MemoryPeaks:
        seen.append(request)
        assert request.feed is not None and request.feed.is_file()
        return _fake_peaks(request)

    asked = []

    def threshold_of(name: str) -> MemoryThreshold:
        asked.append(name)
        return MemoryThreshold(0.05, 1.0)

    (change,) = measure_memory(
        _request(reference, candidate), ["mtcnn_onet-optimized"], threshold_of, 2, measure
    )
    assert asked == ["mtcnn_onet-optimized"]
    assert {r.directory for r in seen} == {reference, candidate}
    assert all((r.calls, r.threads) == (2, 1) for r in seen)
    assert change.name == "mtcnn_onet-optimized:memory" and change.verdict is Verdict.LARGER
    assert change.threshold == MemoryThreshold(0.05, 1.0)


def test_an_fp16_artifact_stored_as_fp32_is_a_larger_size(artifacts_dir, tmp_path):
    variants = ("optimized", "optimized_fp16")
    reference = one_model_folder(artifacts_dir, tmp_path / "reference", "mtl", variants)
    candidate = one_model_folder(artifacts_dir, tmp_path / "candidate", "mtl", variants)
    fp32 = onnx.load(artifact_path(candidate, "mtl", "optimized"))
    replace_variant(candidate, "mtl", "optimized_fp16", fp32)
    changes = size_changes(_request(reference, candidate), ["mtl-optimized", "mtl-optimized_fp16"])
    verdicts = {(c.variant, c.verdict) for c in changes}
    assert verdicts == {("optimized", Verdict.SAME), ("optimized_fp16", Verdict.LARGER)}
    fp16 = next(c for c in changes if c.variant == "optimized_fp16")
    assert fp16.ratio == pytest.approx(2.0, rel=0.01)


def _peaks(load_mib: float, steady_mib: float) -> MemoryPeaks:
    return MemoryPeaks(
        "star", "optimized", "ort-cpu", 1, 2, "fake", 50 * MIB,
        int((50 + load_mib) * MIB), int((50 + load_mib) * MIB),
        int((50 + steady_mib) * MIB), int((50 + steady_mib) * MIB), 0.1, 0.2,
    )  # fmt: skip


def _result(**kwargs) -> AbResult:
    memory = (
        compare_peaks(
            "star-optimized:memory", _peaks(167, 245), _peaks(167, 346), MemoryThreshold()
        ),
        compare_peaks("pipeline:memory", _peaks(190, 358), _peaks(190, 358), MemoryThreshold()),
    )
    sizes = (
        SizeChange("star", "optimized", 55_000_000, 55_000_000, Verdict.SAME),
        SizeChange("mtl", "optimized_fp16", 50_000_000, 100_000_000, Verdict.LARGER),
    )
    outcomes = (
        outcome("star-optimized", Verdict.SAME, 0.99, 1.0, 1.01),
        outcome("pipeline", Verdict.UNDECIDED, 0.0, 1.0, math.inf),
    )
    return AbResult(outcomes=outcomes, memory=memory, sizes=sizes, **kwargs)


def test_a_larger_memory_or_size_fails_the_gate_whatever_the_time_says():
    result = _result()
    assert exit_code(result.verdicts()) == 1
    assert dict(result.footprint()) == {
        "star-optimized:memory": Verdict.LARGER,
        "pipeline:memory": Verdict.SAME,
        "star-optimized:size": Verdict.SAME,
        "mtl-optimized_fp16:size": Verdict.LARGER,
    }
    headline = result.headline()
    assert headline.startswith(
        "faceperf ab: FAIL: star-optimized:memory, mtl-optimized_fp16:size larger"
    ), headline
    assert "memory and size: 2 larger" in headline


def test_accepted_growth_passes_with_its_reason():
    reasons = {
        "star-optimized:memory": "a wider decoder, reviewed",
        "mtl-optimized_fp16:size": "FP32 on purpose",
    }
    result = _result(accepted=reasons)
    assert exit_code(result.verdicts()) == 0
    text = markdown(result)
    assert "accepted (larger): a wider decoder, reviewed" in text
    check_summary_shape(text)


def test_the_summary_shows_which_phase_grew_and_by_how_much():
    result = _result()
    text = markdown(result)
    check_summary_shape(text)
    row = next(line for line in text.splitlines() if line.startswith("| star-optimized:memory"))
    assert "x1.412 (steady)" in row and "steady 245.0 → 346.0 MiB" in row, row
    assert "max(1 %, 2 MiB)" in row
    lines = terminal(result).splitlines()
    memory = next(line for line in lines if "star-optimized:memory" in line)
    assert memory.split()[0] == "larger" and "in steady:" in memory, memory


def test_ab_json_keeps_both_records_and_the_sizes():
    doc = json.loads(json.dumps(_result().to_json()))
    assert doc["faceperf_ab"] == 2
    star = doc["memory"][0]
    assert star["name"] == "star-optimized:memory" and star["verdict"] == "larger"
    assert star["phases"][1]["delta_bytes"] == 101 * MIB
    assert star["reference"]["steady_above_floor_bytes"] == 245 * MIB
    assert doc["sizes"][1]["name"] == "mtl-optimized_fp16:size"
    assert doc["sizes"][1]["ratio"] == 2.0
