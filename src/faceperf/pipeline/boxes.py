"""Box overlap: the one IoU every part of faceperf uses (NMS, tracking, the accuracy metrics).

Boxes are [x1, y1, x2, y2]. ``plus_one`` is the "+1 pixel" area convention of Caffe-era
detectors (RetinaFace's NMS); without it coordinates are continuous.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


def box_areas(boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """(N,) areas of (N, 4) boxes."""
    extra = 1.0 if plus_one else 0.0
    return (boxes[:, 2] - boxes[:, 0] + extra) * (boxes[:, 3] - boxes[:, 1] + extra)


def overlap_matrix(
    a: np.ndarray,
    b: np.ndarray,
    mode: Literal["union", "min"] = "union",
    plus_one: bool = False,
) -> np.ndarray:
    """(N, M) overlap of every box in ``a`` with every box in ``b``: intersection over union,
    or over the smaller box (``"min"``, MTCNN's last NMS). A pair whose denominator has no area
    (both boxes degenerate) overlaps 0.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    extra = 1.0 if plus_one else 0.0
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(0.0, width + extra) * np.maximum(0.0, height + extra)
    area_a, area_b = box_areas(a, plus_one), box_areas(b, plus_one)
    if mode == "min":
        denominator = np.minimum(area_a[:, None], area_b[None, :])
    else:
        denominator = area_a[:, None] + area_b[None, :] - inter
    overlap = np.zeros_like(inter)
    np.divide(inter, denominator, out=overlap, where=denominator > 0.0)
    return overlap
