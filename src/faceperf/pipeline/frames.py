"""Normalising what callers hand the pipeline into the BGR uint8 frames the models expect."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceperf.errors import FaceperfError


class FrameError(FaceperfError):
    """A frame the pipeline cannot use at all (empty, wrong dtype or layout)."""


def as_bgr(frame: np.ndarray, source: str = "frame") -> np.ndarray:
    """The frame as (H, W, 3) BGR uint8: grayscale and BGRA are converted, not refused.

    Args:
        frame: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8.
        source: what the frame is, for the error message (a file name, "frame 12").
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"{source}: expected an image array, got {type(frame).__name__}")
    if frame.size == 0 or frame.ndim < 2 or 0 in frame.shape[:2]:
        raise FrameError(f"{source}: empty image of shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise FrameError(f"{source}: expected uint8 pixels, got {frame.dtype}")
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if frame.ndim > 3 or channels not in (1, 3, 4):
        raise FrameError(f"{source}: expected 1, 3 or 4 channels, got shape {frame.shape}")
    if channels == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


def read_image(path: str) -> np.ndarray:
    """An image file as a BGR uint8 frame, with a clear error when it cannot be read."""
    if not Path(path).is_file():
        raise FrameError(f"{path}: no such image file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FrameError(f"{path}: not a readable image file")
    if image.dtype == np.uint16:  # 16-bit PNGs: keep the top byte
        image = (image >> 8).astype(np.uint8)
    return as_bgr(image, str(path))
