"""The options only the ``faceperf`` command has, each defined once: flag, parsing, default and
help.

Each ``add_*`` function adds one option to a command's parser with a parsing ``type=``, so the
handler receives a typed value (a Variant, a list of known names, a number in range), never a raw
string to parse late. The option types, and the options the pytest plugins add too
(``add_artifacts``, ``add_backend``, ``add_perf_profile``), are in faceperf.options, which both
front ends import: the plugins never import the CLI.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from faceperf.artifacts.layout import VARIANTS, Variant
from faceperf.errors import FaceperfError
from faceperf.options import (
    add_artifacts,
    add_backend,
    at_least,
    benchmark_list,
    model_list,
    subject_list,
    variant_list,
    variant_name,
)

if TYPE_CHECKING:
    from faceperf.runtime.artifact_ref import ArtifactRef

MTCNN_PRESETS = ("facenet", "openface")  # the keys of pipeline.mtcnn_detector.PRESETS


# --- argument types ---------------------------------------------------------------------------


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
