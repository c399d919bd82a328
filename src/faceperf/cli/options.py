"""The options several commands share, each defined once: flag, parsing, default and help.

Each ``add_*`` function adds one option to a command's parser with a parsing ``type=``, so the
handler receives a typed value (a Path, a BackendChoice, a list of known names), never a raw
string to parse late. The pytest plugins (faceperf.plugins) give their options these same
types: pytest's ``addoption`` is argparse's, so a bad value is a usage error naming the pytest
flag. Importing this module is light: names that need the model registry are looked up when an
option is parsed, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from faceperf.artifacts.layout import VARIANTS, Variant
from faceperf.errors import BackendUnavailableError, FaceperfError
from faceperf.paths import default_artifacts_dir
from faceperf.runtime.backends import BackendChoice, parse_backend

if TYPE_CHECKING:
    import pytest

    from faceperf.runtime.artifact_ref import ArtifactRef

    # Where an option is added: a command's parser, or a pytest plugin's option group.
    OptionTarget = argparse.ArgumentParser | pytest.OptionGroup

MTCNN_PRESETS = ("facenet", "openface")  # the keys of pipeline.mtcnn_detector.PRESETS


# --- argument types ---------------------------------------------------------------------------


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


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for an integer of ``minimum`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {minimum}")
        return value

    return parse


def number(accepts: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type for a finite number ``accepts`` allows; ``expected`` says what in the
    error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and accepts(value)):
            raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
        return value

    return parse


positive_seconds = number(lambda v: v > 0, "a positive number of seconds")
fraction = number(lambda v: 0 < v < 1, "a fraction between 0 and 1")


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


def accepted_pair(item: str) -> tuple[str, str]:
    """``NAME=REASON`` of ``--accept`` (a reviewed slowdown) as (name, reason).

    Raises:
        FaceperfError: no ``=``, or an empty name or reason.
    """
    name, sep, reason = item.partition("=")
    if not sep or not name.strip() or not reason.strip():
        raise FaceperfError(f"--accept {item!r}: expected NAME=REASON (why the slowdown is wanted)")
    return name.strip(), reason.strip()


def _accepted_pair_usage(item: str) -> tuple[str, str]:
    try:
        return accepted_pair(item)
    except FaceperfError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --- options ----------------------------------------------------------------------------------


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


def add_variant(parser: argparse.ArgumentParser, default: Variant = Variant.OPTIMIZED) -> None:
    """``--variant``: one artifact variant, parsed into a ``Variant``."""
    parser.add_argument(
        "--variant",
        type=variant_name,
        default=default,
        metavar="{" + ",".join(VARIANTS) + "}",
        help=f"artifact variant (default {default})",
    )


def add_variants(parser: argparse.ArgumentParser, default: Sequence[str] | None, help: str) -> None:
    """``--variants v,w``: artifact variants, as a list."""
    parser.add_argument("--variants", type=variant_list, default=default, help=help)


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Where the models of a run come from and what runs them: artifacts, variant, backend."""
    add_artifacts(parser)
    add_variant(parser)
    add_backend(parser)


def artifact_ref(args: argparse.Namespace) -> ArtifactRef:
    """The artifact reference of a command with ``add_runtime_options``: its ``--artifacts``,
    ``--variant`` and ``--backend``, and ``--threads`` where the command has it (else None:
    ONNX Runtime's default)."""
    # Imported here: the runtime loads ONNX Runtime, which ``--help`` should not wait for.
    from faceperf.runtime.artifact_ref import ArtifactRef

    return ArtifactRef(args.artifacts, args.variant, args.backend, getattr(args, "threads", None))


def add_models(
    parser: argparse.ArgumentParser,
    help: str = "comma-separated models (default: all)",
    composites: bool = False,
) -> None:
    """``--models a,b``: registry models (and with ``composites`` the merge gate's mtcnn and
    pipeline), as a list; None when not given."""
    parser.add_argument(
        "--models", type=benchmark_list if composites else model_list, default=None, help=help
    )


def add_subjects(
    parser: argparse.ArgumentParser, help: str = "comma-separated subjects (default: all)"
) -> None:
    """``--subjects a,b``: accuracy subjects, as a list; None when not given."""
    parser.add_argument("--subjects", type=subject_list, default=None, help=help)


def add_threads(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    """``--threads N``: intra-op threads, at least 1."""
    parser.add_argument("--threads", type=at_least(1), default=default, help=help)


def add_json(parser: argparse.ArgumentParser, help: str = "print JSON") -> None:
    """``--json``: machine-readable output on stdout."""
    parser.add_argument("--json", action="store_true", help=help)


def add_perf_profile(target: OptionTarget) -> None:
    """``--perf-profile NAME``: a hardware profile name instead of the detected one (the CLI's
    and the perf plugin's)."""
    _adder(target)(
        "--perf-profile", default=None, help="force the hardware profile name (default: detected)"
    )


def add_accept(parser: argparse.ArgumentParser, help: str, usage_error: bool = True) -> None:
    """``--accept NAME=REASON`` (repeatable): reviewed slowdowns, as (name, reason) pairs.

    Args:
        usage_error: a malformed pair is an argparse usage error; otherwise a one-line
            ``faceperf: error`` that ``main`` returns as exit 2 (what ``compare`` always did).
    """
    parser.add_argument(
        "--accept",
        type=_accepted_pair_usage if usage_error else accepted_pair,
        action="append",
        default=[],
        metavar="NAME=REASON",
        help=help,
    )


def add_mtcnn_preset(parser: argparse.ArgumentParser, default: str, help: str) -> None:
    """``--preset``: the MTCNN parameters by name."""
    parser.add_argument("--preset", choices=MTCNN_PRESETS, default=default, help=help)
