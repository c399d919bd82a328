"""faceperf compare / baseline update / report: exit codes 0, 1, 2 and atomic baselines."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest

from faceperf.cli import main

PROFILE = "linux-x86_64-avx512-2core/ort-cpu"
NAME = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[star-optimized]"


def _run(
    path: Path,
    median_s: float,
    seed: int,
    profile: str = PROFILE,
    onnxruntime: str = "1.31.1",
    names: tuple[str, ...] = (NAME,),
    extra_info: dict | None = None,
) -> Path:
    rng = np.random.RandomState(seed)
    document = {
        "machine_info": {
            "faceperf": {"profile": profile, "runtime_versions": {"onnxruntime": onnxruntime}}
        },
        "commit_info": {},
        "benchmarks": [
            {
                "group": "star latency",
                "name": name.split("::")[-1],
                "fullname": name,
                "params": None,
                "param": None,
                "extra_info": extra_info or {},
                "options": {"timer": "perf_counter"},
                "stats": {"rounds": len(data), "iterations": 1, "data": data},
            }
            for name in names
            for data in [(median_s * rng.lognormal(0.0, 0.03, 30)).tolist()]
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
    assert "| **slower** |" in out


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
    err = capsys.readouterr().err
    assert "refused" in err
    assert other.get("profile", other.get("onnxruntime")) in err  # the reason, with both sides
    assert "--allow-mismatch" in err
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
    if platform.system() != "Darwin":
        # The placement snapshot goes with the baseline; off macOS it says why it cannot.
        assert "compute-plan snapshot not refreshed: Core ML compute plans need macOS 14.4+" in (
            capsys.readouterr().out
        )


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


# -- bad input ----------------------------------------------------------------------------------

OTHER = "perf_tests/test_latency.py::test_steady_state_latency_ort_cpu[mtl-optimized]"
THIRD = "perf_tests/test_latency.py::test_cold_load_ort_cpu[star-optimized]"


def _malformed(path: Path) -> None:
    path.write_text('{"machine_info": {}, "benchmarks": "none"}')  # JSON, but not a run


def _truncated(path: Path) -> None:
    path.write_text(path.read_text()[:-120])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot json at all")


@pytest.mark.parametrize("breakage", [_malformed, _truncated, _garbage])
@pytest.mark.parametrize("side", ["baseline", "current"])
def test_compare_names_a_broken_file_in_one_line_with_exit_2(tmp_path, capsys, side, breakage):
    files = {
        "baseline": _run(tmp_path / "a.json", 0.1, 0),
        "current": _run(tmp_path / "b.json", 0.1, 1),
    }
    breakage(files[side])
    assert main(["compare", str(files["baseline"]), str(files["current"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"faceperf: error: {files[side]}: ") and "\n" not in err


def test_compare_reports_benchmarks_on_one_side_only_as_added_and_removed(tmp_path, capsys):
    base = _run(tmp_path / "a.json", 0.1, 0, names=(NAME, OTHER))
    cur = _run(tmp_path / "b.json", 0.1, 1, names=(NAME, THIRD))
    assert main(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "1 same, 1 added, 1 removed" in out
    assert "added" in _line_with(out, "test_cold_load_ort_cpu[star-optimized]")
    assert "removed" in _line_with(out, "[mtl-optimized]")
    assert main(["compare", str(base), str(cur), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| added |" in _line_with(markdown, THIRD)
    assert "| removed |" in _line_with(markdown, OTHER)


def _line_with(text: str, fragment: str) -> str:
    (line,) = [line for line in text.splitlines() if fragment in line]
    return line


def test_compare_fails_an_empty_current_run(tmp_path, capsys):
    base = _run(tmp_path / "a.json", 0.1, 0)
    cur = _run(tmp_path / "b.json", 0.1, 1, names=())
    assert main(["compare", str(base), str(cur)]) == 1
    assert "FAIL (the current run measured no benchmarks; 1 removed)" in capsys.readouterr().out


def test_compare_against_an_empty_baseline_passes_and_says_so(tmp_path, capsys):
    base = _run(tmp_path / "a.json", 0.1, 0, names=())
    cur = _run(tmp_path / "b.json", 0.1, 1)
    assert main(["compare", str(base), str(cur), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "the baseline has no benchmarks: nothing was compared" in out
    assert "| added |" in out


def _update(results: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "baseline",
            "update",
            "--results",
            str(results),
            "--out",
            str(out),
            "--perf-profile",
            PROFILE,
            *extra,
        ]
    )


@pytest.fixture
def old_baseline(tmp_path: Path) -> Path:
    path = _run(tmp_path / "baseline.json", 0.1, 5, names=(NAME, OTHER))
    return path


@pytest.mark.parametrize("breakage", [_malformed, _truncated, _garbage])
def test_baseline_update_refuses_broken_results_and_keeps_the_old_file(
    tmp_path, capsys, old_baseline, breakage
):
    before = old_baseline.read_bytes()
    results = _run(tmp_path / "results.json", 0.1, 0)
    breakage(results)
    assert _update(results, old_baseline) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"faceperf: error: {results}: ") and "\n" not in err
    assert old_baseline.read_bytes() == before


def test_baseline_update_refuses_an_empty_run(tmp_path, capsys, old_baseline):
    before = old_baseline.read_bytes()
    results = _run(tmp_path / "results.json", 0.1, 0, names=())
    assert _update(results, old_baseline) == 2
    assert "measured no benchmarks; baseline left unchanged" in capsys.readouterr().err
    assert old_baseline.read_bytes() == before


def test_baseline_update_stores_another_profile_only_when_allowed(tmp_path, capsys, old_baseline):
    results = _run(tmp_path / "results.json", 0.1, 0, profile="apple-m1-pro/coreml")
    assert _update(results, old_baseline) == 2
    assert "pass --allow-mismatch" in capsys.readouterr().err
    assert _update(results, old_baseline, "--allow-mismatch") == 0
    stored = json.loads(old_baseline.read_text())
    assert stored["machine_info"]["faceperf"]["profile"] == "apple-m1-pro/coreml"


def test_baseline_update_lists_benchmarks_added_and_removed(tmp_path, capsys, old_baseline):
    results = _run(tmp_path / "results.json", 0.1, 0, names=(NAME, THIRD))
    assert _update(results, old_baseline) == 0
    out = capsys.readouterr().out
    assert "1 added, 1 removed since the previous baseline:" in out
    assert f"  added: {THIRD}" in out and f"  removed: {OTHER}" in out
    assert _update(results, old_baseline) == 0
    assert "same benchmarks as the previous baseline" in capsys.readouterr().out


@pytest.mark.parametrize("breakage", [_malformed, _truncated])
def test_baseline_update_replaces_a_broken_previous_baseline_and_says_so(
    tmp_path, capsys, old_baseline, breakage
):
    breakage(old_baseline)
    results = _run(tmp_path / "results.json", 0.1, 0)
    assert _update(results, old_baseline) == 0
    assert "the previous baseline is unreadable and is replaced" in capsys.readouterr().err
    assert _samples(old_baseline) == _samples(results)


def test_baseline_update_killed_between_write_and_rename_keeps_the_old_file(
    tmp_path, capsys, old_baseline, monkeypatch
):
    before = old_baseline.read_bytes()
    results = _run(tmp_path / "results.json", 0.2, 0)

    def killed(src, dst):
        # The new baseline is complete in its temporary file; the rename never happens.
        assert _samples(Path(src)) == _samples(results)
        raise OSError(4, "Interrupted system call")

    monkeypatch.setattr(os, "replace", killed)
    assert _update(results, old_baseline) == 2
    assert "could not write the run (Interrupted system call)" in capsys.readouterr().err
    assert old_baseline.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "results.json"]


def test_baseline_update_interrupted_mid_write_keeps_the_old_file(
    tmp_path, old_baseline, monkeypatch
):
    before = old_baseline.read_bytes()
    results = _run(tmp_path / "results.json", 0.2, 0)

    def interrupted(fd):
        raise KeyboardInterrupt  # Ctrl-C (or SIGINT from a CI runner) before the data is synced

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _update(results, old_baseline)
    assert old_baseline.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "results.json"]


# -- the report folder, rebuilt from results.json alone ----------------------------------------


def test_report_rebuilds_speedups_and_the_stage_breakdown_from_results_alone(tmp_path, capsys):
    from faceperf.bench.report.stages import STAGE_KEY, stage_record
    from faceperf.bench.speedups.estimate import SPEEDUP_KEY, SpeedupRecord
    from faceperf.bench.speedups.interleaved import InterleavedSamples
    from faceperf.pipeline.profiler import MODEL_INFERENCE, StageProfiler

    profiler = StageProfiler()
    for seconds in (0.2, 0.21, 0.22, 0.2):
        profiler.add("STAR_onnx", MODEL_INFERENCE, seconds)
    samples = InterleavedSamples((0.25, 0.26, 0.24, 0.25), (0.11, 0.12, 0.11, 0.1))
    speedup = SpeedupRecord.measure_of(
        "star", "cold_load", ("baseline", "optimized"), samples, None
    )
    folder = tmp_path / "run"
    folder.mkdir()
    pipeline = "perf_tests/test_budgets.py::test_face_mirror_pipeline_frame_rate"
    _run(
        folder / "results.json",
        1.9,
        0,
        names=(pipeline,),
        extra_info={STAGE_KEY: stage_record(profiler, 4)},
    )
    document = json.loads((folder / "results.json").read_text())
    speedup_benchmark = json.loads(json.dumps(document["benchmarks"][0]))
    speedup_benchmark["fullname"] = "perf_tests/test_speedup.py::test_cold_load_speedup[star]"
    speedup_benchmark["extra_info"] = {SPEEDUP_KEY: speedup.to_extra_info()}
    document["benchmarks"].append(speedup_benchmark)
    (folder / "results.json").write_text(json.dumps(document))

    assert main(["report", str(folder), "--baseline", str(tmp_path / "none.json")]) == 0
    summary = (folder / "summary.md").read_text()
    assert "**Speedups**" in summary and "| `test_cold_load_speedup[star]` |" in summary
    assert (folder / "stage_profile.txt").read_text().split("\n", 1)[1] == profiler.text()
    assert (folder / "stage_breakdown.png").read_bytes()[:4] == b"\x89PNG"
    assert (folder / "latency.png").exists()


def test_report_names_results_with_a_malformed_stage_record(tmp_path, capsys):
    from faceperf.bench.report.stages import STAGE_KEY

    folder = tmp_path / "run"
    folder.mkdir()
    results = _run(folder / "results.json", 0.1, 0, extra_info={STAGE_KEY: {"frames": 0}})
    assert main(["report", str(folder), "--baseline", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"faceperf: error: {results}: benchmark {NAME}: extra_info.stage_profile")
    assert "\n" not in err


def _samples(path: Path) -> dict:
    """What a stored baseline must keep of its run: every benchmark's raw samples."""
    return {b["fullname"]: b["stats"]["data"] for b in json.loads(path.read_text())["benchmarks"]}
