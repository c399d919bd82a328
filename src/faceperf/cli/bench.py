"""The benchmark commands: ``compare``, ``baseline update``, ``report`` (the perf gate and its
baselines) and ``bench speedups | mtcnn | memory | leak | explain | sustained`` (measurements
beyond the perf suite; memory and leak in cli/memory.py, explain and sustained in their own
modules; ``bench-mtcnn`` is the old name of ``bench mtcnn``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceperf.cli.exits import EXIT_OK, EXIT_USAGE
from faceperf.cli.explain import add_explain
from faceperf.cli.memory import add_leak, add_memory
from faceperf.cli.notes import warn_if_surrogate
from faceperf.cli.options import (
    add_accept,
    add_json,
    add_models,
    add_mtcnn_preset,
    add_runtime_options,
    add_threads,
    artifact_ref,
)
from faceperf.cli.sustained import add_sustained
from faceperf.options import add_artifacts, add_backend, add_perf_profile, at_least


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``compare``, ``baseline``, ``report``, ``bench`` and ``bench-mtcnn`` to the
    top-level commands."""
    _add_compare(commands)
    _add_baseline(commands)

    report = commands.add_parser("report", help="regenerate a perf report folder")
    report.add_argument("directory", type=Path)
    report.add_argument("--baseline", type=Path, default=None)
    _add_allow_mismatch(report, help="compare with a baseline of another profile or runtime")
    report.set_defaults(func=_report)

    bench = commands.add_parser("bench", help="measurements beyond the perf suite")
    sub = bench.add_subparsers(dest="bench_command", required=True)
    _add_speedups(sub)
    _add_mtcnn(sub.add_parser("mtcnn", help="MTCNN throughput on given frames"))
    add_memory(sub)
    add_leak(sub)
    add_explain(sub)
    add_sustained(sub)
    # Kept beside `bench mtcnn` for scripts that use the old name (argparse aliases stay
    # within one level, so the old top-level name is a command of its own).
    _add_mtcnn(
        commands.add_parser("bench-mtcnn", help="MTCNN throughput (the old name of `bench mtcnn`)")
    )


def _add_allow_mismatch(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--allow-mismatch", action="store_true", help=help)


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="gate a run against a baseline (exit 1 on regression, 2 on mismatch)"
    )
    compare.add_argument("baseline", type=Path)
    compare.add_argument("current", type=Path)
    _add_allow_mismatch(compare, help="compare across profiles or runtime versions")
    add_accept(
        compare,
        help="record an intended regression of benchmark NAME, with why",
        usage_error=False,
    )
    compare.add_argument("--markdown", action="store_true", help="print the PR table")
    compare.set_defaults(func=_compare)


def _add_baseline(commands: argparse._SubParsersAction) -> None:
    baseline = commands.add_parser("baseline", help="committed baselines")
    sub = baseline.add_subparsers(dest="baseline_command", required=True)
    update = sub.add_parser(
        "update", help="run the perf suite and store it as this profile's baseline (atomically)"
    )
    update.add_argument(
        "--results",
        type=Path,
        nargs="+",
        default=None,
        help="pool these results.json files instead of running the suite",
    )
    update.add_argument(
        "--runs",
        type=at_least(1),
        default=3,
        help="perf runs to pool into the baseline (default 3: one run is one draw of a shared "
        "machine's state)",
    )
    add_backend(update)
    add_perf_profile(update)
    update.add_argument("--out", type=Path, default=None, help="default: baselines/<profile>.json")
    _add_allow_mismatch(update, help="store runs measured on another profile")
    update.set_defaults(func=_baseline_update)


def _add_speedups(sub: argparse._SubParsersAction) -> None:
    speedups = sub.add_parser(
        "speedups",
        help="per model: optimized vs baseline vs PyTorch eager (interleaved), GFLOP/s, "
        "matmul peak, published Apple figures",
    )
    add_threads(
        speedups,
        default=1,
        help="intra-op threads of ONNX Runtime and PyTorch (default 1, as the perf suite)",
    )
    add_json(speedups, help="print everything as JSON")
    add_models(speedups)
    speedups.add_argument(
        "--rounds", type=at_least(2), default=20, help="interleaved rounds per pair (default 20)"
    )
    speedups.add_argument("--warmup", type=at_least(0), default=3, help="warm-up calls per side")
    add_artifacts(speedups)
    add_backend(speedups, help="ONNX Runtime backend (ort-cpu, ort-coreml, ort-cuda)")
    speedups.add_argument(
        "--matmul-size", type=at_least(1), default=2048, help="side of the matmul (default 2048)"
    )
    speedups.add_argument(
        "--matmul-repeats", type=at_least(1), default=5, help="timed matmuls per thread count"
    )
    speedups.set_defaults(func=_speedups)


def _add_mtcnn(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--images", nargs="+", required=True)
    bench.add_argument(
        "--batch", type=at_least(1), default=1, help="frames per detect_batch call (default 1)"
    )
    add_mtcnn_preset(bench, default="openface", help="MTCNN parameters (default openface)")
    bench.add_argument(
        "--warmup", type=at_least(0), default=2, help="untimed rounds first (default 2)"
    )
    bench.add_argument("--rounds", type=at_least(1), default=10, help="timed rounds (default 10)")
    add_json(bench)
    add_runtime_options(bench)
    bench.set_defaults(func=_mtcnn)


# --- handlers ---------------------------------------------------------------------------------


def _compare(args: argparse.Namespace) -> int:
    from faceperf.bench.errors import ProfileMismatchError
    from faceperf.bench.gate.compare import compare_runs
    from faceperf.bench.gate.render import gate_markdown, gate_text
    from faceperf.bench.gate.storage import load_run
    from faceperf.bench.report.folder import policy_from_budgets
    from faceperf.verdicts import exit_code

    policy = policy_from_budgets(args.allow_mismatch, dict(args.accept))
    try:
        report = compare_runs(load_run(args.baseline), load_run(args.current), policy)
    except ProfileMismatchError as err:
        print(f"faceperf: refused: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(gate_markdown(report) if args.markdown else gate_text(report))
    return exit_code(report.verdicts())


def _baseline_update(args: argparse.Namespace) -> int:
    from faceperf.bench.gate.paths import baseline_path
    from faceperf.bench.gate.render import membership_text
    from faceperf.bench.gate.update import perf_suite_runs, store_baseline
    from faceperf.bench.hardware import detect_profile

    profile = detect_profile(args.backend, forced=args.perf_profile)
    target = Path(args.out or baseline_path(profile.name))
    if args.results:
        sources = list(args.results)
    else:
        sources = perf_suite_runs(
            args.runs, args.backend, args.perf_profile, say=lambda line: print(line, flush=True)
        )
    stored = store_baseline(sources, profile.name, target, args.allow_mismatch, warn=_warn)
    print(
        f"baseline for {stored.run.profile} written to {target} "
        f"({len(stored.run.benchmarks)} benchmarks, pooled from {stored.runs} run(s))"
    )
    changes = membership_text(stored)
    if changes is not None:
        print(changes)
    _refresh_placements(args)
    return EXIT_OK


def _warn(text: str) -> None:
    print(f"faceperf: {text}", file=sys.stderr)


def _refresh_placements(args: argparse.Namespace) -> None:
    """The Core ML placement snapshot belongs with the baseline: refresh it where it can be."""
    from faceperf.coreml.plan_macos import compute_plan_unavailable_reason
    from faceperf.paths import default_artifacts_dir

    reason = compute_plan_unavailable_reason()
    if reason:
        print(f"compute-plan snapshot not refreshed: {reason}")
        return
    from faceperf.coreml.snapshot import snapshot_placements

    print(snapshot_placements(default_artifacts_dir(), args.perf_profile).describe())


def _report(args: argparse.Namespace) -> int:
    from faceperf.bench.gate.paths import baseline_path
    from faceperf.bench.gate.storage import load_run
    from faceperf.bench.report.folder import ReportInputs, policy_from_budgets, write_report
    from faceperf.bench.report.render import verdict_line

    directory = Path(args.directory)
    results = directory / "results.json"
    run = load_run(results)
    baseline = args.baseline or baseline_path(run.profile)
    policy = policy_from_budgets(args.allow_mismatch)
    written = write_report(
        directory,
        ReportInputs(results, baseline, policy),
        "Record a baseline with `faceperf baseline update`.",
    )
    print(f"report regenerated in {directory}")
    print(verdict_line(written.summary))
    return EXIT_OK


def _speedups(args: argparse.Namespace) -> int:
    """Measure, then print the table (or JSON)."""
    from faceperf.bench.speedups.models import models_in_order
    from faceperf.bench.speedups.render import speedups_table
    from faceperf.bench.speedups.run import SpeedupsRequest, run_speedups
    from faceperf.models.registry import default_registry

    models = models_in_order(args.models or default_registry().names())
    warn_if_surrogate(args.artifacts, models)
    request = SpeedupsRequest(
        directory=args.artifacts,
        models=models,
        backend=args.backend,
        threads=args.threads,
        rounds=args.rounds,
        warmup=args.warmup,
        matmul_size=args.matmul_size,
        matmul_repeats=args.matmul_repeats,
    )
    report = run_speedups(request, say=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(speedups_table(report), end="")
    return EXIT_OK


def _mtcnn(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from faceperf.bench.throughput.detector import measure_throughput
    from faceperf.pipeline.frames import read_image
    from faceperf.pipeline.mtcnn_detector import PRESETS, MTCNNDetector

    frames = [read_image(path) for path in args.images]
    detector = MTCNNDetector.open(artifact_ref(args), params=PRESETS[args.preset])
    result = measure_throughput(
        detector, frames, batch=args.batch, warmup=args.warmup, rounds=args.rounds
    )
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return EXIT_OK
    print(
        f"MTCNN ({args.preset} preset, {args.variant}, {args.backend}) on {len(frames)} "
        f"frame(s), batch {args.batch}, {result.rounds} rounds after {args.warmup} warm-up"
    )
    print(
        f"  {result.ms_per_frame_median:.2f} ms/frame median, p90 "
        f"{result.ms_per_frame_p90:.2f} ms, {result.fps:.1f} FPS"
    )
    for stage in result.stages:
        print(f"  {stage.name:<28} {stage.ms_per_frame:8.2f} ms/frame {stage.percent:6.1f} %")
    return EXIT_OK
