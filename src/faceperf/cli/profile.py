"""``faceperf profile``: the hardware profile this machine's measurements are filed under, and
why."""

from __future__ import annotations

import argparse
import json
import sys

from faceperf.cli.exits import EXIT_OK, EXIT_USAGE
from faceperf.cli.options import add_json
from faceperf.options import add_backend, add_perf_profile


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``profile`` to the top-level commands."""
    profile = commands.add_parser("profile", help="print the detected hardware profile and why")
    add_backend(profile)
    add_perf_profile(profile)
    add_json(profile)
    profile.set_defaults(func=_profile)


def _profile(args: argparse.Namespace) -> int:
    from faceperf.bench.hardware import detect_profile

    try:
        profile = detect_profile(args.backend, forced=args.perf_profile)
    except ValueError as err:  # detect_profile's own check of the backend
        print(f"faceperf: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({**profile.to_json(), "reasons": list(profile.reasons)}, indent=2))
        return EXIT_OK
    print(profile.name)
    print(f"  CPU: {profile.facts.describe_cpu()}")
    for reason in profile.reasons:
        print(f"  - {reason}")
    return EXIT_OK
