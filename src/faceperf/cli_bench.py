"""Handlers of the benchmark commands: compare, baseline update, report."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from faceperf.bench.baseline_paths import baseline_path
from faceperf.bench.errors import BaselineError
from faceperf.bench.gate import GatePolicy, GateReport, compare_runs
from faceperf.bench.hardware import detect_profile
from faceperf.bench.pooling import pool_runs
from faceperf.bench.report import ReportInputs, policy_from_budgets, write_report
from faceperf.bench.storage import BenchmarkRun, load_run, parse_run, save_run_json
from faceperf.cli_args import accepted_pair
from faceperf.errors import FaceperfError
from faceperf.paths import default_artifacts_dir, repo_root

EXIT_MISMATCH = 2


def _policy(args: argparse.Namespace) -> GatePolicy:
    accepted = dict(accepted_pair(item) for item in args.accept or [])
    return policy_from_budgets(args.allow_mismatch, accepted)


def compare(args: argparse.Namespace) -> int:
    from faceperf.bench.errors import ProfileMismatchError

    policy = _policy(args)
    try:
        report = compare_runs(load_run(args.baseline), load_run(args.current), policy)
    except ProfileMismatchError as err:
        print(f"faceperf: refused: {err}", file=sys.stderr)
        return EXIT_MISMATCH
    print(report.markdown() if args.markdown else _plain(report))
    return report.exit_code


def _plain(report: GateReport) -> str:
    lines = [report.summary()]
    for row in report.rows:
        change = f"{100 * row.change:+.1f} %" if row.change is not None else "-"
        lines.append(f"  {row.verdict.value:<11} {change:>9}  {row.name.split('::')[-1]}")
        lines += [f"      {warning}" for warning in row.warnings]
    return "\n".join(lines)


def baseline_update(args: argparse.Namespace) -> int:
    profile = detect_profile(args.backend, forced=args.perf_profile)
    target = args.out or baseline_path(profile.name)
    if args.runs < 1:
        raise FaceperfError(f"--runs {args.runs}: expected at least 1")
    sources = [Path(p) for p in args.results] if args.results else _fresh_runs(args)
    documents = []
    for source in sources:
        run = load_run(source)  # validates before anything is replaced
        if run.profile != profile.name and not args.allow_mismatch:
            raise FaceperfError(
                f"{source} was measured on {run.profile}, not {profile.name}; "
                "pass --allow-mismatch to store it anyway"
            )
        if not run.benchmarks:
            # An empty baseline would make the gate pass everything as "added".
            raise FaceperfError(f"{source} measured no benchmarks; baseline left unchanged")
        documents.append(json.loads(source.read_text()))
    document = pool_runs(documents, [str(s) for s in sources])
    run = parse_run(document, str(target))
    previous = _previous_baseline(Path(target))
    save_run_json(target, document)
    print(
        f"baseline for {run.profile} written to {target} ({len(run.benchmarks)} benchmarks, "
        f"pooled from {len(sources)} run(s))"
    )
    if previous is not None:
        print(_membership_changes(previous, run))
    _refresh_placements(args)
    return 0


def _refresh_placements(args: argparse.Namespace) -> None:
    """The Core ML placement snapshot belongs with the baseline: refresh it where it can be."""
    from faceperf.cli_coreml import snapshot_placements
    from faceperf.coreml.plan_macos import compute_plan_unavailable_reason

    reason = compute_plan_unavailable_reason()
    if reason:
        print(f"compute-plan snapshot not refreshed: {reason}")
        return
    snapshot_placements(default_artifacts_dir(), args.perf_profile, None)


def _fresh_runs(args: argparse.Namespace) -> list[Path]:
    folder = Path(tempfile.mkdtemp(prefix="faceperf-baseline-"))
    sources = []
    for index in range(args.runs):
        source = folder / f"results{index}.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "perf",
            "-q",
            "--perf-no-gate",
            f"--perf-backend={args.backend}",
            f"--benchmark-json={source}",
        ]
        if args.perf_profile:
            command.append(f"--perf-profile={args.perf_profile}")
        print(f"run {index + 1} of {args.runs}:", " ".join(command), flush=True)
        finished = subprocess.run(command, cwd=repo_root())
        # Exit 1 is a failed test (a budget, a speedup floor): the timings are still good.
        if finished.returncode not in (0, 1, 5) or not source.exists():
            raise FaceperfError(
                f"the perf run failed (exit {finished.returncode}); baseline left unchanged"
            )
        sources.append(source)
    return sources


def _previous_baseline(target: Path) -> BenchmarkRun | None:
    """The baseline about to be replaced, or None when there is none or it is unreadable."""
    if not target.exists():
        return None
    try:
        return load_run(target)
    except BaselineError as err:
        # Replacing a broken baseline is what an update is for; say so and go on.
        print(
            f"faceperf: the previous baseline is unreadable and is replaced ({err})",
            file=sys.stderr,
        )
        return None


def _membership_changes(previous: BenchmarkRun, current: BenchmarkRun) -> str:
    added = sorted(set(current.benchmarks) - set(previous.benchmarks))
    removed = sorted(set(previous.benchmarks) - set(current.benchmarks))
    lines = [f"  added: {name}" for name in added] + [f"  removed: {name}" for name in removed]
    if not lines:
        return "same benchmarks as the previous baseline"
    header = f"{len(added)} added, {len(removed)} removed since the previous baseline:"
    return "\n".join([header, *lines])


def report(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    results = directory / "results.json"
    run = load_run(results)
    baseline = args.baseline or baseline_path(run.profile)
    policy = policy_from_budgets(args.allow_mismatch)
    verdict = write_report(
        directory,
        ReportInputs(results, baseline, policy),
        f"Record one with `faceperf baseline update` ({baseline}).",
    )
    print(f"report regenerated in {directory}")
    if verdict is not None:
        print(verdict.summary())
    return 0
