"""What the accuracy suite runs: each subject's named cases on the fixtures, through the pipeline.

A subject is what one reference file covers: ``retinaface``, ``star``, ``mtl``, or ``mtcnn`` (its
three nets together, since a detection needs all three). Each subject runs its fixture cases
through the pipeline's own pre- and post-processing (so a fault there shows up), keeping both
the raw output tensors of the model calls and the decoded results. Outputs are plain
``{case: {name: array}}`` dictionaries, the shape the reference files store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceperf.fixtures import faces as fixture_faces
from faceperf.fixtures.samples import RETINAFACE_SIZE
from faceperf.models import inputs
from faceperf.pipeline.detection import Detection
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.mtcnn_detector import (
    FACENET_DEFAULTS,
    OPENFACE_PRESET,
    AreaSampler,
    MTCNNDetector,
    level_size,
    pyramid_scales,
)
from faceperf.pipeline.multitask import MultitaskAnalyzer
from faceperf.pipeline.profiler import NullProfiler
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector, RetinaFaceSettings
from faceperf.pipeline.runner_io import run_batched
from faceperf.pipeline.video import synthetic_frames
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner

Outputs = dict[str, dict[str, np.ndarray]]

SUBJECT_MODELS: dict[str, tuple[str, ...]] = {
    "retinaface": ("retinaface",),
    "star": ("star",),
    "mtl": ("mtl",),
    "mtcnn": ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"),
}
SUBJECTS = tuple(SUBJECT_MODELS)
# Frames of the synthetic Face Mirror clip (seed 0) that join the photographs as detector cases:
# moving faces on a textured background, at 1080p.
CLIP_FRAMES = 3
# RetinaFace emits 16,800 anchors per image; the reference keeps the ones that matter (best
# scores) plus an even sample of the rest, so its file stays small and its SNR representative.
RETINAFACE_TOP_ANCHORS = 256
RETINAFACE_ANCHOR_STRIDE = 32
# RetinaFace's published WIDER FACE figures keep every detection down to score 0.02: the
# photographs are also checked at that threshold (case ``<image>@wider``), where the weak boxes
# around each face show what the decode and NMS do (NMS at 0.6 instead of 0.4 keeps 2-5 more).
WIDER_CONFIDENCE = 0.02
WIDER_SUFFIX = "@wider"
# The MTCNN nets' own cases (see mtcnn_net_inputs).
MTCNN_TENSOR_CASES = {
    "mtcnn_pnet": "pnet@scene1",
    "mtcnn_rnet": "rnet@faces",
    "mtcnn_onet": "onet@faces",
}


class RecordingRunner(Runner):
    """Runs another runner and keeps every call's outputs, in call order."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.source = inner.source
        self.inputs = inner.inputs
        self.outputs = inner.outputs
        self.calls: list[dict[str, np.ndarray]] = []

    def _run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.inner.run(feeds)
        self.calls.append({k: np.array(v, np.float32) for k, v in outputs.items()})
        return outputs

    @property
    def executed_on(self) -> tuple[str, ...]:
        return self.inner.executed_on

    def rows(self, name: str) -> np.ndarray:
        """Output ``name`` of every call stacked along the batch axis."""
        return np.concatenate([call[name] for call in self.calls])


@dataclass(frozen=True)
class Candidate:
    """Where the artifacts under test come from and how they run."""

    directory: Path
    variant: str
    backend: str = "ort-cpu"
    threads: int | None = None

    @property
    def ref(self) -> ArtifactRef:
        """The folder, variant, backend and threads as the one artifact loader takes them."""
        return ArtifactRef(self.directory, self.variant, self.backend, self.threads)

    def open(self, model: str) -> RecordingRunner:
        return RecordingRunner(self.ref.open(model))


def photo_names() -> list[str]:
    return fixture_faces.image_names()


def clip_frames() -> dict[str, np.ndarray]:
    """The synthetic clip's frames used as cases, named ``clip#<index>``."""
    return {f"clip#{i}": frame for i, frame in enumerate(synthetic_frames(CLIP_FRAMES, seed=0))}


def photos() -> dict[str, np.ndarray]:
    """Every fixture photograph and scene, each decoded once."""
    return {name: fixture_faces.load_image(name) for name in photo_names()}


def detector_frames() -> dict[str, np.ndarray]:
    """Every frame a detector is checked on: the photographs and scenes, then the clip."""
    return {**photos(), **clip_frames()}


def face_cases() -> list[tuple[str, str, np.ndarray]]:
    """(case, image, box) for every reference face: case ``<image>#<k>``."""
    return [
        (f"{name}#{k}", name, face.box)
        for name in photo_names()
        for k, face in enumerate(fixture_faces.reference_faces(name))
    ]


def _detections(found: list[Detection]) -> dict[str, np.ndarray]:
    return {
        "boxes": np.array([d.box for d in found], np.float64).reshape(-1, 4),
        "scores": np.array([d.score for d in found], np.float64),
        "landmarks": np.array([d.landmarks for d in found], np.float64).reshape(-1, 5, 2),
    }


def run_retinaface(candidate: Candidate) -> Outputs:
    runner = candidate.open("retinaface")
    detector = RetinaFaceDetector(runner, RetinaFaceSettings(input_size=RETINAFACE_SIZE))
    wider = RetinaFaceDetector(
        runner, RetinaFaceSettings(input_size=RETINAFACE_SIZE, confidence=WIDER_CONFIDENCE)
    )
    outputs: Outputs = {}
    for case, frame in detector_frames().items():
        found = detector.detect(frame)
        raw = runner.calls[-1]
        outputs[case] = {
            **_detections(found),
            **{f"tensor/{name}": value[0] for name, value in raw.items()},
        }
    for case, frame in photos().items():
        outputs[f"{case}{WIDER_SUFFIX}"] = {
            **_detections(wider.detect(frame)),
            "confidence": np.array(WIDER_CONFIDENCE),
        }
    return outputs


def retinaface_anchor_sample(scores: np.ndarray) -> np.ndarray:
    """The anchors a reference keeps: the best-scoring ones and every Nth of the rest."""
    best = np.argsort(-scores, kind="stable")[:RETINAFACE_TOP_ANCHORS]
    even = np.arange(0, len(scores), RETINAFACE_ANCHOR_STRIDE)
    return np.union1d(best, even)


def run_star(candidate: Candidate) -> Outputs:
    runner = candidate.open("star")
    landmarker = StarLandmarker(runner)
    frames = photos()
    outputs: Outputs = {}
    for case, image, box in face_cases():
        points = landmarker.landmarks(frames[image], box[None])
        outputs[case] = {
            "landmarks": points[0],
            "tensor/landmarks": runner.calls[-1]["landmarks"][0],
        }
    return outputs


def run_mtl(candidate: Candidate) -> Outputs:
    runner = candidate.open("mtl")
    analyzer = MultitaskAnalyzer(runner)
    cases = face_cases()
    frames = photos()
    crops = [inputs.crop_box(frames[image], box) for _, image, box in cases]
    found = analyzer.analyze(crops)
    raw = {name: runner.rows(name)[: len(cases)] for name in ("emotion", "gaze", "au")}
    outputs: Outputs = {}
    for i, ((case, _, _), attributes) in enumerate(zip(cases, found, strict=True)):
        outputs[case] = {
            "emotion_probs": attributes.emotion_probs,
            "gaze": np.array(attributes.gaze, np.float64),
            "au": np.array(list(attributes.aus.values()), np.float64),
            **{f"tensor/{name}": value[i] for name, value in raw.items()},
        }
    return outputs


def run_mtcnn(candidate: Candidate) -> Outputs:
    runners = [candidate.open(model) for model in SUBJECT_MODELS["mtcnn"]]
    # One worker: the cascade's results do not depend on it, and tests should not spawn threads.
    detector = MTCNNDetector(*runners, params=FACENET_DEFAULTS, workers=1)
    outputs: Outputs = {}
    for case, frame in detector_frames().items():
        outputs[case] = _detections(detector.detect(frame))
    # Each net also runs alone on fixed inputs made by the pipeline's sampler: a net's fault must
    # not hide behind the cascade (a weaker P-Net changes which crops R-Net sees, so cascade
    # tensors cannot be compared).
    for model, runner in zip(SUBJECT_MODELS["mtcnn"], runners, strict=True):
        batch = mtcnn_net_inputs(model)
        runner.calls.clear()
        run_batched(runner, batch, NullProfiler(), model)
        names = [t.name for t in runner.outputs]
        rows = {name: runner.rows(name)[: len(batch)] for name in names}
        outputs[MTCNN_TENSOR_CASES[model]] = {f"tensor/{n}": v for n, v in rows.items()}
    return outputs


def mtcnn_net_inputs(model: str) -> np.ndarray:
    """P-Net: scene1's first pyramid level at min face 60 (the Face Mirror setting); R-Net and
    O-Net: every reference face, square, at 24 and 48 pixels. Sampled as the cascade samples."""
    if model == "mtcnn_pnet":
        frame = fixture_faces.load_image("scene1")
        scale = pyramid_scales(*frame.shape[:2], OPENFACE_PRESET)[0]
        return AreaSampler(frame).resize(*level_size(*frame.shape[:2], scale))
    size = {"mtcnn_rnet": 24, "mtcnn_onet": 48}[model]
    crops = []
    for name in photo_names():
        frame = fixture_faces.load_image(name)
        height, width = frame.shape[:2]
        boxes = np.array([face.box for face in fixture_faces.reference_faces(name)])
        ranges = np.column_stack(
            [
                np.clip(np.floor(boxes[:, :2]), 0, [width - 1, height - 1]),
                np.clip(np.ceil(boxes[:, 2:]), 1, [width, height]),
            ]
        ).astype(np.int64)
        crops.append(AreaSampler(frame).crops(ranges, size))
    return np.concatenate(crops)


RUNNERS: dict[str, Callable[[Candidate], Outputs]] = {
    "retinaface": run_retinaface,
    "star": run_star,
    "mtl": run_mtl,
    "mtcnn": run_mtcnn,
}


def run_subject(subject: str, candidate: Candidate) -> Outputs:
    """Run one subject's cases on ``candidate``'s artifacts."""
    if subject not in RUNNERS:
        raise KeyError(
            f"unknown accuracy subject {subject!r}; expected one of {', '.join(SUBJECTS)}"
        )
    return RUNNERS[subject](candidate)
