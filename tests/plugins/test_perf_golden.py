"""The perf plugin end to end, in process, on a fake clock: `pytest -m perf` on a tiny project
writes a report whose summary.md and results.json equal the golden files in golden/.

The project (written by ``pytester``) loads ``faceperf.plugins.perf`` from its conftest and has
three ``@pytest.mark.perf`` benchmarks timed by pytest-benchmark with a custom timer
(``@pytest.mark.benchmark(timer=CLOCK.now)``): a fake clock that only moves when a benchmark's
workload advances it, by a known whole number of ticks of 2**-12 s per round (plus a fixed
jitter pattern), so every sample, median and p-value is known exactly and no real time passes.
Multiples of 2**-12 s are exact in binary floating point, so the samples are too.

Against a committed baseline of the forced profile (``--perf-profile``), with the thresholds of
its budgets file, one benchmark is the same, one is slower (+29 % against a 10 % threshold), one
slowed +19.5 % within its own 25 % threshold, one is faster, two are the same but noisy on both
sides (their jitter four times as wide), and one is only in the baseline: the gate fails the run
(exit code 1) although every test passed. The summary shows the slower, faster and removed rows,
folds the same ones, and says the noisy rows' advice once.

The machine is injected too (the CPU the profile is detected from and the runtime versions the
plugin records), so no machine fact reaches the faceperf section or the gate's notices.
pytest-benchmark's own machine facts, its commit info, date and version still vary: the
normaliser replaces them (and the run's root path and report timestamp) with placeholders
before comparing.

In process rather than in a subprocess, so that the machine can be injected with monkeypatch
and the run costs no Python start-up.

Regenerate the golden files after an intended change of the report (then review their diff):

    FACEPERF_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/plugins/test_perf_golden.py
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

# pytester's in-process runs drop every module a run imported; the report's heavy modules are
# imported here first so that each run reuses them instead of importing them afresh.
import matplotlib.pyplot  # noqa: F401
import pytest
from summary_shape import check_summary_shape

import faceperf.bench.report.folder  # noqa: F401
from faceperf.bench import hardware
from faceperf.bench.gate.storage import faceperf_machine_info
from faceperf.plugins import perf as perf_plugin
from faceperf.verdicts import EXIT_USAGE

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_SUMMARY = GOLDEN / "perf_plugin_summary.md"
GOLDEN_RESULTS = GOLDEN / "perf_plugin_results.json"
UPDATE_ENV = "FACEPERF_UPDATE_GOLDEN"

PROFILE = "golden-machine/ort-cpu"
BASELINE_FILE = "golden-machine__ort-cpu.json"  # the profile's "/" made file-safe
FACTS = hardware.SystemFacts(
    os="Linux",
    machine="x86_64",
    cpu_brand="Golden CPU 9000",
    cores=2,
    cpu_flags=frozenset({"avx2"}),
    cpu_vendor="GoldenVendor",
)
VERSIONS = {"onnxruntime": "1.0.0+golden", "numpy": "2.0.0+golden"}
VERDICT_LINE = (
    f"faceperf perf on {PROFILE}: FAIL — baseline gate: FAIL, test_detect slower "
    "(7 benchmarks: 1 slower, 4 same, 1 faster, 1 removed)"
)

TICK_S = 2.0**-12  # 0.244140625 ms
# Added to a benchmark's ticks, round by round: an interquartile range of 2 ticks (about 5 %
# of the median, under the gate's 10 % noise limit) and a median of exactly the base ticks.
JITTER = (0, 1, -1, 2, -2, 0, 1, -1, 0, 2, -2, 1, -1, 0, 0)
# The jitter of these is this many times as wide: an interquartile range of about 20 %, noisy.
NOISY = {"test_crop": 4, "test_encode": 4}
BASELINE_TICKS = {
    "test_decode": 41,
    "test_detect": 41,
    "test_align": 41,
    "test_resize": 41,
    "test_crop": 41,
    "test_encode": 41,
    "test_retired": 41,
}
CURRENT_TICKS = {
    "test_decode": 42,
    "test_detect": 53,
    "test_align": 49,
    "test_resize": 30,
    "test_crop": 41,
    "test_encode": 41,
}

BUDGETS = """\
[defaults]
regression_threshold = 0.10

[thresholds]
test_align = 0.25
"""

INI = """\
[pytest]
markers =
    perf: timing benchmarks
filterwarnings =
    error
    # In process, the outer session imported faceperf.plugins.perf before this run loads it.
    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning
"""

CONFTEST = 'pytest_plugins = ["faceperf.plugins.perf"]\n'

BENCHMARKS_HEAD = f'''\
"""Benchmarks on a fake clock: a round lasts exactly the ticks its workload adds."""

import pytest

TICK_S = {TICK_S!r}
JITTER = {JITTER!r}


class FakeClock:
    def __init__(self):
        self.ticks = 0

    def now(self):
        return self.ticks * TICK_S

    def workload(self, ticks, scale=1):
        rounds = iter([ticks + scale * jitter for jitter in JITTER])

        def run():
            self.ticks += next(rounds)

        return run


CLOCK = FakeClock()
pytestmark = [pytest.mark.perf, pytest.mark.benchmark(timer=CLOCK.now)]
'''

BENCHMARK = """

def {name}(benchmark):
    benchmark.pedantic(CLOCK.workload({ticks}, {scale}), rounds=len(JITTER))
"""


def _samples(name: str, ticks: int) -> list[float]:
    scale = NOISY.get(name, 1)
    return [(ticks + scale * jitter) * TICK_S for jitter in JITTER]


def _baseline() -> dict:
    """A committed baseline as the gate reads it: raw samples and the faceperf section."""
    return {
        "machine_info": {"faceperf": faceperf_machine_info(PROFILE, VERSIONS, FACTS.cpu)},
        "commit_info": {},
        "benchmarks": [
            {
                "name": name,
                "fullname": f"test_bench.py::{name}",
                "extra_info": {},
                "stats": {"data": _samples(name, ticks), "rounds": len(JITTER), "iterations": 1},
            }
            for name, ticks in BASELINE_TICKS.items()
        ],
        "datetime": "2000-01-01T00:00:00+00:00",
        "version": "5.3.1",
    }


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny perf project, its baselines/ and a faked machine; FACEPERF_ROOT points at it."""
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    source = BENCHMARKS_HEAD + "".join(
        BENCHMARK.format(name=name, ticks=ticks, scale=NOISY.get(name, 1))
        for name, ticks in CURRENT_TICKS.items()
    )
    pytester.makepyfile(test_bench=source)
    baselines = pytester.mkdir("baselines")
    (baselines / "budgets.toml").write_text(BUDGETS)
    (baselines / BASELINE_FILE).write_text(json.dumps(_baseline(), indent=2))
    monkeypatch.setenv("FACEPERF_ROOT", str(pytester.path))
    monkeypatch.setattr(hardware, "probe_system", lambda: FACTS)
    monkeypatch.setattr(perf_plugin, "runtime_versions", lambda: dict(VERSIONS))
    return pytester.path


def _run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "-m", "perf", "--perf-profile", PROFILE, "-p", "no:cacheprovider", *extra
    )


def _report(root: Path) -> Path:
    (report,) = (root / "reports").iterdir()  # one run, one report folder
    return report


def _normalise_text(text: str, root: Path) -> str:
    """The run's root folder and the report's timestamp as placeholders."""
    text = text.replace(str(root), "<root>")
    return re.sub(r"\b\d{8}-\d{6}-\d{3}\b", "<timestamp>", text)


def _normalise_results(document: dict, root: Path) -> dict:
    """results.json without what varies between machines and runs: pytest-benchmark's machine
    facts (faceperf's own section is kept: it is injected), its commit info, date and version,
    and the run's root path wherever it appears."""
    document = copy.deepcopy(document)
    machine = document["machine_info"]
    # The key set of pytest-benchmark's machine facts is its version's and the platform's.
    document["machine_info"] = {
        "faceperf": machine["faceperf"],
        "<pytest-benchmark's machine facts>": "<normalised>",
    }
    for key in ("commit_info", "datetime", "version"):
        assert key in document, f"results.json has no {key!r}"
        document[key] = "<normalised>"
    return json.loads(_normalise_text(json.dumps(document), root))


def _dump(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _check_golden(path: Path, actual: str) -> None:
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing; regenerate it with {UPDATE_ENV}=1"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{path.name} differs from the golden file; if the change is intended, regenerate it "
        f"with {UPDATE_ENV}=1 and review the diff"
    )


def test_gate_fails_the_slowed_benchmark_and_the_report_matches_the_golden_files(
    project: Path, pytester: pytest.Pytester
) -> None:
    result = _run(pytester)

    result.assert_outcomes(passed=len(CURRENT_TICKS), warnings=0)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["faceperf report: */reports/*/summary.md", VERDICT_LINE])
    report = _report(project)
    assert (report / "latency.png").stat().st_size > 0
    summary = (report / "summary.md").read_text(encoding="utf-8")
    check_summary_shape(summary)
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))
    # The fake clock, not the machine, timed every round.
    by_name = {entry["name"]: entry for entry in results["benchmarks"]}
    for name, ticks in CURRENT_TICKS.items():
        assert by_name[name]["stats"]["data"] == _samples(name, ticks)
        assert by_name[name]["stats"]["median"] == ticks * TICK_S

    _check_golden(GOLDEN_RESULTS, _dump(_normalise_results(results, project)))
    _check_golden(GOLDEN_SUMMARY, _normalise_text(summary, project))
    if os.environ.get(UPDATE_ENV) == "1":
        pytest.skip(f"{UPDATE_ENV}=1: golden files rewritten, review their diff")


def test_no_gate_passes_the_run_with_the_same_report(
    project: Path, pytester: pytest.Pytester
) -> None:
    result = _run(pytester, "--perf-no-gate")

    result.assert_outcomes(passed=len(CURRENT_TICKS), warnings=0)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([VERDICT_LINE])
    summary = (_report(project) / "summary.md").read_text(encoding="utf-8")
    if os.environ.get(UPDATE_ENV) != "1":
        expected = GOLDEN_SUMMARY.read_text(encoding="utf-8")
        assert _normalise_text(summary, project) == expected, "--perf-no-gate changed the report"


def test_benchmark_json_still_runs_the_gate_and_the_report_keeps_a_copy(
    project: Path, pytester: pytest.Pytester
) -> None:
    own = project / "elsewhere" / "run.json"
    own.parent.mkdir()
    result = _run(pytester, f"--benchmark-json={own}")

    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["faceperf report: */reports/*/summary.md", VERDICT_LINE])
    report = _report(project)
    assert (report / "results.json").read_bytes() == own.read_bytes()
    if os.environ.get(UPDATE_ENV) != "1":
        summary = (report / "summary.md").read_text(encoding="utf-8")
        expected = GOLDEN_SUMMARY.read_text(encoding="utf-8")
        assert _normalise_text(summary, project) == expected, "--benchmark-json changed the report"


def test_benchmark_json_left_by_an_earlier_run_is_not_reported_as_this_one(
    project: Path, pytester: pytest.Pytester
) -> None:
    own = project / "run.json"
    own.write_text("{}")
    # Nothing selected: pytest-benchmark writes no FILE (and says so), and the report takes
    # nothing from it.
    quiet = ["-W", "ignore:Not saving anything, no benchmarks have been run"]
    result = _run(pytester, f"--benchmark-json={own}", "-k", "no_such_test", *quiet)

    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()
    assert own.read_text() == "{}"
    assert list(_report(project).iterdir()) == []
    assert "faceperf report:" not in result.stdout.str()


def test_the_committed_baseline_of_another_cpu_is_skipped_with_that_line(
    project: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case: the same brand string, another CPU family (twice as fast). Judging this
    # run against it would give verdicts about nothing real; the merge gate needs no baseline.
    this_cpu = dataclasses.replace(FACTS, cpu_numbers=(25, 17, 1))
    monkeypatch.setattr(hardware, "probe_system", lambda: this_cpu)
    baseline = project / "baselines" / BASELINE_FILE
    document = json.loads(baseline.read_text())
    other = dataclasses.replace(FACTS, cpu_numbers=(26, 2, 1)).cpu
    document["machine_info"]["faceperf"]["cpu"] = other.to_json()
    baseline.write_text(json.dumps(document))
    not_run = f"faceperf perf on {PROFILE}: nothing compared — baseline gate: not run (refusing*"

    skipped = _run(pytester, f"--benchmark-json={project / 'run.json'}")
    assert skipped.ret == pytest.ExitCode.OK, skipped.stdout.str()
    skipped.stdout.fnmatch_lines(
        [
            "faceperf: baseline gate skipped: refusing to compare: baseline recorded on CPU "
            "'Golden CPU 9000' (GoldenVendor, family 26 model 2 stepping 1), this run on "
            "'Golden CPU 9000' (GoldenVendor, family 25 model 17 stepping 1) (family: 26 vs 25; "
            "model: 2 vs 17); pass --perf-allow-mismatch to compare anyway",
            not_run,
        ]
    )
    # Only the comparison is skipped: the report still holds what was measured, and its plots.
    report = _report(project)
    summary = (report / "summary.md").read_text(encoding="utf-8")
    assert "**Measured** on golden-machine/ort-cpu" in summary and "test_detect" in summary
    assert (report / "latency.png").exists()


def test_a_refused_comparison_with_a_named_baseline_is_a_usage_error_unless_the_gate_is_off(
    project: Path, pytester: pytest.Pytester
) -> None:
    # A baseline measured with another onnxruntime, named with --perf-baseline: the comparison
    # was asked for, and is refused as `faceperf compare` refuses it.
    baseline = project / "baselines" / BASELINE_FILE
    document = json.loads(baseline.read_text())
    document["machine_info"]["faceperf"]["runtime_versions"]["onnxruntime"] = "0.9"
    baseline.write_text(json.dumps(document))
    not_run = f"faceperf perf on {PROFILE}: nothing compared — baseline gate: not run (refusing*"

    named = f"--perf-baseline={baseline}"
    refused = _run(pytester, named, f"--benchmark-json={project / 'run.json'}")
    assert refused.ret == EXIT_USAGE, refused.stdout.str()
    refused.stdout.fnmatch_lines([not_run])

    # What `faceperf baseline update` runs on a machine whose runtime moved on: the report says
    # why nothing was compared, and the run passes.
    for report in (project / "reports").iterdir():
        shutil.rmtree(report)
    off = _run(pytester, named, "--perf-no-gate", f"--benchmark-json={project / 'run.json'}")
    assert off.ret == pytest.ExitCode.OK, off.stdout.str()
    off.stdout.fnmatch_lines([not_run])
    summary = (_report(project) / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith(f"**faceperf perf on {PROFILE}: nothing compared** — baseline gate")
