"""faceperf compare / baseline update / report: exit codes 0, 1, 2 and atomic baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceperf.cli import main

PROFILE = "linux-x86_64-avx512-2core/ort-cpu"
NAME = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[star-optimized]"


def _run(
    path: Path, median_s: float, seed: int, profile: str = PROFILE, onnxruntime: str = "1.31.1"
) -> Path:
    rng = np.random.RandomState(seed)
    data = (median_s * rng.lognormal(0.0, 0.03, 30)).tolist()
    document = {
        "machine_info": {
            "faceperf": {"profile": profile, "runtime_versions": {"onnxruntime": onnxruntime}}
        },
        "commit_info": {},
        "benchmarks": [
            {
                "group": "star latency",
                "name": NAME.split("::")[-1],
                "fullname": NAME,
                "params": None,
                "param": None,
                "extra_info": {},
                "options": {"timer": "perf_counter"},
                "stats": {"rounds": len(data), "iterations": 1, "data": data},
            }
        ],
        "datetime": "2026-11-22T00:00:00+00:00",
        "version": "5.3.1",
    }
    path.write_text(json.dumps(document))
    return path


def test_unchanged_run_passes(tmp_path, capsys):
    base, cur = _run(tmp_path / "a.json", 0.1, 0), _run(tmp_path / "b.json", 0.1, 1)
    assert main(["compare", str(base), str(cur)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_a_twenty_percent_slowdown_fails_with_exit_1(tmp_path, capsys):
    base, cur = _run(tmp_path / "a.json", 0.1, 0), _run(tmp_path / "b.json", 0.12, 1)
    assert main(["compare", str(base), str(cur), "--markdown"]) == 1
    out = capsys.readouterr().out
    assert "| regression" in out or "regression" in out


def test_an_accepted_regression_passes_and_keeps_its_reason(tmp_path, capsys):
    base, cur = _run(tmp_path / "a.json", 0.1, 0), _run(tmp_path / "b.json", 0.12, 1)
    accept = "test_steady_state_latency_ort_cpu[star-optimized]=larger model, agreed in #12"
    assert main(["compare", str(base), str(cur), "--accept", accept, "--markdown"]) == 0
    assert "agreed in #12" in capsys.readouterr().out


def test_accept_without_a_reason_is_a_usage_error(tmp_path, capsys):
    base, cur = _run(tmp_path / "a.json", 0.1, 0), _run(tmp_path / "b.json", 0.1, 1)
    assert main(["compare", str(base), str(cur), "--accept", "star"]) == 2
    assert "expected NAME=REASON" in capsys.readouterr().err


@pytest.mark.parametrize("other", [{"profile": "apple-m1-pro/coreml"}, {"onnxruntime": "1.30.0"}])
def test_another_profile_or_runtime_is_refused_with_exit_2_unless_allowed(tmp_path, capsys, other):
    base = _run(tmp_path / "a.json", 0.1, 0, **other)
    cur = _run(tmp_path / "b.json", 0.1, 1)
    assert main(["compare", str(base), str(cur)]) == 2
    assert "refused" in capsys.readouterr().err
    assert main(["compare", str(base), str(cur), "--allow-mismatch"]) == 0


def test_truncated_baseline_is_a_one_line_error(tmp_path, capsys):
    base = _run(tmp_path / "a.json", 0.1, 0)
    base.write_text(base.read_text()[:50])
    cur = _run(tmp_path / "b.json", 0.1, 1)
    assert main(["compare", str(base), str(cur)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a.json" in err and "\n" not in err


def test_baseline_update_from_results_replaces_the_file_atomically(tmp_path, capsys):
    results = _run(tmp_path / "results.json", 0.1, 0)
    out = tmp_path / "baseline.json"
    out.write_text("old")
    code = main(
        [
            "baseline",
            "update",
            "--results",
            str(results),
            "--out",
            str(out),
            "--perf-profile",
            PROFILE,
        ]
    )
    assert code == 0
    assert json.loads(out.read_text())["benchmarks"][0]["fullname"] == NAME
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "results.json"]


def test_baseline_update_refuses_a_run_of_another_profile(tmp_path, capsys):
    results = _run(tmp_path / "results.json", 0.1, 0, profile="apple-m1-pro/coreml")
    out = tmp_path / "baseline.json"
    out.write_text("old")
    code = main(
        [
            "baseline",
            "update",
            "--results",
            str(results),
            "--out",
            str(out),
            "--perf-profile",
            PROFILE,
        ]
    )
    assert code == 2 and out.read_text() == "old"
    assert "measured on apple-m1-pro/coreml" in capsys.readouterr().err


def test_report_regenerates_summary_and_plot(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    _run(folder / "results.json", 0.1, 0)
    baseline = _run(tmp_path / "baseline.json", 0.1, 1)
    assert main(["report", str(folder), "--baseline", str(baseline)]) == 0
    assert "PASS" in (folder / "summary.md").read_text()
    assert (folder / "latency.png").stat().st_size > 1000
