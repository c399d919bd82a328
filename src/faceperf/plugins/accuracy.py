"""pytest options of the accuracy suite (accuracy_tests/): which candidate, on which backend,
against which tolerances. The options parse with the types the CLI shares (faceperf.options: a
bad backend is a usage error naming ``--accuracy-backend``); a malformed tolerances file stops
the run at collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceperf.accuracy.tolerances import Tolerances, TolerancesError, load_tolerances
from faceperf.options import add_artifacts, add_backend

_TOLERANCES = pytest.StashKey[Tolerances]()


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
