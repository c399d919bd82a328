"""Handlers of ``faceperf references build`` and ``faceperf accuracy check | faults |
localize``.

Thin: the library runs and judges; these format. cli.py owns error handling and exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.cli_args import comma_list
from faceperf.errors import FaceperfError
from faceperf.paths import default_artifacts_dir

if TYPE_CHECKING:
    from faceperf.accuracy.localize.result import Localization

EXIT_OK, EXIT_FAILED = 0, 1
_VARIANTS = ("optimized", "optimized_fp16", "coreml")


def _subject_names() -> tuple[str, ...]:
    from faceperf.accuracy.cases import SUBJECTS

    return SUBJECTS


_subjects = comma_list("subject", _subject_names)


def add_accuracy_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``references build`` and ``accuracy check | faults | localize``."""
    references = commands.add_parser("references", help="the stored reference outputs")
    sub = references.add_subparsers(dest="references_command", required=True)
    build = sub.add_parser("build", help="run the baseline artifacts on the fixtures and store")
    build.add_argument("--artifacts", type=Path, default=None, help="default: weights/build")
    build.add_argument("--subjects", type=_subjects, default=None, help="default: all")
    build.add_argument("--out", type=Path, default=None, help="default: fixtures/references")

    accuracy = commands.add_parser("accuracy", help="check candidates against the references")
    sub = accuracy.add_subparsers(dest="accuracy_command", required=True)
    check = sub.add_parser("check", help="judge a candidate folder; exit 1 when a limit breaks")
    check.add_argument("--candidate", type=Path, default=None, help="default: weights/build")
    check.add_argument("--subjects", type=_subjects, default=None)
    check.add_argument("--variants", default=",".join(_VARIANTS[:2]))
    check.add_argument("--backend", default="ort-cpu", help="for the ONNX variants")
    check.add_argument(
        "--all", action="store_true", help="every measurement, not only the worst per metric"
    )
    faults = sub.add_parser("faults", help="build every catalogued fault and say what caught it")
    faults.add_argument("--artifacts", type=Path, default=None, help="default: weights/build")
    faults.add_argument("--subjects", type=_subjects, default=None)
    faults.add_argument("--json", action="store_true")
    _add_localize(sub)


def _add_localize(sub: argparse._SubParsersAction) -> None:
    localize = sub.add_parser(
        "localize",
        help="name the operation where a candidate's outputs start to diverge (exit 0 either way)",
    )
    localize.add_argument("--candidate", type=Path, required=True, help="artifact folder")
    # Checked by the library, not by choices: a bad name is one line, like every other error.
    localize.add_argument("--model", required=True, help="retinaface, star, mtl, mtcnn_pnet, ...")
    localize.add_argument(
        "--variant", default="optimized", help="the candidate's variant (coreml: macOS only)"
    )
    localize.add_argument("--reference", type=Path, default=None, help="default: weights/build")
    localize.add_argument(
        "--reference-variant",
        default="baseline",
        help="ONNX variants; for coreml the reference is the package on CPU_ONLY",
    )
    localize.add_argument(
        "--floor", type=float, default=None, metavar="DB", help="default: tolerances.toml"
    )
    localize.add_argument("--cases", type=int, default=None, help="fixture cases (default 2)")
    localize.add_argument(
        "--json",
        action="store_true",
        help='print JSON; an SNR is a number, "inf" (equal), "-inf", or null (not comparable)',
    )


def run(args: argparse.Namespace) -> int:
    if args.command == "references":
        return _references_build(args)
    if args.accuracy_command == "check":
        return _check(args)
    if args.accuracy_command == "localize":
        return _localize(args)
    return _faults(args)


def _references_build(args: argparse.Namespace) -> int:
    from faceperf.accuracy.cases import SUBJECTS
    from faceperf.accuracy.references import build_reference, reference_path, write_reference

    artifacts = args.artifacts or default_artifacts_dir()
    for subject in args.subjects or SUBJECTS:
        reference = build_reference(subject, artifacts)
        path = reference_path(subject, args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_reference(reference, path)
        print(f"{path}: {len(reference.outputs)} cases from {artifacts}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from faceperf.accuracy.compare import worst_by_metric
    from faceperf.accuracy.session import AccuracySession

    session = AccuracySession(args.candidate or default_artifacts_dir(), backend=args.backend)
    failed = False
    for subject in args.subjects or session.subjects():
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            result = session.result(subject, variant)
            if result.skipped:
                print(f"{subject} {variant}: skipped: {result.skipped}")
                continue
            failures = result.failures
            failed |= bool(failures)
            measured = list(result.measurements)
            shown = measured if args.all else worst_by_metric(measured)
            print(
                f"{subject} {variant}: {len(failures)} of {len(measured)} fail; worst per metric:"
            )
            for measurement in shown:
                print(f"  {measurement.describe()}")
            for check, why in result.unjudged.items():
                print(f"  {check}: not judged: {why}")
    return EXIT_FAILED if failed else EXIT_OK


def _faults(args: argparse.Namespace) -> int:
    from faceperf.accuracy.cases import SUBJECTS
    from faceperf.accuracy.faults import CATALOGUE, evaluate_fault
    from faceperf.accuracy.references import read_reference
    from faceperf.accuracy.tolerances import load_tolerances

    artifacts = args.artifacts or default_artifacts_dir()
    tolerances = load_tolerances()
    rows = []
    for subject in args.subjects or SUBJECTS:
        reference = read_reference(subject)
        for fault in CATALOGUE:
            if subject not in fault.subjects:
                continue
            with tempfile.TemporaryDirectory() as work:
                result = evaluate_fault(
                    fault, subject, artifacts, Path(work), reference, tolerances
                )
            rows.append(
                {
                    "fault": fault.name,
                    "subject": subject,
                    "caught": result.caught,
                    "by": result.caught_by(),
                }
            )
            if not args.json:
                verdict = "caught" if result.caught else "NOT CAUGHT"
                print(f"{fault.name:18} {subject:10} {verdict}: {result.caught_by()}")
                sys.stdout.flush()
    if args.json:
        print(json.dumps(rows, indent=2))
    return EXIT_OK


def _localize(args: argparse.Namespace) -> int:
    from faceperf.accuracy.localize.api import localize
    from faceperf.accuracy.localize.coreml import COREML_VARIANT, localize_coreml
    from faceperf.accuracy.localize.inputs import DEFAULT_CASES

    cases = DEFAULT_CASES if args.cases is None else args.cases
    if cases < 1:
        raise FaceperfError(f"--cases {cases}: expected at least 1")
    if args.variant == COREML_VARIANT:
        result = localize_coreml(
            args.candidate, args.model, reference=args.reference, floor_db=args.floor, cases=cases
        )
    else:
        result = localize(
            args.candidate,
            args.model,
            args.variant,
            reference=args.reference,
            reference_variant=args.reference_variant,
            floor_db=args.floor,
            cases=cases,
        )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, allow_nan=False))
    else:
        print("\n".join(_localization_text(result)))
    return EXIT_OK


def _localization_text(result: Localization) -> list[str]:
    from faceperf.accuracy.localize.result import format_snr

    lines = [
        f"{result.model} {result.variant} against {result.reference_variant}: floor "
        f"{result.floor_db:g} dB, {result.cases} fixture case(s), {result.matched_operations} of "
        f"{result.reference_operations} reference operations paired",
        result.verdict(),
    ]
    failing = result.first_failing
    if failing is not None:
        lines.append(f"  output {failing.tensor} (reference {failing.reference})")
        for name, snr in failing.input_snr_db.items():
            lines.append(f"  input {name}: {format_snr(snr)}")
        for op in failing.downstream:
            lines.append(f"  then {op.node} ({op.op_type}): {format_snr(op.snr_db)}")
    lowest = result.lowest(5)
    if lowest:
        lines.append("lowest SNR operations:")
        lines += [f"  {format_snr(op.snr_db):>8}  {op.op_type:18} {op.node}" for op in lowest]
    return lines
