"""``faceperf bench explain``: which operations made a candidate artifact slower (ONNX Runtime's
profiler, node by node); registered under ``bench`` by cli/bench.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceperf.cli.exits import EXIT_OK
from faceperf.cli.options import add_json, add_threads, add_variant
from faceperf.options import at_least


def one_model(text: str) -> str:
    """``--model``'s type: one registry model (the registry imported only when parsing)."""
    from faceperf.models.registry import default_registry

    names = default_registry().names()
    if text not in names:
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; expected one of: {', '.join(names)}"
        )
    return text


def add_explain(sub: argparse._SubParsersAction) -> None:
    explain = sub.add_parser(
        "explain",
        help="which operations made a candidate slower: both artifacts profiled node by node "
        "(ONNX Runtime's profiler, in alternation), nodes paired, the added time ranked",
    )
    explain.add_argument("--reference", type=Path, required=True, help="reference artifact folder")
    explain.add_argument("--candidate", type=Path, required=True, help="candidate artifact folder")
    explain.add_argument("--model", type=one_model, required=True, help="the model to explain")
    add_variant(explain)
    add_threads(explain, default=1, help="intra-op threads of ONNX Runtime (default 1)")
    explain.add_argument(
        "--calls",
        type=at_least(1),
        default=None,
        help="profiled calls per artifact (default: at least 20 and at least 3 s of them)",
    )
    explain.add_argument(
        "--top", type=at_least(1), default=5, help="lines the table shows (default 5)"
    )
    add_json(explain, help="print the whole explanation as JSON")
    explain.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    from faceperf.bench.explain.run import explain_artifacts

    explanation = explain_artifacts(
        args.reference,
        args.candidate,
        args.model,
        args.variant,
        threads=args.threads,
        calls=args.calls,
        top=args.top,
    )
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2))
    else:
        print("\n".join(explanation.lines()))
    return EXIT_OK
