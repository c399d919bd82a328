"""``faceperf bench sustained``: the Face Mirror loop kept busy for minutes, watched window by
window (bench/throughput/sustained.py); registered under ``bench`` by cli/bench.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceperf.cli.options import add_json, add_threads, add_variant
from faceperf.options import add_artifacts, add_backend, fraction, number, positive_seconds

minutes = number(lambda v: v > 0, "a positive number of minutes", edges=("0", "-1"), example="5")


def add_sustained(sub: argparse._SubParsersAction) -> None:
    sustained = sub.add_parser(
        "sustained",
        help="the Face Mirror pipeline run without pause for minutes: frame rate, memory and the "
        "machine's clock or thermal state per window; exit 1 when the last minute is slower "
        "than the first by more than the threshold (throttled)",
    )
    add_artifacts(sustained)
    add_variant(sustained)
    add_backend(sustained)
    add_threads(sustained, default=1, help="intra-op threads of ONNX Runtime (default 1)")
    sustained.add_argument(
        "--minutes", type=minutes, default=5.0, help="how long to run (default 5)"
    )
    sustained.add_argument(
        "--window",
        type=positive_seconds,
        default=10.0,
        help="window length in seconds (default 10)",
    )
    sustained.add_argument(
        "--threshold",
        type=fraction,
        default=None,
        help="the largest drop of the last minute's rate below the first's that passes "
        "(default: bench/throughput/sustained.py's, from A/A runs)",
    )
    sustained.add_argument("--plot", type=Path, default=None, help="write the windows (PNG)")
    add_json(sustained)
    sustained.set_defaults(func=_sustained)


def _sustained(args: argparse.Namespace) -> int:
    from faceperf.bench.gate.canary import Canary
    from faceperf.bench.memory.workloads import pipeline_step
    from faceperf.bench.throughput.sustained import DEFAULT_THRESHOLD, run_sustained
    from faceperf.bench.throughput.sustained_plot import plot_sustained
    from faceperf.runtime.artifact_ref import ArtifactRef
    from faceperf.verdicts import exit_code

    ref = ArtifactRef(args.artifacts, args.variant, args.backend, args.threads)
    step = pipeline_step(ref)
    step()  # the first frame opens the arena and detects: not the loop's steady work
    run = run_sustained(
        step,
        60.0 * args.minutes,
        args.window,
        threshold=args.threshold or DEFAULT_THRESHOLD,
        canary=Canary(threads=args.threads).time_once,
        on_window=lambda w: _say(
            f"  {w.start_s:6.0f} s: {w.fps:.2f} FPS, {w.memory_bytes / 2**20:.0f} MiB, {w.machine}"
        ),
    )
    if args.plot is not None:
        plot_sustained(args.plot, run)
    if args.json:
        print(json.dumps(run.to_json(), indent=2))
    else:
        print(run.describe())
    return exit_code([run.verdict])


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
