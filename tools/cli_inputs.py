"""Write docs/cli-inputs.md: every bad value tried on every numeric option of both front ends (the
``faceperf`` command and the pytest plugins), with the line each one answers.

    .venv/bin/python tools/cli_inputs.py > docs/cli-inputs.md

The options are found as the tests find them (tests/cli/test_numeric_options.py,
tests/plugins/test_options.py): by walking the real parsers for a ``NumberType``. Each value is
given to the real parser; nothing runs. Exit 1, after the page, when a value was accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from faceperf.cli import build_parser
from faceperf.options import NOT_NUMBERS, NumberType, numeric_options
from faceperf.paths import repo_root


@dataclass(frozen=True)
class Row:
    argv: list[str]  # as typed, program name first
    exit: int
    message: str  # the error line, or what was parsed
    accepted: bool = False


def _argv(flag: str, value: str) -> list[str]:
    # argparse takes "-1" as a value but "-inf" as an unknown option: that one goes as --flag=-inf.
    if value.startswith("-") and not re.fullmatch(r"-\d+|-\d*\.\d+", value):
        return [f"{flag}={value}"]
    return [flag, value]


def cli_rows() -> list[Row]:
    """Every numeric option of every faceperf command, fed each value its type must refuse."""
    rows = []
    for command, action in numeric_options(build_parser()):
        kind: NumberType = action.type
        for value in kind.refused:
            argv = [*command, *_argv(action.option_strings[0], value)]
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    # What main() does first; parsing alone, so an accepted value runs nothing.
                    parsed = build_parser().parse_args(argv)
                except SystemExit as exited:
                    rows.append(Row(["faceperf", *argv], int(exited.code), err.getvalue()))
                    continue
            value = vars(parsed)[action.dest]
            rows.append(Row(["faceperf", *argv], 0, f"parsed as {value!r}", accepted=True))
    return rows


class _Keeper:
    """A plugin that keeps the pytest parser and stops the run once options are parsed."""

    parser: pytest.Parser

    def pytest_addoption(self, parser: pytest.Parser) -> None:
        self.parser = parser

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config: pytest.Config) -> int:
        return 0


def pytest_rows() -> list[Row]:
    """Every numeric option the plugins and conftest.py add, each bad value given to
    ``pytest --co -q`` in a folder holding only the repository's conftest.py (which loads both
    plugins), so that an accepted value would collect nothing."""
    rows = []
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path("conftest.py").write_text((repo_root() / "conftest.py").read_text())
        keeper = _Keeper()
        with contextlib.redirect_stdout(io.StringIO()):
            pytest.main(["-p", "no:cacheprovider"], plugins=[keeper])
        for _, action in numeric_options(keeper.parser.optparser):
            kind: NumberType = action.type
            for value in kind.refused:
                argv = ["--co", "-q", *_argv(action.option_strings[0], value)]
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = int(pytest.main(["-p", "no:cacheprovider", *argv]))
                # pytest prints its usage line, then the error line, then where it ran.
                lines = [line for line in err.getvalue().splitlines() if ": error: " in line]
                # pytest.main() calls itself so; a user runs pytest.
                message = "\n".join(lines).replace("pytest.main(): error", "pytest: error")
                accepted = code != pytest.ExitCode.USAGE_ERROR
                rows.append(Row(["pytest", *argv], code, message or out.getvalue(), accepted))
    return rows


def _cell(text: str) -> str:
    return text.strip().replace("|", "\\|").replace("\n", "<br>")


def _table(rows: list[Row]) -> list[str]:
    lines = ["| input | exit | message |", "|---|---|---|"]
    for row in rows:
        shown = " ".join(repr(a) if a == "" else a for a in row.argv)
        exit_code = f"{row.exit} (ACCEPTED)" if row.accepted else str(row.exit)
        lines.append(f"| `{shown}` | {exit_code} | `{_cell(row.message)}` |")
    return lines


def page(cli: list[Row], plugins: list[Row], machine: str, day: str) -> str:
    options = len(list(numeric_options(build_parser())))
    return "\n".join(
        [
            "# Bad numbers on the command line",
            "",
            f"Machine and date: generated on {day} on {machine}, by",
            "`.venv/bin/python tools/cli_inputs.py > docs/cli-inputs.md`; the messages depend on",
            "the code, not on the machine.",
            "",
            "Every numeric option of every `faceperf` command and of the pytest plugins parses",
            "with a `NumberType` (`src/faceperf/options.py`), which refuses, where the option",
            "enters, any text that is not a finite number of its kind, and the values outside its",
            f"range. Each option below was given {', '.join(map(repr, NOT_NUMBERS))} and the",
            "nearest values its range excludes. The `faceperf` command answers with one line on",
            "stderr and exit 2; pytest prints its usage line, then the error line shown here, and",
            "exits 4 (a usage error). Required options are left out of the inputs: a bad value is",
            "refused before argparse looks for them. Negative values that are not plain numbers",
            "(`-inf`) are given as `--flag=-inf`: argparse reads `--flag -inf` as a missing value",
            "followed by an unknown option, and says `expected one argument`.",
            "",
            "tests/cli/test_numeric_options.py and tests/plugins/test_options.py assert this table",
            "(they find the options the same way, by walking the parsers), so a numeric option",
            "added without a `NumberType` fails them.",
            "",
            f"## `faceperf` ({len(cli)} inputs over {options} options)",
            "",
            *_table(cli),
            "",
            "## pytest options of the plugins and conftest.py",
            "",
            *_table(plugins),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default=date.today().isoformat(), help="default: today")
    parser.add_argument(
        "--machine",
        default=f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        help="default: OS, architecture and Python version",
    )
    args = parser.parse_args()
    cli, plugins = cli_rows(), pytest_rows()
    sys.stdout.write(page(cli, plugins, args.machine, args.date))
    accepted = [" ".join(row.argv) for row in [*cli, *plugins] if row.accepted]
    for argv in accepted:
        print(f"cli_inputs: accepted: {argv}", file=sys.stderr)
    return 1 if accepted else 0


if __name__ == "__main__":
    sys.exit(main())
