"""faceperf's pytest plugin: the hardware profile in every benchmark record, the merge gate
(`--perf-reference`: the candidate artifacts against a reference set, interleaved, one verdict per
benchmark), and a report with the merge gate's verdicts first and the baseline gate after them,
after every `pytest -m perf` run.

Registered by the repository's conftest.py. Prints and decides the exit status; the logic it
calls lives in faceperf.bench. Its options parse with the CLI's types (faceperf.cli.options): a
bad value is a usage error naming the ``--perf-...`` flag, and the hooks get typed values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from _pytest.mark.expression import Expression

from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.setup import MERGE_BASE, AbSetup, ab_setup
from faceperf.bench.gate.canary import Canary
from faceperf.bench.gate.paths import baseline_path
from faceperf.bench.gate.storage import faceperf_machine_info
from faceperf.bench.hardware import HardwareProfile, detect_profile, runtime_versions
from faceperf.cli.options import (
    add_backend,
    add_perf_profile,
    at_least,
    benchmark_list,
    positive_seconds,
)
from faceperf.paths import repo_root

_PROFILE = pytest.StashKey[HardwareProfile]()
_REPORT = pytest.StashKey[Path]()
_AB = pytest.StashKey[AbResult]()
_AB_PLAN = pytest.StashKey[AbSetup]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faceperf perf")
    add_perf_profile(group)
    add_backend(
        group,
        "--perf-backend",
        help="runtime backend the perf tests measure (default ort-cpu); coreml and ort-coreml "
        "take compute units as coreml:CPU_ONLY",
    )
    group.addoption(
        "--perf-baseline",
        type=Path,
        default=None,
        help="baseline JSON to gate against (default: baselines/<profile>.json)",
    )
    group.addoption(
        "--perf-allow-mismatch",
        action="store_true",
        help="compare with a baseline of another profile or runtime version",
    )
    group.addoption(
        "--perf-no-gate",
        action="store_true",
        help="write the report but never fail the run on the baseline gate",
    )
    group.addoption(
        "--perf-reference",
        default=None,
        help="merge gate: judge the candidate (--artifacts) against this artifact folder or git "
        f"revision; '{MERGE_BASE}' = the merge base of HEAD with origin/main or main",
    )
    group.addoption(
        "--perf-ab-max-time",
        type=positive_seconds,
        default=None,
        help="merge gate: time budget of its measuring in seconds (default 180)",
    )
    group.addoption(
        "--perf-ab-models",
        type=benchmark_list,
        default=None,
        help="merge gate: comma-separated models and composites (mtcnn, pipeline) to judge "
        "(default: all)",
    )
    group.addoption(
        "--perf-ab-strict",
        action="store_true",
        help="merge gate: fail benchmarks still undecided when the time budget ends",
    )
    group.addoption(
        "--perf-threads",
        type=at_least(1),
        default=1,
        help="ONNX Runtime intra-op threads per session (default 1: on shared runners "
        "single-thread timings drift 1-3 %% between runs, two threads 10-17 %%)",
    )


def perf_selected(config: pytest.Config) -> bool:
    """True when the -m expression selects perf-marked tests."""
    expression = config.getoption("markexpr", "") or ""
    if not expression:
        return False
    return Expression.compile(expression).evaluate(lambda name, **_: name == "perf")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_PROFILE] = detect_profile(
        config.getoption("--perf-backend"), forced=config.getoption("--perf-profile")
    )
    measuring = perf_selected(config) and not config.getoption("benchmark_disable", False)
    if measuring and config.getoption("benchmark_json", None) is None:
        # Sortable, and distinct for two runs started within the same second.
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
        report = repo_root() / "reports" / stamp
        report.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = report / "results.json"
        config.stash[_REPORT] = report


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ab_benchmark" not in metafunc.fixturenames:
        return
    setup = _ab_setup(metafunc.config)
    if setup.skip_reason is not None:
        metafunc.parametrize(
            "ab_benchmark", [pytest.param(None, marks=pytest.mark.skip(reason=setup.skip_reason))]
        )
        return
    metafunc.parametrize("ab_benchmark", setup.plan.judged)


def _ab_setup(config: pytest.Config) -> AbSetup:
    from faceperf.errors import FaceperfError

    if _AB_PLAN not in config.stash:
        try:
            config.stash[_AB_PLAN] = ab_setup(
                config.getoption("--perf-reference"),
                candidate=config.getoption("--artifacts", None),
                backend=config.getoption("--perf-backend"),
                threads=config.getoption("--perf-threads"),
                models=_models(config.getoption("--perf-ab-models")),
                say=lambda text: _say(config.pluginmanager.get_plugin("terminalreporter"), text),
            )
        except FaceperfError as err:
            raise pytest.UsageError(f"--perf-reference: {err}") from None
    return config.stash[_AB_PLAN]


def _models(names: list[str] | None) -> tuple[str, ...] | None:
    return None if names is None else tuple(names)


@pytest.fixture(scope="session")
def ab_result(request: pytest.FixtureRequest, artifacts_dir: Path) -> AbResult:
    """The merge gate over every planned benchmark, measured once per session."""
    from faceperf.bench.ab.run import DEFAULT_MAX_TIME_S, run_ab
    from faceperf.bench.budgets import load_budgets
    from faceperf.bench.gate.paths import budgets_path

    config = request.config
    setup = _ab_setup(config)
    result = run_ab(
        setup.request_for(artifacts_dir),
        load_budgets(budgets_path()),
        max_time_s=config.getoption("--perf-ab-max-time") or DEFAULT_MAX_TIME_S,
    )
    config.stash[_AB] = result
    return result


@pytest.fixture(scope="session")
def ab_strict(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--perf-ab-strict")


@pytest.fixture(scope="session")
def perf_threads(request: pytest.FixtureRequest) -> int:
    """ONNX Runtime intra-op threads the perf tests give each session."""
    return request.config.getoption("--perf-threads")


@pytest.fixture(scope="session")
def perf_canary(perf_threads: int) -> Canary:
    """The reference workload timed before every round of the gated benchmarks."""
    return Canary(threads=perf_threads)


@pytest.fixture(scope="session")
def perf_profile(request: pytest.FixtureRequest) -> HardwareProfile:
    """The hardware profile of this run (detected, or forced with --perf-profile)."""
    return request.config.stash[_PROFILE]


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    profile = config.stash[_PROFILE]
    versions = runtime_versions()
    # The CPU from faceperf's own probe (the facts the profile was detected from), so it is
    # recorded even where pytest-benchmark has no py-cpuinfo; the gate refuses other CPUs.
    machine_info["faceperf"] = faceperf_machine_info(profile.name, versions, profile.facts.cpu)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    report = config.stash.get(_REPORT, None)
    ab = config.stash.get(_AB, None)
    lead = ""
    if report is not None and ab is not None:
        from faceperf.bench.ab.render import PYTEST_FLAGS, markdown
        from faceperf.bench.ab.run import write_ab_files

        strict = config.getoption("--perf-ab-strict")
        write_ab_files(report, ab, strict)
        _say(config.pluginmanager.get_plugin("terminalreporter"), ab.headline(strict))
        # The merge gate leads: it is the verdict on this change; the committed baseline
        # follows, for budgets and long-horizon drift.
        lead = markdown(ab, strict, PYTEST_FLAGS) + "\n---\n\n"
    if report is None or not (report / "results.json").exists():
        return
    from faceperf.bench.report.folder import ReportInputs, policy_from_budgets, write_report
    from faceperf.errors import FaceperfError

    profile = config.stash[_PROFILE]
    baseline = config.getoption("--perf-baseline") or baseline_path(profile.name)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    try:
        policy = policy_from_budgets(
            config.getoption("--perf-allow-mismatch"), mismatch_flag="--perf-allow-mismatch"
        )
        verdict = write_report(
            report,
            ReportInputs(report / "results.json", baseline, policy),
            f"Record one with `faceperf baseline update` ({baseline}).",
            lead=lead,
        )
    except FaceperfError as err:
        _say(terminal, f"faceperf: gate not run: {err}")
        session.exitstatus = max(int(session.exitstatus), 2)
        return
    _say(terminal, f"faceperf report: {report / 'summary.md'}")
    if verdict is None:
        _say(terminal, f"faceperf: no baseline for {profile.name} ({baseline}); nothing gated")
        return
    _say(terminal, verdict.summary())
    if verdict.exit_code and not config.getoption("--perf-no-gate"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _say(terminal: object, text: str) -> None:
    if terminal is not None:
        terminal.write_line(text)
