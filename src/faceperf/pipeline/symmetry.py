"""Face mirroring: reflect one half of a face across its midline to make a symmetric face.

The midline runs from the glabella (mean of WFLW points 38 and 50, the inner ends of the
eyebrows) to the chin (point 16). Sides are named as the viewer sees an upright face (glabella
above chin): ``left`` is the half on the image's left, i.e. the subject's right. The
left-mirrored face is that half plus its reflection; the right-mirrored face likewise.

A side is decided by the sign of the distance to the line measured along the normal
``n = (dy, -dx) / |d|`` of the direction ``d`` from glabella to chin; for an upright face ``n``
points to the image's right. A face upside down swaps the sides with it, so they stay the
subject's sides.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

GLABELLA_POINTS = (38, 50)  # WFLW: inner ends of the right and left eyebrows
CHIN_POINT = 16  # WFLW: the lowest contour point

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")


def midline(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face midline as (top, bottom) points: glabella and chin, each (2,) float64.

    Args:
        landmarks: (98, 2) WFLW points in pixels.
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (98, 2):
        raise ValueError(f"expected (98, 2) WFLW landmarks, got shape {points.shape}")
    top = points[list(GLABELLA_POINTS)].mean(axis=0)
    bottom = points[CHIN_POINT].copy()
    return top, bottom


def _unit_normal(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    direction = np.asarray(bottom, np.float64) - np.asarray(top, np.float64)
    length = float(np.hypot(*direction))
    if not np.isfinite(length) or length < 1e-6:
        raise ValueError(f"midline from {list(top)} to {list(bottom)} has no direction")
    return np.array([direction[1], -direction[0]]) / length


def reflect_points(points: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Points reflected across the line through ``top`` and ``bottom``.

    Args:
        points: (..., 2) x, y.
        top, bottom: two distinct points of the line, (2,) each.
    """
    normal = _unit_normal(top, bottom)
    p = np.asarray(points, np.float64)
    distance = (p - np.asarray(top, np.float64)) @ normal
    return p - 2.0 * distance[..., None] * normal


def _grid(shape: tuple[int, ...], origin: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    height, width = int(shape[0]), int(shape[1])
    xs = np.arange(width, dtype=np.float64) + origin[0]
    ys = np.arange(height, dtype=np.float64) + origin[1]
    return np.meshgrid(xs, ys)


def reflection_maps(
    shape: tuple[int, ...],
    top: np.ndarray,
    bottom: np.ndarray,
    origin: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps that reflect a whole region across the line (no half kept).

    Args:
        shape: (height, width[, channels]) of the output region.
        top, bottom: the line, in source pixel coordinates.
        origin: source (x, y) of the region's top-left pixel.
    """
    x, y = _grid(shape, origin)
    reflected = reflect_points(np.stack([x, y], axis=-1), top, bottom)
    return reflected[..., 0].astype(np.float32), reflected[..., 1].astype(np.float32)


def mirror_maps(
    shape: tuple[int, ...],
    top: np.ndarray,
    bottom: np.ndarray,
    side: Side,
    origin: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (map_x, map_y) for cv2.remap that keep ``side`` and mirror it onto the other.

    Pixels on the kept side (and on the line) map to themselves; every pixel on the other side
    takes the value at its reflection across the line.

    Args:
        shape: (height, width[, channels]) of the output region.
        top, bottom: the midline, in source pixel coordinates.
        side: ``left`` or ``right``: the half that is kept (see the module docstring).
        origin: source (x, y) of the region's top-left pixel, so a face crop's maps can sample
            the full frame (a reflection may fall outside the crop).
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    normal = _unit_normal(top, bottom)
    x, y = _grid(shape, origin)
    distance = (x - top[0]) * normal[0] + (y - top[1]) * normal[1]
    # distance > 0 is the image-right half of an upright face.
    mirrored = distance > 0 if side == "left" else distance < 0
    factor = np.where(mirrored, 2.0 * distance, 0.0)
    map_x = x - factor * normal[0]
    map_y = y - factor * normal[1]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def mirror_region(
    frame: np.ndarray,
    top: np.ndarray,
    bottom: np.ndarray,
    side: Side,
    region: tuple[int, int, int, int],
) -> np.ndarray:
    """The mirrored face inside ``region`` = (x1, y1, x2, y2) integer pixels, BGR uint8.

    The source pixels are converted to float32 before the warp (the suite's rule for every
    resize or warp) and rounded back to uint8 once at the end, so pixels that map onto a pixel
    centre (the kept half, and every reflection of a vertical midline at a whole or half pixel)
    come out bit-identical.

    Args:
        frame: BGR uint8 (H, W, 3).
        top, bottom: the midline in frame pixels.
        side: the half that is kept.
        region: the crop, inside the frame.
    """
    x1, y1, x2, y2 = region
    map_x, map_y = mirror_maps((y2 - y1, x2 - x1), top, bottom, side, origin=(x1, y1))
    # Only the source pixels the maps reach are converted: the crop plus its reflection.
    height, width = frame.shape[:2]
    sx1 = int(np.clip(np.floor(map_x.min()), 0, width - 1))
    sx2 = int(np.clip(np.floor(map_x.max()) + 2, 1, width))
    sy1 = int(np.clip(np.floor(map_y.min()), 0, height - 1))
    sy2 = int(np.clip(np.floor(map_y.max()) + 2, 1, height))
    source = frame[sy1:sy2, sx1:sx2].astype(np.float32)
    # Reflections that leave the frame repeat its edge, as the frame's own border would.
    warped = cv2.remap(
        source,
        map_x - np.float32(sx1),
        map_y - np.float32(sy1),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)


def face_region(shape: tuple[int, ...], box: np.ndarray) -> tuple[int, int, int, int]:
    """The integer crop (x1, y1, x2, y2) of ``box`` clipped to a frame of ``shape``.

    The same rule as ``faceperf.models.inputs.crop_box``: floor the top-left, ceil the
    bottom-right, clip to the frame.

    Args:
        shape: the frame's (height, width[, channels]).
        box: [x1, y1, x2, y2] in pixels.
    """
    height, width = int(shape[0]), int(shape[1])
    x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x2, y2 = min(int(np.ceil(box[2])), width), min(int(np.ceil(box[3])), height)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(
            f"box {[float(v) for v in box[:4]]} lies outside the {width}x{height} frame"
        )
    return x1, y1, x2, y2


def mirror_faces(
    frame: np.ndarray, landmarks: np.ndarray, box: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(left_mirrored, right_mirrored) BGR uint8 crops of ``box``.

    Args:
        frame: BGR uint8 (H, W, 3).
        landmarks: (98, 2) WFLW points in frame pixels (they give the midline).
        box: [x1, y1, x2, y2] face box in frame pixels; clipped to the frame.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    top, bottom = midline(landmarks)
    region = face_region(frame.shape, np.asarray(box, np.float64))
    left = mirror_region(frame, top, bottom, "left", region)
    right = mirror_region(frame, top, bottom, "right", region)
    return left, right
