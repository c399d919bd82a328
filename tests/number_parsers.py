"""Whether an option's parser reads numbers, for the tests that every numeric option of both
front ends (the CLI, the pytest plugins) parses with faceperf.options.NumberType."""

from __future__ import annotations


def parses_numbers(kind: object) -> bool:
    """True when ``kind`` (an option's ``type=``) turns the text "1" into an int or a float."""
    if kind is None:
        return False
    try:
        value = kind("1")
    except Exception:
        return False  # it refuses the text "1": not a number parser
    return type(value) in (int, float)
