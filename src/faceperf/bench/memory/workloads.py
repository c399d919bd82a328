"""What a memory measurement runs: one model call on a fixed input, or one Face Mirror frame.

Each maker opens the artifacts (the ``load`` a peak measurement times) and returns the step to
repeat; the peak child and the leak runs call the same steps, so the two measure the same work.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from faceperf.runtime.artifact_ref import ArtifactRef

Step = Callable[[], object]
CLIP_FRAMES = 30  # one second of the synthetic clip at 30 FPS, looped
CLIP_SIZE = (1080, 1920)  # the application's patient videos


def model_step(ref: ArtifactRef, model: str, feed: np.ndarray, verify: bool = True) -> Step:
    """Open ``model`` of ``ref``; the step runs it once on ``feed`` (its one input)."""
    runner = ref.open(model, verify=verify)
    feeds = {runner.inputs[0].name: feed}
    return lambda: runner.run(feeds)


def looped_clip(
    frames_per_loop: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE
) -> Iterator[np.ndarray]:
    """The synthetic clip's first ``frames_per_loop`` frames, again and again, without end.

    Frames are made as they are asked for (one 1080p frame is 6 MB; a stored clip would sit in
    every floor), the same ones on every loop.
    """
    from faceperf.pipeline.video import synthetic_frames

    if frames_per_loop < 1:
        raise ValueError(f"frames_per_loop {frames_per_loop}: expected at least 1")
    while True:
        yield from synthetic_frames(frames_per_loop, size=size)


def pipeline_step(ref: ArtifactRef, frames: Iterator[np.ndarray] | None = None) -> Step:
    """Open the Face Mirror loop of ``ref``; the step processes the next frame of ``frames``
    (default: the looped clip) in one continuing run, tracking state kept as the app keeps it."""
    from faceperf.pipeline.face_mirror import FaceMirrorLoop

    results = FaceMirrorLoop.open(ref).run(frames if frames is not None else looped_clip())
    return lambda: next(results)


MTCNN_SCENES = ("scene1", "scene2", "scene3", "scene4")  # the fixture scenes, 1 to 7 faces


def scene_frames() -> list[np.ndarray]:
    """The fixture scenes MTCNN runs on: their faces vary, so do its R-Net and O-Net batches."""
    from faceperf.fixtures import faces as fixture_faces

    return [fixture_faces.load_image(name) for name in MTCNN_SCENES]


def mtcnn_step(ref: ArtifactRef, frames: list[np.ndarray]) -> Step:
    """Open the MTCNN cascade of ``ref`` (OpenFace preset, one worker); the step detects the
    faces of the next of ``frames``, cycling: each scene gives the stages other batch sizes,
    which is what grows ONNX Runtime's arena until every size has been seen."""
    from faceperf.pipeline.mtcnn_detector import OPENFACE_PRESET, MTCNNDetector

    detector = MTCNNDetector.open(ref, params=OPENFACE_PRESET, workers=1)
    cycle = itertools.cycle(frames)
    return lambda: detector.detect(next(cycle))
