"""``faceperf ab``: the merge gate, a pull request's artifacts against its base's in one run.

Registered by cli.py (``add_ab_command``, ``run``); the measurement lives in faceperf.bench.ab.
Importing this module is light: heavy imports are in ``run``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from faceperf.cli_args import accepted_pair, comma_list
from faceperf.errors import FaceperfError
from faceperf.paths import default_artifacts_dir, repo_root

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


def _benchmark_models() -> list[str]:
    from faceperf.bench.ab.pairings import COMPOSITES
    from faceperf.models.registry import default_registry

    return [*default_registry().names(), *COMPOSITES]


def _variants() -> tuple[str, ...]:
    from faceperf.artifacts.layout import VARIANTS

    return VARIANTS


def _number(accepts: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type for a number ``accepts`` allows; ``expected`` says what in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accepts(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return value

    return parse


_positive_seconds = _number(lambda v: v > 0, "a positive number of seconds")
_fraction = _number(lambda v: 0 < v < 1, "a fraction between 0 and 1")


def _accepted(text: str) -> tuple[str, str]:
    try:
        return accepted_pair(text)
    except FaceperfError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_ab_command(commands: argparse._SubParsersAction) -> None:
    """Add ``faceperf ab`` to the top-level subcommands."""
    ab = commands.add_parser(
        "ab",
        help="merge gate: candidate artifacts against reference artifacts, interleaved",
        description="Time the candidate's artifacts against the reference's in one process, "
        "alternating in randomly ordered rounds, and judge each benchmark slower / same / "
        "faster / undecided. Exit 1 on a slower benchmark, 2 on bad input.",
    )
    ab.add_argument(
        "--reference",
        required=True,
        help="the base's artifact folder, or a git revision whose artifacts are built (cached)",
    )
    ab.add_argument(
        "--candidate",
        type=Path,
        default=None,
        help="the pull request's artifact folder (default: weights/build)",
    )
    ab.add_argument(
        "--models",
        type=comma_list("model", _benchmark_models),
        default=None,
        help="models and composites (mtcnn, pipeline) to judge (default: all)",
    )
    ab.add_argument(
        "--variants",
        type=comma_list("variant", _variants),
        default=None,
        help="variants of the single-model benchmarks (default: optimized,optimized_fp16; "
        "coreml on the coreml backend)",
    )
    ab.add_argument("--backend", default="ort-cpu", help="ort-cpu, ort-coreml, coreml[:UNITS]")
    ab.add_argument("--threads", type=int, default=1, help="intra-op threads per session")
    ab.add_argument(
        "--threshold",
        type=_fraction,
        default=None,
        help="judge every benchmark at this relative change (default: budgets.toml [ab])",
    )
    ab.add_argument(
        "--max-time",
        type=_positive_seconds,
        default=None,
        help="time budget of the measuring in seconds (default 180)",
    )
    ab.add_argument(
        "--cold-load",
        action="store_true",
        help="also judge session creation of every model and variant (<name>-load)",
    )
    ab.add_argument(
        "--strict", action="store_true", help="fail on benchmarks still undecided at time-out"
    )
    ab.add_argument(
        "--accept",
        type=_accepted,
        action="append",
        default=[],
        metavar="NAME=REASON",
        help="a slowdown a reviewer accepts, with the reason (repeatable)",
    )
    ab.add_argument("--seed", type=int, default=0, help="seeds the order within rounds")
    ab.add_argument("--json", action="store_true", help="print ab.json to stdout")
    ab.add_argument("--markdown", type=Path, default=None, help="also write summary.md here")
    ab.add_argument(
        "--report",
        type=Path,
        default=None,
        help="report folder (default: reports/<timestamp>-ab)",
    )


def run(args: argparse.Namespace) -> int:
    from faceperf.bench.ab.pairings import AbRequest, default_variants
    from faceperf.bench.ab.reference import resolve_reference
    from faceperf.bench.ab.render import markdown, terminal
    from faceperf.bench.ab.run import DEFAULT_MAX_TIME_S, run_ab, write_ab_report
    from faceperf.bench.baseline_paths import budgets_path
    from faceperf.bench.budgets import load_budgets
    from faceperf.fileio import atomic_write_bytes

    budgets = load_budgets(budgets_path())
    if args.threshold is not None:
        budgets = budgets_with_threshold(budgets, args.threshold)
    reference = resolve_reference(args.reference, say=_say)
    request = AbRequest(
        reference=reference,
        candidate=args.candidate or default_artifacts_dir(),
        models=tuple(args.models) if args.models else None,
        variants=tuple(args.variants) if args.variants else default_variants(args.backend),
        backend=args.backend,
        threads=args.threads,
        cold_load=args.cold_load,
    )
    try:
        result = run_ab(
            request,
            budgets,
            max_time_s=args.max_time or DEFAULT_MAX_TIME_S,
            accepted=dict(args.accept),
            seed=args.seed,
            on_look=_progress,
        )
    except KeyboardInterrupt:
        print("faceperf ab: interrupted; no report written", file=sys.stderr)
        return EXIT_INTERRUPTED
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    report = write_ab_report(
        args.report or repo_root() / "reports" / f"{stamp}-ab", result, args.strict
    )
    if args.markdown is not None:
        atomic_write_bytes(args.markdown, markdown(result, args.strict).encode())
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(terminal(result, args.strict))
        print(f"report: {report / 'summary.md'}")
    return result.exit_code(args.strict)


def budgets_with_threshold(budgets, threshold: float):  # (Budgets, float) -> Budgets
    """The budgets with every merge-gate threshold replaced by ``threshold`` (``--threshold``)."""
    import dataclasses

    return dataclasses.replace(
        budgets, ab_default_threshold=threshold, ab_load_threshold=threshold, ab_thresholds={}
    )


def _progress(outcome) -> None:  # outcome: faceperf.bench.ab.sequential.Outcome
    interval = "-" if outcome.interval is None else outcome.interval.text()
    _say(
        f"  {outcome.name}: look {outcome.looks}, {outcome.rounds} rounds: {interval} "
        f"→ {outcome.verdict.value}"
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
