"""The usage error a ``faceperf`` handler raises; the exit codes are faceperf.verdicts' (one
definition for the command and the pytest plugins), imported here for the handlers' convenience."""

from __future__ import annotations

from faceperf.verdicts import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError"]


class UsageError(Exception):
    """Options that parse one by one but not together (``--at`` with ``--seed``, say).

    ``main`` reports it as the parser reports a bad option: one line, exit 2.
    """
