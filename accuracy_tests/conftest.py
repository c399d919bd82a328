"""Fixtures of the accuracy suite: one AccuracySession over the candidate folder."""

from __future__ import annotations

import pytest

from faceperf.accuracy.session import AccuracySession
from faceperf.plugins.accuracy import tolerances


@pytest.fixture(scope="session")
def accuracy_session(request: pytest.FixtureRequest) -> AccuracySession:
    candidate = request.config.getoption("--candidate")
    if candidate is None:
        candidate = request.getfixturevalue("artifacts_dir")
    return AccuracySession(
        candidate,
        backend=request.config.getoption("--accuracy-backend"),
        tolerances=tolerances(request.config),
    )
