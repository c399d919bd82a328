"""Per model: ``optimized`` against ``baseline`` and against PyTorch eager, and its GFLOP/s.

What ``faceperf bench speedups`` measures. Each ratio comes from its own interleaved pair
(ABBA rounds of :func:`~.interleaved.measure_interleaved`, one process): baseline
with optimized, then eager with optimized, so every ratio compares calls made under the same
machine conditions. The achieved rate is the optimized graph's FLOPs (Conv, ConvTranspose,
Gemm, MatMul, counted from its shapes) over its median latency, shown beside the rate of a
large float32 matrix multiply with the same number of threads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.speedups.flops import count_flops
from faceperf.bench.speedups.interleaved import (
    Clock,
    InterleavedSamples,
    SpeedupInterval,
    measure_interleaved,
    speedup_interval,
)
from faceperf.bench.speedups.matmul_peak import MatmulPeak
from faceperf.bench.speedups.published import APPLE_SILICON, SOURCE
from faceperf.errors import ArtifactError
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.runtime.backends import BackendChoice, backend_name
from faceperf.runtime.base import Runner
from faceperf.runtime.factory import open_runner
from faceperf.runtime.torch_backend import TorchRunner
from faceperf.weights.sources import DEFAULT_SEED, WeightPolicy, resolve_weights


@dataclass(frozen=True)
class ModelCalls:
    """What is timed for one model: three zero-argument calls on the same input.

    Args:
        model: the model's name.
        weights: what its weights are (``surrogate(seed=0)``, ``packaged``, ``real``).
        input_shape: the input the calls run on.
        flops: floating-point operations of one call of the optimized graph.
        baseline: one inference of the baseline artifact.
        optimized: one inference of the optimized artifact.
        eager: one inference of the PyTorch eager model.
    """

    model: str
    weights: str
    input_shape: tuple[int, ...]
    flops: int
    baseline: Callable[[], object]
    optimized: Callable[[], object]
    eager: Callable[[], object]


@dataclass(frozen=True)
class ModelSpeedup:
    """One model's measurement.

    Args:
        model, weights, input_shape, flops: as in :class:`ModelCalls`.
        vs_baseline: the baseline (a) / optimized (b) pair's per-call seconds.
        vs_eager: the eager (a) / optimized (b) pair's per-call seconds.
        over_baseline: interval of median(baseline) / median(optimized).
        over_eager: interval of median(eager) / median(optimized).
    """

    model: str
    weights: str
    input_shape: tuple[int, ...]
    flops: int
    vs_baseline: InterleavedSamples
    vs_eager: InterleavedSamples
    over_baseline: SpeedupInterval
    over_eager: SpeedupInterval

    @property
    def baseline_ms(self) -> float:
        return 1e3 * statistics.median(self.vs_baseline.a_s)

    @property
    def optimized_ms(self) -> float:
        """The optimized median of the pair with the baseline (the pair its GFLOP/s uses)."""
        return 1e3 * statistics.median(self.vs_baseline.b_s)

    @property
    def eager_ms(self) -> float:
        return 1e3 * statistics.median(self.vs_eager.a_s)

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s of the optimized graph at its median latency."""
        return self.flops / self.optimized_ms / 1e6

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "weights": self.weights,
            "input_shape": list(self.input_shape),
            "flops": self.flops,
            "median_ms": {
                "baseline": self.baseline_ms,
                "optimized": self.optimized_ms,
                "eager": self.eager_ms,
            },
            "speedup_over_baseline": _interval_json(self.over_baseline),
            "speedup_over_eager": _interval_json(self.over_eager),
            "achieved_gflops": self.gflops,
            "samples_s": {
                "baseline": list(self.vs_baseline.a_s),
                "optimized_vs_baseline": list(self.vs_baseline.b_s),
                "eager": list(self.vs_eager.a_s),
                "optimized_vs_eager": list(self.vs_eager.b_s),
            },
        }


def measure_model(
    calls: ModelCalls, rounds: int, warmup: int = 3, clock: Clock = time.perf_counter
) -> ModelSpeedup:
    """Measure the two interleaved pairs of one model.

    Args:
        calls: the model's three calls.
        rounds: recorded calls of each side per pair (at least 2; even cancels drift).
        warmup: untimed calls of each side before each pair.
        clock: returns seconds; injected so tests control time.
    """
    if rounds < 2:
        raise ValueError(f"rounds {rounds}: a bootstrap interval needs at least 2 per side")
    vs_baseline = measure_interleaved(calls.baseline, calls.optimized, rounds, warmup, clock)
    vs_eager = measure_interleaved(calls.eager, calls.optimized, rounds, warmup, clock)
    return ModelSpeedup(
        model=calls.model,
        weights=calls.weights,
        input_shape=calls.input_shape,
        flops=calls.flops,
        vs_baseline=vs_baseline,
        vs_eager=vs_eager,
        over_baseline=speedup_interval(vs_baseline.a_s, vs_baseline.b_s),
        over_eager=speedup_interval(vs_eager.a_s, vs_eager.b_s),
    )


@dataclass(frozen=True)
class SpeedupsReport:
    """Every model's measurement and this machine's matmul rates.

    Args:
        profile: the hardware profile name.
        backend: the ONNX Runtime backend of the baseline and optimized sides (a parsed
            ``BackendChoice`` is taken too, and stored as its name).
        threads: intra-op threads of every side (ONNX Runtime and PyTorch).
        rounds, warmup: per pair and side.
        versions: runtime package → version.
        models: one per model, in the order measured.
        peaks: matmul rates, one per thread count measured.
    """

    profile: str
    backend: str
    threads: int
    rounds: int
    warmup: int
    versions: Mapping[str, str]
    models: tuple[ModelSpeedup, ...]
    peaks: tuple[MatmulPeak, ...] = ()
    published_source: str = field(default=SOURCE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", MappingProxyType(dict(self.versions)))
        # The JSON and the table show the backend as text, whichever form it came in.
        object.__setattr__(self, "backend", backend_name(self.backend))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "peaks", tuple(self.peaks))

    def peak_for(self, threads: int) -> MatmulPeak | None:
        """The matmul rate measured with ``threads`` BLAS threads, if it was measured."""
        return next((peak for peak in self.peaks if peak.threads == threads), None)

    def percent_of_peak(self, model: ModelSpeedup) -> float | None:
        """``model``'s GFLOP/s as a percentage of the matmul rate with the report's thread
        count; None when that rate was not measured."""
        peak = self.peak_for(self.threads)
        return None if peak is None else 100 * model.gflops / peak.gflops

    def to_json(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "backend": self.backend,
            "threads": self.threads,
            "rounds": self.rounds,
            "warmup": self.warmup,
            "versions": dict(self.versions),
            "models": [
                {
                    **m.to_json(),
                    "percent_of_matmul_peak": self.percent_of_peak(m),
                    "published_apple_silicon": _published_json(m.model),
                }
                for m in self.models
            ],
            "matmul_peaks": [p.to_json() for p in self.peaks],
            "published_source": self.published_source,
        }


def open_model_calls(
    directory: Path, model: str, backend: str | BackendChoice, threads: int
) -> ModelCalls:
    """Open the baseline and optimized artifacts and the eager model of ``model``.

    The input is the model's first realistic sample (the perf suite's), shaped as its
    artifacts take it (one face, or P-Net's first 1080p pyramid level).

    Args:
        directory: the artifact folder.
        model: the model's name.
        backend: ONNX Runtime backend of the two artifacts (``ort-cpu`` ...).
        threads: intra-op threads of the two sessions; PyTorch's are set by the caller.

    Raises:
        ArtifactError: an artifact is missing or changed, or the eager model cannot get the
            weights the artifacts were built from.
    """
    spec = default_registry()[model]
    sample = np.array(sample_batch(model)[:1])
    baseline = open_runner(directory, model, "baseline", backend=backend, threads=threads)
    optimized = open_runner(directory, model, "optimized", backend=backend, threads=threads)
    eager, weights = open_eager_runner(directory, model)
    optimized_file = artifact_path(directory, model, "optimized")
    flops = count_flops(optimized_file, {spec.input_name: sample.shape}).flops
    return ModelCalls(
        model=model,
        weights=weights,
        input_shape=tuple(sample.shape),
        flops=flops,
        baseline=_call(baseline, sample),
        optimized=_call(optimized, sample),
        eager=_call(eager, sample),
    )


def open_eager_runner(directory: Path, model: str) -> tuple[Runner, str]:
    """The PyTorch eager model with the weights the artifacts of ``directory`` were built from.

    Returns the runner and its weights' label.

    Raises:
        ArtifactError: the artifacts were built from a real checkpoint that is not in
            ``weights/`` any more, or is another file now.
    """
    spec = default_registry()[model]
    recorded = read_manifest(directory).models[model].weights
    policy = {"real": WeightPolicy.REAL, "surrogate": WeightPolicy.SURROGATE}.get(
        recorded.kind, WeightPolicy.AUTO
    )
    seed = DEFAULT_SEED if recorded.seed is None else recorded.seed
    weights = resolve_weights(spec, policy, seed=seed)
    if recorded.is_real and weights.source.sha256 != recorded.sha256:
        where = recorded.file if recorded.committed else f"weights/{recorded.file}"
        raise ArtifactError(
            f"{directory}: {model} was built from a checkpoint with sha256 "
            f"{(recorded.sha256 or '?')[:12]}, but {where} is another file now; "
            "rebuild the artifacts"
        )
    label = weights.source.label()
    return TorchRunner(weights.build_model(), spec, f"{model} ({label})"), label


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run PyTorch's intra-op pool with ``threads`` threads inside the block, then restore it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def models_in_order(names: Sequence[str]) -> list[str]:
    """The models measured, in the registry's order (the README's tables' order)."""
    order = default_registry().names()
    return sorted(names, key=order.index)


def _call(runner: Runner, sample: np.ndarray) -> Callable[[], object]:
    declared = runner.inputs[0]
    feeds = {declared.name: sample.astype(declared.dtype)}
    return lambda: runner.run(feeds)


def _interval_json(interval: SpeedupInterval) -> dict[str, float]:
    return {
        "low": interval.low,
        "point": interval.point,
        "high": interval.high,
        "confidence": interval.confidence,
    }


def _published_json(model: str) -> dict[str, object] | None:
    figure = APPLE_SILICON.get(model)
    if figure is None:
        return None
    return {
        "subject": figure.subject,
        "baseline": figure.baseline,
        "optimised": figure.optimised,
        "speedup": figure.speedup,
        "how": figure.how,
    }
