"""pytest options of the accuracy suite (accuracy_tests/): which candidate, on which backend,
against which tolerances, and where to draw its pictures. The options parse with the types the
CLI shares (faceperf.options: a bad backend is a usage error naming ``--accuracy-backend``); a
malformed tolerances file stops the run at collection.

``--accuracy-report DIR`` writes the report folder ``faceperf accuracy check --report`` writes
(faceperf.accuracy.report) at the end of the session, from the results the suite's
AccuracySession judged (accuracy_tests/conftest.py hands it over with ``report_on``): nothing
runs again and, without the option, nothing is drawn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from faceperf.accuracy.tolerances import Tolerances, TolerancesError, load_tolerances
from faceperf.options import add_artifacts, add_backend

if TYPE_CHECKING:
    from faceperf.accuracy.references import ReferenceSet
    from faceperf.accuracy.session import SubjectCheck

_TOLERANCES = pytest.StashKey[Tolerances]()
REPORT_OPTION = "--accuracy-report"


class JudgedRun(Protocol):
    """What the report needs of the suite's session: the candidate, what it judged, and the
    references it judged against (already loaded)."""

    candidate: Path

    def judged_checks(self) -> list[SubjectCheck]: ...

    def reference(self, subject: str) -> ReferenceSet: ...


_RUN = pytest.StashKey[JudgedRun]()
_REPORTED = pytest.StashKey[str]()  # the line the terminal summary prints


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faceperf accuracy")
    add_artifacts(
        group,
        "--candidate",
        help="artifact folder under review",
        unset="the default artifact set, --artifacts",
    )
    add_backend(
        group,
        "--accuracy-backend",
        help="backend the ONNX variants run on (ort-cpu, ort-coreml, ort-cuda); the coreml "
        "variant always runs on Core ML",
    )
    group.addoption(
        "--tolerances",
        type=Path,
        default=None,
        help="tolerances file (default: accuracy_tests/tolerances.toml)",
    )
    # A folder, parsed as the artifact folders are (a Path); it must not exist yet.
    add_artifacts(
        group,
        REPORT_OPTION,
        help="write a new report folder of pictures at the end (failing cases with the "
        "reference's and the candidate's answers drawn over them, a contact sheet, the jitter "
        "tracks, summary.md)",
        unset="no pictures",
    )


def report_dir(config: pytest.Config) -> Path | None:
    """The ``--accuracy-report`` folder, or None."""
    return config.getoption(REPORT_OPTION, None)


def pytest_configure(config: pytest.Config) -> None:
    directory = report_dir(config)
    if directory is None or hasattr(config, "workerinput"):
        return
    if getattr(config.option, "numprocesses", None):
        # each xdist worker holds its own results: no process could draw them all
        raise pytest.UsageError(f"{REPORT_OPTION} needs a run without -n (xdist)")
    if directory.exists():
        raise pytest.UsageError(
            f"{REPORT_OPTION}: report folder {directory} already exists; expected a new folder"
        )


def report_on(config: pytest.Config, run: JudgedRun) -> None:
    """Hand the suite's session to the report written at the end (with ``--accuracy-report``)."""
    config.stash[_RUN] = run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    directory = report_dir(config)
    if directory is None or hasattr(config, "workerinput"):
        return
    from faceperf.accuracy.report import AccuracyReportError, write_accuracy_report
    from faceperf.paths import default_artifacts_dir

    run = config.stash.get(_RUN, None)
    checks = run.judged_checks() if run is not None else []
    # no accuracy test ran: the report says so, of the folder the suite would have judged
    candidate = (
        run.candidate
        if run is not None
        else config.getoption("--candidate") or config.getoption("--artifacts", None)
    )
    try:
        judged = {c.accuracy.subject for c in checks if c.accuracy.outputs}
        written = write_accuracy_report(
            directory,
            checks,
            {subject: run.reference(subject) for subject in judged} if run else {},
            candidate or default_artifacts_dir(),
        )
    except AccuracyReportError as err:
        config.stash[_REPORTED] = f"faceperf accuracy report: not written: {err}"
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    config.stash[_REPORTED] = (
        f"faceperf accuracy report: {written.summary} ({len(written.pictures)} pictures)"
    )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    line = config.stash.get(_REPORTED, None)
    if line is not None:
        terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("accuracy") for item in items):
        return
    try:
        config.stash[_TOLERANCES] = load_tolerances(config.getoption("--tolerances"))
    except TolerancesError as error:
        raise pytest.UsageError(str(error)) from None


def tolerances(config: pytest.Config) -> Tolerances:
    """The tolerances loaded at collection."""
    return config.stash[_TOLERANCES]
