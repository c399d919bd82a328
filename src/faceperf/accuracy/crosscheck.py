"""The two detectors side by side: which faces each finds, and how small a face each still sees.

RetinaFace and MTCNN are different networks with different box conventions (RetinaFace's box
takes in the forehead and chin, MTCNN's is squarer and tighter), so matched boxes agree to an
IoU well below 1 and faces are paired at a looser IoU than the parity checks use. Every
disagreement is listed with its score and size so it can be explained, not averaged away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from faceperf.accuracy import metrics
from faceperf.pipeline.detection import Detection

# Two detectors' boxes around one face overlap at 0.75-0.95 here; 0.3 pairs them while two
# neighbouring faces (IoU 0) never pair.
CROSS_IOU = 0.3
# A face is "found" at a size when a detection overlaps where it was pasted at least this much.
FOUND_IOU = 0.5

Detect = Callable[[np.ndarray], list[Detection]]


@dataclass(frozen=True)
class LoneFace:
    """A face one detector reports and the other does not."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class FrameAgreement:
    """Both detectors on one frame."""

    frame: str
    retinaface: int
    mtcnn: int
    pair_ious: tuple[float, ...]
    retinaface_only: tuple[LoneFace, ...]
    mtcnn_only: tuple[LoneFace, ...]


def compare_detectors(
    frames: Mapping[str, np.ndarray], retinaface: Detect, mtcnn: Detect
) -> list[FrameAgreement]:
    """Run both detectors on every frame and pair their faces one to one."""
    found = []
    for name, frame in frames.items():
        a, b = retinaface(frame), mtcnn(frame)
        boxes_a, boxes_b = _boxes(a), _boxes(b)
        match = metrics.match_detections(boxes_a, boxes_b, CROSS_IOU)
        found.append(
            FrameAgreement(
                frame=name,
                retinaface=len(a),
                mtcnn=len(b),
                pair_ious=tuple(float(i) for i in match.ious),
                retinaface_only=tuple(_lone(a[i]) for i in match.unmatched_pred),
                mtcnn_only=tuple(_lone(b[i]) for i in match.unmatched_ref),
            )
        )
    return found


def smallest_found(
    detect: Detect,
    face: np.ndarray,
    heights: Sequence[int],
    frame_size: tuple[int, int] = (1080, 1920),
) -> int | None:
    """The smallest face height (frame pixels) at which ``detect`` still finds ``face``.

    ``face`` (a BGR crop whose box is the whole crop) is resized to each height and pasted in
    the middle of a mid-grey frame of ``frame_size`` (height, width); the answer is the last of
    the descending ``heights`` before the first miss, or None when the largest is missed.
    """
    smallest = None
    for height in sorted(heights, reverse=True):
        if not _finds(detect, face, height, frame_size):
            break
        smallest = height
    return smallest


def _finds(detect: Detect, face: np.ndarray, height: int, frame_size: tuple[int, int]) -> bool:
    width = max(1, round(face.shape[1] * height / face.shape[0]))
    frame = np.full((*frame_size, 3), 128, np.uint8)
    top, left = (frame_size[0] - height) // 2, (frame_size[1] - width) // 2
    frame[top : top + height, left : left + width] = cv2.resize(
        face, (width, height), interpolation=cv2.INTER_AREA
    )
    placed = np.array([[left, top, left + width, top + height]], np.float64)
    boxes = _boxes(detect(frame))
    return bool(len(boxes)) and float(metrics.iou_matrix(boxes, placed).max()) >= FOUND_IOU


def _boxes(found: list[Detection]) -> np.ndarray:
    return np.array([d.box for d in found], np.float64).reshape(-1, 4)


def _lone(detection: Detection) -> LoneFace:
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    return LoneFace((x1, y1, x2, y2), float(detection.score))
