"""The plugin end to end: `pytest -m perf` records the profile, writes the report, and fails
the run on a real regression against the committed baseline (and only then)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROFILE = "plugin-test/ort-cpu"
TEST = """
import os, time
import pytest

@pytest.mark.perf
def test_sleep(benchmark):
    seconds = float(os.environ["SLEEP_S"])
    benchmark.pedantic(time.sleep, args=(seconds,), rounds=15)
"""
CONFIG = """
[pytest]
markers =
    perf: timing benchmarks
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "test_sleep.py").write_text(TEST)
    (tmp_path / "pytest.ini").write_text(CONFIG)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "budgets.toml").write_text(
        "[defaults]\nregression_threshold = 0.10\n"
    )
    return tmp_path


def _pytest(root: Path, sleep_s: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACEPERF_ROOT": str(root), "SLEEP_S": str(sleep_s)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "perf",
            "-p",
            "faceperf.plugins.perf",
            f"--perf-profile={PROFILE}",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _latest_report(root: Path) -> Path:
    return sorted((root / "reports").iterdir())[-1]


def test_first_run_records_the_profile_and_says_there_is_no_baseline(tmp_path):
    root = _project(tmp_path)
    done = _pytest(root, 0.001)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no baseline for plugin-test/ort-cpu" in done.stdout
    report = _latest_report(root)
    results = json.loads((report / "results.json").read_text())
    assert results["machine_info"]["faceperf"]["profile"] == PROFILE
    assert len(results["benchmarks"][0]["stats"]["data"]) == 15  # raw samples kept
    assert "no baseline to compare with" in (report / "summary.md").read_text()


def test_gate_fails_a_real_slowdown_and_passes_an_unchanged_run(tmp_path):
    root = _project(tmp_path)
    assert _pytest(root, 0.005).returncode == 0
    baseline = root / "baselines" / "plugin-test__ort-cpu.json"
    baseline.write_text((_latest_report(root) / "results.json").read_text())

    slower = _pytest(root, 0.015)
    assert slower.returncode == 1, slower.stdout
    assert "FAIL" in slower.stdout and "regression" in slower.stdout
    summary = (_latest_report(root) / "summary.md").read_text()
    assert "regression" in summary and "test_sleep" in summary

    same = _pytest(root, 0.005)
    assert same.returncode == 0, same.stdout
    assert "PASS" in same.stdout
