"""Errors of the benchmark gate: baselines, budgets and comparisons the user can fix.

Each message is one line naming the file or the values involved and what was expected, so the
pytest plugin and the CLI can print it as it is.
"""

from __future__ import annotations

from faceperf.errors import FaceperfError


class BaselineError(FaceperfError):
    """A baseline or results file is missing, unreadable, or not a faceperf benchmark run."""


class ProfileMismatchError(FaceperfError):
    """Two runs were measured on different hardware profiles or runtime versions."""


class BudgetsError(FaceperfError):
    """The budgets file is missing, not valid TOML, or holds an unknown or invalid entry."""


class FlopCountError(FaceperfError):
    """An ONNX graph's FLOPs cannot be counted: unreadable, or shapes that stay unknown."""
