"""Accuracy per face size and pose: each subject run on the bins of ``accuracy.poses``, judged bin
by bin against the reference's answers on the same frames.

The other checks report the worst case over the fixtures, whose faces span one range of sizes
(49 to 305 px wide) and are upright, so a conversion that breaks only small faces (a wrong resize
below some size) or only large ones hides. Here every bin (``iod 20px`` ... ``iod 320px``,
``roll -30°`` ... ``roll +30°``, ``mirrored``) is judged on its own, and a failure's case is the
bin's name. Judged by parity with the ``baseline`` variant's answers (the bins references,
``fixtures/references/bins/<subject>.npz``), per bin the worst of its faces:

- **star**, ``bins[nme_pct]``: NME of the 98 points against the reference's, in % of the
  reference's outer-eye-corner distance; the crop comes from the face's known box in the frame
  (``poses.BinFace.box``), as the per-face cases crop from the fixture's box.
- **mtl**, ``bins[au_max_abs]``, ``bins[gaze_deg]``, ``bins[emotion_agreement]``: on the crop of
  the known box, as the per-face cases; emotion only over faces the reference decides clearly
  (``[multitask] emotion_margin``).
- **retinaface**, **mtcnn**, ``bins[missed]`` and ``bins[iou_drop]``: the face is found when a
  detection overlaps its known box at IoU >= ``SAME_FACE_IOU``; ``missed`` counts the faces the
  reference finds surely (score ``[detection] borderline_fraction`` above the threshold) and the
  candidate does not; ``iou_drop`` is how much the candidate's IoU with the known box falls below
  the reference's, over the faces both find. A face only the candidate finds is no failure.

Limits: ``[bins]`` of tolerances.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from faceperf.accuracy import metrics
from faceperf.accuracy.cases import SUBJECT_MODELS, Candidate, Outputs
from faceperf.accuracy.compare import (
    BINS,
    DETECTION_CONFIDENCE,
    SAME_FACE_IOU,
    Measurement,
    OutputMismatchError,
)
from faceperf.accuracy.poses import BINS as RECIPES
from faceperf.accuracy.poses import BinFace, bin_faces
from faceperf.accuracy.references import ReferenceSet
from faceperf.accuracy.tolerances import Tolerances
from faceperf.fixtures.samples import RETINAFACE_SIZE
from faceperf.models import inputs
from faceperf.pipeline.detection import Detection
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.mtcnn_detector import FACENET_DEFAULTS, MTCNNDetector
from faceperf.pipeline.multitask import MultitaskAnalyzer
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector, RetinaFaceSettings

DIGEST = "frame_sha256"  # stored per case for whoever needs it; not checked


def metric(name: str) -> str:
    return f"{BINS}[{name}]"


def run_bins(subject: str, candidate: Candidate) -> Outputs:
    """``subject``'s answers on every bin face: ``{"<bin>|<image>#<k>": {name: array}}``."""
    if subject not in _RUNNERS:
        raise KeyError(
            f"unknown accuracy subject {subject!r}; expected one of {', '.join(_RUNNERS)}"
        )
    return _RUNNERS[subject](candidate, bin_faces())


def _run_star(candidate: Candidate, faces: tuple[BinFace, ...]) -> Outputs:
    landmarker = StarLandmarker(candidate.open("star"))
    return {f.case: {"landmarks": landmarker.landmarks(f.frame, f.box[None])[0]} for f in faces}


def _run_mtl(candidate: Candidate, faces: tuple[BinFace, ...]) -> Outputs:
    analyzer = MultitaskAnalyzer(candidate.open("mtl"))
    found = analyzer.analyze([inputs.crop_box(f.frame, f.box) for f in faces])
    return {
        f.case: {
            "emotion_probs": a.emotion_probs,
            "gaze": np.array(a.gaze, np.float64),
            "au": np.array(list(a.aus.values()), np.float64),
        }
        for f, a in zip(faces, found, strict=True)
    }


def _detections(found: list[Detection]) -> dict[str, np.ndarray]:
    return {
        "boxes": np.array([d.box for d in found], np.float64).reshape(-1, 4),
        "scores": np.array([d.score for d in found], np.float64),
    }


def _run_retinaface(candidate: Candidate, faces: tuple[BinFace, ...]) -> Outputs:
    runner = candidate.open("retinaface")
    detector = RetinaFaceDetector(runner, RetinaFaceSettings(input_size=RETINAFACE_SIZE))
    return {f.case: _detections(detector.detect(f.frame)) for f in faces}


def _run_mtcnn(candidate: Candidate, faces: tuple[BinFace, ...]) -> Outputs:
    runners = [candidate.open(model) for model in SUBJECT_MODELS["mtcnn"]]
    # One worker, as the per-case run: the answer does not depend on it.
    detector = MTCNNDetector(*runners, params=FACENET_DEFAULTS, workers=1)
    return {f.case: _detections(detector.detect(f.frame)) for f in faces}


_RUNNERS: dict[str, Callable[[Candidate, tuple[BinFace, ...]], Outputs]] = {
    "retinaface": _run_retinaface,
    "star": _run_star,
    "mtl": _run_mtl,
    "mtcnn": _run_mtcnn,
}


def reference_outputs(outputs: Outputs) -> Outputs:
    """``outputs`` (the baseline's) with each frame's sha256, as a bins reference stores them."""
    digests = {f.case: f.digest for f in bin_faces()}
    return {case: {**arrays, DIGEST: np.array(digests[case])} for case, arrays in outputs.items()}


def judge_bins(
    subject: str, variant: str, reference: Outputs, candidate: Outputs, tolerances: Tolerances
) -> list[Measurement]:
    """One Measurement per bin and metric: the worst of the bin's faces against the ``[bins]``
    limit, its case the bin's name.

    Args:
        subject: the accuracy subject.
        variant: the candidate's variant (the limits may differ per variant).
        reference: the bins reference's outputs.
        candidate: ``run_bins``'s outputs for the candidate.
        tolerances: where the limits come from.
    """
    judge = _JUDGES[subject]
    found = []
    for recipe in RECIPES:
        faces = [f for f in bin_faces() if f.recipe == recipe]
        for f in faces:
            if f.case not in candidate or f.case not in reference:
                side = "candidate" if f.case in reference else "reference"
                raise OutputMismatchError(f"{subject} {variant}: the {side} has no {f.case}")
        values = judge(faces, reference, candidate, tolerances, variant)
        for name, (value, key) in values.items():
            limit = tolerances.limit(BINS, key, variant)
            found.append(
                Measurement(subject, variant, BINS, recipe.name, metric(name), value, limit)
            )
    return found


_Values = dict[str, tuple[float, str]]  # metric -> (the bin's worst value, its [bins] key)


def _judge_star(
    faces: list[BinFace], reference: Outputs, candidate: Outputs, _: Tolerances, __: str
) -> _Values:
    expected = np.stack([reference[f.case]["landmarks"] for f in faces])
    actual = np.stack([candidate[f.case]["landmarks"] for f in faces])
    return {"nme_pct": (float(np.max(metrics.nme(actual, expected))) * 100.0, "nme_max_pct")}


def _judge_mtl(
    faces: list[BinFace],
    reference: Outputs,
    candidate: Outputs,
    tolerances: Tolerances,
    variant: str,
) -> _Values:
    def stack(outputs: Outputs, name: str) -> np.ndarray:
        return np.stack([outputs[f.case][name] for f in faces])

    au = metrics.au_deltas(stack(reference, "au"), stack(candidate, "au")).max_abs
    gaze = metrics.gaze_angle_deg(stack(reference, "gaze"), stack(candidate, "gaze"))
    agreement = metrics.decided_emotion_agreement(
        stack(reference, "emotion_probs"),
        stack(candidate, "emotion_probs"),
        tolerances.value("multitask", "emotion_margin", variant),
    )
    return {
        "au_max_abs": (au, "au_max_abs"),
        "gaze_deg": (float(np.max(gaze)), "gaze_max_deg"),
        "emotion_agreement": (agreement, "emotion_agreement"),
    }


def face_iou(arrays: Mapping[str, np.ndarray], face: BinFace) -> tuple[float, float]:
    """(IoU, score) of the detection overlapping the face's known box most; (0, 0) for none."""
    boxes = np.asarray(arrays["boxes"], np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return 0.0, 0.0
    ious = metrics.iou_matrix(boxes, face.box[None])[:, 0]
    best = int(np.argmax(ious))
    return float(ious[best]), float(np.asarray(arrays["scores"])[best])


def _detection_judge(subject: str) -> Callable[..., _Values]:
    def judge(
        faces: list[BinFace],
        reference: Outputs,
        candidate: Outputs,
        tolerances: Tolerances,
        variant: str,
    ) -> _Values:
        borderline = tolerances.value("detection", "borderline_fraction", variant)
        sure = DETECTION_CONFIDENCE[subject] * (1.0 + borderline)
        missed, drops = 0, [0.0]
        for f in faces:
            ref_iou, ref_score = face_iou(reference[f.case], f)
            cand_iou, _ = face_iou(candidate[f.case], f)
            if ref_iou < SAME_FACE_IOU:
                continue  # the reference does not find it: nothing to keep
            if cand_iou < SAME_FACE_IOU:
                missed += ref_score >= sure
                continue
            drops.append(ref_iou - cand_iou)
        return {"missed": (float(missed), "missed_max"), "iou_drop": (max(drops), "iou_drop_max")}

    return judge


_JUDGES: dict[str, Callable[..., _Values]] = {
    "star": _judge_star,
    "mtl": _judge_mtl,
    "retinaface": _detection_judge("retinaface"),
    "mtcnn": _detection_judge("mtcnn"),
}


def measure_bins(
    subject: str, candidate: Candidate, reference: ReferenceSet, tolerances: Tolerances
) -> list[Measurement]:
    """Run ``subject`` on the bins and judge it against ``reference``, the subject's bins
    reference (``ReferenceSet.bins``, whose recipes ``read_reference`` has checked)."""
    outputs = run_bins(subject, candidate)
    return judge_bins(subject, candidate.variant, reference.outputs, outputs, tolerances)
