"""``faceperf references build`` and ``faceperf accuracy check | faults | localize``: the stored
reference outputs, and candidates judged against them. The library runs and judges; these
handlers format."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.artifacts.layout import Variant
from faceperf.cli.options import add_json, add_subjects, add_variants
from faceperf.options import add_artifacts, add_backend, at_least, decibels, variant_name
from faceperf.verdicts import EXIT_OK, Verdict, exit_code

if TYPE_CHECKING:
    from faceperf.accuracy.faults import FaultResult
    from faceperf.accuracy.localize.result import Localization
    from faceperf.accuracy.session import AccuracySession, SubjectCheck


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``references build`` and ``accuracy check | faults | localize`` to the top-level
    commands."""
    references = commands.add_parser("references", help="the stored reference outputs")
    sub = references.add_subparsers(dest="references_command", required=True)
    build = sub.add_parser("build", help="run the baseline artifacts on the fixtures and store")
    add_artifacts(build)
    add_subjects(build)
    build.add_argument("--out", type=Path, default=None, help="default: fixtures/references")
    build.add_argument(
        "--only",
        choices=("outputs", "jitter", "bins"),
        default=None,
        help="build only the per-case outputs (<subject>.npz), only the jitter clips' "
        "references (jitter/<subject>.npz, RetinaFace and STAR) or only the face-size and pose "
        "bins' (bins/<subject>.npz); default: all three",
    )
    build.set_defaults(func=_references_build)

    accuracy = commands.add_parser("accuracy", help="check candidates against the references")
    sub = accuracy.add_subparsers(dest="accuracy_command", required=True)
    check = sub.add_parser(
        "check",
        help="judge a candidate folder's conformance and accuracy; exit 1 when a check fails "
        "(a limit, the contract, a file ONNX Runtime cannot load)",
    )
    add_artifacts(check, "--candidate", help="the candidate's artifact folder")
    add_subjects(check)
    add_variants(
        check,
        default=("optimized", "optimized_fp16"),
        help="comma-separated variants to judge (default: optimized,optimized_fp16)",
    )
    add_backend(check, help="the backend of the ONNX variants (default ort-cpu)")
    check.add_argument(
        "--all", action="store_true", help="every measurement, not only the worst per metric"
    )
    # A folder, parsed as the artifact folders are (a Path); it must not exist yet.
    add_artifacts(
        check,
        "--report",
        help="write a new report folder of pictures (failing cases with the reference's and "
        "the candidate's answers drawn over them, a contact sheet, the jitter tracks, "
        "summary.md)",
        unset="no pictures",
    )
    check.set_defaults(func=_check)

    faults = sub.add_parser(
        "faults",
        help="build every catalogued fault and say what caught it; exit 1 when one is not caught",
    )
    add_artifacts(faults)
    add_subjects(faults)
    add_json(faults)
    faults.set_defaults(func=_faults)
    _add_localize(sub)


def _add_localize(sub: argparse._SubParsersAction) -> None:
    localize = sub.add_parser(
        "localize",
        help="name the operation where a candidate's outputs start to diverge (exit 0 either way)",
    )
    add_artifacts(localize, "--candidate", required=True, help="artifact folder")
    # The model is checked by the library, not by choices: the candidate's folder, not the
    # registry, says which models exist.
    localize.add_argument("--model", required=True, help="retinaface, star, mtl, mtcnn_pnet, ...")
    localize.add_argument(
        "--variant",
        type=variant_name,
        default=Variant.OPTIMIZED,
        help="the candidate's variant (coreml: macOS only)",
    )
    # Not the shared artifact-folder option: left unset, the coreml variant is compared with
    # the candidate's own package on CPU_ONLY rather than with weights/build.
    localize.add_argument("--reference", type=Path, default=None, help="default: weights/build")
    localize.add_argument(
        "--reference-variant",
        type=variant_name,
        default=Variant.BASELINE,
        help="ONNX variants; for coreml the reference is the package on CPU_ONLY",
    )
    localize.add_argument(
        "--floor", type=decibels, default=None, metavar="DB", help="default: tolerances.toml"
    )
    localize.add_argument(
        "--cases", type=at_least(1), default=None, help="fixture cases (default 2)"
    )
    add_json(
        localize,
        help='print JSON; an SNR is a number, "inf" (equal), "-inf", or null (not comparable)',
    )
    localize.set_defaults(func=_localize)


def _references_build(args: argparse.Namespace) -> int:
    from faceperf.accuracy.cases import SUBJECTS
    from faceperf.accuracy.references import (
        BINS,
        JITTER,
        JITTER_SUBJECTS,
        build_bins_reference,
        build_jitter_reference,
        build_reference,
        reference_path,
        write_reference,
    )

    for subject in args.subjects or SUBJECTS:
        built = []
        if args.only is None:
            reference = build_reference(subject, args.artifacts)
            built += [p for p in (reference, reference.jitter, reference.bins) if p is not None]
        elif args.only == JITTER and subject not in JITTER_SUBJECTS:
            print(f"{subject}: no jitter check, nothing to build")
        elif args.only == JITTER:
            built.append(build_jitter_reference(subject, args.artifacts))
        elif args.only == BINS:
            built.append(build_bins_reference(subject, args.artifacts))
        else:
            built.append(
                build_reference(subject, args.artifacts, with_jitter=False, with_bins=False)
            )
        for part in built:
            path = reference_path(subject, args.out, part.kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_reference(part, path)
            what = {JITTER: "jitter clips", BINS: "bin faces"}.get(part.kind, "cases")
            print(f"{path}: {len(part.outputs)} {what} from {args.artifacts}")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from faceperf.accuracy.report import refuse_existing
    from faceperf.accuracy.session import AccuracySession

    if args.report is not None:
        refuse_existing(args.report)  # before minutes of checks, not after
    session = AccuracySession(args.candidate, backend=args.backend)
    checks = []
    for subject in args.subjects or session.subjects():
        for variant in args.variants:
            check = session.check(subject, variant)
            checks.append(check)
            print("\n".join(_check_text(check, every=args.all)))
            sys.stdout.flush()  # a subject takes seconds: show each as it is judged
    verdicts = [check.verdict for check in checks]
    failing = [f"{c.accuracy.subject} {c.accuracy.variant}" for c in checks if c.verdict.blocks()]
    print(
        f"{len(failing)} of {len(checks)} subject/variant checks fail"
        + (f": {', '.join(failing)}" if failing else "")
        + f"; {verdicts.count(Verdict.SKIPPED)} skipped"
    )
    if args.report is not None:
        _write_pictures(args.report, session, checks)
    return exit_code(verdicts)


def _write_pictures(directory: Path, session: AccuracySession, checks: list[SubjectCheck]) -> None:
    import time

    from faceperf.accuracy.report import write_accuracy_report

    judged = {c.accuracy.subject for c in checks if c.accuracy.outputs}
    started = time.perf_counter()
    written = write_accuracy_report(
        directory, checks, {s: session.reference(s) for s in judged}, session.candidate
    )
    seconds = time.perf_counter() - started
    print(
        f"report: {written.summary} ({len(written.pictures)} pictures, "
        f"{len(written.tracks)} jitter plots, drawn in {seconds:.1f} s)"
    )


def _check_text(check: SubjectCheck, every: bool) -> list[str]:
    from faceperf.accuracy.compare import worst_by_metric

    result = check.accuracy
    lines = [f"{result.subject} {result.variant}: {check.verdict}"]
    for conformance in check.conformance:
        where = f"{conformance.model}/{conformance.variant}"
        if conformance.verdict is Verdict.FAIL:
            lines += [
                f"  conformance {where}: FAILS {f.check}: {f.message}" for f in conformance.findings
            ]
        elif conformance.verdict is Verdict.PASS:
            lines.append(f"  conformance {where}: ok")
    if result.skipped:
        lines.append(f"  accuracy: skipped: {result.skipped}")
        return lines
    if result.refused:
        lines.append(f"  accuracy: FAILS, the candidate does not run: {result.refused}")
        return lines
    measured = list(result.measurements)
    shown = measured if every else worst_by_metric(measured)
    lines.append(f"  accuracy: {len(result.failures)} of {len(measured)} fail; worst per metric:")
    lines += [f"    {measurement.describe()}" for measurement in shown]
    lines += [f"    {name}: not judged: {why}" for name, why in result.unjudged.items()]
    return lines


def _faults(args: argparse.Namespace) -> int:
    import tempfile

    from faceperf.accuracy.cases import SUBJECTS
    from faceperf.accuracy.faults import CATALOGUE, evaluate_fault
    from faceperf.accuracy.references import read_reference
    from faceperf.accuracy.tolerances import load_tolerances

    tolerances = load_tolerances()
    results = []
    for subject in args.subjects or SUBJECTS:
        reference = read_reference(subject)
        for fault in CATALOGUE:
            if subject not in fault.subjects:
                continue
            with tempfile.TemporaryDirectory() as work:
                result = evaluate_fault(
                    fault, subject, args.artifacts, Path(work), reference, tolerances
                )
            results.append(result)
            if not args.json:
                print(_fault_line(result))
                sys.stdout.flush()
    if args.json:
        print(json.dumps([_fault_row(result) for result in results], indent=2))
    return exit_code(result.verdict for result in results)


def _fault_line(result: FaultResult) -> str:
    said = {Verdict.PASS: "caught", Verdict.SKIPPED: "skipped"}.get(result.verdict, "NOT CAUGHT")
    return f"{result.fault:18} {result.subject:10} {said}: {result.describe()}"


def _fault_row(result: FaultResult) -> dict:
    return {
        "fault": result.fault,
        "subject": result.subject,
        "verdict": str(result.verdict),
        "caught": result.caught,
        "expected": [str(catch) for catch in result.expected],
        "missed": [str(catch) for catch in result.missed()],
        "by": result.caught_by(),
        "error": result.error,
        "untrained": result.untrained,
        "measured": result.measured_text(),
    }


def _localize(args: argparse.Namespace) -> int:
    from faceperf.accuracy.localize.api import localize
    from faceperf.accuracy.localize.coreml import COREML_VARIANT, localize_coreml
    from faceperf.accuracy.localize.inputs import DEFAULT_CASES

    cases = DEFAULT_CASES if args.cases is None else args.cases
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
