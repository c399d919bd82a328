"""The tensors each model expects, made from OpenCV BGR uint8 frames.

This is part of each model's contract (like timm's data config), so it lives beside the models;
the pipeline and the surrogate calibration both use it. Every function converts to float32
BEFORE any resize or warp: resizing the uint8 image first is a known fault of the original
application (outputs correlated only r=0.70 with the reference).
"""

from __future__ import annotations

import cv2
import numpy as np

from faceperf.models import mtl, retinaface, star

RETINAFACE_MEAN_BGR = np.array(retinaface.RETINAFACE_MEAN_BGR, dtype=np.float32)
STAR_SIZE = star.STAR_INPUT_SIZE
MTL_SIZE = mtl.MTL_INPUT_SIZE
IMAGENET_MEAN_RGB = np.array(mtl.IMAGENET_MEAN, dtype=np.float32)
IMAGENET_STD_RGB = np.array(mtl.IMAGENET_STD, dtype=np.float32)


def _check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")


def letterbox_scale(height: int, width: int, size: int) -> float:
    """The scale that fits a (height, width) frame inside a size x size square."""
    return size / max(height, width)


def retinaface_input(frame: np.ndarray, size: int | None = None) -> np.ndarray:
    """(1, 3, H, W) BGR minus mean; with ``size``, letterboxed top-left into size x size."""
    _check_frame(frame)
    image = frame.astype(np.float32)
    if size is not None:
        scale = letterbox_scale(*frame.shape[:2], size)
        h, w = round(frame.shape[0] * scale), round(frame.shape[1] * scale)
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        # Padding is filled with the mean so that it is zero after the subtraction below.
        image = np.empty((size, size, 3), np.float32)
        image[...] = RETINAFACE_MEAN_BGR
        image[:h, :w] = resized
    image = image - RETINAFACE_MEAN_BGR
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


def star_crop_matrix(box: np.ndarray) -> np.ndarray:
    """The 2x3 affine map from frame to the 256x256 STAR crop for an [x1, y1, x2, y2] box.

    OpenFace rule: centre = box centre, scale = min(w, h)/200·1.05, zoom = 256/(scale·200), no
    rotation, centre mapped to (127.5, 127.5).
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = min(x2 - x1, y2 - y1) / 200.0 * 1.05
    if scale <= 0:
        raise ValueError(f"box {list(box[:4])} has no area")
    zoom = STAR_SIZE / (scale * 200.0)
    centre = (STAR_SIZE - 1) / 2
    return np.array([[zoom, 0.0, centre - zoom * cx], [0.0, zoom, centre - zoom * cy]], np.float64)


def star_input(frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 3, 256, 256) crops in [-1, 1] (BGR) and their (B, 2, 3) crop matrices."""
    _check_frame(frame)
    image = frame.astype(np.float32)
    matrices = np.stack([star_crop_matrix(b) for b in np.asarray(boxes, np.float64)])
    crops = [
        cv2.warpAffine(
            image,
            m,
            (STAR_SIZE, STAR_SIZE),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        for m in matrices
    ]
    batch = np.stack(crops).transpose(0, 3, 1, 2) / 255.0 * 2.0 - 1.0
    return np.ascontiguousarray(batch, dtype=np.float32), matrices


def star_points_to_frame(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Map (B, 98, 2) soft-argmax outputs in [-1, 1] back to frame pixel coordinates."""
    crop = ((np.asarray(points, np.float64) + 1.0) * STAR_SIZE - 1.0) / 2.0
    out = np.empty_like(crop)
    for i, m in enumerate(matrices):
        inverse = cv2.invertAffineTransform(m)
        out[i] = crop[i] @ inverse[:, :2].T + inverse[:, 2]
    return out


def mtl_input(face: np.ndarray) -> np.ndarray:
    """(1, 3, 224, 224) from a BGR face crop: RGB, float, resize, /255, ImageNet mean/std."""
    _check_frame(face)
    rgb = face[:, :, ::-1].astype(np.float32)
    resized = cv2.resize(rgb, (MTL_SIZE, MTL_SIZE), interpolation=cv2.INTER_LINEAR)
    normalised = (resized / 255.0 - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


def crop_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The part of ``frame`` inside an [x1, y1, x2, y2] box, clipped to the frame."""
    h, w = frame.shape[:2]
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {list(box[:4])} lies outside the {w}x{h} frame")
    return frame[y1:y2, x1:x2]


def mtcnn_normalise(rgb: np.ndarray) -> np.ndarray:
    """MTCNN's input scaling of float RGB pixels: (x − 127.5) · 0.0078125."""
    return (rgb - 127.5) * 0.0078125
