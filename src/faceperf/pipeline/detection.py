"""A detected face: what both detectors return."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face, in frame pixel coordinates.

    Arrays are stored as read-only float64 copies. Equality is identity (arrays have no single
    truth value); compare fields with NumPy.
    """

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    landmarks: np.ndarray  # (5, 2) x, y: left eye, right eye, nose, mouth left, mouth right

    def __post_init__(self) -> None:
        for name, shape in (("box", (4,)), ("landmarks", (5, 2))):
            value = np.array(getattr(self, name), np.float64)
            if value.shape != shape:
                raise ValueError(f"Detection.{name} has shape {value.shape}, expected {shape}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "score", float(self.score))
