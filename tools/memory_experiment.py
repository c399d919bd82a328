"""The merge gate's memory and size verdicts: false alarms and power, measured (docs/memory.md).

    python tools/memory_experiment.py aa --reference DIR --candidate DIR --count 10
    python tools/memory_experiment.py ballast --source DIR --out DIR --model star \
        --variant optimized --megabytes 100
    python tools/memory_experiment.py power --reference DIR --candidate DIR --count 10 \
        [--benchmarks star-optimized,pipeline]

`aa` repeats the memory comparison of every benchmark the merge gate judges by default (each
repeat both sides' fresh children, as `faceperf ab` runs them) and tallies the verdicts with
the spread of each phase's candidate / reference ratio; `ballast` writes a copy of an artifact
folder whose model holds one extra intermediate tensor of the given size (outputs unchanged;
bench/memory/ballast.py); `power` is `aa` on the benchmarks named. Sizes are compared once
(bytes on disk do not vary between repeats).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

from faceperf.bench.ab.footprint import measure_memory, size_changes, size_name
from faceperf.bench.ab.pairings import AbRequest, plan, read_sides
from faceperf.bench.budgets import load_budgets
from faceperf.bench.gate.paths import budgets_path
from faceperf.bench.memory.ballast import add_ballast
from faceperf.bench.slowdown import edited_copy


def _repeat(request: AbRequest, judged: list[str], count: int) -> None:
    budgets = load_budgets(budgets_path())
    verdicts = collections.defaultdict(collections.Counter)
    ratios = collections.defaultdict(list)
    for run in range(count):
        start = time.perf_counter()
        for change in measure_memory(request, judged, budgets.ab_memory_threshold_for):
            verdicts[change.name][str(change.verdict)] += 1
            for phase in change.phases:
                ratios[(change.name, phase.phase)].append(phase)
        print(f"run {run + 1}/{count}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    for name, counts in verdicts.items():
        print(f"{name}: {dict(counts)}")
        for phase in ("load", "steady"):
            changes = ratios[(name, phase)]
            deltas = [c.delta_bytes / 2**20 for c in changes]
            refs = [c.reference_bytes / 2**20 for c in changes]
            spread = max(abs(d) for d in deltas)
            print(
                f"  {phase}: reference {min(refs):.1f}-{max(refs):.1f} MiB, candidate - "
                f"reference {min(deltas):+.2f} to {max(deltas):+.2f} MiB "
                f"(largest |difference| {spread:.2f} MiB, {100 * spread / max(refs):.2f} %)"
            )
    for change in size_changes(request, judged):
        print(f"{size_name(change)}: {change.verdict} ({change.describe()})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("aa", "power"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--reference", type=Path, required=True)
        cmd.add_argument("--candidate", type=Path, required=True)
        cmd.add_argument("--count", type=int, default=10)
        cmd.add_argument("--benchmarks", default=None, help="comma-separated (default: all)")
    ballast = sub.add_parser("ballast")
    ballast.add_argument("--source", type=Path, required=True)
    ballast.add_argument("--out", type=Path, required=True)
    ballast.add_argument("--model", required=True)
    ballast.add_argument("--variant", default="optimized")
    ballast.add_argument("--megabytes", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "ballast":
        edited_copy(
            args.source,
            args.out,
            args.model,
            args.variant,
            lambda g: add_ballast(g, args.megabytes),
        )
        print(args.out)
        return 0
    request = AbRequest(reference=args.reference, candidate=args.candidate)
    judged = list(plan(request, *read_sides(request)).judged)
    if args.benchmarks:
        judged = [name for name in judged if name in args.benchmarks.split(",")]
    _repeat(request, judged, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
