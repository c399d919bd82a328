"""The pytest plugins' options parse with the CLI's types: the hooks get typed values (a
BackendChoice, a list of known models, positive seconds), and a bad value is a usage error
(exit 4) naming the pytest flag, never the CLI's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from faceperf.paths import repo_root
from faceperf.plugins import perf as perf_plugin
from faceperf.runtime.backends import BackendChoice

pytest_plugins = ["pytester"]

PLUGINS = ("-p", "faceperf.plugins.perf", "-p", "faceperf.plugins.accuracy")


def test_the_defaults_arrive_parsed(pytester):
    config = pytester.parseconfig(*PLUGINS)
    assert config.getoption("--perf-backend") == BackendChoice("ort-cpu", None)
    assert config.getoption("--accuracy-backend") == BackendChoice("ort-cpu", None)
    assert config.getoption("--perf-threads") == 1
    assert config.getoption("--perf-ab-models") is None
    assert config.getoption("--perf-ab-max-time") is None
    assert config.getoption("--tolerances") is None


def test_given_values_arrive_typed_and_print_as_typed(pytester):
    config = pytester.parseconfig(
        *PLUGINS,
        "--perf-backend=coreml:CPU_ONLY",
        "--accuracy-backend=ort-coreml:ALL",
        "--perf-ab-models=mtcnn, star",
        "--perf-ab-max-time=30",
        "--perf-threads=2",
        "--tolerances=t.toml",
        "--candidate=c",
    )
    backend = config.getoption("--perf-backend")
    assert backend == BackendChoice("coreml", "CPU_ONLY") and str(backend) == "coreml:CPU_ONLY"
    assert str(config.getoption("--accuracy-backend")) == "ort-coreml:ALL"
    assert config.getoption("--perf-ab-models") == ["mtcnn", "star"]
    assert perf_plugin._models(config.getoption("--perf-ab-models")) == ("mtcnn", "star")
    assert config.getoption("--perf-ab-max-time") == 30.0
    assert config.getoption("--perf-threads") == 2
    assert config.getoption("--tolerances") == Path("t.toml")
    assert config.getoption("--candidate") == Path("c")


def test_the_parsed_backend_names_the_profile_as_the_user_typed_it(pytester):
    config = pytester.parseconfigure(*PLUGINS, "--perf-backend", "ort-cpu")
    profile = config.stash[perf_plugin._PROFILE]
    assert profile.backend == "ort-cpu" and profile.name.endswith("/ort-cpu")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--perf-backend", "tpu", "unknown backend 'tpu'"),
        ("--perf-backend", "torch:CPU_ONLY", "compute units apply only to"),
        ("--accuracy-backend", "coreml:GPU", "unknown compute units 'GPU'"),
        ("--perf-ab-models", "star,nope", "unknown model(s) 'nope'"),
        ("--perf-ab-max-time", "0", "expected a positive number of seconds"),
        ("--perf-ab-max-time", "soon", "expected a positive number of seconds"),
        ("--perf-threads", "0", "expected an integer >= 1"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(pytester, option, value, message):
    with pytest.raises(pytest.UsageError) as error:
        pytester.parseconfig(*PLUGINS, option, value)
    assert f"argument {option}: " in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("option", "value"), [("--perf-backend", "tpu"), ("--accuracy-backend", "tpu")]
)
def test_the_repository_run_exits_4_naming_the_pytest_flag(option, value):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", option, value, "tests/test_ci_workflows.py"],
        cwd=repo_root(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"error: argument {option}: unknown backend 'tpu'" in done.stderr
    # The message is the pytest flag's, not the CLI's ``--backend: ...``.
    assert "--backend" not in done.stderr.replace(option, "")
