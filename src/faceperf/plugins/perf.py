"""faceperf's pytest plugin: the hardware profile in every benchmark record, the merge gate
(`--perf-reference`: the candidate artifacts against a reference set, interleaved, one verdict per
benchmark), and a report with the merge gate's verdicts first and the baseline gate after them,
after every `pytest -m perf` run (with `--benchmark-json FILE` too: the report keeps a copy).

Registered by the repository's conftest.py. Prints and decides the exit status; the logic it
calls lives in faceperf.bench. Its options parse with the types the CLI shares (faceperf.options):
a bad value is a usage error naming the ``--perf-...`` flag, and the hooks get typed values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.mark.expression import Expression

from faceperf.bench.ab.result import AbResult
from faceperf.bench.ab.setup import MERGE_BASE, AbSetup, ab_setup
from faceperf.bench.gate.canary import Canary
from faceperf.bench.gate.paths import baseline_path
from faceperf.bench.gate.storage import faceperf_machine_info
from faceperf.bench.hardware import HardwareProfile, detect_profile, runtime_versions
from faceperf.options import (
    add_backend,
    add_perf_profile,
    at_least,
    benchmark_list,
    positive_seconds,
)
from faceperf.paths import repo_root

if TYPE_CHECKING:
    from faceperf.bench.report.summary import Section

_PROFILE = pytest.StashKey[HardwareProfile]()
_REPORT = pytest.StashKey[Path]()
_AB = pytest.StashKey[AbResult]()
_AB_PLAN = pytest.StashKey[AbSetup]()
_OWN_JSON = pytest.StashKey[tuple[Path, int | None]]()
_BUDGET_LINES = pytest.StashKey[list[str]]()


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


# Long runs, each run only when its marker is selected by name (`make nightly` selects both):
# `make test` selects everything and `make perf` every perf test, and neither may take them.
LONG_RUNS = {
    "nightly": "a long run (the leak runs: about 45 min on a 2-core VM); select it with "
    "-m nightly (make nightly)",
    "sustained": "a 5-minute run of the pipeline without pause; select it with -m sustained "
    "(make nightly)",
}


def perf_selected(config: pytest.Config, marker: str = "perf") -> bool:
    """True when the -m expression selects tests marked ``marker``."""
    expression = config.getoption("markexpr", "") or ""
    if not expression:
        return False
    return Expression.compile(expression).evaluate(lambda name, **_: name == marker)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, reason in LONG_RUNS.items():
        if perf_selected(config, marker):
            continue
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_PROFILE] = detect_profile(
        config.getoption("--perf-backend"), forced=config.getoption("--perf-profile")
    )
    selected = any(perf_selected(config, marker) for marker in ("perf", *LONG_RUNS))
    if not selected or config.getoption("benchmark_disable", False):
        return
    # Sortable, and distinct for two runs started within the same second.
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    report = repo_root() / "reports" / stamp
    report.mkdir(parents=True, exist_ok=True)
    config.stash[_REPORT] = report
    own = config.getoption("benchmark_json", None)
    if own is None:
        config.option.benchmark_json = report / "results.json"
    else:
        # pytest-benchmark writes --benchmark-json FILE; the report copies it after the run.
        # Its modification time now tells a FILE this run wrote from one an earlier run left.
        config.stash[_OWN_JSON] = (Path(own), _mtime(Path(own)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The merge gate's tests, one per verdict: a benchmark's time (ab_benchmark), its memory or
    # its artifact's size (ab_footprint).
    from faceperf.bench.ab.footprint import footprint_names

    for fixture in ("ab_benchmark", "ab_footprint"):
        if fixture not in metafunc.fixturenames:
            continue
        setup = _ab_setup(metafunc.config)
        if setup.skip_reason is not None:
            skip = pytest.mark.skip(reason=setup.skip_reason)
            metafunc.parametrize(fixture, [pytest.param(None, marks=skip)])
        elif fixture == "ab_benchmark":
            metafunc.parametrize(fixture, setup.plan.judged)
        else:
            metafunc.parametrize(fixture, footprint_names(setup.request, setup.plan.judged))


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
    from faceperf.bench.ab.run import DEFAULT_MAX_TIME_S, explain_slower, run_ab
    from faceperf.bench.budgets import load_budgets
    from faceperf.bench.gate.paths import budgets_path

    config = request.config
    setup = _ab_setup(config)
    request_for = setup.request_for(artifacts_dir)

    def say(text: str) -> None:
        _say(config.pluginmanager.get_plugin("terminalreporter"), text)

    result = run_ab(
        request_for,
        load_budgets(budgets_path()),
        max_time_s=config.getoption("--perf-ab-max-time") or DEFAULT_MAX_TIME_S,
        say=say,
    )
    # Every slower verdict says which operations made it slower (bench/explain), measured
    # after the timing so that profiling never touches a timed run.
    result = explain_slower(request_for, result, say=say)
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
def memory_peaks(artifacts_dir: Path, perf_profile: HardwareProfile, perf_threads: int) -> dict:
    """(subject, variant) → MemoryPeaks of every model, the MTCNN cascade (``mtcnn``) and the
    Face Mirror pipeline (``face_mirror``) in every variant of this run's backend, each in a
    fresh child process, measured once per session (the children two at a time)."""
    import os

    from faceperf.artifacts.layout import ONNX_VARIANTS, Variant
    from faceperf.bench.memory import peak
    from faceperf.models.registry import default_registry
    from faceperf.runtime.backends import parse_backend

    coreml = parse_backend(perf_profile.backend).is_coreml
    records = peak.measure_models(
        artifacts_dir,
        default_registry().names(),
        (Variant.COREML,) if coreml else ONNX_VARIANTS,
        perf_profile.backend,
        perf_threads,
        calls=peak.GATE_CALLS,
        pipeline_frames=peak.GATE_PIPELINE_FRAMES,
        mtcnn_frames=peak.GATE_MTCNN_FRAMES,
        workers=os.cpu_count() or 1,
    )
    return {(r.subject, r.variant): r for r in records}


@pytest.fixture(scope="session")
def perf_report_dir(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """This run's report folder (reports/<time>/) when it writes one, else a temporary one."""
    return request.config.stash.get(_REPORT, None) or tmp_path_factory.mktemp("report")


@pytest.fixture(scope="session")
def budget_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Where a budget test says what it measured (absolute time, calibration, efficiency, the
    budget): one line each, printed in the terminal summary whether the test passed or not."""
    lines = request.config.stash.setdefault(_BUDGET_LINES, [])
    return lines.append


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_BUDGET_LINES, [])
    if lines:
        terminalreporter.section("faceperf budgets")
        for line in lines:
            terminalreporter.write_line(line)


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
    if report is None:
        return
    from faceperf.bench.gate.render import BASELINE_KEY
    from faceperf.bench.gate.render import not_run_section as baseline_not_run
    from faceperf.bench.report.folder import (
        ReportInputs,
        perf_title,
        policy_from_budgets,
        write_report,
        write_summary,
    )
    from faceperf.bench.report.render import verdict_line
    from faceperf.bench.report.summary import Summary
    from faceperf.errors import FaceperfError
    from faceperf.verdicts import EXIT_USAGE, worst_exit

    terminal = config.pluginmanager.get_plugin("terminalreporter")
    no_gate = config.getoption("--perf-no-gate")
    profile = config.stash[_PROFILE]
    # The merge gate leads: it is the verdict on this change; the committed baseline follows,
    # for budgets and long-horizon drift.
    lead = _merge_gate(config, report)
    results = _results(config, report)
    summary = Summary(perf_title(profile.name), tuple(lead))
    if results is not None:
        baseline = config.getoption("--perf-baseline") or baseline_path(profile.name)
        try:
            policy = policy_from_budgets(
                config.getoption("--perf-allow-mismatch"), mismatch_flag="--perf-allow-mismatch"
            )
            hint = "Record a baseline with `faceperf baseline update`."
            # The committed baseline of another CPU (profile, runtime) says nothing about this
            # run: it is skipped, saying why, and the rest of the report stands (the merge gate
            # needs no baseline). A baseline named with --perf-baseline is a comparison asked
            # for, and refused as `faceperf compare` refuses it.
            named = config.getoption("--perf-baseline") is not None
            inputs = ReportInputs(results, baseline, policy, skip_refused=not named)
            written = write_report(report, inputs, hint, lead=lead)
            summary = written.summary
            if written.refused is not None:
                _say(terminal, f"faceperf: baseline gate skipped: {written.refused}")
        except FaceperfError as err:
            # The verdict line says why; a broken baseline or results file is input to fix.
            summary = Summary(summary.title, (*lead, baseline_not_run(str(err))))
            write_summary(report, summary)
            if not no_gate:
                session.exitstatus = worst_exit(int(session.exitstatus), EXIT_USAGE)
    elif lead:
        write_summary(report, summary)
    else:
        return  # nothing timed and no merge gate: nothing to report
    _say(terminal, f"faceperf report: {report / 'summary.md'}")
    _say(terminal, verdict_line(summary))
    # --perf-no-gate: the baseline gate is reported, never fails the run (`baseline update`).
    code = summary.exit_code(ignore={BASELINE_KEY} if no_gate else ())
    session.exitstatus = worst_exit(int(session.exitstatus), code)


def _merge_gate(config: pytest.Config, report: Path) -> list[Section]:
    """The merge gate's section, its ab.json and ab.png written; none when it was not set up."""
    from faceperf.bench.ab.render import PYTEST_FLAGS, ab_section, not_run_section
    from faceperf.bench.ab.run import write_ab_data

    ab = config.stash.get(_AB, None)
    if ab is not None:
        write_ab_data(report, ab)
        return [ab_section(ab, config.getoption("--perf-ab-strict"), PYTEST_FLAGS)]
    setup = config.stash.get(_AB_PLAN, None)
    if setup is not None and setup.skip_reason is not None:
        return [not_run_section(setup.skip_reason)]
    return []


def _results(config: pytest.Config, report: Path) -> Path | None:
    """The report's results.json, copied from --benchmark-json FILE when this run wrote FILE;
    None when the run timed nothing."""
    from faceperf.fileio import atomic_write_bytes

    results = report / "results.json"
    own = config.stash.get(_OWN_JSON, None)
    if own is not None:
        path, before = own
        if _mtime(path) not in (None, before):
            atomic_write_bytes(results, path.read_bytes())
    return results if results.exists() else None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _say(terminal: object, text: str) -> None:
    if terminal is not None:
        terminal.write_line(text)
