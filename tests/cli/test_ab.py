"""`faceperf ab` end to end on real artifacts (the small MTCNN nets, so it takes seconds), and
every bad input as one line with exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faceperf.bench.ab.run import write_ab_report
from faceperf.bench.memory.ballast import add_ballast
from faceperf.bench.slowdown import edited_copy, slowed_copy
from faceperf.cli import main

# Judged at 50 %: what these tests check is the plumbing, not this machine's timing noise.
FAST = ["--models", "mtcnn_rnet", "--variants", "optimized", "--threshold", "0.5"]


@pytest.fixture(scope="module")
def reference(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second copy of the artifacts: same bytes, another folder (an A/A reference)."""
    copy = tmp_path_factory.mktemp("ab") / "reference"
    shutil.copytree(artifacts_dir, copy)
    return copy


def _ab(reference: Path, candidate: Path, report: Path, *extra: str) -> int:
    return main(
        [
            "ab",
            "--reference",
            str(reference),
            "--candidate",
            str(candidate),
            "--report",
            str(report),
            "--max-time",
            "10",
            *FAST,
            *extra,
        ]
    )


def test_unchanged_artifacts_pass_and_leave_a_complete_report(
    reference, artifacts_dir, tmp_path, capsys
):
    report = tmp_path / "report"
    markdown = ["--markdown", str(tmp_path / "pr.md"), "--cold-load"]
    assert _ab(reference, artifacts_dir, report, *markdown) == 0
    out = capsys.readouterr().out
    assert "faceperf ab: PASS" in out
    document = json.loads((report / "ab.json").read_text())
    names = [b["name"] for b in document["benchmarks"]]
    assert names == ["mtcnn_rnet-optimized", "mtcnn_rnet-optimized-load"]
    first = document["benchmarks"][0]
    assert first["verdict"] in ("same", "undecided")
    assert len(first["reference_s"]) == len(first["candidate_s"]) == 2 * first["rounds"]
    assert (
        document["sides"]["reference"]["artifacts"] == document["sides"]["candidate"]["artifacts"]
    )
    assert document["environment"]["threads"] == 1
    summary = (report / "summary.md").read_text()
    assert summary.startswith("**faceperf ab: PASS")
    assert (tmp_path / "pr.md").read_text() == summary
    assert (report / "ab.png").stat().st_size > 0


def test_a_real_memory_growth_is_larger_and_exits_1(reference, tmp_path, capsys):
    # O-Net holding a real extra 30 MB tensor (outputs unchanged): its steady phase grows by
    # far more than 3 % and 2 MiB, whatever the timing says.
    grown = edited_copy(
        reference, tmp_path / "grown", "mtcnn_onet", "optimized", lambda g: add_ballast(g, 30)
    )
    args = ["--models", "mtcnn_onet", "--variants", "optimized", "--threshold", "0.5"]
    report = tmp_path / "report"
    code = main(["ab", "--reference", str(reference), "--candidate", str(grown), *args,
                 "--max-time", "5", "--report", str(report)])  # fmt: skip
    assert code == 1
    out = capsys.readouterr().out
    assert "mtcnn_onet-optimized:memory larger" in out
    line = next(line for line in out.splitlines() if "mtcnn_onet-optimized:memory" in line)
    assert line.split()[0] == "larger" and "in steady:" in line, line
    document = json.loads((report / "ab.json").read_text())
    (memory,) = document["memory"]
    assert memory["verdict"] == "larger" and memory["phases"][1]["delta_bytes"] > 25 * 2**20


def test_a_real_slowdown_is_slower_and_exits_1(reference, tmp_path, capsys):
    # 40 identity 1x1 convolutions after R-Net's widest feature map: outputs unchanged, several
    # times the work, so "slower than 50 %" holds whatever the machine is doing.
    slowed = slowed_copy(reference, tmp_path / "slowed", "mtcnn_rnet", "optimized", 40)
    assert _ab(reference, slowed, tmp_path / "report") == 1
    out = capsys.readouterr().out
    assert "FAIL: mtcnn_rnet-optimized slower" in out
    table = (tmp_path / "report" / "summary.md").read_text().split("<details>")[0]
    assert "| mtcnn_rnet-optimized | slower |" in table


def test_explain_names_the_inserted_operations_of_a_slower_benchmark(reference, tmp_path, capsys):
    slowed = slowed_copy(reference, tmp_path / "slowed", "mtcnn_rnet", "optimized", 40)
    assert _ab(reference, slowed, tmp_path / "report", "--explain") == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "(profiled)" in line)
    assert "mtcnn_rnet/optimized" in line and "40 new Conv" in line, line
    tables = (tmp_path / "report" / "explain-mtcnn_rnet-optimized.md").read_text()
    assert "| 1 | 40 new Conv" in tables, tables
    document = json.loads((tmp_path / "report" / "ab.json").read_text())
    (explained,) = document["explanations"]["mtcnn_rnet-optimized"]
    assert explained["label"] == "mtcnn_rnet/optimized"
    assert "40 new Conv" in (tmp_path / "report" / "summary.md").read_text()


def test_an_accepted_slowdown_passes_with_its_reason(reference, tmp_path, capsys):
    # The 40 convolutions carry real weights: the file grows by 1.7 %, which the size verdict
    # sees and the reviewer accepts as well.
    slowed = slowed_copy(reference, tmp_path / "slowed", "mtcnn_rnet", "optimized", 40)
    assert _ab(reference, slowed, tmp_path / "r1") == 1
    assert "mtcnn_rnet-optimized:size larger" in capsys.readouterr().out
    accept = ["--accept", "mtcnn_rnet-optimized=new regression head, reviewed"]
    accept += ["--accept", "mtcnn_rnet-optimized:size=its weights, reviewed"]
    assert _ab(reference, slowed, tmp_path / "r2", *accept) == 0
    out = capsys.readouterr().out
    assert "accepted: new regression head, reviewed" in out
    assert "(larger, accepted: its weights, reviewed)" in out


def test_models_on_one_side_only_are_added_or_removed(reference, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(reference, partial)
    manifest = json.loads((partial / "manifest.json").read_text())
    del manifest["models"]["mtcnn_rnet"]["variants"]["optimized_fp16"]
    (partial / "manifest.json").write_text(json.dumps(manifest))
    args = ["--variants", "optimized,optimized_fp16"]
    assert _ab(reference, partial, tmp_path / "report", *args) == 0
    out = capsys.readouterr().out
    assert "removed    mtcnn_rnet/optimized_fp16" in out


def _one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0]


@pytest.mark.parametrize("breakage", ["missing", "empty", "bad-manifest", "bad-sha"])
def test_broken_reference_is_one_line_and_exit_2_with_no_report(
    reference, artifacts_dir, tmp_path, capsys, breakage
):
    broken = tmp_path / "broken"
    if breakage == "empty":
        broken.mkdir()
    elif breakage == "bad-manifest":
        shutil.copytree(reference, broken)
        (broken / "manifest.json").write_text("{not json")
    elif breakage == "bad-sha":
        shutil.copytree(reference, broken)
        with (broken / "mtcnn_rnet" / "optimized.onnx").open("ab") as handle:
            handle.write(b"\0")
    report = tmp_path / "report"
    assert _ab(broken, artifacts_dir, report) == 2
    needle = {
        "missing": "neither an artifact folder nor a git revision",
        "empty": "is empty",
        "bad-manifest": "manifest",
        "bad-sha": "sha256",
    }[breakage]
    _one_line_error(capsys, needle)
    assert not report.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--models", "nosuchmodel"], "unknown model(s) 'nosuchmodel'"),
        (["--variants", "fp8"], "unknown variant(s) 'fp8'"),
        (["--max-time", "0"], "expected a positive number of seconds"),
        (["--max-time", "-3"], "expected a positive number of seconds"),
        (["--threshold", "1.5"], "expected a fraction between 0 and 1"),
        (["--accept", "no-reason"], "expected NAME=REASON"),
    ],
)
def test_bad_options_are_usage_errors(reference, args, needle, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["ab", "--reference", str(reference), *args])
    assert exited.value.code == 2
    assert needle in capsys.readouterr().err


def test_accepting_a_benchmark_that_is_not_judged_is_exit_2(
    reference, artifacts_dir, tmp_path, capsys
):
    assert _ab(reference, artifacts_dir, tmp_path / "r", "--accept", "star-optimized=why") == 2
    _one_line_error(capsys, "'star-optimized'", "not a benchmark of this run")


def test_unknown_git_ref_is_one_line_and_exit_2(artifacts_dir, tmp_path, capsys):
    assert _ab(Path("no-such-branch-xyz"), artifacts_dir, tmp_path / "r") == 2
    _one_line_error(capsys, "no-such-branch-xyz")


def test_an_interrupted_report_write_leaves_nothing(
    reference, artifacts_dir, tmp_path, monkeypatch
):
    # Ctrl-C while the report is written: the folder appears whole or not at all.
    from faceperf.bench.ab import render
    from faceperf.bench.ab.result import AbResult

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "markdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_ab_report(tmp_path / "report", AbResult(outcomes=()))
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_measuring_writes_no_report(
    reference, artifacts_dir, tmp_path, monkeypatch, capsys
):
    from faceperf.bench.ab import run as ab_run

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ab_run, "measure_sequential", interrupted)
    assert _ab(reference, artifacts_dir, tmp_path / "report") == 130
    assert "interrupted; no report written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", ["coreml", "coreml:CPU_ONLY", "ort-coreml"])
def test_core_ml_backends_on_macos(reference, artifacts_dir, tmp_path, capsys, backend):
    # The same interleaved A/A through Core ML (the coreml variant) or ONNX Runtime's CoreML EP.
    from faceperf.runtime.coreml_backend import coreml_unavailable_reason

    reason = coreml_unavailable_reason()
    if reason:
        pytest.skip(reason)
    args = ["ab", "--reference", str(reference), "--candidate", str(artifacts_dir)]
    args += ["--models", "mtcnn_onet", "--backend", backend, "--threshold", "0.5"]
    args += ["--max-time", "10", "--report", str(tmp_path / "r")]
    assert main(args) == 0
    document = json.loads((tmp_path / "r" / "ab.json").read_text())
    expected = "mtcnn_onet-coreml" if backend.startswith("coreml") else "mtcnn_onet-optimized"
    assert expected in [b["name"] for b in document["benchmarks"]]


def test_the_core_ml_backend_off_macos_says_why_in_one_line(
    reference, artifacts_dir, tmp_path, capsys
):
    from faceperf.runtime.coreml_backend import coreml_unavailable_reason

    if coreml_unavailable_reason() is None:
        pytest.skip("on macOS Core ML runs: test_core_ml_backends_on_macos covers it")
    args = ["ab", "--reference", str(reference), "--candidate", str(artifacts_dir)]
    args += ["--models", "mtcnn_onet", "--backend", "coreml", "--report", str(tmp_path / "r")]
    assert main(args) == 2
    _one_line_error(capsys, "Core ML prediction needs macOS")
    assert not (tmp_path / "r").exists()
