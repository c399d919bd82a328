"""Handlers of ``faceperf coreml plan | lint | snapshot``: compute plans and the static lint.

Thin: the library builds and judges plans; these format the result. cli.py owns the error
handling and the exit codes. Heavy imports stay inside the handlers so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from faceperf.paths import default_artifacts_dir

EXIT_OK = 0


def add_coreml_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``coreml plan``, ``coreml lint`` and ``coreml snapshot``."""
    coreml = commands.add_parser("coreml", help="Core ML compute plans and ML program lint")
    sub = coreml.add_subparsers(dest="coreml_command", required=True)

    plan = sub.add_parser("plan", help="where Core ML runs each op of an .mlpackage (macOS 14.4+)")
    plan.add_argument("artifact", type=Path, help="the .mlpackage")
    plan.add_argument(
        "--compute-units",
        default="CPU_AND_NE",
        choices=["ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY"],
    )
    plan.add_argument("--model", default=None, help="model name (default: from the path)")
    plan.add_argument("--json", action="store_true", help="the whole plan and summary as JSON")

    lint = sub.add_parser(
        "lint", help="static lint of ML program specs (any OS): ops, FP16, expected fallbacks"
    )
    lint.add_argument(
        "artifact", type=Path, help="an .mlpackage, or an artifact folder (lints every coreml)"
    )
    lint.add_argument("--json", action="store_true")

    snapshot = sub.add_parser(
        "snapshot",
        help="record every Core ML model's placement in baselines/<machine>.computeplan.json",
    )
    snapshot.add_argument(
        "--dir", type=Path, default=None, help="artifact folder (default: weights/build)"
    )
    snapshot.add_argument("--perf-profile", default=None, help="force the profile name")
    snapshot.add_argument("--out", type=Path, default=None, help="default: the profile's file")


def run(args: argparse.Namespace) -> int:
    handlers = {"plan": _plan, "lint": _lint, "snapshot": _snapshot}
    return handlers[args.coreml_command](args)


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
    from faceperf.coreml.render import lint_text, rules_text

    reports = [lint_mlpackage(path) for path in _packages(args.artifact)]
    if args.json:
        print(report_json(reports))
        return EXIT_OK
    print("\n\n".join(lint_text(report) for report in reports))
    if any(report.expected_fallbacks for report in reports):
        print("\n" + rules_text(reports))
    return EXIT_OK


def _packages(target: Path) -> list[Path]:
    from faceperf.artifacts.layout import MANIFEST_NAME
    from faceperf.errors import ArtifactError

    if (target / MANIFEST_NAME).is_file():
        found = sorted(target.glob("*/coreml.mlpackage"))
        if not found:
            raise ArtifactError(f"{target}: no <model>/coreml.mlpackage in this artifact folder")
        return found
    return [target]


def _snapshot(args: argparse.Namespace) -> int:
    snapshot_placements(args.dir or default_artifacts_dir(), args.perf_profile, args.out)
    return EXIT_OK


def snapshot_placements(directory: Path, perf_profile: str | None, out: Path | None) -> Path:
    """Record the Core ML placement of every package in ``directory`` (macOS 14.4+) as the
    profile's compute-plan snapshot; says where, returns the file."""
    from importlib import metadata

    from faceperf.artifacts.layout import MANIFEST_NAME
    from faceperf.bench.hardware import detect_profile
    from faceperf.coreml.drift import computeplan_snapshot_path, update_snapshot
    from faceperf.coreml.plan_macos import load_compute_plan
    from faceperf.errors import ArtifactError

    if not (directory / MANIFEST_NAME).is_file():
        raise ArtifactError(f"{directory}: no {MANIFEST_NAME}; expected an artifact folder")
    packages = _packages(directory)
    plans = [load_compute_plan(path) for path in packages]
    profile = detect_profile("coreml", forced=perf_profile).name
    machine = profile.split("/", 1)[0]
    target = out or computeplan_snapshot_path(profile)
    recorded = {"macos": platform.mac_ver()[0], "coremltools": metadata.version("coremltools")}
    update_snapshot(target, machine, plans, recorded)
    print(f"placement of {', '.join(p.model for p in plans)} on {machine} written to {target}")
    return target
