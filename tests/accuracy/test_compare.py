"""The comparison rules on hand-made outputs: what counts as a disagreement, and what does not."""

from __future__ import annotations

import numpy as np
import pytest

from faceperf.accuracy.compare import DETECTIONS, compare, unjudged_checks
from faceperf.accuracy.references import ReferenceSet
from faceperf.accuracy.tolerances import load_tolerances

TOLERANCES = load_tolerances()
PACKAGED = {"kind": "packaged", "wheel_sha256": "x"}


def _reference(subject: str, outputs: dict, kind: str = "packaged") -> ReferenceSet:
    models = {"mtcnn_pnet": {"weights": {**PACKAGED, "kind": kind}}}
    return ReferenceSet(subject, outputs, {"models": models})


def _faces(boxes, scores) -> dict:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return {
        "boxes": boxes,
        "scores": np.asarray(scores, np.float64),
        "landmarks": np.zeros((len(boxes), 5, 2)),
    }


def _by_metric(found, case="frame"):
    return {m.metric: m for m in found if m.case == case}


def test_identical_detections_agree_exactly():
    faces = {"frame": _faces([[0, 0, 100, 100]], [0.99])}
    found = _by_metric(compare("mtcnn", "optimized", _reference("mtcnn", faces), faces, TOLERANCES))
    assert found["agreement"].value == 1.0 and found["agreement"].passed
    assert found["min_iou"].value == 1.0


def test_a_missed_confident_face_is_a_disagreement_naming_the_case():
    ref = {"frame": _faces([[0, 0, 100, 100], [200, 0, 300, 100]], [0.99, 0.98])}
    cand = {"frame": _faces([[0, 0, 100, 100]], [0.99])}
    found = _by_metric(compare("mtcnn", "optimized", _reference("mtcnn", ref), cand, TOLERANCES))
    assert found["agreement"].value == 0.5 and not found["agreement"].passed
    assert "mtcnn optimized [frame] agreement = 0.5" in found["agreement"].describe()


def test_a_face_near_the_threshold_may_come_and_go():
    # MTCNN keeps faces scoring above 0.7; within the 0.05 band a face is not a disagreement.
    ref = {"frame": _faces([[0, 0, 100, 100], [200, 0, 300, 100]], [0.99, 0.72])}
    cand = {"frame": _faces([[0, 0, 100, 100], [400, 0, 500, 100]], [0.99, 0.74])}
    found = _by_metric(compare("mtcnn", "optimized", _reference("mtcnn", ref), cand, TOLERANCES))
    assert found["agreement"].value == 1.0


def test_a_confident_extra_face_is_a_disagreement():
    ref = {"frame": _faces([[0, 0, 100, 100]], [0.99])}
    cand = {"frame": _faces([[0, 0, 100, 100], [400, 0, 500, 100]], [0.99, 0.9])}
    found = _by_metric(compare("mtcnn", "optimized", _reference("mtcnn", ref), cand, TOLERANCES))
    assert found["agreement"].value == pytest.approx(0.5)


def test_a_shifted_box_fails_min_iou_in_fp32_but_not_in_fp16():
    ref = {"frame": _faces([[0, 0, 100, 100]], [0.99])}
    cand = {"frame": _faces([[5, 0, 105, 100]], [0.99])}  # IoU 0.905
    for variant, passes in (("optimized", False), ("optimized_fp16", True)):
        found = compare("mtcnn", variant, _reference("mtcnn", ref), cand, TOLERANCES)
        assert _by_metric(found)["min_iou"].passed is passes
        # ...while the product's mean IoU >= 0.95 over all faces fails either way.
        assert not _by_metric(found, "all")["mean_iou"].passed


def test_tensor_snr_is_judged_per_output_and_case():
    ref = {"level": {"tensor/prob": np.linspace(0.0, 1.0, 100)}}
    cand = {"level": {"tensor/prob": np.linspace(0.0, 1.0, 100) + 1e-3}}
    found = compare("mtcnn", "optimized", _reference("mtcnn", ref), cand, TOLERANCES)
    (snr,) = found[:1]
    assert snr.metric == "snr_db[prob]" and snr.case == "level"
    assert 50 < snr.value < 80 and not snr.passed  # FP32 limit 80 dB
    assert compare("mtcnn", "optimized_fp16", _reference("mtcnn", ref), cand, TOLERANCES)[0].passed


def test_a_candidate_missing_a_case_is_an_error():
    ref = {"a": _faces([], []), "b": _faces([], [])}
    with pytest.raises(ValueError, match=r"no outputs for \['b'\]"):
        compare("mtcnn", "optimized", _reference("mtcnn", ref), {"a": ref["a"]}, TOLERANCES)


def test_surrogate_retinaface_detections_are_not_judged_but_real_ones_are():
    faces = {"frame": _faces([[0, 0, 100, 100]], [0.99])}
    surrogate = ReferenceSet(
        "retinaface", faces, {"models": {"retinaface": {"weights": {"kind": "surrogate"}}}}
    )
    real = ReferenceSet(
        "retinaface", faces, {"models": {"retinaface": {"weights": {"kind": "real"}}}}
    )
    assert DETECTIONS in unjudged_checks(surrogate)
    assert not any(
        m.check == DETECTIONS
        for m in compare("retinaface", "optimized", surrogate, faces, TOLERANCES)
    )
    assert unjudged_checks(real) == {}
    assert any(
        m.check == DETECTIONS for m in compare("retinaface", "optimized", real, faces, TOLERANCES)
    )


def _mtl(emotion, gaze, au) -> dict:
    return {
        "emotion_probs": np.asarray(emotion, np.float64),
        "gaze": np.asarray(gaze, np.float64),
        "au": np.asarray(au, np.float64),
    }


def test_an_emotion_the_reference_barely_decides_may_flip_a_clear_one_may_not():
    close = [0.41, 0.39, 0.2, 0, 0, 0, 0, 0]
    clear = [0.8, 0.1, 0.1, 0, 0, 0, 0, 0]
    flipped_close = [0.39, 0.41, 0.2, 0, 0, 0, 0, 0]
    flipped_clear = [0.1, 0.8, 0.1, 0, 0, 0, 0, 0]
    ref = {"a": _mtl(close, [0, 0], [0] * 8), "b": _mtl(clear, [0, 0], [0] * 8)}
    reference = ReferenceSet("mtl", ref, {"models": {}})
    ok = {"a": _mtl(flipped_close, [0, 0], [0] * 8), "b": _mtl(clear, [0, 0], [0] * 8)}
    bad = {"a": _mtl(close, [0, 0], [0] * 8), "b": _mtl(flipped_clear, [0, 0], [0] * 8)}
    assert _by_metric(compare("mtl", "optimized", reference, ok, TOLERANCES), "all")[
        "emotion_agreement"
    ].passed
    assert not _by_metric(compare("mtl", "optimized", reference, bad, TOLERANCES), "all")[
        "emotion_agreement"
    ].passed


def test_gaze_and_au_deltas_name_the_face():
    ref = {"a": _mtl([1] + [0] * 7, [0.0, 0.0], [0.1] * 8)}
    cand = {"a": _mtl([1] + [0] * 7, [np.radians(2.0), 0.0], [0.1] * 7 + [0.15])}
    found = _by_metric(
        compare(
            "mtl", "optimized_fp16", ReferenceSet("mtl", ref, {"models": {}}), cand, TOLERANCES
        ),
        "a",
    )
    assert found["gaze_deg"].value == pytest.approx(2.0) and not found["gaze_deg"].passed
    assert found["au_max_abs"].value == pytest.approx(0.05) and not found["au_max_abs"].passed


@pytest.mark.parametrize(("extra_score", "counted"), [(0.03, True), (0.021, False)])
def test_a_case_at_its_own_threshold_counts_faces_just_above_it(extra_score, counted):
    # The @wider cases keep detections down to 0.02: a face the candidate adds at 0.03 is a
    # disagreement there (with the 0.1 borderline fraction, 0.022 and up), one at 0.021 is not.
    real = {"models": {"retinaface": {"weights": {"kind": "real"}}}}
    expected = {"frame": {**_faces([[0, 0, 100, 100]], [0.9]), "confidence": np.array(0.02)}}
    actual = {"frame": _faces([[0, 0, 100, 100], [300, 300, 400, 400]], [0.9, extra_score])}
    reference = ReferenceSet("retinaface", expected, real)
    found = _by_metric(compare("retinaface", "optimized", reference, actual, TOLERANCES))
    assert (found["agreement"].value < 1.0) is counted
