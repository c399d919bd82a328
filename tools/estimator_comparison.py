"""The merge gate's sign-test interval against the Wilcoxon / Hodges-Lehmann one, on recorded runs
(docs/merge-gate.md, "Estimators").

    python tools/estimator_comparison.py RUN_DIR... [--threshold 0.03] [--detail] \
        [--resample 200 --slowdown 1.05]

A RUN_DIR is a folder holding ab.json, or one holding run*/ab.json (tools/ab_experiment.py runs).
Every benchmark of every run is replayed with both estimators (bench/ab/replay.py: the same looks,
the same verdict rule) and tallied per benchmark: verdicts, rounds to a decision, disagreements.
A second table gives what decides which interval is narrower: the shape of the per-round log
ratios (skewness: the Wilcoxon interval assumes symmetry; kurtosis: peaked, heavy-tailed noise
favours the sign test) and the width of both intervals on all recorded rounds.

A run stops measuring a benchmark once it decides, so its rounds are censored in favour of the
estimator that recorded them; record with a threshold the benchmarks do not meet (``faceperf ab
--threshold 0.001``) and replay at the real one with ``--threshold``. ``--resample`` avoids the
censoring altogether: it draws simulated runs from each benchmark's recorded round ratios (each
run's centred on its median, given a random sign: an A/A with the machine's real tails; then
shifted by ``--slowdown``) and replays both estimators on the schedule of 16 rounds doubling.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import kurtosis, skew, skewtest

from faceperf.bench.ab.estimators import Estimator, estimator_interval
from faceperf.bench.ab.replay import Recorded, Replay, replay_all, symmetry
from faceperf.bench.ab.sequential import block_sums
from faceperf.bench.ab.stats import LookSchedule, log_ratios
from faceperf.verdicts import Verdict

VERDICTS = (Verdict.SLOWER, Verdict.SAME, Verdict.FASTER, Verdict.UNDECIDED)


@dataclass
class _Tally:
    replays: list[dict[Estimator, Replay]] = field(default_factory=list)
    recorded: list[Verdict] = field(default_factory=list)
    centred: list[float] = field(default_factory=list)  # log ratios minus their run's median
    shifts: list[float] = field(default_factory=list)  # (mean - median) / sigma per run
    widths: list[float] = field(default_factory=list)  # wilcoxon / sign log-width, all rounds


def _ab_files(folders: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if (folder / "ab.json").is_file():
            found.append(folder / "ab.json")
        else:
            found += sorted(folder.glob("run*/ab.json"))
    return found


def _width(recorded: Recorded, estimator: Estimator) -> float:
    interval = estimator_interval(
        estimator,
        block_sums(recorded.reference_s),
        block_sums(recorded.candidate_s),
        recorded.schedule.confidence,
    )
    return math.log(interval.high) - math.log(interval.low) if interval.low > 0 else math.inf


def _tally(files: list[Path], threshold: float | None) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = collections.defaultdict(_Tally)
    for path in files:
        for bench in json.loads(path.read_text())["benchmarks"]:
            recorded = Recorded.from_json(bench)
            if recorded.rounds < 2:
                continue  # never measured: nothing to replay
            tally = tallies[recorded.name]
            tally.replays.append(replay_all(recorded, threshold))
            tally.recorded.append(recorded.verdict)
            ratios = log_ratios(block_sums(recorded.reference_s), block_sums(recorded.candidate_s))
            tally.centred += list(ratios - np.median(ratios))
            tally.shifts.append(symmetry(ratios)[1])
            sign, wilcoxon = (_width(recorded, e) for e in (Estimator.SIGN, Estimator.WILCOXON))
            if math.isfinite(sign) and math.isfinite(wilcoxon) and sign > 0:
                tally.widths.append(wilcoxon / sign)
    return tallies


def _counts(replays: list[Replay]) -> str:
    counts = collections.Counter(r.verdict for r in replays)
    exhausted = sum(r.exhausted for r in replays)
    text = "/".join(str(counts[v]) for v in VERDICTS)
    return f"{text} ({exhausted} exh.)" if exhausted else text


def _median_rounds(replays: list[Replay]) -> str:
    rounds = [r.rounds for r in replays if r.decided]
    return f"{statistics.median(rounds):g}" if rounds else "-"


def _print_verdicts(tallies: dict[str, _Tally], replayed_at: float | None) -> None:
    print("Verdicts slower/same/faster/undecided; exh.: recorded rounds exhausted undecided.")
    print(
        "| benchmark | runs | sign | wilcoxon | rounds to a decision (median): sign / wilcoxon "
        "| wilcoxon earlier / later | disagreements | recorded = sign replay |"
    )
    print("|---|---:|---|---|---|---|---|---|")
    for name, tally in tallies.items():
        sign = [r[Estimator.SIGN] for r in tally.replays]
        wilcoxon = [r[Estimator.WILCOXON] for r in tally.replays]
        both = [(s, w) for s, w in zip(sign, wilcoxon, strict=True) if s.decided and w.decided]
        earlier = sum(w.rounds < s.rounds for s, w in both)
        later = sum(w.rounds > s.rounds for s, w in both)
        disagree = [
            f"{s.verdict.value}/{w.verdict.value}"
            for s, w in zip(sign, wilcoxon, strict=True)
            if s.verdict is not w.verdict
        ]
        same_as_recorded = (
            "-"
            if replayed_at is not None
            else f"{sum(s.verdict is v for s, v in zip(sign, tally.recorded, strict=True))}"
            f" of {len(sign)}"
        )
        print(
            f"| {name} | {len(tally.replays)} | {_counts(sign)} | {_counts(wilcoxon)} "
            f"| {_median_rounds(sign)} / {_median_rounds(wilcoxon)} | {earlier} / {later} "
            f"| {len(disagree)}{': ' + ', '.join(disagree) if disagree else ''} "
            f"| {same_as_recorded} |"
        )


def _print_shape(tallies: dict[str, _Tally]) -> None:
    print()
    print("Per-round log ratios, each run centred on its median and pooled.")
    print(
        "| benchmark | rounds | skewness | skewtest p | excess kurtosis "
        "| (mean - median) / sigma, median of runs | width wilcoxon / sign (median, range) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, tally in tallies.items():
        x = np.asarray(tally.centred)
        # D'Agostino's skewness test needs 8 values; it assumes normal tails under the null,
        # so with heavy tails its p-value is only a pointer.
        p = f"{skewtest(x).pvalue:.3f}" if x.size >= 8 else "-"
        widths = (
            f"{statistics.median(tally.widths):.2f} ({min(tally.widths):.2f}-"
            f"{max(tally.widths):.2f})"
            if tally.widths
            else "-"
        )
        shifts = [s for s in tally.shifts if math.isfinite(s)]
        shift = f"{statistics.median(shifts):+.3f}" if shifts else "-"
        print(
            f"| {name} | {x.size} | {skew(x, bias=False):+.2f} | {p} "
            f"| {kurtosis(x, bias=False):+.2f} | {shift} | {widths} |"
        )


def _print_detail(tallies: dict[str, _Tally]) -> None:
    print()
    for name, tally in tallies.items():
        for index, replays in enumerate(tally.replays):
            for estimator, replay in replays.items():
                print(f"{name} run {index} {estimator.value}: {replay.text()}")


def _resampled(pool: np.ndarray, rng: np.random.Generator, shift: float, threshold: float):
    schedule = LookSchedule(16)
    n = schedule.rounds_at(schedule.looks - 1)
    ratios = np.exp(rng.choice(pool, n) * rng.choice([-1.0, 1.0], n) + shift)
    # Each round's ratio as two equal samples a side, so block_sums gives it back.
    reference = np.full(2 * n, 0.5)
    candidate = np.repeat(ratios / 2, 2)
    recorded = Recorded("resampled", threshold, schedule, tuple(reference), tuple(candidate),
                        Verdict.UNDECIDED)  # fmt: skip
    return replay_all(recorded)


def _print_resampled(
    tallies: dict[str, _Tally], runs: int, slowdown: float, threshold: float
) -> None:
    print()
    print(
        f"{runs} runs resampled from each benchmark's recorded rounds, threshold {threshold:g} "
        "(slower/same/faster/undecided, mean rounds):"
    )
    print("| benchmark | true ratio | sign | wilcoxon |")
    print("|---|---|---|---|")
    for name, tally in tallies.items():
        pool = np.asarray(tally.centred)
        for ratio in sorted({1.0, slowdown}):
            rng = np.random.default_rng(0)
            results = [_resampled(pool, rng, math.log(ratio), threshold) for _ in range(runs)]
            cells = []
            for estimator in Estimator:
                replays = [r[estimator] for r in results]
                counts = collections.Counter(r.verdict for r in replays)
                mean = statistics.mean(r.rounds for r in replays)
                cells.append(f"{'/'.join(str(counts[v]) for v in VERDICTS)}, {mean:.0f}")
            print(f"| {name} | x{ratio:g} | {cells[0]} | {cells[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="folders with ab.json or run*/ab.json")
    parser.add_argument(
        "--threshold", type=float, default=None, help="replay at this threshold (default: recorded)"
    )
    parser.add_argument("--detail", action="store_true", help="every replay's verdict and interval")
    parser.add_argument(
        "--resample", type=int, default=0, help="simulated runs from the recorded rounds (seeded)"
    )
    parser.add_argument("--slowdown", type=float, default=1.05, help="with --resample")
    args = parser.parse_args()
    if args.threshold is not None and not 0 < args.threshold < 1:
        parser.error(f"--threshold {args.threshold}: expected a fraction between 0 and 1")
    files = _ab_files(args.runs)
    if not files:
        parser.error("no ab.json found in the given folders")
    try:
        tallies = _tally(files, args.threshold)
    except (ValueError, KeyError, json.JSONDecodeError) as error:
        print(f"estimator_comparison: {error}", file=sys.stderr)
        sys.exit(2)
    if not tallies:
        print(f"{len(files)} ab.json files: no benchmark with two recorded rounds")
        return
    at = "recorded thresholds" if args.threshold is None else f"threshold {args.threshold:g}"
    print(f"{len(files)} ab.json files, replayed at {at}.")
    _print_verdicts(tallies, args.threshold)
    _print_shape(tallies)
    if args.resample > 0:
        _print_resampled(tallies, args.resample, args.slowdown, args.threshold or 0.03)
    if args.detail:
        _print_detail(tallies)


if __name__ == "__main__":
    main()
