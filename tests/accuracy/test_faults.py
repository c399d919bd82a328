"""The fault catalogue: every catalogued fault, built for real, is caught by the checks it names,
and only those count: a fault another check trips, or whose build or run crashes, is not caught.

The sweep's references are built here from the session's own baseline artifacts, so the
catalogue proves the suite's power whatever weights are in use (the committed references fit
the default ones). The other tests run one fault on MTL against the committed references.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from unittest import mock

import pytest

from faceperf.accuracy.cases import SUBJECTS
from faceperf.accuracy.faults import (
    CATALOGUE,
    FAULTS,
    Catch,
    Fault,
    FaultResult,
    conformance,
    evaluate_fault,
    metric,
    refusal,
)
from faceperf.accuracy.references import build_reference, read_reference
from faceperf.accuracy.tolerances import load_tolerances
from faceperf.cli import main
from faceperf.cli.accuracy import _fault_line
from faceperf.models import inputs
from faceperf.verdicts import Verdict, exit_code

# Decode faults leave the network's tensors exact: only the detection checks can see them.
DECODE_FAULTS = {"variances_swapped", "anchors_512", "nms_0.6"}
# A fault that needs trained weights (landmarks_rounded) is run by its own test in
# test_jitter.py, which says what the surrogate shows and holds the catch with trained weights.
# The tiny-face fault on STAR (20 STAR calls on the bins on top of its 15 cases) is run once, in
# test_bins.py, which also checks that the failure names the smallest bin.
RUN_ELSEWHERE = {("small_faces_nearest", "star")}
CASES = [
    pytest.param(fault, subject, id=f"{fault.name}-{subject}")
    for fault in CATALOGUE
    for subject in SUBJECTS
    if subject in fault.subjects
    and not fault.needs_trained
    and (fault.name, subject) not in RUN_ELSEWHERE
]


def _crash(*_: object) -> None:
    raise RuntimeError("the edit script has a bug")


CRASHES_WHEN_BUILT = Fault(
    "crashes_when_built",
    "an edit that raises",
    ("mtl",),
    edit=_crash,
    catches=FAULTS["rb_swap"].catches,
)


@contextlib.contextmanager
def _broken_preprocessing():
    with mock.patch.object(inputs, "mtl_input", _crash):
        yield


CRASHES_WHEN_RUN = Fault(
    "crashes_when_run",
    "a pipeline patch that raises",
    ("mtl",),
    patch=_broken_preprocessing,
    catches={"mtl": (metric("gaze_deg"),)},
)


@pytest.fixture(scope="module")
def references(artifacts_dir):
    return {subject: build_reference(subject, artifacts_dir) for subject in SUBJECTS}


def _evaluate(fault: Fault, artifacts_dir, tmp_path, subject: str = "mtl") -> FaultResult:
    reference = read_reference(subject)
    return evaluate_fault(fault, subject, artifacts_dir, tmp_path, reference, load_tolerances())


def _faults_command(monkeypatch, capsys, artifacts_dir, *faults: Fault) -> tuple[int, str]:
    monkeypatch.setattr("faceperf.accuracy.faults.CATALOGUE", faults)
    code = main(["accuracy", "faults", "--subjects", "mtl", "--artifacts", str(artifacts_dir)])
    return code, capsys.readouterr().out


def test_every_fault_names_what_must_catch_it_on_every_subject():
    for fault in CATALOGUE:
        for subject in fault.subjects:
            assert fault.expected(subject), f"{fault.name} names nothing for {subject}"
    with pytest.raises(ValueError, match="fault 'loose' names no check for star"):
        Fault("loose", "nothing catches it", ("star",), edit=_crash)


def test_a_catch_reads_as_the_check_and_the_reason_it_names():
    catches = (metric("snr_db"), conformance("ops", "int"), refusal("Type Error"))
    assert [str(c) for c in catches] == [
        "metric snr_db",
        "conformance ops 'int'",
        "refusal 'Type Error'",
    ]
    nothing_failed = FaultResult("f", "mtl", "optimized", expected=catches)
    assert nothing_failed.missed() == list(catches) and nothing_failed.verdict is Verdict.FAIL
    with pytest.raises(ValueError, match="unknown check 'speed'"):
        Catch("speed").fired(nothing_failed)


def test_a_fault_a_surrogate_cannot_show_is_skipped_not_caught_and_an_error_still_fails():
    expected = (metric("jitter[landmarks]"),)
    why = "not provable with surrogate star: its points move"
    hidden = FaultResult("f", "star", "optimized_fp16", expected, untrained=why)
    assert hidden.verdict is Verdict.SKIPPED and not hidden.caught
    assert hidden.describe().startswith(why)
    crashed = dataclasses.replace(hidden, error="f on star: the checks crashed: RuntimeError")
    assert crashed.verdict is Verdict.FAIL
    # the command says so and does not fail on it
    assert _fault_line(hidden).startswith(f"f                  star       skipped: {why}")
    assert exit_code([hidden.verdict]) == 0
    assert FAULTS["landmarks_rounded"].needs_trained == ("star",)
    assert not FAULTS["boxes_rounded"].needs_trained  # real RetinaFace weights: must be caught


def test_a_metric_catch_reads_whole_metric_names(artifacts_dir, tmp_path):
    heads = dataclasses.replace(FAULTS["mtl_heads_swapped"], catches={"mtl": (metric("snr_db"),)})
    result = _evaluate(heads, artifacts_dir, tmp_path)
    # snr_db stands for snr_db[au] ...; agreement (detections) is not emotion_agreement.
    assert result.caught, result.describe()
    assert any(m.metric == "emotion_agreement" for m in result.failures)
    assert not metric("agreement").fired(result)
    assert metric("emotion_agreement").fired(result) and metric("snr_db[au]").fired(result)


def test_a_fault_another_check_trips_is_not_caught(artifacts_dir, tmp_path):
    # The FP32 graph under the FP16 name fails conformance, but its outputs pass every limit:
    # a catalogue that wanted SNR to catch it must say it did not.
    wrong = dataclasses.replace(
        FAULTS["fp16_is_fp32"], subjects=("mtl",), catches={"mtl": (metric("snr_db"),)}
    )
    result = _evaluate(wrong, artifacts_dir, tmp_path)
    assert result.verdict is Verdict.FAIL and not result.caught
    assert result.missed() == [metric("snr_db")]
    assert result.describe().startswith(
        "expected metric snr_db to fail; conformance precision: claims float16 but only 0%"
    )


def test_an_unloadable_fp16_conversion_is_caught_by_onnx_runtime_refusing_it(
    artifacts_dir, tmp_path
):
    result = _evaluate(FAULTS["naive_fp16"], artifacts_dir, tmp_path)
    assert result.verdict is Verdict.PASS, result.describe()
    assert result.error is None and not result.findings
    assert f"{tmp_path}/mtl/optimized_fp16.onnx: ONNX Runtime cannot load it" in result.refused
    assert "Type Error" in result.refused


def test_a_crash_while_building_a_fault_is_an_error_naming_it_not_a_catch(artifacts_dir, tmp_path):
    result = _evaluate(CRASHES_WHEN_BUILT, artifacts_dir, tmp_path)
    assert result.verdict is Verdict.FAIL
    assert result.error == (
        "crashes_when_built on mtl: building the fault failed: RuntimeError: the edit script "
        "has a bug"
    )


def test_a_crash_while_running_a_fault_is_an_error_not_a_refusal(artifacts_dir, tmp_path):
    result = _evaluate(CRASHES_WHEN_RUN, artifacts_dir, tmp_path)
    assert result.verdict is Verdict.FAIL and result.refused is None
    assert result.error.startswith("crashes_when_run on mtl: the checks crashed: RuntimeError")


def test_the_faults_command_exits_1_on_a_fault_not_caught(monkeypatch, capsys, artifacts_dir):
    code, out = _faults_command(
        monkeypatch, capsys, artifacts_dir, FAULTS["naive_fp16"], CRASHES_WHEN_BUILT
    )
    assert code == 1, out
    caught, crashed = out.splitlines()
    assert caught.startswith("naive_fp16         mtl        caught: run refused: ")
    assert crashed == (
        "crashes_when_built mtl        NOT CAUGHT: error: crashes_when_built on mtl: building the "
        "fault failed: RuntimeError: the edit script has a bug"
    )


def test_the_faults_command_exits_0_when_every_fault_is_caught(monkeypatch, capsys, artifacts_dir):
    code, out = _faults_command(monkeypatch, capsys, artifacts_dir, FAULTS["naive_fp16"])
    assert code == 0, out
    assert out.startswith("naive_fp16         mtl        caught: ")


def test_the_faults_json_says_what_was_expected_and_missed(monkeypatch, capsys, artifacts_dir):
    monkeypatch.setattr("faceperf.accuracy.faults.CATALOGUE", (CRASHES_WHEN_BUILT,))
    code = main(
        ["accuracy", "faults", "--subjects", "mtl", "--artifacts", str(artifacts_dir), "--json"]
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert code == 1
    assert row["verdict"] == "fail" and row["caught"] is False
    assert row["expected"] == ["metric snr_db", "metric gaze_deg"] == row["missed"]
    assert row["error"].startswith("crashes_when_built on mtl: building the fault failed")


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "subject"), CASES)
def test_fault_is_caught_by_the_checks_it_names(
    fault, subject, artifacts_dir, references, tmp_path
):
    result = evaluate_fault(
        fault, subject, artifacts_dir, tmp_path, references[subject], load_tolerances()
    )
    assert result.verdict is Verdict.PASS, f"{fault.name} on {subject}: {result.describe()}"
    if fault.name in DECODE_FAULTS:
        verdict = result.caught_by()
        assert "snr_db" not in verdict and not result.findings, verdict
