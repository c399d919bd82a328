"""One ``faceperf bench speedups`` run: every model measured (see ``model_speedups``), then this
machine's float32 matmul rate, gathered into one report."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from faceperf.bench.hardware import detect_profile
from faceperf.bench.speedups.matmul_peak import measure_matmul_peak
from faceperf.bench.speedups.models import (
    SpeedupsReport,
    measure_model,
    models_in_order,
    open_model_calls,
    torch_threads,
)
from faceperf.runtime.backends import BackendChoice

VERSIONED = ("onnxruntime", "torch", "numpy")  # the runtimes a speedups report records


@dataclass(frozen=True)
class SpeedupsRequest:
    """What to measure.

    Args:
        directory: the artifact folder.
        models: the models, measured in ``models_in_order``.
        backend: the ONNX Runtime backend of the baseline and optimized sides.
        threads: intra-op threads of ONNX Runtime and PyTorch.
        rounds: interleaved rounds per pair.
        warmup: warm-up calls per side.
        matmul_size: side of the square matmul.
        matmul_repeats: timed matmuls per thread count.
    """

    directory: Path
    models: Sequence[str]
    backend: str | BackendChoice = "ort-cpu"
    threads: int = 1
    rounds: int = 20
    warmup: int = 3
    matmul_size: int = 2048
    matmul_repeats: int = 5


def run_speedups(request: SpeedupsRequest, say: Callable[[str], None]) -> SpeedupsReport:
    """Measure every model, then the matmul rate at 1, ``threads`` and all cores.

    Args:
        request: what to measure.
        say: told what is being measured, before each step (progress for a person).

    Raises:
        FaceperfError: an artifact is missing or changed, or an eager model lacks its weights.
    """
    profile = detect_profile(request.backend)
    measured = []
    with torch_threads(request.threads):
        for model in models_in_order(request.models):
            say(f"measuring {model} ...")
            calls = open_model_calls(request.directory, model, request.backend, request.threads)
            measured.append(measure_model(calls, request.rounds, request.warmup))
    say("measuring the float32 matmul rate ...")
    thread_counts = sorted({1, request.threads, os.cpu_count() or 1})
    peaks = tuple(
        measure_matmul_peak(threads, request.matmul_size, request.matmul_repeats)
        for threads in thread_counts
    )
    return SpeedupsReport(
        profile=profile.name,
        backend=request.backend,
        threads=request.threads,
        rounds=request.rounds,
        warmup=request.warmup,
        versions={name: metadata.version(name) for name in VERSIONED},
        models=tuple(measured),
        peaks=peaks,
    )
