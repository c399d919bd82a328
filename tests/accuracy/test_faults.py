"""The fault catalogue: every catalogued fault, built for real, is caught by the right check.

References are built here from the session's own baseline artifacts, so the catalogue proves
the suite's power whatever weights are in use (the committed references fit the default ones).
"""

from __future__ import annotations

import pytest

from faceperf.accuracy.cases import SUBJECTS
from faceperf.accuracy.faults import CATALOGUE, evaluate_fault
from faceperf.accuracy.references import build_reference
from faceperf.accuracy.tolerances import load_tolerances

pytestmark = pytest.mark.slow
# What must (at least) name the fault, per fault and subject ("*": every subject): the task
# metric where the fault changes the task's answer, SNR where it changes the tensors, the
# conformance check where the contract itself is broken.
EXPECTED = {
    "rb_swap": {
        "*": ["snr_db"],
        "retinaface": ["agreement"],
        "star": ["nme_pct"],
        "mtl": ["gaze_deg"],
        "mtcnn": ["agreement"],
    },
    "unit_range": {
        "*": ["snr_db"],
        "retinaface": ["agreement"],
        "star": ["nme_pct"],
        "mtl": ["gaze_deg"],
        "mtcnn": ["agreement"],
    },
    "uint8_resize": {"*": ["snr_db"], "star": ["nme_mean_pct"], "mtl": ["gaze_deg"]},
    "star_224": {"star": ["conformance shape", "input shape (1, 3, 224, 224)"]},
    "mtl_heads_swapped": {"mtl": ["emotion_agreement", "au_mean_abs", "snr_db[au]"]},
    "fp16_is_fp32": {"*": ["claims float16 but only 0% of its weights are FP16"]},
    "weight_noise": {"*": ["snr_db"], "star": ["nme_mean_pct"], "mtl": ["gaze_deg"]},
    "int8_dynamic": {"*": ["integer quantisation ops in a float32 variant", "snr_db"]},
    "variances_swapped": {"retinaface": ["agreement", "min_iou", "mean_iou"]},
    "anchors_512": {"retinaface": ["agreement", "min_iou"]},
    "nms_0.6": {"retinaface": ["agreement", "min_iou"]},
}
# Decode faults leave the network's tensors exact: only the detection checks can see them.
DECODE_FAULTS = {"variances_swapped", "anchors_512", "nms_0.6"}
CASES = [
    pytest.param(fault, subject, id=f"{fault.name}-{subject}")
    for fault in CATALOGUE
    for subject in SUBJECTS
    if subject in fault.subjects
]


@pytest.fixture(scope="module")
def references(artifacts_dir):
    return {subject: build_reference(subject, artifacts_dir) for subject in SUBJECTS}


def test_the_catalogue_covers_every_fault_the_suite_promises_to_catch():
    assert set(EXPECTED) == {fault.name for fault in CATALOGUE}


@pytest.mark.parametrize(("fault", "subject"), CASES)
def test_fault_is_caught_by_the_right_check(fault, subject, artifacts_dir, references, tmp_path):
    result = evaluate_fault(
        fault, subject, artifacts_dir, tmp_path, references[subject], load_tolerances()
    )
    verdict = result.caught_by()
    assert result.caught, f"{fault.name} on {subject} was not caught"
    for needle in EXPECTED[fault.name].get("*", []) + EXPECTED[fault.name].get(subject, []):
        assert needle in verdict, f"{fault.name} on {subject}: {needle!r} not in: {verdict}"
    if fault.name in DECODE_FAULTS:
        assert "snr_db" not in verdict and not result.findings, verdict
