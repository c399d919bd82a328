"""Errors of compute plans and their snapshots, one line each, naming the file and the value."""

from __future__ import annotations

from faceperf.errors import FaceperfError


class ComputePlanError(FaceperfError):
    """A compute plan or snapshot file is missing, malformed, or holds an invalid value."""


class SnapshotMismatchError(ComputePlanError):
    """A placement snapshot describes another version of the model than the current plan."""
