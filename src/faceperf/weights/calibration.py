"""Model inputs made from the fixture faces, for calibrating and fitting surrogates."""

from __future__ import annotations

import numpy as np
import torch

from faceperf import fixture_faces
from faceperf.models import inputs

RETINAFACE_SIZE = 640


def retinaface_batch() -> tuple[torch.Tensor, list[np.ndarray]]:
    """Every fixture image letterboxed to 640x640, with its reference boxes at that scale.

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
    return torch.from_numpy(np.stack(images)), targets


def star_batch() -> tuple[torch.Tensor, list[fixture_faces.ReferenceFace]]:
    """STAR crops of every reference face, and the faces they came from."""
    crops, faces = [], []
    for name in fixture_faces.image_names():
        frame = fixture_faces.load_image(name)
        found = fixture_faces.reference_faces(name)
        batch, _ = inputs.star_input(frame, np.stack([f.box for f in found]))
        crops.append(batch)
        faces.extend(found)
    return torch.from_numpy(np.concatenate(crops)), faces


def mtl_batch() -> torch.Tensor:
    """MTL inputs of every reference face crop."""
    crops = []
    for name in fixture_faces.image_names():
        frame = fixture_faces.load_image(name)
        for face in fixture_faces.reference_faces(name):
            crops.append(inputs.mtl_input(inputs.crop_box(frame, face.box))[0])
    return torch.from_numpy(np.stack(crops))
