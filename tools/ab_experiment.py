"""The merge gate's false alarms and power, measured (docs/merge-gate.md).

    python tools/ab_experiment.py runs --reference DIR --candidate DIR --count 20 --out DIR \
        [-- AB ARGS]
    python tools/ab_experiment.py slow --source DIR --out DIR --model star --convs 6 \
        [--variants optimized,baseline] [--tensor NAME]
    python tools/ab_experiment.py tally RUN_DIR...
    python tools/ab_experiment.py segments RUN_DIR... --seconds 90 [--threshold 0.03]

`runs` repeats `faceperf ab` (one fresh process each, as a user runs it) and keeps every run's
ab.json; `slow` writes a copy of an artifact folder whose model carries k identity 1x1
convolutions in the given variants (outputs unchanged, real extra work; bench/slowdown.py);
`tally` counts verdicts per benchmark over runs and shows the spread of the measured ratios.
`segments` cuts each benchmark's recorded rounds (a long recording, made with a threshold it
cannot meet, e.g. `--threshold 0.001`) into consecutive stretches of about `--seconds` of
measuring and replays the gate's sequential verdict on each (bench/ab/replay.py): as many
"runs" of that length as the recording holds, in one process, which is cheaper than fresh runs
but shares one process's session placement; the figures say which they are.
What a slowdown really costs is measured with `faceperf ab --models M --threshold 0.001`: a
threshold nothing meets keeps it measuring every look, so the ratio is as precise as it gets.
Run on a quiet machine, one experiment at a time.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from faceperf.bench.slowdown import slowed_copy


def _runs(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.count):
        report = args.out / f"run{index:02d}"
        command = [
            sys.executable, "-m", "faceperf", "ab",
            "--reference", str(args.reference), "--candidate", str(args.candidate),
            "--report", str(report), "--seed", str(index), *args.ab_args,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        print(f"run {index:02d}: exit {done.returncode}: {done.stdout.strip().splitlines()[-2]}")


def _slow(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
        current = args.source
        for step, variant in enumerate(args.variants.split(",")):
            target = Path(tmp) / f"step{step}"
            current = slowed_copy(current, target, args.model, variant, args.convs, args.tensor)
        shutil.copytree(current, args.out)
    print(f"{args.out}: {args.model} {args.variants} + {args.convs} identity 1x1 convolutions")


def _tally(args: argparse.Namespace) -> None:
    verdicts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    ratios: dict[str, list[float]] = collections.defaultdict(list)
    rounds: dict[str, list[int]] = collections.defaultdict(list)
    for run in args.runs:
        document = json.loads((run / "ab.json").read_text())
        for bench in document["benchmarks"]:
            verdicts[bench["name"]][bench["verdict"]] += 1
            if bench["ratio"] is not None:
                ratios[bench["name"]].append(bench["ratio"])
            rounds[bench["name"]].append(bench["rounds"])
    print("| benchmark | slower | same | faster | undecided | ratios (min-max) | rounds (median) |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, counts in verdicts.items():
        spread = f"{min(ratios[name]):.3f}-{max(ratios[name]):.3f}" if ratios[name] else "-"
        median_rounds = sorted(rounds[name])[len(rounds[name]) // 2]
        print(
            f"| {name} | {counts['slower']} | {counts['same']} | {counts['faster']} | "
            f"{counts['undecided']} | {spread} | {median_rounds} |"
        )


def _round_seconds(bench: dict, mode: str) -> list[float]:
    """Each round's measuring time: four samples one after the other (alternating), or two
    pairs side by side (duet: the slower side of each pair)."""
    inner = bench["calls_per_sample"]
    pairs = list(zip(bench["reference_s"], bench["candidate_s"], strict=True))
    per_sample = [max(r, c) for r, c in pairs] if mode == "duet" else [r + c for r, c in pairs]
    return [inner * (per_sample[i] + per_sample[i + 1]) for i in range(0, len(per_sample) - 1, 2)]


def _segments(args: argparse.Namespace) -> None:
    from faceperf.bench.ab.replay import Recorded, replay

    print(
        "| run | benchmark | mode | segments | slower | same | faster | undecided "
        "| rounds to a decision (median) | per-round log ratio: SD, robust SD (MAD) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        document = json.loads((run / "ab.json").read_text())
        modes = document["environment"].get("modes", {})
        for bench in document["benchmarks"]:
            mode = modes.get(bench["name"], "alternating")
            recorded = Recorded.from_json(bench)
            seconds = _round_seconds(bench, mode)
            counts: collections.Counter = collections.Counter()
            decided_at = []
            start, spent = 0, 0.0
            for end, cost in enumerate(seconds, start=1):
                spent += cost
                if spent < args.seconds:
                    continue
                lo, hi = 2 * start, 2 * end
                part = Recorded(
                    recorded.name, recorded.threshold, recorded.schedule,
                    recorded.reference_s[lo:hi], recorded.candidate_s[lo:hi], recorded.verdict,
                )  # fmt: skip
                found = replay(part, args.estimator, args.threshold)
                counts[found.verdict.value] += 1
                if found.decided:
                    decided_at.append(found.rounds)
                start, spent = end, 0.0
            ratios = [
                math.log((c1 + c2) / (r1 + r2))
                for r1, r2, c1, c2 in zip(
                    bench["reference_s"][::2], bench["reference_s"][1::2],
                    bench["candidate_s"][::2], bench["candidate_s"][1::2], strict=True,
                )
            ]  # fmt: skip
            sd = statistics.stdev(ratios) if len(ratios) > 1 else math.nan
            centre = statistics.median(ratios)
            mad = 1.4826 * statistics.median(abs(r - centre) for r in ratios)
            median = statistics.median(decided_at) if decided_at else "-"
            print(
                f"| {run.name} | {bench['name']} | {mode} | {sum(counts.values())} | "
                f"{counts['slower']} | {counts['same']} | {counts['faster']} | "
                f"{counts['undecided']} | {median} | {sd:.4f}, {mad:.4f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runs = commands.add_parser("runs")
    runs.add_argument("--reference", type=Path, required=True)
    runs.add_argument("--candidate", type=Path, required=True)
    runs.add_argument("--count", type=int, default=20)
    runs.add_argument("--out", type=Path, required=True)
    runs.add_argument("ab_args", nargs=argparse.REMAINDER)
    slow = commands.add_parser("slow")
    slow.add_argument("--source", type=Path, required=True)
    slow.add_argument("--out", type=Path, required=True)
    slow.add_argument("--model", required=True)
    slow.add_argument("--convs", type=int, required=True)
    slow.add_argument("--variants", default="optimized")
    slow.add_argument("--tensor", default=None, help="feature map (default: the widest)")
    tally = commands.add_parser("tally")
    tally.add_argument("runs", type=Path, nargs="+")
    segments = commands.add_parser("segments")
    segments.add_argument("runs", type=Path, nargs="+")
    segments.add_argument("--seconds", type=float, required=True)
    segments.add_argument("--threshold", type=float, default=None)
    segments.add_argument("--estimator", default="sign")
    args = parser.parse_args()
    if getattr(args, "ab_args", None) and args.ab_args[0] == "--":
        args.ab_args = args.ab_args[1:]
    commands_by_name = {"runs": _runs, "slow": _slow, "tally": _tally, "segments": _segments}
    commands_by_name[args.command](args)


if __name__ == "__main__":
    main()
