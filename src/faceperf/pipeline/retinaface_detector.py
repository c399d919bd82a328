"""RetinaFace face detection on a frame: preprocess, run the artifact, decode, NMS.

A fixed-size artifact (``optimized``: 640x640) gets the frame letterboxed top-left into its input
and boxes are mapped back by the letterbox scale; a dynamic one (``baseline``) gets the full
frame, or a letterbox of ``input_size`` when one is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np

from faceperf.errors import ArtifactError
from faceperf.models import inputs
from faceperf.models.retinaface import prior_boxes
from faceperf.pipeline.artifact_model import ArtifactModel
from faceperf.pipeline.detection import Detection
from faceperf.pipeline.frames import as_bgr
from faceperf.pipeline.nms import nms
from faceperf.pipeline.profiler import POSTPROCESSING, PREPROCESSING, StageProfiler
from faceperf.pipeline.runner_io import image_input, run_batched
from faceperf.pipeline.stage_names import RETINAFACE
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner

# The checkpoint was trained with these box-coding variances (centre, size).
VARIANCES = (0.1, 0.2)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 4) [x1, y1, x2, y2] in input pixels from ``loc`` offsets against ``priors``.

    Args:
        loc: (N, 4) network offsets (dx, dy, dw, dh).
        priors: (N, 4) [cx, cy, w, h] normalised to the input size.
        size: the input's (width, height) in pixels.
    """
    loc = np.asarray(loc, np.float64)
    priors = np.asarray(priors, np.float64)
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    extent = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    corners = np.hstack([centre - extent / 2, centre + extent / 2])
    return corners * np.tile(np.asarray(size, np.float64), 2)


def decode_landmarks(landms: np.ndarray, priors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 5, 2) landmark points in input pixels from ``landms`` offsets against ``priors``.

    Args:
        landms: (N, 10) network offsets, (dx, dy) per point.
        priors: (N, 4) [cx, cy, w, h] normalised to the input size.
        size: the input's (width, height) in pixels.
    """
    offsets = np.asarray(landms, np.float64).reshape(-1, 5, 2)
    priors = np.asarray(priors, np.float64)
    points = priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]
    return points * np.asarray(size, np.float64)


def encode_boxes(boxes: np.ndarray, priors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The ``loc`` offsets that :func:`decode_boxes` turns into ``boxes`` (its inverse).

    Args:
        boxes: (N, 4) [x1, y1, x2, y2] in input pixels, positive width and height.
        priors: (N, 4) [cx, cy, w, h] normalised to the input size.
        size: the input's (width, height) in pixels.
    """
    normalised = np.asarray(boxes, np.float64) / np.tile(np.asarray(size, np.float64), 2)
    priors = np.asarray(priors, np.float64)
    centre = (normalised[:, :2] + normalised[:, 2:]) / 2
    extent = normalised[:, 2:] - normalised[:, :2]
    dxy = (centre - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:])
    dwh = np.log(extent / priors[:, 2:]) / VARIANCES[1]
    return np.hstack([dxy, dwh])


def encode_landmarks(points: np.ndarray, priors: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The ``landms`` offsets (N, 10) that :func:`decode_landmarks` turns into ``points``.

    Args:
        points: (N, 5, 2) in input pixels.
        priors: (N, 4) [cx, cy, w, h] normalised to the input size.
        size: the input's (width, height) in pixels.
    """
    normalised = np.asarray(points, np.float64) / np.asarray(size, np.float64)
    priors = np.asarray(priors, np.float64)
    offsets = (normalised - priors[:, None, :2]) / (VARIANCES[0] * priors[:, None, 2:])
    return offsets.reshape(-1, 10)


@dataclass(frozen=True)
class RetinaFaceSettings:
    """The detector's thresholds and input size, the application's values by default.

    Args:
        confidence: detections scoring below this are dropped (after NMS).
        nms_threshold: IoU ("+1 pixel" areas) above which a lower-scoring box is suppressed.
        candidate_threshold: anchors scoring at or below this are not decoded.
        input_size: for a dynamic-size artifact, letterbox frames into this square instead of
            feeding them whole; must equal the input size of a fixed-size artifact.
    """

    confidence: float = 0.5
    nms_threshold: float = 0.4
    candidate_threshold: float = 0.02
    input_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("confidence", "nms_threshold", "candidate_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if self.input_size is not None and self.input_size <= 0:
            raise ValueError(f"input_size must be positive, got {self.input_size}")


class RetinaFaceDetector(ArtifactModel):
    """Faces in a BGR frame, from a RetinaFace artifact.

    Args:
        runner: a loaded ``retinaface`` artifact (outputs ``loc``, ``conf``, ``landms``).
        settings: thresholds and input size.
        profiler: times ``RetinaFace_preprocess``, ``RetinaFace_<backend>`` and
            ``RetinaFace_postprocess`` (default: records nothing).
    """

    artifact = "retinaface"
    operation = RETINAFACE

    def __init__(
        self,
        runner: Runner,
        settings: RetinaFaceSettings = RetinaFaceSettings(),
        profiler: StageProfiler | None = None,
    ) -> None:
        self._attach(runner, profiler)
        self.settings = settings
        self.input_size = _letterbox_size(runner, settings.input_size)

    @classmethod
    def open(
        cls,
        ref: ArtifactRef,
        settings: RetinaFaceSettings = RetinaFaceSettings(),
        *,
        profiler: StageProfiler | None = None,
    ) -> Self:
        """The detector on ``<ref.directory>/retinaface/<ref.variant>``."""
        return cls(ref.open(cls.artifact), settings, profiler=profiler)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a BGR uint8 frame (H, W, 3), best score first.

        Args:
            frame: an OpenCV BGR uint8 image.
        """
        with self.profiler.stage(self.names.preprocess, PREPROCESSING):
            frame = as_bgr(frame)
            batch = inputs.retinaface_input(frame, self.input_size)
        outputs = run_batched(self.runner, batch, self.profiler, self.names.inference)
        with self.profiler.stage(self.names.postprocess, POSTPROCESSING):
            return self._postprocess(outputs, frame.shape[:2], batch.shape[2:])

    def _postprocess(
        self,
        outputs: dict[str, np.ndarray],
        frame_hw: tuple[int, int],
        input_hw: tuple[int, int],
    ) -> list[Detection]:
        height, width = input_hw
        scores = np.asarray(outputs["conf"][0, :, 1], np.float64)
        # The application runs NMS on every anchor above candidate_threshold and applies the
        # confidence after. Greedy NMS decides a box only from higher-scoring kept boxes, so
        # boxes below the confidence cannot change which boxes above it survive: dropping them
        # first gives the same detections and shrinks NMS from hundreds of candidates to tens.
        candidates = np.flatnonzero(
            (scores > self.settings.candidate_threshold) & (scores >= self.settings.confidence)
        )
        priors = prior_boxes(height, width)[candidates]
        size = (width, height)
        boxes = decode_boxes(outputs["loc"][0, candidates], priors, size)
        keep = nms(boxes, scores[candidates], self.settings.nms_threshold, plus_one=True)
        points = decode_landmarks(outputs["landms"][0, candidates[keep]], priors[keep], size)
        # The letterbox put the frame at the top-left, so mapping back is a pure scale.
        scale = 1.0 if self.input_size is None else inputs.letterbox_scale(*frame_hw, height)
        return [
            Detection(box=box / scale, score=score, landmarks=marks / scale)
            for box, score, marks in zip(boxes[keep], scores[candidates[keep]], points, strict=True)
        ]


def _letterbox_size(runner: Runner, requested: int | None) -> int | None:
    """The square the frame is letterboxed into, or None to feed the full frame."""
    info = image_input(runner)
    height, width = info.shape[2:]
    fixed = [isinstance(d, int) for d in (height, width)]
    if not any(fixed):
        return requested
    if not all(fixed) or height != width:
        raise ArtifactError(
            f"{runner.source}: input {info.name!r} has shape {info.shape}; the detector "
            "letterboxes into a fixed square or feeds a fully dynamic height and width"
        )
    if requested is not None and requested != height:
        raise ValueError(
            f"input_size {requested} differs from the artifact's fixed {height}x{width} input"
        )
    return height
