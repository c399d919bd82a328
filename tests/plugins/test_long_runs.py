"""The long runs (leaks, the 5-minute pipeline) stay out of `make test` and `make perf`: they
run only when their marker is selected by name, and say so when skipped."""

from __future__ import annotations

import subprocess
import sys

from faceperf.paths import repo_root


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "perf_tests/test_sustained.py",
         "perf_tests/test_leaks.py", "-q", "-p", "no:cacheprovider", "-rs", *args],
        cwd=repo_root(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_long_runs_are_skipped_with_the_way_to_run_them():
    for args in ((), ("-m", "perf")):
        done = _pytest(*args)
        assert done.returncode in (0, 5), done.stdout[-2000:]  # 5: -m perf selects none
        if not args:
            assert "select it with -m sustained (make nightly)" in done.stdout
            assert "select it with -m nightly (make nightly)" in done.stdout
            assert " passed" not in done.stdout


def test_a_long_run_is_collected_to_run_when_its_marker_is_selected():
    done = _pytest("-m", "sustained", "--collect-only")
    assert "test_the_pipeline_sustains_its_frame_rate_for_five_minutes" in done.stdout
    assert "test_no_leak_over_a_long_run" not in done.stdout
