"""pytest glue only: options and shared fixtures. Logic lives in src/faceperf."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    if stale:
        # Never write into the user's weights/build from a test run: build a private copy.
        out = tmp_path_factory.mktemp("artifacts") / "build"
        build_artifacts(BuildRequest(out=out, models=default_registry().names()))
        return out
    return build.out
