"""``faceperf artifacts build | list | check`` and ``faceperf surrogates calibrate``: the model
artifacts and the surrogate weights they may be built from."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.cli.exits import EXIT_FAILED, EXIT_OK, UsageError
from faceperf.cli.options import add_json, add_models
from faceperf.options import add_artifacts, at_least

if TYPE_CHECKING:
    from faceperf.artifacts.manifest import Manifest
    from faceperf.weights.provenance import WeightSource
    from faceperf.weights.sources import WeightPolicy


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``artifacts`` and ``surrogates`` to the top-level commands."""
    artifacts = commands.add_parser("artifacts", help="build, list and check model artifacts")
    sub = artifacts.add_subparsers(dest="artifacts_command", required=True)
    _add_build(sub)

    listing = sub.add_parser("list", help="print the manifest")
    add_artifacts(listing, "--artifacts", "--dir")
    add_json(listing, help="print the manifest as JSON")
    listing.set_defaults(func=_list)

    check = sub.add_parser(
        "check", help="check every artifact against its manifest and its model's contract"
    )
    add_artifacts(check, "--artifacts", "--dir")
    check.set_defaults(func=_check)

    surrogates = commands.add_parser("surrogates", help="surrogate weight calibration")
    sub = surrogates.add_subparsers(dest="surrogates_command", required=True)
    calibrate = sub.add_parser(
        "calibrate", help="recompute and store the committed surrogate calibration files"
    )
    add_models(calibrate, help="comma-separated models (default: every user-checkpoint model)")
    calibrate.add_argument("--seed", type=at_least(0), default=0, help="surrogate seed (default 0)")
    calibrate.set_defaults(func=_calibrate)


def _add_build(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser("build", help="export every model in every variant")
    add_models(build, help="comma-separated models to (re)build (default: all)")
    # Not the shared artifact-folder option: without it, --at builds into weights/revisions.
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
    build.add_argument("--seed", type=at_least(0), default=None, help="surrogate seed (default 0)")
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
    build.set_defaults(func=_build)


def _weight_policy(text: str) -> WeightPolicy:
    from faceperf.weights.sources import WeightPolicy  # lazily, to keep --help fast

    try:
        return WeightPolicy(text)
    except ValueError:
        choices = ", ".join(p.value for p in WeightPolicy)
        raise argparse.ArgumentTypeError(f"--weights {text!r}: expected one of {choices}") from None


def _build(args: argparse.Namespace) -> int:
    if args.at is None:
        return _build_working_tree(args)
    _reject_working_tree_options(args)
    return _build_at(args)


def _reject_working_tree_options(args: argparse.Namespace) -> None:
    # A revision is built with its own defaults and this checkout's weights/ folder, so options
    # that tune the working tree's build would be silently ignored: refuse them instead.
    given = {
        "--if-stale": args.if_stale,
        "--weights": args.weights is not None,
        "--weights-dir": args.weights_dir is not None,
        "--seed": args.seed is not None,
    }
    clashing = [name for name, present in given.items() if present]
    if clashing:
        raise UsageError(
            f"--at cannot be combined with {', '.join(clashing)}: "
            "they apply to the working tree's build only"
        )


def _build_working_tree(args: argparse.Namespace) -> int:
    from faceperf.artifacts.build import BuildRequest, build_artifacts, stale_models
    from faceperf.models.registry import default_registry
    from faceperf.paths import default_artifacts_dir

    request = BuildRequest(
        out=args.out or default_artifacts_dir(),
        models=args.models or default_registry().names(),
        policy=args.weights or _weight_policy("auto"),
        weights_dir=args.weights_dir,
        seed=0 if args.seed is None else args.seed,
    )
    if args.if_stale:
        stale = stale_models(request)
        if not stale:
            print(f"artifacts in {request.out} are up to date")
            return EXIT_OK
        request = dataclasses.replace(request, models=stale)
    manifest = build_artifacts(request, progress=True)
    for name in request.models:
        print(f"built {name:<11} weights: {_weights_label(manifest.models[name].weights)}")
    print(f"artifacts written to {request.out}")
    return EXIT_OK


def _build_at(args: argparse.Namespace) -> int:
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


def _weights_label(weights: WeightSource) -> str:
    if weights.is_surrogate:
        return f"SURROGATE (seed {weights.seed}; not the real model's accuracy)"
    if weights.is_packaged:
        return f"packaged {weights.package} {weights.version}"
    return f"real {weights.file} sha256 {str(weights.sha256)[:12]}"


def _list(args: argparse.Namespace) -> int:
    from faceperf.artifacts.manifest import read_manifest

    manifest = read_manifest(args.artifacts)
    if args.json:
        print(json.dumps(manifest.to_json(), indent=2))
    else:
        print(_manifest_table(manifest))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from faceperf.artifacts.conformance import check_directory

    findings = check_directory(args.artifacts)
    for finding in findings:
        print(finding)
    print(f"{args.artifacts}: {len(findings)} conformance problem(s)")
    return EXIT_FAILED if findings else EXIT_OK


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
                    record.weights.kind,
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


def _calibrate(args: argparse.Namespace) -> int:
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
