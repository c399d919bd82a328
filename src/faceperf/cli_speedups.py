"""``faceperf bench speedups``: per model, optimized vs baseline vs PyTorch eager, interleaved,
with achieved GFLOP/s beside this machine's matmul rate and the published Apple figures.

Registered by cli.py (``add_bench_commands``, ``run``); the measurement lives in
faceperf.bench.model_speedups. Importing this module is light: heavy imports are in ``run``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path

from faceperf.cli_args import model_list
from faceperf.paths import default_artifacts_dir

_VERSIONED = ("onnxruntime", "torch", "numpy")


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {minimum}")
        return value

    return parse


def add_bench_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``faceperf bench speedups`` to the top-level subcommands."""
    bench = commands.add_parser("bench", help="measurements beyond the perf suite")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    speedups = bench_commands.add_parser(
        "speedups",
        help="per model: optimized vs baseline vs PyTorch eager (interleaved), GFLOP/s, "
        "matmul peak, published Apple figures",
    )
    speedups.add_argument(
        "--threads",
        type=_count(1),
        default=1,
        help="intra-op threads of ONNX Runtime and PyTorch (default 1, as the perf suite)",
    )
    speedups.add_argument("--json", action="store_true", help="print everything as JSON")
    speedups.add_argument("--models", type=model_list, default=None, help="comma-separated models")
    speedups.add_argument(
        "--rounds", type=_count(2), default=20, help="interleaved rounds per pair (default 20)"
    )
    speedups.add_argument("--warmup", type=_count(0), default=3, help="warm-up calls per side")
    speedups.add_argument(
        "--artifacts", type=Path, default=None, help="artifact folder (default: weights/build)"
    )
    speedups.add_argument(
        "--backend", default="ort-cpu", help="ONNX Runtime backend (ort-cpu, ort-coreml, ort-cuda)"
    )
    speedups.add_argument(
        "--matmul-size", type=_count(1), default=2048, help="side of the matmul (default 2048)"
    )
    speedups.add_argument(
        "--matmul-repeats", type=_count(1), default=5, help="timed matmuls per thread count"
    )


def run(args: argparse.Namespace) -> int:
    """Measure, then print the table (or JSON). Errors propagate to cli.main (exit 2)."""
    from faceperf.bench.hardware import detect_profile
    from faceperf.bench.matmul_peak import measure_matmul_peak
    from faceperf.bench.model_speedups import (
        SpeedupsReport,
        measure_model,
        models_in_order,
        open_model_calls,
        torch_threads,
    )
    from faceperf.cli_pipeline import warn_if_surrogate
    from faceperf.models.registry import default_registry

    directory = args.artifacts or default_artifacts_dir()
    models = models_in_order(args.models or default_registry().names())
    warn_if_surrogate(directory, models)
    profile = detect_profile(args.backend)
    measured = []
    with torch_threads(args.threads):
        for model in models:
            print(f"measuring {model} ...", file=sys.stderr)
            calls = open_model_calls(directory, model, args.backend, args.threads)
            measured.append(measure_model(calls, args.rounds, args.warmup))
    print("measuring the float32 matmul rate ...", file=sys.stderr)
    thread_counts = sorted({1, args.threads, os.cpu_count() or 1})
    peaks = tuple(
        measure_matmul_peak(threads, args.matmul_size, args.matmul_repeats)
        for threads in thread_counts
    )
    report = SpeedupsReport(
        profile=profile.name,
        backend=args.backend,
        threads=args.threads,
        rounds=args.rounds,
        warmup=args.warmup,
        versions={name: metadata.version(name) for name in _VERSIONED},
        models=tuple(measured),
        peaks=peaks,
    )
    print(json.dumps(report.to_json(), indent=2) if args.json else report.table(), end="")
    if args.json:
        print()
    return 0
