"""Steady-state latency and cold-load time of every ONNX artifact on ONNX Runtime CPU, and of
every Core ML artifact on Core ML (macOS).

Budgets, baselines and the regression gate build on these benchmarks; here they measure and
record (model, variant, weights, provider) with pytest-benchmark. `make test` runs them once each
with --benchmark-disable as a smoke test; `make perf` times them.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceperf.artifacts.layout import ONNX_VARIANTS
from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.gate.canary import pedantic_with_canary
from faceperf.bench.gate.storage import MEMORY_KEY, SIZE_KEY
from faceperf.bench.memory.size import artifact_size
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.coreml_backend import coreml_unavailable_reason

pytestmark = pytest.mark.perf
MODELS = default_registry().names()


def _one_input(name: str) -> dict[str, np.ndarray]:
    spec = default_registry()[name]
    return {spec.input_name: np.array(sample_batch(name)[:1])}


def _describe(benchmark, artifacts_dir, name: str, variant: str, executed_on) -> None:
    record = read_manifest(artifacts_dir).models[name]
    benchmark.group = f"{name} latency"
    benchmark.extra_info.update(
        model=name,
        variant=variant,
        weights=record.weights.kind,
        executed_on=list(executed_on),
        artifact_sha256=record.variants[variant].sha256,
    )


def _footprint(benchmark, request, artifacts_dir, name: str, variant: str) -> None:
    """The artifact's peak memory (measured in fresh processes before any timing) and bytes on
    disk, in the record: every committed baseline carries them (the baseline gate compares
    sizes). Not under --benchmark-disable, which saves no record."""
    if benchmark.disabled:
        return
    record = request.getfixturevalue("memory_peaks").get((name, variant))
    benchmark.extra_info[MEMORY_KEY] = None if record is None else record.to_json()
    benchmark.extra_info[SIZE_KEY] = artifact_size(artifacts_dir, name, variant).bytes


@pytest.mark.parametrize("variant", ONNX_VARIANTS)
@pytest.mark.parametrize("name", MODELS)
def test_steady_state_latency_ort_cpu(
    benchmark, request, artifacts_dir, perf_threads, perf_canary, name, variant
):
    _footprint(benchmark, request, artifacts_dir, name, variant)
    runner = ArtifactRef(artifacts_dir, variant, "ort-cpu", perf_threads).open(name)
    feeds = _one_input(name)
    _describe(benchmark, artifacts_dir, name, variant, runner.executed_on)
    outputs = pedantic_with_canary(benchmark, runner.run, (feeds,), rounds=20, canary=perf_canary)
    assert set(outputs) == set(default_registry()[name].output_names)


@pytest.mark.parametrize("variant", ONNX_VARIANTS)
@pytest.mark.parametrize("name", MODELS)
def test_cold_load_ort_cpu(benchmark, artifacts_dir, perf_threads, name, variant):
    # Session creation (graph optimisation, kernel selection) apart from steady state: what a
    # user waits for at application start.
    ref = ArtifactRef(artifacts_dir, variant, "ort-cpu", perf_threads)
    runner = benchmark.pedantic(ref.open, args=(name,), kwargs={"verify": False}, rounds=5)
    _describe(benchmark, artifacts_dir, name, variant, runner.executed_on)
    benchmark.group = f"{name} cold load"


def _coreml_backend(perf_profile) -> str:
    """--perf-backend when it names Core ML (with its compute units), else plain coreml."""
    return perf_profile.backend if perf_profile.backend.startswith("coreml") else "coreml"


@pytest.mark.coreml
@pytest.mark.parametrize("name", MODELS)
def test_steady_state_latency_coreml(benchmark, artifacts_dir, perf_profile, name):
    reason = coreml_unavailable_reason()
    if reason:
        pytest.skip(reason)
    runner = ArtifactRef(artifacts_dir, "coreml", _coreml_backend(perf_profile)).open(name)
    feeds = {k: v.astype(np.float16) for k, v in _one_input(name).items()}
    _describe(benchmark, artifacts_dir, name, "coreml", runner.executed_on)
    runner.run(feeds)  # the first prediction specialises the model for its device: not steady
    outputs = benchmark.pedantic(runner.run, args=(feeds,), warmup_rounds=3, rounds=20)
    assert set(outputs) == set(default_registry()[name].output_names)


@pytest.mark.coreml
@pytest.mark.parametrize("name", MODELS)
def test_first_load_coreml(benchmark, artifacts_dir, perf_profile, name):
    # What a user waits for before the first answer: compiling the package, loading it, and the
    # first prediction (device specialisation), reported apart from steady state.
    reason = coreml_unavailable_reason()
    if reason:
        pytest.skip(reason)
    ref = ArtifactRef(artifacts_dir, "coreml", _coreml_backend(perf_profile))
    feeds = {k: v.astype(np.float16) for k, v in _one_input(name).items()}

    def first_answer():
        runner = ref.open(name, verify=False)
        runner.run(feeds)
        return runner

    runner = benchmark.pedantic(first_answer, rounds=3)
    _describe(benchmark, artifacts_dir, name, "coreml", runner.executed_on)
    benchmark.group = f"{name} cold load"
