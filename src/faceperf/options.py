"""The option types both front ends share, and the options both add, each defined once.

Both front ends parse with argparse: the ``faceperf`` command (faceperf.cli) and the pytest
plugins (faceperf.plugins, conftest.py), whose ``addoption`` is argparse's ``add_argument`` under
another name. Every option gets a parsing ``type=`` here, so the code behind it receives a typed
value (a Path, a BackendChoice, a list of known names, a number in range), never a raw string to
check late; a bad value is a usage error naming the flag, the value and what was expected, on the
CLI as under pytest. Options only the CLI has live in faceperf.cli.options.

Every numeric option parses with a ``NumberType``: a class rather than a closure so that the
tests can find each numeric option of both front ends by walking their parsers, and feed it the
values it must refuse (docs/cli-inputs.md is that table, from tools/cli_inputs.py).

Importing this module is light: names that need the model registry are looked up when an option
is parsed, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.artifacts.layout import VARIANTS, Variant
from faceperf.errors import BackendUnavailableError
from faceperf.paths import default_artifacts_dir
from faceperf.runtime.backends import BackendChoice, parse_backend

if TYPE_CHECKING:
    import pytest

    # Where an option is added: a command's parser, or a pytest plugin's option group.
    OptionTarget = argparse.ArgumentParser | pytest.OptionGroup


# --- numbers ----------------------------------------------------------------------------------

# Text no NumberType takes, whatever its range: not a number, not finite (1e999 is inf).
NOT_NUMBERS = ("abc", "", "nan", "inf", "-inf", "1e999")


@dataclass(frozen=True)
class NumberType:
    """An argparse type for a finite number that ``accepts`` allows.

    Anything else (not a number of ``kind``, NaN, an infinity, out of range) is an
    ``ArgumentTypeError`` saying the value and ``expected``; argparse prefixes the flag.

    Attributes:
        kind: ``int`` or ``float``: what the text must parse as ("1.5" is no int).
        accepts: the range, on the parsed value.
        expected: what a valid value is, for the message ("an integer >= 1").
        edges: the nearest values it refuses; the tests and docs/cli-inputs.md feed them (and
            non-numbers and non-finite ones, which every NumberType refuses) to each option.
        example: a value it accepts, so the tests can tell refusing from refusing everything.
    """

    kind: type[int] | type[float]
    accepts: Callable[[float], bool]
    expected: str
    edges: tuple[str, ...]
    example: str

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and self.accepts(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {self.expected}")
        return value

    @property
    def refused(self) -> tuple[str, ...]:
        """Values it must refuse: the non-numbers, then its edges."""
        return (*NOT_NUMBERS, *self.edges)


def at_least(minimum: int) -> NumberType:
    """An argparse type for an integer of ``minimum`` or more."""
    below = [minimum - 1] if minimum - 1 <= -1 else [minimum - 1, -1]
    return NumberType(
        int,
        lambda value: value >= minimum,
        f"an integer >= {minimum}",
        edges=(*map(str, below), f"{minimum}.5"),
        example=str(minimum),
    )


def number(
    accepts: Callable[[float], bool], expected: str, *, edges: tuple[str, ...], example: str
) -> NumberType:
    """An argparse type for a finite number ``accepts`` allows; ``expected`` says what in the
    error, ``edges`` are the nearest values it refuses, ``example`` one it takes."""
    return NumberType(float, accepts, expected, edges=edges, example=example)


positive_seconds = number(
    lambda v: v > 0, "a positive number of seconds", edges=("0", "-1", "-0.5"), example="0.5"
)
fraction = number(
    lambda v: 0 < v < 1,
    "a fraction between 0 and 1",
    edges=("0", "1", "-0.5", "1.5"),
    example="0.05",
)
frames_per_second = number(
    lambda v: v > 0, "a positive number of frames per second", edges=("0", "-1"), example="29.97"
)
# An SNR floor may sit anywhere on the decibel scale, so only non-numbers are refused.
decibels = number(lambda _: True, "a finite number of decibels", edges=(), example="-3.5")


def numeric_options(
    parser: argparse.ArgumentParser, command: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """Every option of ``parser`` and of its subcommands, at any depth, that parses a number
    (a ``NumberType``), with the command words that reach it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from numeric_options(child, (*command, name))
        elif isinstance(action.type, NumberType):
            yield command, action


# --- names ------------------------------------------------------------------------------------


def comma_list(what: str, known: Callable[[], Sequence[str]]) -> Callable[[str], list[str]]:
    """An argparse type for ``a,b,c``: every name must be one of ``known()`` (called lazily, so
    ``--help`` does not import the model registry).

    Args:
        what: the kind of name, for the message ("model", "subject").
        known: the valid names; the parsed list holds these objects (a ``Variant`` for a
            variant name).
    """

    def parse(text: str) -> list[str]:
        valid = {str(name): name for name in known()}
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            given = ", ".join(map(repr, unknown)) if unknown else repr(text)
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {given}; expected a comma-separated list of: {', '.join(valid)}"
            )
        return [valid[n] for n in names]

    return parse


def variant_name(text: str) -> Variant:
    """An argparse type for one artifact variant."""
    try:
        return Variant.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _model_names() -> Sequence[str]:
    from faceperf.models.registry import default_registry

    return default_registry().names()


def _benchmark_models() -> list[str]:
    # The merge gate also judges the composites (the MTCNN cascade, the Face Mirror loop).
    from faceperf.bench.ab.pairings import COMPOSITES

    return [*_model_names(), *COMPOSITES]


def _subject_names() -> tuple[str, ...]:
    from faceperf.accuracy.cases import SUBJECTS

    return SUBJECTS


model_list = comma_list("model", _model_names)
benchmark_list = comma_list("model", _benchmark_models)
subject_list = comma_list("subject", _subject_names)
variant_list = comma_list("variant", lambda: VARIANTS)


# --- backends ---------------------------------------------------------------------------------


def backend_choice(text: str) -> BackendChoice:
    """``--backend``'s type: the parsed backend.

    Raises:
        BackendUnavailableError: an unknown backend or compute units. Not a usage error on
            purpose: a bad backend has always been a one-line error with exit 2 from ``main``,
            like a backend this machine lacks.
    """
    try:
        return parse_backend(text)
    except BackendUnavailableError as err:
        raise BackendUnavailableError(f"--backend: {err}") from None


def backend_choice_usage(text: str) -> BackendChoice:
    """The parsed backend, for options where a bad one is a usage error (the pytest plugins'
    ``--perf-backend`` and ``--accuracy-backend``: argparse's message names the option, so
    this one does not)."""
    try:
        return parse_backend(text)
    except BackendUnavailableError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --- options both front ends add --------------------------------------------------------------


def _adder(target: OptionTarget) -> Callable[..., object]:
    # pytest's option groups take argparse's keywords under another method name.
    return getattr(target, "addoption", None) or target.add_argument


def add_artifacts(
    target: OptionTarget,
    *flags: str,
    help: str = "artifact folder",
    required: bool = False,
    unset: str | None = None,
) -> None:
    """An artifact folder as a Path: ``--artifacts`` unless other ``flags`` are given (the
    first names the attribute).

    Args:
        target: an argparse parser or a pytest option group.
        flags: the option's names.
        help: what the folder is.
        required: the option must be given.
        unset: left unset, the option is None and this says what the caller does then (the
            pytest options: build weights/build when stale); without it the default is
            weights/build, resolved when the parser is built (``$FACEPERF_ROOT`` moves it).
    """
    flags = flags or ("--artifacts",)
    add = _adder(target)
    if required:
        add(*flags, type=Path, required=True, metavar="DIR", help=help)
    elif unset is not None:
        add(*flags, type=Path, default=None, metavar="DIR", help=f"{help} (default: {unset})")
    else:
        add(
            *flags,
            type=Path,
            default=default_artifacts_dir(),
            metavar="DIR",
            help=f"{help} (default: weights/build)",
        )


def add_backend(target: OptionTarget, flag: str = "--backend", help: str | None = None) -> None:
    """A runtime backend, parsed into a ``BackendChoice`` (default ort-cpu).

    From the CLI (``--backend``) a bad name is the one-line error every unavailable backend
    gives; under pytest (a ``--perf-backend`` or ``--accuracy-backend`` group option) it is a
    usage error naming the option.
    """
    under_pytest = hasattr(target, "addoption")
    _adder(target)(
        flag,
        type=backend_choice_usage if under_pytest else backend_choice,
        default="ort-cpu",  # a string default goes through the type too: a BackendChoice
        help=help
        or "runtime backend: ort-cpu (default), ort-coreml, ort-cuda, coreml or torch; coreml "
        "and ort-coreml take compute units as coreml:CPU_ONLY",
    )


def add_perf_profile(target: OptionTarget) -> None:
    """``--perf-profile NAME``: a hardware profile name instead of the detected one (the CLI's
    and the perf plugin's)."""
    _adder(target)(
        "--perf-profile", default=None, help="force the hardware profile name (default: detected)"
    )
