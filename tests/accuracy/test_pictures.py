"""The accuracy report's pictures, on real candidates: a catalogued fault's STAR (red and blue
swapped at its input) drawn over the fixture photograph, read back pixel by pixel; the report
folder and its summary.md; ``faceperf accuracy check --report``; pytest's ``--accuracy-report``.

Each STAR call costs about 0.36 s here: the faulty STAR runs its 15 per-face cases once (not its
jitter clips or bins), the CLI judges a faulty MTL (one batch), and the nested pytest one
variant of RetinaFace (its jitter clips give the tracks plot)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceperf.accuracy.faults import FAULTS, build_candidate
from faceperf.accuracy.pictures import (
    CANDIDATE_BGR,
    CANDIDATE_RADIUS,
    REFERENCE_BGR,
    Caption,
    CaseFrames,
    case_picture,
)
from faceperf.accuracy.references import read_reference
from faceperf.accuracy.report import (
    CONTACT_SHEET,
    SUMMARY,
    AccuracyReportError,
    picks,
    write_accuracy_report,
)
from faceperf.accuracy.session import SubjectCheck, judge_subject
from faceperf.accuracy.tolerances import load_tolerances
from faceperf.cli import main
from faceperf.paths import repo_root

CASE = "obama#0"


@pytest.fixture(scope="module")
def faulty_star(artifacts_dir, tmp_path_factory):
    """STAR with red and blue swapped in its graph, judged on its per-face cases."""
    candidate = build_candidate(
        FAULTS["rb_swap"], "star", artifacts_dir, tmp_path_factory.mktemp("rb_star")
    )
    reference = read_reference("star")
    result = judge_subject("star", candidate, reference, load_tolerances(), costly=())
    return candidate, reference, result


def _links(summary: str) -> set[str]:
    return set(re.findall(r"\]\(([^)#]+)\)", summary))


def test_a_failing_star_case_shows_both_sides_points_in_their_colours(faulty_star, tmp_path):
    candidate, reference, result = faulty_star
    assert CASE in {p.case for p in picks(result)}, "the fault must fail this case"
    written = write_accuracy_report(
        tmp_path / "report", [SubjectCheck((), result)], {"star": reference}, candidate.directory
    )
    picture = next(p for p in written.pictures if f"[{CASE}]" in p.text)
    on_disk = cv2.imread(str(written.directory / picture.file), cv2.IMREAD_COLOR)

    # The same picture drawn again gives its view, which says where each point landed.
    caption = Caption("t", False, ("r", "c"), ())
    overlay = case_picture(
        "star",
        CASE,
        reference.outputs[CASE],
        result.outputs[CASE],
        caption,
        CaseFrames(),
    )
    assert overlay.view is not None
    frame_height = overlay.frame_rows
    np.testing.assert_array_equal(on_disk[:frame_height], overlay.image[:frame_height])

    cand = overlay.view.pixels(result.outputs[CASE]["landmarks"])
    ref = overlay.view.pixels(reference.outputs[CASE]["landmarks"])
    height, width = frame_height, on_disk.shape[1]

    def inside(p: np.ndarray) -> np.ndarray:
        return (p[:, 0] >= 0) & (p[:, 0] < width) & (p[:, 1] >= 0) & (p[:, 1] < height)

    cand, ref = cand[inside(cand)], ref[inside(ref)]
    assert len(cand) >= 90 and len(ref) >= 90
    assert all(tuple(on_disk[y, x]) == CANDIDATE_BGR for x, y in cand)
    # a reference point shows where no candidate dot covers it
    apart = np.min(np.hypot(*(ref[:, None] - cand[None]).transpose(2, 0, 1)), axis=1)
    uncovered = ref[apart > CANDIDATE_RADIUS + 1]
    assert len(uncovered) >= 50, "the fault moves most points by more than a dot"
    assert all(tuple(on_disk[y, x]) == REFERENCE_BGR for x, y in uncovered)


def test_the_report_folder_links_every_file_and_refuses_an_existing_one(faulty_star, tmp_path):
    candidate, reference, result = faulty_star
    folder = tmp_path / "report"
    written = write_accuracy_report(
        folder, [SubjectCheck((), result)], {"star": reference}, candidate.directory
    )
    summary = (folder / SUMMARY).read_text()
    files = {p.name for p in folder.iterdir()} - {SUMMARY}
    assert CONTACT_SHEET in files
    assert _links(summary) == files
    assert len(written.pictures) == len(picks(result)) == 15  # every face case fails
    assert summary.splitlines()[2].startswith("**fail**: 1 of 1 subject/variant checks fail")
    assert "| star | optimized | fail | nme_mean_pct over all cases = " in summary
    sheet = cv2.imread(str(folder / CONTACT_SHEET))
    assert sheet.shape[1] >= 3 * 512  # three pictures a row

    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(AccuracyReportError, match=f"report folder {folder} already exists"):
        write_accuracy_report(folder, [SubjectCheck((), result)], {"star": reference}, Path("x"))
    assert sorted(p.name for p in folder.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging folder left behind


def test_the_check_command_writes_the_folder_and_refuses_an_existing_one(
    artifacts_dir, tmp_path, capsys
):
    candidate = build_candidate(FAULTS["rb_swap"], "mtl", artifacts_dir, tmp_path / "rb_mtl")
    folder = tmp_path / "report"
    options = ["--subjects", "mtl", "--variants", "optimized", "--report", str(folder)]
    command = ["accuracy", "check", "--candidate", str(candidate.directory), *options]

    assert main(command) == 1
    out = capsys.readouterr().out
    assert f"report: {folder / SUMMARY} (" in out
    summary = (folder / SUMMARY).read_text()
    assert _links(summary) == {p.name for p in folder.iterdir()} - {SUMMARY}
    assert "| mtl | optimized | fail | " in summary
    assert any(name.startswith("01-mtl-optimized-") for name in _links(summary))

    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"faceperf: error: report folder {folder} already exists; expected a new folder"


def test_the_pytest_option_writes_the_folder_from_the_suites_results(artifacts_dir, tmp_path):
    folder = tmp_path / "report"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        str(repo_root() / "accuracy_tests"),
        "--artifacts",
        str(artifacts_dir),
        "--accuracy-report",
        str(folder),
        "-k",
        "test_accuracy and retinaface-optimized-",
    ]
    run = subprocess.run(command, capture_output=True, text=True, cwd=repo_root(), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"faceperf accuracy report: {folder / SUMMARY}" in run.stdout
    summary = (folder / SUMMARY).read_text()
    assert _links(summary) == {p.name for p in folder.iterdir()} - {SUMMARY}
    assert "| retinaface | optimized | pass | [" in summary
    assert "jitter-retinaface.png" in _links(summary)  # its clips ran: their tracks are drawn
    assert any(name.startswith("01-retinaface-optimized-") for name in _links(summary))

    again = subprocess.run(command, capture_output=True, text=True, cwd=repo_root(), timeout=600)
    assert again.returncode == pytest.ExitCode.USAGE_ERROR, again.stdout + again.stderr
    assert f"--accuracy-report: report folder {folder} already exists" in again.stderr
