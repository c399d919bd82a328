"""Emotion, gaze and action units for face crops, from the MTL multitask artifact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceperf.models import inputs
from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES
from faceperf.pipeline.artifact_model import ArtifactModel
from faceperf.pipeline.frames import as_bgr
from faceperf.pipeline.profiler import POSTPROCESSING, PREPROCESSING, StageProfiler
from faceperf.pipeline.runner_io import run_batched
from faceperf.pipeline.stage_names import MTL
from faceperf.runtime.base import Runner


@dataclass(frozen=True, eq=False)
class FaceAttributes:
    """What the MTL model says about one face.

    ``emotion_probs`` is stored as a read-only float64 copy. Equality is identity (arrays have
    no single truth value); compare fields with NumPy.
    """

    emotion: str  # the most probable of EMOTION_NAMES
    emotion_probs: np.ndarray  # (8,) softmax over EMOTION_NAMES
    gaze: tuple[float, float]  # yaw, pitch
    aus: dict[str, float]  # action unit intensity in [-1, 1], keys in AU_NAMES order

    def __post_init__(self) -> None:
        probs = np.array(self.emotion_probs, np.float64)
        if probs.shape != (len(EMOTION_NAMES),):
            raise ValueError(f"emotion_probs has shape {probs.shape}, expected (8,)")
        probs.setflags(write=False)
        object.__setattr__(self, "emotion_probs", probs)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64, shifted by the maximum so it cannot overflow."""
    shifted = np.asarray(logits, np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class MultitaskAnalyzer(ArtifactModel):
    """Emotion, gaze and AUs per BGR face crop, from an MTL artifact.

    Args:
        runner: a loaded ``mtl`` artifact (outputs ``emotion`` logits (B, 8), ``gaze`` (B, 2),
            ``au`` (B, 8)).
        profiler: times ``MTL_preprocess``, ``MTL_<backend>`` (once per model call) and
            ``MTL_postprocess`` (default: records nothing).
    """

    artifact = "mtl"
    operation = MTL

    def __init__(self, runner: Runner, profiler: StageProfiler | None = None) -> None:
        self._attach(runner, profiler)

    def analyze(self, faces: Sequence[np.ndarray]) -> list[FaceAttributes]:
        """One FaceAttributes per face, in order.

        Args:
            faces: BGR uint8 face crops (h, w, 3), any size; resized to 224x224 here.
        """
        if len(faces) == 0:
            return []
        with self.profiler.stage(self.names.preprocess, PREPROCESSING):
            batch = np.concatenate([inputs.mtl_input(as_bgr(face, "face crop")) for face in faces])
        outputs = run_batched(self.runner, batch, self.profiler, self.names.inference)
        with self.profiler.stage(self.names.postprocess, POSTPROCESSING):
            return _attributes(outputs)


def _attributes(outputs: dict[str, np.ndarray]) -> list[FaceAttributes]:
    probs = softmax(outputs["emotion"])
    gaze = np.asarray(outputs["gaze"], np.float64)
    aus = np.asarray(outputs["au"], np.float64)
    return [
        FaceAttributes(
            emotion=EMOTION_NAMES[int(np.argmax(p))],
            emotion_probs=p,
            gaze=(float(g[0]), float(g[1])),
            aus=dict(zip(AU_NAMES, (float(v) for v in a), strict=True)),
        )
        for p, g, a in zip(probs, gaze, aus, strict=True)
    ]
