"""The Face Mirror frame loop: detect, track, landmark, mirror and analyse every frame.

Per frame, as the Face Mirror application runs it:

1. RetinaFace runs on frame 0, on the frame after tracking was lost, and otherwise every
   ``interval`` frames. Between detections the face box follows the previous frame's landmarks.
2. STAR runs once, on that one box. Its landmarks are smoothed by a moving average of the last
   ``smoothing`` (3) frames of the same track.
3. The frame is mirrored across the face midline (glabella to chin) into a left-mirrored and a
   right-mirrored face, cropped to the box (timed as ``Mirror_preprocess``).
4. MTL runs on both mirrored faces (two model calls).

Definitions this module makes precise (the application's text leaves them open):

- **Tracking box.** Between detections STAR gets a square centred on the bounding box of the
  previous frame's raw landmarks, of side ``track_margin`` (1.1) x its larger side. The 98 WFLW
  points span the face from contour to contour and brows to chin, about what a RetinaFace box
  spans, and the 10 % margin keeps a face that moved a few pixels since the previous frame
  inside STAR's crop. Raw rather than smoothed landmarks are followed: the average lags a moving
  head.
- **Which face.** The first detection of a track takes the highest-scoring face. A scheduled
  re-detection takes the face whose box overlaps the tracked box most (IoU), so a second face
  in the frame does not steal the track; when none overlaps, the tracked face is gone and the
  best face starts a new track.
- **Stable.** At each re-detection that continues the track, the head is stable when the centre
  of the landmark bounding box moved less than ``stable_fraction`` (5 %) of that box's larger
  side since the previous detection. Stable: interval + 1; otherwise interval - 1, within
  [minimum, maximum] (1 and 8, start 2).
- **Tracking lost.** A detection finds no face, or after STAR the landmark bounding box has its
  centre outside the frame, its smaller side below ``min_face_size`` (16 px), or a non-finite
  point. The frame's result is still reported (without MTL attributes when the landmarks
  cannot give a midline); the next frame re-detects, and a new track starts with the interval
  back at its start value and an empty smoothing window.
- **No face.** A detection that finds nothing yields a result with ``detected=True`` and no face
  fields; STAR and MTL do not run on that frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from faceperf.pipeline.boxes import overlap_matrix
from faceperf.pipeline.frames import as_bgr
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.multitask import FaceAttributes, MultitaskAnalyzer
from faceperf.pipeline.profiler import PREPROCESSING, NullProfiler, StageProfiler
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector
from faceperf.pipeline.symmetry import midline, mirror_faces
from faceperf.runtime.artifact_ref import ArtifactRef

MIRROR_OPERATION = "Mirror_preprocess"


class _Detection(Protocol):
    box: np.ndarray
    score: float


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> Sequence[_Detection]: ...


class Landmarker(Protocol):
    def landmarks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...


class Analyzer(Protocol):
    def analyze(self, faces: Sequence[np.ndarray]) -> list[FaceAttributes]: ...


@dataclass(frozen=True)
class DetectionInterval:
    """How often RetinaFace re-detects while tracking: start value and bounds, in frames."""

    start: int = 2
    minimum: int = 1
    maximum: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.start <= self.maximum:
            raise ValueError(
                f"detection interval needs 1 <= minimum <= start <= maximum, got "
                f"minimum={self.minimum} start={self.start} maximum={self.maximum}"
            )


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What the loop reports for one frame.

    Arrays are read-only float64. Face fields are None on a frame where no face was found.
    Equality is identity (arrays have no single truth value).
    """

    frame: int  # index in the input sequence, from 0
    detected: bool  # RetinaFace ran on this frame
    box: np.ndarray | None  # (4,) [x1, y1, x2, y2]: the box STAR ran on and the crops cover
    landmarks: np.ndarray | None  # (98, 2) smoothed landmarks in frame pixels
    left: FaceAttributes | None  # MTL on the left-mirrored face
    right: FaceAttributes | None  # MTL on the right-mirrored face

    def __post_init__(self) -> None:
        for name, shape in (("box", (4,)), ("landmarks", (98, 2))):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.array(value, np.float64)
            if array.shape != shape:
                raise ValueError(f"FrameResult.{name} has shape {array.shape}, expected {shape}")
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @property
    def has_face(self) -> bool:
        return self.box is not None


@dataclass
class _Track:
    """The loop's state between frames (one per ``run``)."""

    interval: int
    smoothing: int
    box: np.ndarray | None = None  # the box STAR gets next frame; None: detect next frame
    last_detection: int = 0
    anchor: tuple[np.ndarray, float] | None = None  # landmark-box centre and size at detection
    history: deque[np.ndarray] = field(default_factory=deque)

    def restart(self, start: int) -> None:
        self.box = None
        self.anchor = None
        self.interval = start
        self.history = deque(maxlen=self.smoothing)


def _mirrorable(landmarks: np.ndarray) -> bool:
    if not np.all(np.isfinite(landmarks)):
        return False
    top, bottom = midline(landmarks)
    return float(np.hypot(*(bottom - top))) >= 1.0


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """The (4,) bounding box [x1, y1, x2, y2] of (N, 2) points."""
    points = np.asarray(landmarks, np.float64)
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def tracking_box(landmarks: np.ndarray, margin: float = 1.1) -> np.ndarray:
    """The square box STAR gets on the next frame: centred on the landmarks' bounding box,
    side ``margin`` x its larger side.

    Args:
        landmarks: (98, 2) points in frame pixels.
        margin: scale of the square relative to the bounding box's larger side.
    """
    box = landmark_box(landmarks)
    centre = (box[:2] + box[2:]) / 2
    half = margin * float(np.max(box[2:] - box[:2])) / 2
    return np.concatenate([centre - half, centre + half])


@dataclass(frozen=True)
class LoopSettings:
    """The loop's settings, the application's values by default.

    Args:
        interval: the adaptive detection interval (start 2, minimum 1, maximum 8), as a
            DetectionInterval or a (start, minimum, maximum) tuple.
        smoothing: frames in the landmark moving average (1: no smoothing).
        stable_fraction: largest movement of the landmark-box centre between two detections,
            relative to the face size, that still counts as a stable head.
        min_face_size: a landmark box whose smaller side is below this (pixels) has collapsed
            and tracking is lost.
        track_margin: side of the tracking box relative to the landmark box's larger side.
    """

    interval: DetectionInterval = DetectionInterval()
    smoothing: int = 3
    stable_fraction: float = 0.05
    min_face_size: float = 16.0
    track_margin: float = 1.1

    def __post_init__(self) -> None:
        if not isinstance(self.interval, DetectionInterval):
            object.__setattr__(self, "interval", DetectionInterval(*self.interval))
        if self.smoothing < 1:
            raise ValueError(f"smoothing must be >= 1 frame, got {self.smoothing}")
        if self.stable_fraction <= 0 or self.min_face_size <= 0 or self.track_margin <= 0:
            raise ValueError(
                "stable_fraction, min_face_size and track_margin must be positive, got "
                f"{self.stable_fraction}, {self.min_face_size}, {self.track_margin}"
            )


class FaceMirrorLoop:
    """Runs detection, tracking, landmarks, mirroring and MTL over a frame sequence.

    Args:
        detector: has ``detect(frame) -> [Detection(box, score, ...)]`` (RetinaFaceDetector).
        landmarker: has ``landmarks(frame, boxes (K, 4)) -> (K, 98, 2)`` (StarLandmarker).
        analyzer: has ``analyze([BGR crops]) -> [FaceAttributes]`` (MultitaskAnalyzer).
        settings: the detection interval, smoothing and tracking thresholds.
        profiler: times the mirroring as ``Mirror_preprocess``; the model wrappers time
            themselves with the profiler they were built with.
    """

    def __init__(
        self,
        detector: FaceDetector,
        landmarker: Landmarker,
        analyzer: Analyzer,
        settings: LoopSettings = LoopSettings(),
        profiler: StageProfiler | None = None,
    ) -> None:
        self.detector = detector
        self.landmarker = landmarker
        self.analyzer = analyzer
        self.settings = settings
        self.profiler = profiler if profiler is not None else NullProfiler()

    @classmethod
    def open(
        cls,
        ref: ArtifactRef,
        settings: LoopSettings = LoopSettings(),
        *,
        profiler: StageProfiler | None = None,
    ) -> FaceMirrorLoop:
        """The loop over the three models of one artifact reference, all timed by ``profiler``.

        Args:
            ref: the artifact folder, and the variant, backend and threads of all three models.
            settings: the loop's settings.
            profiler: receives every model's operations and ``Mirror_preprocess``.
        """
        profiler = profiler if profiler is not None else NullProfiler()
        return cls(
            RetinaFaceDetector.open(ref, profiler=profiler),
            StarLandmarker.open(ref, profiler=profiler),
            MultitaskAnalyzer.open(ref, profiler=profiler),
            settings,
            profiler=profiler,
        )

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]:
        """One FrameResult per frame, in order; each call starts a fresh track.

        Args:
            frames: BGR uint8 (H, W, 3) frames.
        """
        track = _Track(interval=self.settings.interval.start, smoothing=self.settings.smoothing)
        track.restart(self.settings.interval.start)
        for index, frame in enumerate(frames):
            yield self._step(index, as_bgr(frame, f"frame {index}"), track)

    def _step(self, index: int, frame: np.ndarray, track: _Track) -> FrameResult:
        detected = track.box is None or index - track.last_detection >= track.interval
        continuing = False
        if detected:
            chosen, continuing = self._choose(self.detector.detect(frame), track.box)
            if not continuing:
                track.restart(self.settings.interval.start)
            if chosen is None:
                return FrameResult(index, True, None, None, None, None)
            box = np.asarray(chosen.box, np.float64)
        else:
            box = track.box
        raw = np.asarray(self.landmarker.landmarks(frame, box[None])[0], np.float64)
        track.history.append(raw)
        smoothed = np.mean(np.stack(track.history), axis=0)
        bounds = landmark_box(raw)
        centre = (bounds[:2] + bounds[2:]) / 2
        size = float(np.max(bounds[2:] - bounds[:2]))
        if detected:
            if continuing and track.anchor is not None:
                self._adapt(track, centre, size)
            track.anchor = (centre, size)
            track.last_detection = index
        lost = self._lost(raw, bounds, frame.shape)
        if lost:
            track.restart(self.settings.interval.start)
        else:
            track.box = tracking_box(raw, self.settings.track_margin)
        if not _mirrorable(smoothed):
            # Broken landmarks (non-finite, or no midline) cannot be mirrored: report the box
            # and move on; the track is already lost or ends here.
            track.restart(self.settings.interval.start)
            finite = smoothed if np.all(np.isfinite(smoothed)) else None
            return FrameResult(index, detected, box, finite, None, None)
        with self.profiler.stage(MIRROR_OPERATION, PREPROCESSING):
            left, right = mirror_faces(frame, smoothed, box)
        left_attrs, right_attrs = self.analyzer.analyze([left, right])
        return FrameResult(index, detected, box, smoothed, left_attrs, right_attrs)

    def _choose(
        self, detections: Sequence[_Detection], tracked: np.ndarray | None
    ) -> tuple[_Detection | None, bool]:
        """The detection to follow, and whether it continues the current track."""
        if not detections:
            return None, False
        if tracked is not None:
            boxes = np.array([d.box for d in detections], np.float64).reshape(-1, 4)
            overlaps = overlap_matrix(boxes, np.asarray(tracked, np.float64)[None])[:, 0]
            best = int(np.argmax(overlaps))
            if overlaps[best] > 0.0:
                return detections[best], True
        return max(detections, key=lambda d: d.score), False

    def _adapt(self, track: _Track, centre: np.ndarray, size: float) -> None:
        previous_centre, previous_size = track.anchor
        moved = float(np.hypot(*(centre - previous_centre)))
        if moved < self.settings.stable_fraction * previous_size:
            track.interval = min(track.interval + 1, self.settings.interval.maximum)
        else:
            track.interval = max(track.interval - 1, self.settings.interval.minimum)

    def _lost(self, raw: np.ndarray, bounds: np.ndarray, shape: tuple[int, ...]) -> bool:
        if not np.all(np.isfinite(raw)):
            return True
        height, width = shape[:2]
        cx, cy = (bounds[:2] + bounds[2:]) / 2
        inside = 0.0 <= cx < width and 0.0 <= cy < height
        return not inside or float(np.min(bounds[2:] - bounds[:2])) < self.settings.min_face_size
