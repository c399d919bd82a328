"""Realistic inputs for each model, made from the fixture photographs.

Used to calibrate surrogates and to compare artifacts with the eager reference on real faces
rather than noise (noise drives activations where no face ever does).
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from faceperf import fixture_faces
from faceperf.models import inputs

RETINAFACE_SIZE = 640
_PNET_SCALE = 12 / 60  # the first pyramid level at the Face Mirror min_face_size of 60


def retinaface_faces() -> tuple[np.ndarray, list[np.ndarray]]:
    """Every fixture image letterboxed to 640x640, with its reference faces at that scale.

    Returns the (N, 3, 640, 640) batch and per image an (F, 14) array of
    [x1, y1, x2, y2, 5 x (x, y)] in input pixels.
    """
    images, targets = [], []
    for name in fixture_faces.image_names():
        frame = fixture_faces.load_image(name)
        scale = inputs.letterbox_scale(*frame.shape[:2], RETINAFACE_SIZE)
        images.append(inputs.retinaface_input(frame, RETINAFACE_SIZE)[0])
        faces = fixture_faces.reference_faces(name)
        targets.append(
            np.array([np.concatenate([f.box, f.landmarks.ravel()]) * scale for f in faces])
        )
    return np.stack(images), targets


def star_crops() -> np.ndarray:
    """STAR crops of every reference face, (F, 3, 256, 256)."""
    crops = []
    for name in fixture_faces.image_names():
        frame = fixture_faces.load_image(name)
        boxes = np.stack([f.box for f in fixture_faces.reference_faces(name)])
        crops.append(inputs.star_input(frame, boxes)[0])
    return np.concatenate(crops)


def mtl_crops() -> np.ndarray:
    """MTL inputs of every reference face crop, (F, 3, 224, 224)."""
    crops = []
    for name in fixture_faces.image_names():
        frame = fixture_faces.load_image(name)
        for face in fixture_faces.reference_faces(name):
            crops.append(inputs.mtl_input(inputs.crop_box(frame, face.box))[0])
    return np.stack(crops)


def _mtcnn_crops(size: int) -> np.ndarray:
    crops = []
    for name in fixture_faces.image_names():
        rgb = fixture_faces.load_image(name)[:, :, ::-1].astype(np.float32)
        for face in fixture_faces.reference_faces(name):
            x1, y1, x2, y2 = (round(float(v)) for v in face.box)
            patch = rgb[max(y1, 0) : y2, max(x1, 0) : x2]
            crops.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return inputs.mtcnn_normalise(np.stack(crops)).transpose(0, 3, 1, 2).astype(np.float32)


def _pnet_level() -> np.ndarray:
    rgb = fixture_faces.load_image("scene1")[:, :, ::-1].astype(np.float32)
    h, w = (round(d * _PNET_SCALE) for d in rgb.shape[:2])
    level = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return inputs.mtcnn_normalise(level).transpose(2, 0, 1)[None].astype(np.float32)


@cache
def sample_batch(model: str) -> np.ndarray:
    """A read-only batch of realistic inputs for the named model."""
    makers = {
        "retinaface": lambda: retinaface_faces()[0],
        "star": star_crops,
        "mtl": mtl_crops,
        "mtcnn_pnet": _pnet_level,
        "mtcnn_rnet": lambda: _mtcnn_crops(24),
        "mtcnn_onet": lambda: _mtcnn_crops(48),
    }
    if model not in makers:
        raise KeyError(f"no sample inputs for model {model!r}; expected one of {', '.join(makers)}")
    batch = np.ascontiguousarray(makers[model](), dtype=np.float32)
    batch.setflags(write=False)
    return batch
