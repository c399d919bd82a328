"""The merge gate in pytest, end to end: `pytest -m perf --perf-reference DIR` adds one test per
benchmark, fails the slowed one, and writes the report with the merge gate's verdicts first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceperf.bench.slowdown import slowed_copy
from faceperf.paths import repo_root


@pytest.fixture(scope="module")
def reference(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("plugin-ab") / "reference"
    shutil.copytree(artifacts_dir, copy)
    return copy


def _root(tmp_path: Path) -> Path:
    # A FACEPERF_ROOT of its own, so reports/ lands in tmp_path, with the real fixtures and
    # budgets (thresholds come from budgets.toml's [ab]).
    root = tmp_path / "root"
    root.mkdir()
    for name in ("fixtures", "baselines", "weights"):
        (root / name).symlink_to(repo_root() / name)
    return root


def _pytest(root: Path | None, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "perf_tests/test_ab.py",
            "-q",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=repo_root(),
        env={**os.environ, **({"FACEPERF_ROOT": str(root)} if root else {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _ab(root: Path, reference: Path, candidate: Path) -> subprocess.CompletedProcess:
    return _pytest(
        root,
        "-m",
        "perf",
        f"--perf-reference={reference}",
        f"--artifacts={candidate}",
        "--perf-ab-models=mtcnn_rnet",
        "--perf-ab-max-time=10",
        "-rA",
    )


def _report(root: Path) -> Path:
    (report,) = (root / "reports").iterdir()
    return report


def test_unchanged_artifacts_pass_and_the_summary_leads_with_the_merge_gate(
    reference, artifacts_dir, tmp_path
):
    root = _root(tmp_path)
    done = _ab(root, reference, artifacts_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    # One test per benchmark: passed, or skipped when still undecided (a busy machine).
    for name in ("mtcnn_rnet-optimized", "mtcnn_rnet-optimized_fp16"):
        passed = f"test_candidate_vs_reference[{name}]" in done.stdout
        assert passed or f"{name}: candidate / reference" in done.stdout, done.stdout
    assert "— merge gate: PASS (6 benchmarks: " in done.stdout  # time, memory, size of 2
    report = _report(root)
    summary = (report / "summary.md").read_text()
    assert summary.startswith("**faceperf perf on ") and "** — merge gate: PASS (" in summary
    names = [b["name"] for b in json.loads((report / "ab.json").read_text())["benchmarks"]]
    assert names == ["mtcnn_rnet-optimized", "mtcnn_rnet-optimized_fp16"]


def test_a_slowed_candidate_fails_its_own_tests_only(reference, tmp_path):
    # 40 identity convolutions: slower, and their weights make the file 1.7 % larger.
    root = _root(tmp_path)
    slowed = slowed_copy(reference, tmp_path / "slowed", "mtcnn_rnet", "optimized", 40)
    done = _ab(root, reference, slowed)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = {
        line.split(" - ")[0] for line in done.stdout.splitlines() if line.startswith("FAILED")
    }
    assert failed == {
        "FAILED perf_tests/test_ab.py::test_candidate_vs_reference[mtcnn_rnet-optimized]",
        "FAILED perf_tests/test_ab.py::test_candidate_memory_and_size_vs_reference"
        "[mtcnn_rnet-optimized:size]",
    }, done.stdout[-3000:]
    summary = (_report(root) / "summary.md").read_text()
    assert (
        "— merge gate: FAIL, mtcnn_rnet-optimized slower, mtcnn_rnet-optimized:size larger ("
        in (summary.splitlines()[0])
    )


def test_without_a_reference_every_merge_gate_test_says_why_it_skips(artifacts_dir):
    done = _pytest(None, "-rs", "--benchmark-disable", f"--artifacts={artifacts_dir}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no --perf-reference: the merge gate needs a reference" in done.stdout


def test_a_bad_reference_stops_the_run_in_one_line(artifacts_dir, tmp_path):
    args = ["-m", "perf", "--perf-reference=no-such-ref-xyz", f"--artifacts={artifacts_dir}"]
    done = _pytest(_root(tmp_path), *args)
    assert done.returncode != 0
    assert "--perf-reference: reference 'no-such-ref-xyz' is neither" in done.stdout + done.stderr
