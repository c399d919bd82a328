"""The pytest plugins' options parse with the types they share with the CLI (faceperf.options,
never faceperf.cli): the hooks get typed values (a BackendChoice, a list of known models,
positive seconds), and a bad value is a usage error (exit 4) naming the pytest flag, never the
CLI's. Every numeric option is found by its type and fed the values it must refuse."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from number_parsers import parses_numbers

from faceperf.options import NumberType, numeric_options
from faceperf.paths import repo_root
from faceperf.plugins import perf as perf_plugin
from faceperf.runtime.backends import BackendChoice

pytest_plugins = ["pytester"]

PLUGINS = ("-p", "faceperf.plugins.perf", "-p", "faceperf.plugins.accuracy")
# The option groups of the plugins and of the repository's conftest.py.
GROUPS = ("faceperf", "faceperf perf", "faceperf accuracy")


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


class _Parser:
    """A plugin that keeps the parser every plugin adds its options to."""

    parser: pytest.Parser

    def pytest_addoption(self, parser: pytest.Parser) -> None:
        self.parser = parser


@pytest.fixture
def repository(pytester: pytest.Pytester) -> pytest.Parser:
    """pytester set up as the repository runs: its conftest.py, which loads both plugins; the
    parser holding all their options."""
    pytester.makeconftest((repo_root() / "conftest.py").read_text())
    keeper = _Parser()
    pytester.plugins.append(keeper)
    pytester.parseconfig()
    return keeper.parser


def test_every_numeric_option_refuses_bad_values_naming_flag_and_value(pytester, repository):
    numeric = [action for _, action in numeric_options(repository.optparser)]
    assert {"--perf-threads", "--perf-ab-max-time"} <= {a.option_strings[0] for a in numeric}
    for action in numeric:
        flag, kind = action.option_strings[0], action.type
        for value in kind.refused:
            argv = [f"{flag}={value}"] if value.startswith("-") else [flag, value]
            result = pytester.runpytest("--co", "-q", *argv)
            output = "\n".join(result.outlines + result.errlines)
            assert result.ret == pytest.ExitCode.USAGE_ERROR, (flag, value, output)
            assert "Traceback" not in output
            line = f"error: argument {flag}: {value!r}: expected {kind.expected}"
            assert any(e.endswith(line) for e in result.errlines), (line, output)


def test_no_plugin_option_parses_a_number_any_other_way(repository):
    # type=int, a home-made parser or a number default without a type would escape the test
    # above.
    escaped = []
    for name in GROUPS:
        options = repository.getgroup(name).options
        assert options, name  # a renamed group would make this test vacuous
        for option in options:
            if isinstance(option.type, NumberType) or option.attrs().get("nargs") == 0:
                continue
            if type(option.default) in (int, float) or parses_numbers(option.type):
                escaped.append(option.names()[0])
    assert escaped == []


def test_only_the_cli_imports_the_cli():
    """The plugins and conftest.py take their options from faceperf.options; nothing in the
    library reaches up into faceperf.cli (lazy imports inside functions included)."""
    source = repo_root() / "src" / "faceperf"
    files = [repo_root() / "conftest.py", *source.rglob("*.py")]
    importers = []
    for path in files:
        if path.is_relative_to(source / "cli") or path == source / "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n == "faceperf.cli" or n.startswith("faceperf.cli.") for n in names):
                importers.append(str(path.relative_to(repo_root())))
    assert importers == []
    assert (source / "plugins" / "perf.py") in files  # the walk saw the plugins
