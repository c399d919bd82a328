"""Performance and accuracy checks of an on-device face analysis pipeline: build the model
artifacts, run and time them, and judge them against baselines and stored references.

The ``faceperf`` command is a thin layer: it parses the options, calls the library, prints the
result and picks the exit code. Errors the user can fix are one line on stderr and exit 2.

Each command group is one module (``artifacts``, ``profile``, ``pipeline``, ``bench``,
``coreml``, ``accuracy``, ``ab``) that adds its commands to the parser, each with its handler
(``set_defaults(func=handler)``); options several commands share are defined once, in
``options``. Group modules never import each other, and import heavy libraries only inside
their handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from faceperf.cli import ab, accuracy, artifacts, bench, coreml, pipeline, profile
from faceperf.cli.exits import EXIT_USAGE, UsageError
from faceperf.errors import FaceperfError

__all__ = ["build_parser", "main"]

_GROUPS = (artifacts, profile, pipeline, bench, coreml, accuracy, ab)  # the order of --help


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a usage error in one line, as every error the user can fix:
    ``faceperf bench mtcnn: error: argument --batch: '0': expected an integer >= 1``. The usage
    block argparse prints above it would bury that line; ``--help`` shows it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``faceperf`` parser; every command's namespace carries its handler as ``func``."""
    summary = " ".join(__doc__.split("\n\n")[0].split())  # the first paragraph, unwrapped
    # The subcommands' parsers are of the same class (argparse's default parser_class).
    parser = _Parser(prog="faceperf", description=summary)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in _GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``faceperf`` command; returns its exit code.

    Usage errors exit through argparse (one line, code 2); a ``FaceperfError``, raised by the
    library or by an option's parsing (a bad ``--backend``), is one line on stderr and exit 2.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as err:
        parser.error(str(err))  # exits 2
    except FaceperfError as err:
        print(f"faceperf: error: {err}", file=sys.stderr)
        return EXIT_USAGE
