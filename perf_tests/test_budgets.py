"""The product's budgets, per hardware profile: STAR and MTL latency, MTCNN 1080p throughput,
and the Face Mirror pipeline's frame rate.

Budgets come from baselines/budgets.toml; a profile without one is measured and recorded but
not judged, and the skip says why. Under --benchmark-disable (the smoke mode of `make test`)
each benchmark runs once and no budget is asserted: timing noise must not decide a landing.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceperf.bench.budgets import Budget, load_budgets
from faceperf.bench.gate.canary import pedantic_with_canary
from faceperf.bench.gate.paths import budgets_path
from faceperf.bench.report.stages import STAGE_KEY, stage_record
from faceperf.fixtures import faces as fixture_faces
from faceperf.fixtures.samples import sample_batch
from faceperf.pipeline.face_mirror import FaceMirrorLoop
from faceperf.pipeline.mtcnn_detector import OPENFACE_PRESET, MTCNNDetector
from faceperf.pipeline.profiler import StageProfiler
from faceperf.pipeline.video import synthetic_frames
from faceperf.runtime.artifact_ref import ArtifactRef

pytestmark = pytest.mark.perf
SCENES = ["scene1", "scene2", "scene3", "scene4"]


@pytest.fixture(scope="module")
def variant(perf_profile) -> str:
    return "coreml" if perf_profile.backend == "coreml" else "optimized"


def _budget(perf_profile, name: str) -> Budget | None:
    return load_budgets(budgets_path()).budget_for(perf_profile.name, name)


def _judge(benchmark, perf_profile, name: str, latency_ms: float) -> None:
    budget = _budget(perf_profile, name)
    benchmark.extra_info.update(profile=perf_profile.name, budget=budget and budget.describe())
    if benchmark.disabled:
        return  # smoke mode: the code ran; timing is not judged
    if budget is None:
        pytest.skip(f"no '{name}' budget for profile {perf_profile.name} in {budgets_path()}")
    assert budget.allows(latency_ms), (
        f"{name} on {perf_profile.name}: {latency_ms:.1f} ms per call breaks the budget "
        f"{budget.describe()} ({budget.reason})"
    )


@pytest.mark.parametrize("model", ["star", "mtl"])
def test_model_latency_within_budget(
    benchmark, artifacts_dir, perf_profile, perf_threads, perf_canary, variant, model
):
    runner = ArtifactRef(artifacts_dir, variant, perf_profile.backend, perf_threads).open(model)
    sample = np.array(sample_batch(model)[:1]).astype(runner.inputs[0].dtype)
    feeds = {runner.inputs[0].name: sample}
    benchmark.group = f"{model} latency"
    benchmark.extra_info.update(model=model, variant=variant, executed_on=runner.executed_on)
    pedantic_with_canary(benchmark, runner.run, (feeds,), rounds=20, canary=perf_canary)
    median_ms = 1e3 * benchmark.stats.stats.median if not benchmark.disabled else 0.0
    _judge(benchmark, perf_profile, f"{model} latency", median_ms)


def test_mtcnn_1080p_throughput_within_budget(
    benchmark, artifacts_dir, perf_profile, perf_canary, variant
):
    ref = ArtifactRef(artifacts_dir, variant, perf_profile.backend)
    detector = MTCNNDetector.open(ref, params=OPENFACE_PRESET)
    frames = [fixture_faces.load_image(name) for name in SCENES]

    def all_scenes() -> int:
        return sum(len(detector.detect(frame)) for frame in frames)

    benchmark.group = "mtcnn 1080p throughput"
    found = pedantic_with_canary(
        benchmark, all_scenes, rounds=8, warmup_rounds=1, canary=perf_canary
    )
    # Every reference face of 60 px or more, and none the reference (min face 20) lacks.
    faces = [f for name in SCENES for f in fixture_faces.reference_faces(name)]
    large = sum(1 for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= 60)
    assert large <= found <= len(faces)
    per_frame_ms = 1e3 * benchmark.stats.stats.median / len(frames) if not benchmark.disabled else 0
    benchmark.extra_info.update(
        frames_per_round=len(frames), fps=1e3 / per_frame_ms if per_frame_ms else None
    )
    _judge(benchmark, perf_profile, "mtcnn 1080p throughput", per_frame_ms)


def test_face_mirror_pipeline_frame_rate(
    benchmark, artifacts_dir, perf_profile, perf_threads, perf_canary, variant
):
    profiler = StageProfiler()
    ref = ArtifactRef(artifacts_dir, variant, perf_profile.backend, perf_threads)
    loop = FaceMirrorLoop.open(ref, profiler=profiler)
    frames = list(synthetic_frames(8))
    profiled = []

    def clip() -> int:
        done = sum(1 for _ in loop.run(frames))
        profiled.append(done)
        return done

    if not benchmark.disabled:
        clip()  # warm-up: neither timed nor in the stage profile
        profiler.reset()
        profiled.clear()
    benchmark.group = "pipeline frame rate"
    done = pedantic_with_canary(benchmark, clip, rounds=5, warmup_rounds=0, canary=perf_canary)
    assert done == len(frames)
    per_frame_ms = 1e3 * benchmark.stats.stats.median / len(frames) if not benchmark.disabled else 0
    benchmark.extra_info.update(
        frames_per_round=len(frames), fps=1e3 / per_frame_ms if per_frame_ms else None
    )
    # Every stage call of the timed rounds, so the report rebuilds the breakdown from JSON.
    benchmark.extra_info[STAGE_KEY] = stage_record(profiler, sum(profiled))
    _judge(benchmark, perf_profile, "pipeline frame rate", per_frame_ms)
