"""``faceperf ab``: the merge gate, a pull request's artifacts against its base's in one run.

The measurement lives in faceperf.bench.ab; this handler resolves the options, shows progress
and writes the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.bench.ab.modes import AB_MODES, AUTO
from faceperf.cli.exits import EXIT_INTERRUPTED
from faceperf.cli.options import add_accept, add_json, add_models, add_threads, add_variants
from faceperf.options import add_artifacts, add_backend, at_least, fraction, positive_seconds

if TYPE_CHECKING:
    from faceperf.bench.ab.sequential import Outcome


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``ab`` to the top-level commands."""
    ab = commands.add_parser(
        "ab",
        help="merge gate: candidate artifacts against reference artifacts, interleaved",
        description="Time the candidate's artifacts against the reference's, alternating in "
        "randomly ordered rounds in one process or at the same moment on two pinned cores "
        "(--mode), and judge each benchmark slower / same / "
        "faster / undecided; measure each benchmark's peak memory (fresh processes) and its "
        "artifact's size, and judge them larger / same / smaller. Exit 1 on a slower or larger "
        "benchmark, 2 on bad input.",
    )
    ab.add_argument(
        "--reference",
        required=True,
        help="the base's artifact folder, or a git revision whose artifacts are built (cached)",
    )
    add_artifacts(ab, "--candidate", help="the pull request's artifact folder")
    add_models(
        ab, help="models and composites (mtcnn, pipeline) to judge (default: all)", composites=True
    )
    add_variants(
        ab,
        default=None,
        help="variants of the single-model benchmarks (default: optimized,optimized_fp16; "
        "coreml on the coreml backend)",
    )
    add_backend(ab)
    add_threads(ab, default=1, help="intra-op threads per session (default 1)")
    ab.add_argument(
        "--threshold",
        type=fraction,
        default=None,
        help="judge every benchmark at this relative change (default: budgets.toml [ab])",
    )
    ab.add_argument(
        "--max-time",
        type=positive_seconds,
        default=None,
        help="time budget of the measuring in seconds (default 180)",
    )
    ab.add_argument(
        "--mode",
        choices=(AUTO, *AB_MODES),
        default=AUTO,
        help="how rounds are taken: alternating (one process, one core), duet (both sides at "
        "once in two processes pinned to two cores; Linux, ort-cpu, one thread), or auto "
        "(each benchmark's mode from budgets.toml [ab.modes]; default)",
    )
    ab.add_argument(
        "--cold-load",
        action="store_true",
        help="also judge session creation of every model and variant (<name>-load)",
    )
    ab.add_argument(
        "--explain",
        action="store_true",
        help="profile both sides of every slower benchmark and name the operations behind it "
        "(ONNX Runtime's profiler, outside the timed runs; about 20-30 s an artifact)",
    )
    ab.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the memory and size verdicts (<name>:memory, <name>:size)",
    )
    ab.add_argument(
        "--strict", action="store_true", help="fail on benchmarks still undecided at time-out"
    )
    add_accept(
        ab,
        help="a slowdown (or growth: <name>:memory, <name>:size) a reviewer accepts, with the "
        "reason (repeatable)",
    )
    ab.add_argument("--seed", type=at_least(0), default=0, help="seeds the order within rounds")
    add_json(ab, help="print ab.json to stdout")
    ab.add_argument("--markdown", type=Path, default=None, help="also write summary.md here")
    ab.add_argument(
        "--report",
        type=Path,
        default=None,
        help="report folder (default: reports/<timestamp>-ab)",
    )
    ab.set_defaults(func=_ab)


def _ab(args: argparse.Namespace) -> int:
    from datetime import datetime

    from faceperf.bench.ab.pairings import AbRequest, default_variants
    from faceperf.bench.ab.reference import resolve_reference
    from faceperf.bench.ab.render import markdown, terminal
    from faceperf.bench.ab.run import DEFAULT_MAX_TIME_S, explain_slower, run_ab, write_ab_report
    from faceperf.bench.budgets import load_budgets
    from faceperf.bench.gate.paths import budgets_path
    from faceperf.fileio import atomic_write_bytes
    from faceperf.paths import repo_root
    from faceperf.verdicts import exit_code

    budgets = load_budgets(budgets_path())
    if args.threshold is not None:
        budgets = budgets.with_ab_threshold(args.threshold)
    reference = resolve_reference(args.reference, say=_say)
    request = AbRequest(
        reference=reference,
        candidate=args.candidate,
        models=tuple(args.models) if args.models else None,
        variants=tuple(args.variants) if args.variants else default_variants(args.backend),
        backend=args.backend,
        threads=args.threads,
        cold_load=args.cold_load,
        memory=not args.no_memory,
        mode=args.mode,
    )
    try:
        result = run_ab(
            request,
            budgets,
            max_time_s=args.max_time or DEFAULT_MAX_TIME_S,
            accepted=dict(args.accept),
            seed=args.seed,
            on_look=_progress,
            say=_say,
        )
        if args.explain:
            result = explain_slower(request, result, say=_say)
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
    return exit_code(result.verdicts(args.strict), args.strict)


def _progress(outcome: Outcome) -> None:
    interval = "-" if outcome.interval is None else outcome.interval.text()
    _say(
        f"  {outcome.name}: look {outcome.looks}, {outcome.rounds} rounds: {interval} "
        f"→ {outcome.verdict.value}"
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
