"""The accuracy suite's two front doors, run for real from tests: the command (``faceperf
accuracy check``) and the pytest suite (``accuracy_tests``) in a nested process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faceperf.cli import main
from faceperf.paths import repo_root


def accuracy_suite(*args: str) -> subprocess.CompletedProcess:
    """``pytest accuracy_tests -m accuracy`` with ``args``, in a fresh process at the repo."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "accuracy_tests", "-m", "accuracy", "-q", "-rfs", *args],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=900,
    )


def failing_check_line(
    candidate: Path, subject: str, variant: str, metric: str, capsys: pytest.CaptureFixture
) -> str:
    """The line ``faceperf accuracy check`` prints for ``metric`` on a candidate it must fail
    (exit 1)."""
    code = main(
        [
            "accuracy",
            "check",
            "--candidate",
            str(candidate),
            "--subjects",
            subject,
            "--variants",
            variant,
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    return next(line.strip() for line in out.splitlines() if metric in line)


def suite_fails(candidate: Path, test_id: str) -> str:
    """Run the suite on ``candidate`` for ``test_accuracy[<test_id>]`` alone, assert it fails
    that test, and return its output."""
    run = accuracy_suite(
        "-p",
        "no:cacheprovider",
        "--candidate",
        str(candidate),
        "-k",
        f"test_accuracy and {test_id}",
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"FAILED accuracy_tests/test_accuracy.py::test_accuracy[{test_id}]" in run.stdout
    return run.stdout
