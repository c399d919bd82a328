"""Every number is validated where it enters: each numeric option of every faceperf command
refuses a bad value at parse time with one line naming the option, the value and what was
expected, exit 2, no traceback.

The options are found by walking the real parser for their ``NumberType``, so a numeric option
is in the table the day it is added; another test fails when an option parses numbers any
other way. docs/cli-inputs.md is the same table, printed by tools/cli_inputs.py.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest
from number_parsers import parses_numbers

from faceperf import cli
from faceperf.options import NOT_NUMBERS, NumberType, numeric_options

PARSER = cli.build_parser()
OPTIONS = list(numeric_options(PARSER))


def _leaves(
    parser: argparse.ArgumentParser, command: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield command, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from _leaves(child, (*command, name))


def _name(command: tuple[str, ...], action: argparse.Action) -> str:
    return " ".join([*command, action.option_strings[0]])


def _argv(command: tuple[str, ...], flag: str, value: str) -> list[str]:
    # argparse takes "-1" as a value but "-inf" as an unknown option: that one goes as --flag=-inf.
    if value.startswith("-") and not re.fullmatch(r"-\d+|-\d*\.\d+", value):
        return [*command, f"{flag}={value}"]
    return [*command, flag, value]


def _ran(args: argparse.Namespace) -> int:
    raise AssertionError(f"parsed, and the handler ran: {vars(args)}")


@pytest.fixture
def handlers_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` with every command's handler failing the test: a bad value must stop at parse
    time, and one wrongly accepted must not start a benchmark (parsing is not mocked)."""
    build = cli.build_parser

    def failing() -> argparse.ArgumentParser:
        parser = build()
        for _, leaf in _leaves(parser):
            leaf.set_defaults(func=_ran)
        return parser

    monkeypatch.setattr(cli, "build_parser", failing)


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=[_name(*o) for o in OPTIONS])
def test_a_bad_number_is_one_line_naming_option_value_and_range(
    command, action, handlers_fail, capsys
):
    kind: NumberType = action.type
    flag = action.option_strings[0]
    for value in kind.refused:
        with pytest.raises(SystemExit) as exited:
            cli.main(_argv(command, flag, value))
        err = capsys.readouterr().err
        assert exited.value.code == 2, value
        assert "Traceback" not in err
        assert err == (
            f"faceperf {' '.join(command)}: error: argument {'/'.join(action.option_strings)}: "
            f"{value!r}: expected {kind.expected}\n"
        )


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=[_name(*o) for o in OPTIONS])
def test_each_numeric_option_takes_its_example_and_its_default(command, action):
    # What tells refusing the bad values from refusing everything.
    kind: NumberType = action.type
    assert kind(kind.example) == kind.kind(kind.example)
    if action.default is not None:
        assert kind(str(action.default)) == action.default


def test_the_walk_finds_every_numeric_option():
    found = [_name(*option) for option in OPTIONS]
    assert len(found) == len(set(found))
    # The options of issue 18 that ended in a traceback or were checked late.
    named = {
        "bench mtcnn --batch",
        "bench mtcnn --rounds",
        "bench-mtcnn --batch",
        "pipeline --synthetic",
        "video make --frames",
        "accuracy localize --cases",
        "baseline update --runs",
    }
    assert named <= set(found)


def test_no_option_parses_a_number_any_other_way():
    """An option with ``type=int``, a home-made number parser, or a number default and no type
    would escape the table above."""
    escaped = []
    for command, leaf in _leaves(PARSER):
        for action in leaf._actions:
            if isinstance(action.type, NumberType) or action.nargs == 0:
                continue
            if type(action.default) in (int, float) or parses_numbers(action.type):
                escaped.append(" ".join([*command, *action.option_strings[:1]]))
    assert escaped == []


def test_a_type_int_option_would_be_found():
    # The check above is not vacuous: the same test over a parser with a plain int option.
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int)
    assert parses_numbers(parser._actions[-1].type)
    assert not parses_numbers(str.upper) and parses_numbers(lambda s: float(s))


def test_every_number_type_refuses_the_non_numbers():
    assert {"abc", "", "nan", "inf", "-inf"} <= set(NOT_NUMBERS)
    for _, action in OPTIONS:
        assert set(NOT_NUMBERS) <= set(action.type.refused)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["bench", "mtcnn", "--images", "X"], ["--batch", "0"]),
        (["bench", "mtcnn", "--images", "X"], ["--rounds", "0"]),
        (["pipeline", "--report", "D"], ["--synthetic", "-1"]),
        (["video", "make", "--out", "F"], ["--frames", "-1"]),
        (["accuracy", "localize", "--candidate", "C", "--model", "star"], ["--cases", "0"]),
        (["baseline", "update"], ["--runs", "0"]),
    ],
    ids=lambda words: " ".join(words),
)
def test_the_issue_s_commands_stop_before_their_handler(
    command, option, tmp_path, monkeypatch, capsys
):
    # The real handlers: these ended in a ValueError traceback (exit 1) or a late check. Run in
    # a scratch folder so that, were one accepted again, its output would not land in the tree.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, *option])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err
    flag, value = option
    assert err.count("\n") == 1 and f"argument {flag}: {value!r}: expected " in err
    assert list(tmp_path.iterdir()) == []
