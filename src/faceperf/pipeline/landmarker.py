"""STAR 98-point (WFLW) landmarks for face boxes in a frame.

Each box is cropped by the OpenFace rule (``models.inputs.star_input``: float conversion before
the warp), the crops run as one batch when the artifact's batch is dynamic and one at a time when
it is fixed to 1, and the soft-argmax points are mapped back through the inverse crop transform.
"""

from __future__ import annotations

import numpy as np

from faceperf.models import inputs
from faceperf.models.star import STAR_NUM_POINTS
from faceperf.pipeline.artifact_model import ArtifactModel
from faceperf.pipeline.frames import as_bgr
from faceperf.pipeline.profiler import POSTPROCESSING, PREPROCESSING, StageProfiler
from faceperf.pipeline.runner_io import run_batched
from faceperf.pipeline.stage_names import STAR
from faceperf.runtime.base import Runner


class StarLandmarker(ArtifactModel):
    """98 landmarks per face box, from a STAR artifact.

    Args:
        runner: a loaded ``star`` artifact (output ``landmarks`` (B, 98, 2) in [-1, 1]).
        profiler: times ``STAR_preprocess``, ``STAR_<backend>`` (once per model call) and
            ``STAR_postprocess`` (default: records nothing).
    """

    artifact = "star"
    operation = STAR

    def __init__(self, runner: Runner, profiler: StageProfiler | None = None) -> None:
        self._attach(runner, profiler)

    def landmarks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(K, 98, 2) landmark x, y in frame pixels, one row per box.

        Args:
            frame: an OpenCV BGR uint8 image (H, W, 3).
            boxes: (K, 4) [x1, y1, x2, y2] face boxes in frame pixels.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, STAR_NUM_POINTS, 2), np.float64)
        with self.profiler.stage(self.names.preprocess, PREPROCESSING):
            batch, matrices = inputs.star_input(as_bgr(frame), boxes)
        outputs = run_batched(self.runner, batch, self.profiler, self.names.inference)
        with self.profiler.stage(self.names.postprocess, POSTPROCESSING):
            return inputs.star_points_to_frame(outputs["landmarks"], matrices)
