"""Exit codes of the ``faceperf`` command, and the usage error a handler raises."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a check failed: a regression, a broken limit, a conformance problem
EXIT_USAGE = 2  # bad input the user can fix, or a refused comparison
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


class UsageError(Exception):
    """Options that parse one by one but not together (``--at`` with ``--seed``, say).

    ``main`` reports it as argparse reports a bad option: the usage line, the message, exit 2.
    """
