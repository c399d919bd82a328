"""The memory budgets in pytest, end to end: STAR holding a real extra 100 MB tensor breaks its
budget, saying the figure, the budget, where the memory went and what ONNX Runtime's arena held;
the unchanged artifact passes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from memory_folders import ballasted_pair

from faceperf.paths import repo_root

STAR = "perf_tests/test_memory.py::test_memory_within_budget[star-optimized]"


@pytest.fixture(scope="module")
def folders(artifacts_dir, tmp_path_factory):
    return ballasted_pair(artifacts_dir, tmp_path_factory.mktemp("memory-budget"), "star", 100)


def _pytest(folder) -> subprocess.CompletedProcess:
    # --perf-profile: the Linux budgets apply on any machine that runs this test.
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", STAR, "-q", "-p", "no:cacheprovider",
            "--benchmark-disable", f"--artifacts={folder}",
            "--perf-profile=linux-x86_64-test/ort-cpu",
        ],
        cwd=repo_root(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_an_unchanged_star_is_within_its_budget(folders):
    done = _pytest(folders[0])
    assert done.returncode == 0, done.stdout[-2000:]
    assert "budget ≤ 205 MiB above the floor: pass" in done.stdout


def test_a_hundred_megabytes_more_breaks_the_budget_and_says_where(folders):
    done = _pytest(folders[1])
    assert done.returncode == 1, done.stdout[-2000:]
    failure = next(line for line in done.stdout.splitlines() if "breaks the memory budget" in line)
    assert "star/optimized (ort-cpu)" in failure and "≤ 205 MiB above the floor" in failure
    assert "load +" in failure and "steady +" in failure
    assert "ONNX Runtime's CPU arena held" in failure
