"""The plugin end to end: `pytest -m perf` records the profile, writes the report, and fails
the run on a real slowdown against the committed baseline (and only then).

The benchmark is timed by pytest-benchmark with a fake clock (tests/fake_time.py, given as its
``timer``) that moves only by the durations the workload says it took, so the samples, and with
them every verdict, are known exactly: a busy machine cannot turn "unchanged" into "slower".
Everything else is real: the plugin, the detected machine, the report, the baseline gate, and a
run's own results.json as the next run's baseline. In process (pytester), like
test_perf_golden.py, so that a run costs no Python start-up.
"""

from __future__ import annotations

import json
from pathlib import Path

# pytester's in-process runs drop every module a run imported; the report's heavy modules are
# imported here first so that each run reuses them instead of importing them afresh.
import matplotlib.pyplot  # noqa: F401
import pytest

import faceperf.bench.report.folder  # noqa: F401

pytest_plugins = ["pytester"]

PROFILE = "plugin-test/ort-cpu"
ROUNDS = 15
TICK_S = 2.0**-12  # multiples of it are exact in binary floating point, and so are the samples
# Added to the workload's ticks round by round: a small spread around a median of exactly the
# base ticks, well under the gate's noise limit.
JITTER = (0, 1, -1, 2, -2, 0, 1, -1, 0, 2, -2, 1, -1, 0, 0)
TEST = f"""
import os

import pytest
from fake_time import FakeTime

CLOCK = FakeTime()
TICK_S = {TICK_S!r}
JITTER = {JITTER!r}


@pytest.mark.perf
@pytest.mark.benchmark(timer=CLOCK.clock)
def test_workload(benchmark):
    ticks = int(os.environ["WORKLOAD_TICKS"])
    durations = [(ticks + jitter) * TICK_S for jitter in JITTER]
    benchmark.pedantic(CLOCK.workload("workload", durations), rounds={ROUNDS})
    assert CLOCK.calls == ["workload"] * {ROUNDS}
"""
CONFIG = f"""
[pytest]
markers =
    perf: timing benchmarks
# fake_time.py, the clock the benchmark is timed with
pythonpath = {Path(__file__).resolve().parents[1]}
filterwarnings =
    error
    # In process, the outer session imported faceperf.plugins.perf before this run loads it.
    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The one-benchmark perf project and its baselines/; FACEPERF_ROOT points at it."""
    pytester.makeini(CONFIG)
    pytester.makepyfile(test_workload=TEST)
    (pytester.mkdir("baselines") / "budgets.toml").write_text(
        "[defaults]\nregression_threshold = 0.10\n"
    )
    monkeypatch.setenv("FACEPERF_ROOT", str(pytester.path))
    return pytester.path


def _pytest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ticks: int
) -> pytest.RunResult:
    """`pytest -m perf` on the project, its workload taking ``ticks`` (plus the jitter)."""
    monkeypatch.setenv("WORKLOAD_TICKS", str(ticks))
    return pytester.runpytest_inprocess(
        "-m", "perf", "-p", "faceperf.plugins.perf", f"--perf-profile={PROFILE}", "-q"
    )


def _samples(ticks: int) -> list[float]:
    return [(ticks + jitter) * TICK_S for jitter in JITTER]


def _latest_report(root: Path) -> Path:
    return sorted((root / "reports").iterdir())[-1]


def test_first_run_records_the_profile_and_says_there_is_no_baseline(
    project, pytester, monkeypatch
):
    done = _pytest(pytester, monkeypatch, 41)
    assert done.ret == 0, done.stdout.str()
    assert "no baseline for plugin-test/ort-cpu" in done.stdout.str()
    report = _latest_report(project)
    results = json.loads((report / "results.json").read_text())
    assert results["machine_info"]["faceperf"]["profile"] == PROFILE
    # Every raw sample is kept, and the fake clock, not the machine, timed each one.
    assert results["benchmarks"][0]["stats"]["data"] == _samples(41)
    assert "no baseline to compare with" in (report / "summary.md").read_text()


def test_gate_fails_a_real_slowdown_and_passes_an_unchanged_run(project, pytester, monkeypatch):
    assert _pytest(pytester, monkeypatch, 41).ret == 0
    baseline = project / "baselines" / "plugin-test__ort-cpu.json"
    baseline.write_text((_latest_report(project) / "results.json").read_text())

    slower = _pytest(pytester, monkeypatch, 123)  # three times as long, every round
    assert slower.ret == 1, slower.stdout.str()
    assert "baseline gate: FAIL, test_workload slower" in slower.stdout.str()
    summary = (_latest_report(project) / "summary.md").read_text()
    assert "| **slower** |" in summary and "test_workload" in summary

    same = _pytest(pytester, monkeypatch, 41)
    assert same.ret == 0, same.stdout.str()
    assert f"faceperf perf on {PROFILE}: PASS" in same.stdout.str()
