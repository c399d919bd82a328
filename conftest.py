"""pytest glue only: options and shared fixtures. Logic lives in src/faceperf."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests are the same on every run and in every worker: examples derived from the test
# (derandomize), none replayed from a local example database, and no verdict from wall-clock
# time (a deadline fails a slow example on a busy machine). A test's own settings still win.
settings.register_profile("faceperf", derandomize=True, database=None, deadline=None)
settings.load_profile("faceperf")

pytest_plugins = ["faceperf.plugins.perf", "faceperf.plugins.accuracy"]


def pytest_addoption(parser: pytest.Parser) -> None:
    from faceperf.options import add_artifacts

    add_artifacts(
        parser.getgroup("faceperf"),
        help="artifact folder the tests read",
        unset="weights/build, built if stale",
    )


@pytest.fixture(scope="session")
def artifacts_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifact set under test: --artifacts, else weights/build (rebuilt when stale)."""
    from faceperf.artifacts.build import BuildRequest, build_artifacts, stale_models
    from faceperf.models.registry import default_registry
    from faceperf.paths import default_artifacts_dir

    given = request.config.getoption("--artifacts")
    if given is not None:
        return given
    build = BuildRequest(out=default_artifacts_dir(), models=default_registry().names())
    stale = stale_models(build)
    if not stale:
        return build.out
    # Never write into the user's weights/build from a test run: build a private copy, once per
    # run. Under xdist every worker asks; the first builds under a lock in the folder the
    # workers share and the others find it up to date (stale_models checks fingerprints and
    # sha256s, so a copy is reused only when it is what this code would build).
    shared = _run_tmp(request, tmp_path_factory)
    private = BuildRequest(out=shared / "faceperf-artifacts" / "build", models=build.models)
    with _locked(shared / "faceperf-artifacts.lock"):
        if stale_models(private):
            build_artifacts(private)
    return private.out


def _run_tmp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's temporary folder: under xdist the parent of the workers' own ones, which all
    of them share; without xdist the run's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created) for the block: one process at a time."""
    import fcntl  # POSIX, like every machine this suite runs on

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# Set by xdist in its workers' environment; a pytest that a test starts (pytester in process, or
# a subprocess, which inherits the environment) would take itself for an xdist worker:
# pytest-benchmark then disables itself and the perf plugin's own tests time nothing.
_XDIST_ENVIRONMENT = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.fixture(scope="session", autouse=True)
def _runs_as_under_plain_pytest() -> Iterator[None]:
    """Every test and fixture sees the environment of a plain ``pytest`` run, with or without
    ``-n``; session-scoped so that it precedes the module-scoped fixtures that start pytest."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _XDIST_ENVIRONMENT:
            patch.delenv(name, raising=False)
        yield
