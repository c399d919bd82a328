"""Tracking jitter: how much a subject's answer trembles between near-identical frames.

The other checks judge each frame on its own, so a reconversion whose landmarks or boxes tremble
from frame to frame passes them all. Here each subject runs the clips of ``clips.CLIPS`` (a
still camera: sensor noise, flicker and known sub-pixel shifts; and one slow known motion) and
the jitter is measured and judged by parity with the reference's:

- **star** (``jitter[landmarks]``): the 98 points as the Face Mirror loop gets them on a frame
  where RetinaFace runs: the frame's RetinaFace box (``RetinaFaceDetector``), cropped and mapped
  back by ``StarLandmarker``. The boxes are the reference's own (its baseline RetinaFace's,
  stored with the jitter references), so the candidate's STAR sees exactly the crops the
  reference's saw and STAR is judged alone, as in its per-face cases.
- **retinaface** (``jitter[boxes]``): the two corners of the candidate's own detection of the
  clip's face (the detection that overlaps the face's known box most, at IoU >= 0.5; a frame
  without one leaves the jitter undefined, which fails).

Jitter = mean, over consecutive frame pairs and points (the 98 landmarks; the box's top-left and
bottom-right corners), of the Euclidean displacement of each point after mapping every frame's
points back into the photograph through the inverse of that frame's known transform (which
removes the true motion), in % of a scale: the reference's mean outer-eye-corner distance (WFLW
points 60 and 72) for landmarks, its mean box size sqrt(w h) for boxes, both in photograph
pixels and the same for reference and candidate, as NME normalises by the reference's eyes.
The candidate may not exceed the reference's jitter by more than the ``[jitter]`` margin of
tolerances.toml (``ParityLimit``). The loop's 3-frame smoothing is left out: it is a setting of
the application, not of the artifacts, and a 3-frame mean divides the frame-to-frame change of
noise that is independent from frame to frame by 3.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from faceperf.accuracy.cases import Candidate, Outputs
from faceperf.accuracy.clips import CLIPS, Clip, make_clip, to_photo, zoom
from faceperf.accuracy.compare import JITTER, SAME_FACE_IOU, Measurement, OutputMismatchError
from faceperf.accuracy.metrics import WFLW_LEFT_EYE_CORNER, WFLW_RIGHT_EYE_CORNER
from faceperf.accuracy.references import JITTER_SUBJECTS, ReferenceSet
from faceperf.accuracy.tolerances import Tolerances
from faceperf.fixtures.samples import RETINAFACE_SIZE
from faceperf.pipeline.boxes import overlap_matrix
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector, RetinaFaceSettings

# subject -> (the output whose points jitter, the [jitter] margin key); references.py stores a
# jitter reference for each of them.
_POINTS: dict[str, tuple[str, str]] = {
    "star": ("landmarks", "landmarks_margin_pct"),
    "retinaface": ("boxes", "boxes_margin_pct"),
}
# What a jitter reference stores per clip besides the subject's outputs (the frames' sha256 for
# whoever needs to know whether their frames are bit for bit the reference's; not checked).
SCALE, VALUE, TRANSFORMS, DIGEST = "scale", "jitter", "transforms", "frames_sha256"


def metric_name(subject: str) -> str:
    return f"jitter[{_POINTS[subject][0]}]"


def clips() -> list[Clip]:
    """Every jitter clip, made (once per process) from its recipe."""
    return [make_clip(recipe) for recipe in CLIPS]


def open_detector(candidate: Candidate) -> RetinaFaceDetector:
    """The candidate's RetinaFace as the accuracy cases run it (letterboxed to 640, threshold
    0.5)."""
    runner = candidate.open("retinaface")
    return RetinaFaceDetector(runner, RetinaFaceSettings(input_size=RETINAFACE_SIZE))


def detect_faces(detector: RetinaFaceDetector, clip: Clip) -> np.ndarray:
    """(T, 4) the box of the clip's face in each frame: the detection overlapping the face's
    known box most; a row of NaN where none overlaps it at ``SAME_FACE_IOU``."""
    boxes = np.full((len(clip.frames), 4), np.nan)
    for t, frame in enumerate(clip.frames):
        found = detector.detect(frame)
        if not found:
            continue
        detected = np.array([d.box for d in found], np.float64)
        overlap = overlap_matrix(detected, clip.face_boxes[t][None])[:, 0]
        best = int(np.argmax(overlap))
        if overlap[best] >= SAME_FACE_IOU:
            boxes[t] = detected[best]
    return boxes


def star_landmarks(landmarker: StarLandmarker, clip: Clip, boxes: np.ndarray) -> np.ndarray:
    """(T, 98, 2) the landmarks of each frame, cropped from ``boxes[t]``."""
    pairs = zip(clip.frames, boxes, strict=True)
    return np.stack([landmarker.landmarks(frame, box[None])[0] for frame, box in pairs])


def run_jitter(
    subject: str, candidate: Candidate, star_boxes: Mapping[str, np.ndarray] | None = None
) -> Outputs:
    """Each clip's outputs of ``subject`` on ``candidate``: ``{clip: {"boxes"[, "landmarks"]}}``.

    Args:
        subject: ``star`` or ``retinaface``.
        candidate: the artifacts to run.
        star_boxes: STAR's box per clip and frame (the reference's); STAR needs them.
    """
    if subject == "retinaface":
        detector = open_detector(candidate)
        return {clip.name: {"boxes": detect_faces(detector, clip)} for clip in clips()}
    if subject != "star":
        raise KeyError(f"{subject!r} has no jitter check; expected {', '.join(JITTER_SUBJECTS)}")
    landmarker = StarLandmarker(candidate.open("star"))
    outputs: Outputs = {}
    for clip in clips():
        if star_boxes is None or clip.name not in star_boxes:
            raise ValueError(f"STAR's jitter needs the reference's boxes of {clip.name}")
        boxes = np.asarray(star_boxes[clip.name], np.float64)
        outputs[clip.name] = {"boxes": boxes, "landmarks": star_landmarks(landmarker, clip, boxes)}
    return outputs


def reference_boxes(detected: np.ndarray, clip: Clip) -> tuple[np.ndarray, str]:
    """The boxes STAR's jitter reference crops from, and where they come from: the baseline
    RetinaFace's detections, or, when it misses the face in any frame (an untrained surrogate
    finds no real faces), the face's known box in every frame, so that a clip's crops come from
    one source."""
    if np.isnan(detected).any():
        return np.array(clip.face_boxes), "fixture face box"
    return detected, "retinaface"


def photo_points(subject: str, arrays: Mapping[str, np.ndarray], clip: Clip) -> np.ndarray:
    """(T, K, 2) the subject's jittering points, mapped back into the photograph."""
    if subject == "star":
        points = np.asarray(arrays["landmarks"], np.float64)
    else:
        points = np.asarray(arrays["boxes"], np.float64).reshape(-1, 2, 2)
    return to_photo(points, clip.transforms)


def jitter_scale(subject: str, arrays: Mapping[str, np.ndarray], clip: Clip) -> float:
    """The normaliser, in photograph pixels: mean outer-eye-corner distance (landmarks) or mean
    box size sqrt(w h) (boxes) over the clip's frames."""
    if subject == "star":
        points = photo_points(subject, arrays, clip)
        eyes = points[:, WFLW_LEFT_EYE_CORNER] - points[:, WFLW_RIGHT_EYE_CORNER]
        return float(np.mean(np.hypot(eyes[:, 0], eyes[:, 1])))
    boxes = np.asarray(arrays["boxes"], np.float64)
    sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return float(np.mean(sides / zoom(clip.transforms)))


def jitter_pct(subject: str, arrays: Mapping[str, np.ndarray], clip: Clip, scale: float) -> float:
    """Mean frame-to-frame displacement of the subject's points, true motion removed, in % of
    ``scale``; NaN when a frame has no answer (a lost face)."""
    points = photo_points(subject, arrays, clip)
    steps = np.diff(points, axis=0)
    return float(np.mean(np.hypot(steps[..., 0], steps[..., 1]))) / scale * 100.0


def reference_outputs(subject: str, outputs: Outputs) -> Outputs:
    """``outputs`` (the baseline's) with what a jitter reference stores for each clip: its
    scale, its jitter, the clip's transforms and the frames' sha256."""
    stored: Outputs = {}
    for clip in clips():
        arrays = dict(outputs[clip.name])
        scale = jitter_scale(subject, arrays, clip)
        arrays[SCALE] = np.array(scale)
        arrays[VALUE] = np.array(jitter_pct(subject, arrays, clip, scale))
        arrays[TRANSFORMS] = np.array(clip.transforms)
        arrays[DIGEST] = np.array(clip.digest)
        stored[clip.name] = arrays
    return stored


def judge_jitter(
    subject: str, variant: str, reference: Outputs, candidate: Outputs, tolerances: Tolerances
) -> list[Measurement]:
    """One ``jitter[...]`` Measurement per clip: the candidate's jitter against the reference's
    plus the ``[jitter]`` margin.

    Args:
        subject: ``star`` or ``retinaface``.
        variant: the candidate's variant (the margin may differ per variant).
        reference: the jitter reference's outputs (``reference_outputs``).
        candidate: ``run_jitter``'s outputs for the candidate.
        tolerances: where the margins come from.
    """
    output, key = _POINTS[subject]
    found = []
    for clip in clips():
        if clip.name not in candidate or output not in candidate[clip.name]:
            raise OutputMismatchError(f"{subject} {variant}: no {output} for clip {clip.name}")
        stored = reference[clip.name]
        value = jitter_pct(subject, candidate[clip.name], clip, float(stored[SCALE]))
        limit = tolerances.parity(JITTER, key, variant, metric_name(subject), float(stored[VALUE]))
        found.append(Measurement(subject, variant, JITTER, clip.name, limit.metric, value, limit))
    return found


def measure_jitter(
    subject: str, candidate: Candidate, reference: ReferenceSet, tolerances: Tolerances
) -> list[Measurement]:
    """Run ``subject``'s clips on ``candidate`` and judge its jitter against ``reference``, the
    subject's jitter reference (``ReferenceSet.jitter``, whose recipes ``read_reference`` has
    checked against today's clips)."""
    return measure_jitter_outputs(subject, candidate, reference, tolerances)[0]


def measure_jitter_outputs(
    subject: str, candidate: Candidate, reference: ReferenceSet, tolerances: Tolerances
) -> tuple[list[Measurement], Outputs]:
    """``measure_jitter``'s measurements and the candidate's clip outputs they were judged on
    (``run_jitter``'s), which the accuracy report draws without running the clips again."""
    star_boxes = None
    if subject == "star":
        star_boxes = {name: arrays["boxes"] for name, arrays in reference.outputs.items()}
    outputs = run_jitter(subject, candidate, star_boxes)
    found = judge_jitter(subject, candidate.variant, reference.outputs, outputs, tolerances)
    return found, outputs
