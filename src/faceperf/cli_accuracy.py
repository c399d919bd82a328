"""Handlers of ``faceperf references build``, ``faceperf accuracy check`` and
``faceperf accuracy faults``.

Thin: the library runs and judges; these format. cli.py owns error handling and exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from faceperf.cli_args import comma_list
from faceperf.paths import default_artifacts_dir

EXIT_OK, EXIT_FAILED = 0, 1
_VARIANTS = ("optimized", "optimized_fp16", "coreml")


def _subject_names() -> tuple[str, ...]:
    from faceperf.accuracy.cases import SUBJECTS

    return SUBJECTS


_subjects = comma_list("subject", _subject_names)


def add_accuracy_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``references build`` and ``accuracy check | faults``."""
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


def run(args: argparse.Namespace) -> int:
    if args.command == "references":
        return _references_build(args)
    if args.accuracy_command == "check":
        return _check(args)
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
