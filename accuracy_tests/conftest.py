"""Fixtures of the accuracy suite: one AccuracySession over the candidate folder, which
remembers what it judged so that ``--accuracy-report`` can draw it at the end."""

from __future__ import annotations

import pytest

from faceperf.accuracy.cases import SUBJECT_MODELS
from faceperf.accuracy.session import AccuracySession, Conformance, SubjectCheck, SubjectResult
from faceperf.plugins.accuracy import report_dir, report_on, tolerances


class _RememberingSession(AccuracySession):
    """An AccuracySession that remembers, in order, the subjects and conformance it judged, so
    the report draws the results the tests used and runs nothing again."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._judged: dict[tuple[str, str], None] = {}  # ordered set
        self._conformed: dict[tuple[str, str], None] = {}

    def result(self, subject: str, variant: str) -> SubjectResult:
        judged = super().result(subject, variant)
        self._judged.setdefault((subject, variant))
        return judged

    def conformance(self, model: str, variant: str) -> Conformance:
        judged = super().conformance(model, variant)
        self._conformed.setdefault((model, variant))
        return judged

    def judged_checks(self) -> list[SubjectCheck]:
        """A SubjectCheck per subject and variant judged, with the conformance judged of its
        models (the cached results: nothing runs)."""
        return [
            SubjectCheck(
                tuple(
                    super(_RememberingSession, self).conformance(model, variant)
                    for model in SUBJECT_MODELS[subject]
                    if (model, variant) in self._conformed
                ),
                super(_RememberingSession, self).result(subject, variant),
            )
            for subject, variant in self._judged
        ]


@pytest.fixture(scope="session")
def accuracy_session(request: pytest.FixtureRequest) -> AccuracySession:
    candidate = request.config.getoption("--candidate")
    if candidate is None:
        candidate = request.getfixturevalue("artifacts_dir")
    session = _RememberingSession(
        candidate,
        backend=request.config.getoption("--accuracy-backend"),
        tolerances=tolerances(request.config),
    )
    if report_dir(request.config) is not None:
        report_on(request.config, session)
    return session
