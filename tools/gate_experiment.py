"""The gate's false alarms and power, measured (README: "The gate's false alarms and power").

    python tools/gate_experiment.py cost  --model star --convs 6 12      # what k convs cost
    python tools/gate_experiment.py runs  --out DIR --count 11 [-- PYTEST ARGS]
    python tools/gate_experiment.py slow  --out DIR --model star --convs 6 --count 10 -k star
    python tools/gate_experiment.py judge BASELINE.json RUN.json...

`runs` records unchanged perf runs (A/A: judge the later ones against the first); `slow` records
runs of a copy of the artifacts whose `optimized` model carries k identity 1x1 convolutions
(outputs unchanged, real extra work; bench/slowdown.py); `cost` measures that slowdown
interleaved against the unchanged artifact; `judge` runs the gate and counts what it flags.
Run on a quiet machine, one experiment at a time: every run is timed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from faceperf.bench.gate.compare import compare_runs
from faceperf.bench.gate.storage import load_run
from faceperf.bench.report.folder import policy_from_budgets
from faceperf.bench.slowdown import slowed_copy
from faceperf.bench.speedups.interleaved import measure_interleaved, speedup_interval
from faceperf.fixtures.samples import sample_batch
from faceperf.paths import default_artifacts_dir, repo_root
from faceperf.runtime.factory import open_runner
from faceperf.verdicts import Verdict


def _cost(args: argparse.Namespace) -> None:
    source = default_artifacts_dir()
    feeds = {"image": np.array(sample_batch(args.model)[:1])}
    plain = open_runner(source, args.model, "optimized", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.convs:
            slow_dir = slowed_copy(source, Path(tmp) / f"k{count}", args.model, "optimized", count)
            slow = open_runner(slow_dir, args.model, "optimized", threads=1)
            samples = measure_interleaved(
                lambda runner=slow: runner.run(feeds), lambda: plain.run(feeds), 30
            )
            interval = speedup_interval(samples.a_s, samples.b_s)
            print(
                f"{args.model} + {count} identity convs: slower by x{interval.point:.3f} "
                f"[{interval.low:.3f}, {interval.high:.3f}]"
            )


def _pytest(out: Path, artifacts: Path | None, extra: list[str]) -> int:
    command = [sys.executable, "-m", "pytest", "-m", "perf", "-q", "--perf-no-gate"]
    # One token each: pytest takes a bare path argument for a test path and roots itself there.
    command += [f"--benchmark-json={out}", *extra]
    if artifacts is not None:
        command.append(f"--artifacts={artifacts}")
    finished = subprocess.run(command, cwd=repo_root(), capture_output=True, text=True)
    if finished.returncode not in (0, 1):
        print((finished.stdout + finished.stderr)[-2000:], file=sys.stderr)
    return finished.returncode


def _runs(args: argparse.Namespace, artifacts: Path | None = None, stem: str = "run") -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.count):
        path = args.out / f"{stem}{index}.json"
        print(f"{path}: pytest exit {_pytest(path, artifacts, args.pytest_args)}", flush=True)


def _slow(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        slow_dir = slowed_copy(
            default_artifacts_dir(), Path(tmp) / "slow", args.model, "optimized", args.convs
        )
        _runs(args, slow_dir, stem=f"{args.model}-k{args.convs}-")


def _judge(args: argparse.Namespace) -> None:
    policy = policy_from_budgets()
    baseline = load_run(args.baseline)
    for path in args.runs:
        report = compare_runs(baseline, load_run(path), policy)
        flagged = [row for row in report.rows if row.verdict is Verdict.SLOWER]
        judged = [
            row
            for row in report.rows
            if row.change is not None and row.verdict is not Verdict.NOT_GATED
        ]
        worst = max(judged, key=lambda row: abs(row.change), default=None)
        worst_text = (
            f"largest judged change {worst.change:+.1%} ({worst.name.rsplit('::')[-1]})"
            if worst
            else ""
        )
        names = ", ".join(f"{r.name.rsplit('::')[-1]} {r.change:+.1%}" for r in flagged)
        print(f"{path}: {len(flagged)} flagged {names}; {worst_text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cost = sub.add_parser("cost")
    cost.add_argument("--model", default="star")
    cost.add_argument("--convs", type=int, nargs="+", required=True)
    runs = sub.add_parser("runs")
    runs.add_argument("--out", type=Path, required=True)
    runs.add_argument("--count", type=int, default=11)
    runs.add_argument("pytest_args", nargs="*")
    slow = sub.add_parser("slow")
    slow.add_argument("--out", type=Path, required=True)
    slow.add_argument("--model", default="star")
    slow.add_argument("--convs", type=int, required=True)
    slow.add_argument("--count", type=int, default=10)
    slow.add_argument("pytest_args", nargs="*")
    judge = sub.add_parser("judge")
    judge.add_argument("baseline", type=Path)
    judge.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    {"cost": _cost, "runs": _runs, "slow": _slow, "judge": _judge}[args.command](args)


if __name__ == "__main__":
    main()
