"""``faceperf coreml plan | lint | snapshot``: where Core ML runs each op, and the static lint
of ML programs. The library builds and judges plans; these handlers format the result."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceperf.cli.exits import EXIT_OK
from faceperf.cli.options import add_json
from faceperf.options import add_artifacts, add_perf_profile
from faceperf.runtime.backends import COMPUTE_UNITS, DEFAULT_COMPUTE_UNITS


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``coreml plan``, ``coreml lint`` and ``coreml snapshot`` to the top-level
    commands."""
    coreml = commands.add_parser("coreml", help="Core ML compute plans and ML program lint")
    sub = coreml.add_subparsers(dest="coreml_command", required=True)

    plan = sub.add_parser("plan", help="where Core ML runs each op of an .mlpackage (macOS 14.4+)")
    plan.add_argument("artifact", type=Path, help="the .mlpackage")
    plan.add_argument("--compute-units", default=DEFAULT_COMPUTE_UNITS, choices=COMPUTE_UNITS)
    plan.add_argument("--model", default=None, help="model name (default: from the path)")
    add_json(plan, help="the whole plan and summary as JSON")
    plan.set_defaults(func=_plan)

    lint = sub.add_parser(
        "lint", help="static lint of ML program specs (any OS): ops, FP16, expected fallbacks"
    )
    lint.add_argument(
        "artifact", type=Path, help="an .mlpackage, or an artifact folder (lints every coreml)"
    )
    add_json(lint)
    lint.set_defaults(func=_lint)

    snapshot = sub.add_parser(
        "snapshot",
        help="record every Core ML model's placement in baselines/<machine>.computeplan.json",
    )
    add_artifacts(snapshot, "--artifacts", "--dir")
    add_perf_profile(snapshot)
    snapshot.add_argument("--out", type=Path, default=None, help="default: the profile's file")
    snapshot.set_defaults(func=_snapshot)


def _plan(args: argparse.Namespace) -> int:
    from faceperf.coreml.analysis import summarize
    from faceperf.coreml.plan_macos import load_compute_plan
    from faceperf.coreml.render import plan_text

    plan = load_compute_plan(args.artifact, model=args.model, compute_units=args.compute_units)
    summary = summarize(plan)
    if args.json:
        print(json.dumps({"summary": summary.to_json(), "plan": plan.to_json()}, indent=2))
    else:
        print(plan_text(plan, summary))
    return EXIT_OK


def _lint(args: argparse.Namespace) -> int:
    from faceperf.coreml.lint import lint_mlpackage, report_json
    from faceperf.coreml.packages import mlpackages
    from faceperf.coreml.render import lint_text, rules_text

    reports = [lint_mlpackage(path) for path in mlpackages(args.artifact)]
    if args.json:
        print(report_json(reports))
        return EXIT_OK
    print("\n\n".join(lint_text(report) for report in reports))
    if any(report.expected_fallbacks for report in reports):
        print("\n" + rules_text(reports))
    return EXIT_OK


def _snapshot(args: argparse.Namespace) -> int:
    from faceperf.coreml.snapshot import snapshot_placements

    print(snapshot_placements(args.artifacts, args.perf_profile, args.out).describe())
    return EXIT_OK
