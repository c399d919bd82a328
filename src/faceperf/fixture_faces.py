"""The committed fixture photographs and the external MTCNN reference detections on them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from faceperf.paths import fixtures_dir


@dataclass(frozen=True)
class ReferenceFace:
    """One face found by facenet-pytorch 2.6.0's MTCNN (the external reference)."""

    image: str
    box: np.ndarray  # [x1, y1, x2, y2] in pixels
    prob: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right


def reference_path() -> Path:
    return fixtures_dir() / "reference" / "facenet_mtcnn.json"


@cache
def reference_document() -> dict:
    path = reference_path()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the MTCNN reference detections are missing") from None


def image_names() -> list[str]:
    return list(reference_document()["images"])


def image_path(name: str) -> Path:
    return fixtures_dir() / "images" / reference_document()["images"][name]["file"]


def load_image(name: str) -> np.ndarray:
    """A fixture photograph as an OpenCV BGR uint8 array."""
    path = image_path(name)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read the fixture image")
    return image


def reference_faces(name: str) -> list[ReferenceFace]:
    entry = reference_document()["images"][name]
    return [
        ReferenceFace(
            image=name,
            box=np.asarray(face["box"], np.float64),
            prob=float(face["prob"]),
            landmarks=np.asarray(face["landmarks"], np.float64),
        )
        for face in entry["faces"]
    ]


def all_reference_faces() -> list[ReferenceFace]:
    return [face for name in image_names() for face in reference_faces(name)]
