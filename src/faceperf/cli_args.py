"""Argument types the CLI modules share."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from faceperf.errors import FaceperfError


def comma_list(what: str, known: Callable[[], Sequence[str]]) -> Callable[[str], list[str]]:
    """An argparse type for ``a,b,c``: every name must be one of ``known()`` (called lazily, so
    ``--help`` does not import the model registry).

    Args:
        what: the kind of name, for the message ("model", "subject").
        known: the valid names.
    """

    def parse(text: str) -> list[str]:
        valid = list(known())
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            given = ", ".join(map(repr, unknown)) if unknown else repr(text)
            raise argparse.ArgumentTypeError(
                f"unknown {what}(s) {given}; expected a comma-separated list of: {', '.join(valid)}"
            )
        return names

    return parse


def _model_names() -> Sequence[str]:
    from faceperf.models.registry import default_registry

    return default_registry().names()


model_list = comma_list("model", _model_names)


def accepted_pair(item: str) -> tuple[str, str]:
    """``NAME=REASON`` of ``--accept`` (a reviewed slowdown) as (name, reason).

    Raises:
        FaceperfError: no ``=``, or an empty name or reason.
    """
    name, sep, reason = item.partition("=")
    if not sep or not name.strip() or not reason.strip():
        raise FaceperfError(f"--accept {item!r}: expected NAME=REASON (why the slowdown is wanted)")
    return name.strip(), reason.strip()
