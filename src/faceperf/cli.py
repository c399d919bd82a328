"""The ``faceperf`` command: a thin layer that parses options, calls the library, and picks the
exit code. Errors the user can fix are one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.cli_args import model_list
from faceperf.errors import FaceperfError
from faceperf.paths import default_artifacts_dir

if TYPE_CHECKING:
    from faceperf.artifacts.manifest import Manifest

EXIT_OK, EXIT_USAGE = 0, 2
_BENCH_COMMANDS = {"compare": "compare", "baseline": "baseline_update", "report": "report"}
_PIPELINE_COMMANDS = {
    "detect": "detect",
    "landmarks": "landmarks",
    "pipeline": "pipeline",
    "bench-mtcnn": "bench_mtcnn",
    "video": "video_make",
}


def _weight_policy(text: str):  # -> WeightPolicy, imported lazily to keep --help fast
    from faceperf.weights.sources import WeightPolicy

    try:
        return WeightPolicy(text)
    except ValueError:
        choices = ", ".join(p.value for p in WeightPolicy)
        raise argparse.ArgumentTypeError(f"--weights {text!r}: expected one of {choices}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceperf", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    artifacts = commands.add_parser("artifacts", help="build and list model artifacts")
    artifact_commands = artifacts.add_subparsers(dest="artifacts_command", required=True)
    build = artifact_commands.add_parser("build", help="export every model in every variant")
    build.add_argument(
        "--models",
        type=model_list,
        default=None,
        help="comma-separated models to (re)build (default: all)",
    )
    build.add_argument(
        "--out", type=Path, default=None, help="artifact folder (default: weights/build)"
    )
    build.add_argument(
        "--weights",
        type=_weight_policy,
        default=None,  # None, not "auto": --at must tell an explicit choice from the default
        help="auto (real checkpoint when present, else surrogate; the default), real, surrogate",
    )
    build.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help="where real checkpoints are (default: weights/)",
    )
    build.add_argument("--seed", type=int, default=None, help="surrogate seed (default 0)")
    build.add_argument(
        "--if-stale",
        action="store_true",
        help="only rebuild models whose code, weights or tools changed",
    )
    build.add_argument(
        "--at",
        metavar="GITREF",
        default=None,
        help="build what the code and committed weights at this git revision define, with that "
        "revision's own code (cached in weights/revisions)",
    )
    listing = artifact_commands.add_parser("list", help="print the manifest")
    listing.add_argument(
        "--dir", type=Path, default=None, help="artifact folder (default: weights/build)"
    )
    listing.add_argument("--json", action="store_true", help="print the manifest as JSON")

    profile = commands.add_parser("profile", help="print the detected hardware profile and why")
    profile.add_argument(
        "--backend",
        default="ort-cpu",
        help="runtime backend (ort-cpu, ort-coreml, ort-cuda, coreml, torch)",
    )
    profile.add_argument("--perf-profile", default=None, help="force a profile name")
    profile.add_argument("--json", action="store_true")

    _add_pipeline_commands(commands)
    _add_bench_commands(commands)
    from faceperf.cli_speedups import add_bench_commands  # light: argparse only at import

    add_bench_commands(commands)
    from faceperf.cli_coreml import add_coreml_commands  # light: argparse only at import

    add_coreml_commands(commands)
    from faceperf.cli_accuracy import add_accuracy_commands

    add_accuracy_commands(commands)
    from faceperf.cli_ab import add_ab_command

    add_ab_command(commands)

    check = artifact_commands.add_parser(
        "check", help="check every artifact against its manifest and its model's contract"
    )
    check.add_argument(
        "--dir", type=Path, default=None, help="artifact folder (default: weights/build)"
    )

    surrogates = commands.add_parser("surrogates", help="surrogate weight calibration")
    surrogate_commands = surrogates.add_subparsers(dest="surrogates_command", required=True)
    calibrate = surrogate_commands.add_parser(
        "calibrate", help="recompute and store the committed surrogate calibration files"
    )
    calibrate.add_argument("--models", type=model_list, default=None)
    calibrate.add_argument("--seed", type=int, default=0)
    return parser


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts", type=Path, default=None, help="artifact folder (default: weights/build)"
    )
    parser.add_argument(
        "--variant",
        default="optimized",
        choices=["baseline", "optimized", "optimized_fp16", "coreml"],
    )
    parser.add_argument(
        "--backend", default="ort-cpu", help="ort-cpu, ort-coreml, ort-cuda or coreml"
    )


def _add_pipeline_commands(commands: argparse._SubParsersAction) -> None:
    detect = commands.add_parser("detect", help="find faces in an image")
    detect.add_argument("--model", choices=["mtcnn", "retinaface"], default="mtcnn")
    detect.add_argument("--image", required=True)
    detect.add_argument(
        "--preset",
        choices=["facenet", "openface"],
        default="facenet",
        help="MTCNN parameters: facenet-pytorch's (min face 20) or Face Mirror's (60)",
    )
    detect.add_argument("--json", action="store_true")
    _add_runtime_options(detect)

    landmarks = commands.add_parser("landmarks", help="98 STAR landmarks of each face")
    landmarks.add_argument("--image", required=True)
    landmarks.add_argument(
        "--model",
        choices=["mtcnn", "retinaface"],
        default="mtcnn",
        help="the detector that finds the faces (mtcnn has real weights)",
    )
    landmarks.add_argument("--preset", choices=["facenet", "openface"], default="facenet")
    landmarks.add_argument("--json", action="store_true")
    _add_runtime_options(landmarks)

    pipeline = commands.add_parser("pipeline", help="run the Face Mirror frame loop")
    source = pipeline.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path)
    source.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="N frames of the deterministic synthetic 1080p clip",
    )
    pipeline.add_argument("--seed", type=int, default=0)
    pipeline.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime intra-op threads per model"
    )
    pipeline.add_argument(
        "--report",
        type=Path,
        required=True,
        help="folder for results.csv, profile.txt and pipeline.json",
    )
    _add_runtime_options(pipeline)

    bench = commands.add_parser("bench-mtcnn", help="MTCNN throughput on given frames")
    bench.add_argument("--images", nargs="+", required=True)
    bench.add_argument("--batch", type=int, default=1, help="frames per detect_batch call")
    bench.add_argument("--preset", choices=["facenet", "openface"], default="openface")
    bench.add_argument("--warmup", type=int, default=2)
    bench.add_argument("--rounds", type=int, default=10)
    bench.add_argument("--json", action="store_true")
    _add_runtime_options(bench)

    video = commands.add_parser("video", help="synthetic test video")
    video_commands = video.add_subparsers(dest="video_command", required=True)
    make = video_commands.add_parser("make", help="write the synthetic 1080p clip as mp4")
    make.add_argument("--out", required=True)
    make.add_argument("--frames", type=int, default=120)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--fps", type=int, default=30)


def _add_bench_commands(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="gate a run against a baseline (exit 1 on regression, 2 on mismatch)"
    )
    compare.add_argument("baseline", type=Path)
    compare.add_argument("current", type=Path)
    compare.add_argument(
        "--allow-mismatch", action="store_true", help="compare across profiles or runtime versions"
    )
    compare.add_argument(
        "--accept",
        action="append",
        metavar="NAME=REASON",
        help="record an intended regression of benchmark NAME, with why",
    )
    compare.add_argument("--markdown", action="store_true", help="print the PR table")

    baseline = commands.add_parser("baseline", help="committed baselines")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True)
    update = baseline_commands.add_parser(
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
        type=int,
        default=3,
        help="perf runs to pool into the baseline (default 3: one run is one draw of a shared "
        "machine's state)",
    )
    update.add_argument("--backend", default="ort-cpu")
    update.add_argument("--perf-profile", default=None)
    update.add_argument("--out", type=Path, default=None, help="default: baselines/<profile>.json")
    update.add_argument("--allow-mismatch", action="store_true")

    report = commands.add_parser("report", help="regenerate a perf report folder")
    report.add_argument("directory", type=Path)
    report.add_argument("--baseline", type=Path, default=None)
    report.add_argument("--allow-mismatch", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _reject_working_tree_options(parser, args)
    try:
        return _dispatch(args)
    except FaceperfError as err:
        print(f"faceperf: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _reject_working_tree_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    # A revision is built with its own defaults and this checkout's weights/ folder, so options
    # that tune the working tree's build would be silently ignored: refuse them instead.
    if getattr(args, "artifacts_command", None) != "build" or args.at is None:
        return
    given = {
        "--if-stale": args.if_stale,
        "--weights": args.weights is not None,
        "--weights-dir": args.weights_dir is not None,
        "--seed": args.seed is not None,
    }
    clashing = [name for name, present in given.items() if present]
    if clashing:
        parser.error(
            f"--at cannot be combined with {', '.join(clashing)}: "
            "they apply to the working tree's build only"
        )


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "artifacts" and args.artifacts_command == "build" and args.at is not None:
        return _artifacts_build_at(args)
    if args.command == "artifacts" and args.artifacts_command == "build":
        return _artifacts_build(args)
    if args.command == "artifacts" and args.artifacts_command == "list":
        return _artifacts_list(args)
    if args.command == "artifacts" and args.artifacts_command == "check":
        return _artifacts_check(args)
    if args.command in _PIPELINE_COMMANDS:
        from faceperf import cli_pipeline

        return getattr(cli_pipeline, _PIPELINE_COMMANDS[args.command])(args)
    if args.command in _BENCH_COMMANDS:
        from faceperf import cli_bench

        return getattr(cli_bench, _BENCH_COMMANDS[args.command])(args)
    if args.command in ("references", "accuracy"):
        from faceperf import cli_accuracy

        return cli_accuracy.run(args)
    if args.command == "coreml":
        from faceperf import cli_coreml

        return cli_coreml.run(args)
    if args.command == "bench":
        from faceperf import cli_speedups

        return cli_speedups.run(args)
    if args.command == "ab":
        from faceperf import cli_ab

        return cli_ab.run(args)
    if args.command == "profile":
        return _profile(args)
    if args.command == "surrogates":
        return _surrogates_calibrate(args)
    raise AssertionError(f"unhandled command {args}")


def _artifacts_build(args: argparse.Namespace) -> int:
    from faceperf.artifacts.build import BuildRequest, build_artifacts, stale_models
    from faceperf.models.registry import default_registry

    models = args.models or default_registry().names()
    request = BuildRequest(
        out=args.out or default_artifacts_dir(),
        models=models,
        policy=args.weights or _weight_policy("auto"),
        weights_dir=args.weights_dir,
        seed=0 if args.seed is None else args.seed,
    )
    if args.if_stale:
        stale = stale_models(request)
        if not stale:
            print(f"artifacts in {request.out} are up to date")
            return EXIT_OK
        request = BuildRequest(
            out=request.out,
            models=stale,
            policy=request.policy,
            weights_dir=request.weights_dir,
            seed=request.seed,
        )
    manifest = build_artifacts(request, progress=True)
    for name in request.models:
        print(f"built {name:<11} weights: {_weights_label(manifest.models[name].weights)}")
    print(f"artifacts written to {request.out}")
    return EXIT_OK


def _artifacts_build_at(args: argparse.Namespace) -> int:
    from faceperf.artifacts.revision import build_at_revision

    start = time.monotonic()
    result = build_at_revision(
        args.at,
        out=args.out,
        models=args.models,
        progress=lambda line: print(f"faceperf: {line}", file=sys.stderr),
    )
    how = "cached" if result.cached else f"built in {time.monotonic() - start:.0f} s"
    print(f"artifacts of {result.ref} ({result.commit[:10]}) in {result.directory} ({how})")
    return EXIT_OK


def _weights_label(weights: dict) -> str:
    if weights["kind"] == "surrogate":
        return f"SURROGATE (seed {weights['seed']}; not the real model's accuracy)"
    if weights["kind"] == "packaged":
        return f"packaged {weights['package']} {weights['version']}"
    return f"real {weights['file']} sha256 {weights['sha256'][:12]}"


def _artifacts_list(args: argparse.Namespace) -> int:
    from faceperf.artifacts.manifest import read_manifest

    directory = args.dir or default_artifacts_dir()
    manifest = read_manifest(directory)
    if args.json:
        print(json.dumps(manifest.to_json(), indent=2))
        return EXIT_OK
    print(_manifest_table(manifest))
    return EXIT_OK


def _artifacts_check(args: argparse.Namespace) -> int:
    from faceperf.artifacts.conformance import check_directory

    directory = args.dir or default_artifacts_dir()
    findings = check_directory(directory)
    for finding in findings:
        print(finding)
    print(f"{directory}: {len(findings)} conformance problem(s)")
    return 1 if findings else EXIT_OK


def _manifest_table(manifest: Manifest) -> str:
    header = ("model", "variant", "weights", "precision", "inputs", "size MB", "sha256")
    rows = [header]
    for name, record in manifest.models.items():
        for variant, info in record.variants.items():
            inputs = "; ".join(f"{t.name} {_shape(t.shape)} {t.dtype}" for t in info.inputs)
            rows.append(
                (
                    name,
                    variant,
                    record.weights["kind"],
                    info.precision,
                    inputs,
                    f"{info.size / 1e6:.1f}",
                    info.sha256[:12],
                )
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    tools = ", ".join(f"{k} {v}" for k, v in manifest.tools.items())
    return "\n".join([*lines, "", f"built with: {tools}"])


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _profile(args: argparse.Namespace) -> int:
    from faceperf.bench.hardware import detect_profile

    try:
        profile = detect_profile(args.backend, forced=args.perf_profile)
    except ValueError as err:
        print(f"faceperf: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({**profile.to_json(), "reasons": list(profile.reasons)}, indent=2))
        return EXIT_OK
    print(profile.name)
    print(f"  CPU: {profile.facts.describe_cpu()}")
    for reason in profile.reasons:
        print(f"  - {reason}")
    return EXIT_OK


def _surrogates_calibrate(args: argparse.Namespace) -> int:
    from faceperf.models.registry import WeightOrigin, default_registry
    from faceperf.weights.surrogates import write_calibration

    registry = default_registry()
    names = args.models or [s.name for s in registry if s.origin is WeightOrigin.USER_CHECKPOINT]
    for name in names:
        spec = registry[name]
        if spec.origin is not WeightOrigin.USER_CHECKPOINT:
            print(f"{name}: real packaged weights, no surrogate to calibrate")
            continue
        print(f"wrote {write_calibration(spec, args.seed)}")
    return EXIT_OK
