"""Comparing a candidate's outputs with the reference: one Measurement per case and metric.

Each subject is judged on its task metric (detection agreement and IoU, landmark NME, AU, gaze
and emotion deltas) and on the SNR of its raw output tensors; the limits come from the
tolerances file. Faces whose score or emotion sits within a small band of a decision threshold
may legitimately flip under FP16 rounding, so they are not counted as disagreements; every other
face is. (The ``ranges`` check judges the candidate's outputs alone, in ranges.py; the
``jitter`` check runs clips of its own, in jitter.py; the ``bins`` check faces at known sizes
and poses, in bins.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceperf.accuracy import metrics
from faceperf.accuracy.cases import Outputs
from faceperf.accuracy.references import ReferenceSet
from faceperf.accuracy.tolerances import Bounds, Limit, Tolerances
from faceperf.errors import FaceperfError
from faceperf.pipeline.mtcnn_detector import FACENET_DEFAULTS

TENSORS, DETECTIONS, LANDMARKS, MULTITASK = "tensors", "detections", "landmarks", "multitask"
RANGES = "ranges"  # the candidate's outputs within their absolute ranges (ranges.py)
JITTER = "jitter"  # frame-to-frame trembling on still and slowly moving clips (jitter.py)
BINS = "bins"  # accuracy per face size and pose (bins.py)
CHECKS: dict[str, tuple[str, ...]] = {
    "retinaface": (TENSORS, DETECTIONS, RANGES, JITTER, BINS),
    "star": (TENSORS, LANDMARKS, RANGES, JITTER, BINS),
    "mtl": (TENSORS, MULTITASK, RANGES, BINS),
    "mtcnn": (TENSORS, DETECTIONS, RANGES, BINS),
}
# The checks that run frames of their own (STAR: 36 calls for the jitter clips, 20 for the
# bins) on top of the fixture cases: the fault catalogue runs them only for the faults that
# name them.
COSTLY_CHECKS = (JITTER, BINS)
# The score a detection must reach to be reported, per detector (the pipeline's defaults).
DETECTION_CONFIDENCE = {"retinaface": 0.5, "mtcnn": FACENET_DEFAULTS.thresholds[2]}
# A detection pairs with a reference face (or a known face box: jitter.py, bins.py) at this IoU;
# min_iou then judges how well it agrees.
SAME_FACE_IOU = 0.5
ALL_CASES = "all"


class OutputMismatchError(FaceperfError, ValueError):
    """The candidate's outputs cannot be set against the reference's: cases or outputs missing,
    or another shape. A ValueError too, as it was before it named the candidate's fault."""


@dataclass(frozen=True)
class Measurement:
    """One metric of one case against its limit (a range's ``Bounds`` for ``range[...]``)."""

    subject: str
    variant: str
    check: str
    case: str
    metric: str
    value: float
    limit: Limit | Bounds

    @property
    def passed(self) -> bool:
        return self.limit.allows(self.value)

    def describe(self) -> str:
        verdict = "ok" if self.passed else "FAILS"
        return (
            f"{self.subject} {self.variant} [{self.case}] {self.metric} = "
            f"{self.value:.4g}{self.limit.unit} (limit {self.limit.describe()}): {verdict}"
        )


def worst_by_metric(measurements: list[Measurement]) -> list[Measurement]:
    """The worst measurement of each metric, in first-seen order: the margin to its limit."""
    worst: dict[str, Measurement] = {}
    for m in measurements:
        seen = worst.get(m.metric)
        if seen is None or m.limit.severity(m.value) > seen.limit.severity(seen.value):
            worst[m.metric] = m
    return list(worst.values())


def unjudged_checks(reference: ReferenceSet) -> dict[str, str]:
    """Checks that say nothing about the weights the reference was built from, with why."""
    surrogate = any(weights.is_surrogate for weights in reference.weights.values())
    unjudged = {}
    if reference.subject == "retinaface" and surrogate:
        unjudged[DETECTIONS] = (
            "the RetinaFace surrogate is untrained: its 'faces' are anchors scoring "
            "near the 0.5 threshold whose boxes move with any rounding, so detection agreement "
            "measures nothing here; its raw outputs are still gated by SNR. Drop in the real "
            "checkpoint (weights/README.md) to gate detections"
        )
        unjudged[JITTER] = (
            "the RetinaFace surrogate finds no real face whose box could tremble; drop in the "
            "real checkpoint (weights/README.md) to gate box jitter"
        )
        unjudged[BINS] = (
            "the RetinaFace surrogate finds no real face at any size or pose; drop in the real "
            "checkpoint (weights/README.md) to gate detection per face size and pose"
        )
    return unjudged


def compare(
    subject: str, variant: str, reference: ReferenceSet, candidate: Outputs, tolerances: Tolerances
) -> list[Measurement]:
    """Every measurement of ``candidate`` against ``reference`` for one subject and variant."""
    expected = reference.outputs
    missing = sorted(set(expected) - set(candidate))
    if missing:
        raise OutputMismatchError(
            f"{subject} {variant}: the candidate has no outputs for {missing}"
        )
    judge = _Judge(subject, variant, tolerances)
    skipped = unjudged_checks(reference)
    found = _tensors(judge, expected, candidate)
    if subject in DETECTION_CONFIDENCE and DETECTIONS not in skipped:
        found += _detections(judge, expected, candidate)
    elif subject == "star":
        found += _landmarks(judge, expected, candidate)
    elif subject == "mtl":
        found += _multitask(judge, expected, candidate)
    return found


@dataclass(frozen=True)
class _Judge:
    subject: str
    variant: str
    tolerances: Tolerances

    def measure(
        self, check: str, case: str, metric: str, value: float, section: str, key: str
    ) -> Measurement:
        limit = self.tolerances.limit(section, key, self.variant)
        return Measurement(self.subject, self.variant, check, case, metric, float(value), limit)

    def value(self, section: str, key: str) -> float:
        return self.tolerances.value(section, key, self.variant)


def _tensors(judge: _Judge, reference: Outputs, candidate: Outputs) -> list[Measurement]:
    found = []
    for case, arrays in reference.items():
        anchors = arrays.get("anchors")
        for name, expected in arrays.items():
            if not name.startswith("tensor/"):
                continue
            actual = candidate[case][name]
            if anchors is not None:
                actual = actual[anchors]
            output = name.removeprefix("tensor/")
            snr = metrics.snr_db(expected, _same_shape(actual, expected, case, output))
            found.append(
                judge.measure(TENSORS, case, f"snr_db[{output}]", snr, "snr_db", judge.subject)
            )
    return found


def _same_shape(actual: np.ndarray, expected: np.ndarray, case: str, name: str) -> np.ndarray:
    if actual.shape != expected.shape:
        raise OutputMismatchError(
            f"[{case}] output {name!r} has shape {actual.shape}, the reference {expected.shape}"
        )
    return actual


def _detections(judge: _Judge, reference: Outputs, candidate: Outputs) -> list[Measurement]:
    borderline = judge.value("detection", "borderline_fraction")
    found, every_iou = [], []
    for case, expected in reference.items():
        if "boxes" not in expected:
            continue
        threshold = float(expected.get("confidence", DETECTION_CONFIDENCE[judge.subject]))
        confident = threshold * (1.0 + borderline)
        actual = candidate[case]
        match = metrics.match_detections(actual["boxes"], expected["boxes"], SAME_FACE_IOU)
        ref_sure = expected["scores"] >= confident
        cand_sure = actual["scores"] >= confident
        # A pair counts when either side is sure of it; an unmatched face only when it is sure.
        ious = [
            iou
            for (p, r), iou in zip(match.pairs, match.ious, strict=True)
            if ref_sure[r] or cand_sure[p]
        ]
        every_iou += ious
        counted = len(ious)
        missed = sum(ref_sure[r] for r in match.unmatched_ref)
        extra = sum(cand_sure[p] for p in match.unmatched_pred)
        faces = counted + missed + extra
        agreement = counted / faces if faces else 1.0
        found.append(
            judge.measure(DETECTIONS, case, "agreement", agreement, "detection", "agreement")
        )
        found.append(
            judge.measure(
                DETECTIONS, case, "min_iou", min(ious, default=1.0), "detection", "min_iou"
            )
        )
    mean_iou = float(np.mean(every_iou)) if every_iou else 1.0
    found.append(
        judge.measure(DETECTIONS, ALL_CASES, "mean_iou", mean_iou, "detection", "mean_iou")
    )
    return found


def _landmarks(judge: _Judge, reference: Outputs, candidate: Outputs) -> list[Measurement]:
    cases = list(reference)
    expected = np.stack([reference[c]["landmarks"] for c in cases])
    actual = np.stack([candidate[c]["landmarks"] for c in cases])
    # The reference's own outer eye corners normalise: the error the candidate adds to any
    # ground truth is at most this (triangle inequality), face by face.
    nmes = metrics.nme(actual, expected) * 100.0
    found = [
        judge.measure(LANDMARKS, case, "nme_pct", value, "landmarks", "nme_max_pct")
        for case, value in zip(cases, nmes, strict=True)
    ]
    found.append(
        judge.measure(
            LANDMARKS, ALL_CASES, "nme_mean_pct", float(np.mean(nmes)), "landmarks", "nme_mean_pct"
        )
    )
    return found


def _multitask(judge: _Judge, reference: Outputs, candidate: Outputs) -> list[Measurement]:
    cases = list(reference)

    def stack(outputs: Outputs, name: str) -> np.ndarray:
        return np.stack([outputs[c][name] for c in cases])

    au_ref, au_cand = stack(reference, "au"), stack(candidate, "au")
    gaze = metrics.gaze_angle_deg(stack(reference, "gaze"), stack(candidate, "gaze"))
    found = []
    for i, case in enumerate(cases):
        delta = metrics.au_deltas(au_ref[i], au_cand[i])
        found.append(
            judge.measure(MULTITASK, case, "au_max_abs", delta.max_abs, "multitask", "au_max_abs")
        )
        found.append(
            judge.measure(MULTITASK, case, "gaze_deg", gaze[i], "multitask", "gaze_max_deg")
        )
    overall = metrics.au_deltas(au_ref, au_cand)
    found.append(
        judge.measure(
            MULTITASK, ALL_CASES, "au_mean_abs", overall.mean_abs, "multitask", "au_mean_abs"
        )
    )
    agreement = metrics.decided_emotion_agreement(
        stack(reference, "emotion_probs"),
        stack(candidate, "emotion_probs"),
        judge.value("multitask", "emotion_margin"),
    )
    found.append(
        judge.measure(
            MULTITASK, ALL_CASES, "emotion_agreement", agreement, "multitask", "emotion_agreement"
        )
    )
    return found
