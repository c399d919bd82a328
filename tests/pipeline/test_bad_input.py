"""What users actually feed the pipeline: odd layouts are converted, unusable input is refused
with one clear line, and faceless or edge cases give empty results rather than errors."""

from __future__ import annotations

import numpy as np
import pytest

from faceperf.pipeline.frames import FrameError
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.multitask import MultitaskAnalyzer
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector
from faceperf.pipeline.video import VideoError, read_frames
from faceperf.runtime.artifact_ref import ArtifactRef


@pytest.fixture(scope="module")
def detector(artifacts_dir):
    return RetinaFaceDetector.open(ArtifactRef(artifacts_dir))


@pytest.fixture(scope="module")
def landmarker(artifacts_dir):
    return StarLandmarker.open(ArtifactRef(artifacts_dir))


@pytest.fixture(scope="module")
def analyzer(artifacts_dir):
    return MultitaskAnalyzer.open(ArtifactRef(artifacts_dir))


def _scene() -> np.ndarray:
    return np.random.RandomState(0).randint(0, 256, (120, 160, 3)).astype(np.uint8)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((10, 0, 3), np.uint8),
    ],
)
def test_empty_images_are_refused_clearly(detector, frame):
    with pytest.raises(FrameError, match="empty image"):
        detector.detect(frame)


def test_grayscale_and_bgra_frames_give_the_same_detections_as_bgr(detector):
    gray = _scene()[:, :, 0]
    as_bgr = np.repeat(gray[:, :, None], 3, axis=2)
    bgra = np.dstack([as_bgr, np.full(gray.shape, 255, np.uint8)])
    expected = [d.box.tolist() for d in detector.detect(as_bgr)]
    assert [d.box.tolist() for d in detector.detect(gray)] == expected
    assert [d.box.tolist() for d in detector.detect(bgra)] == expected


def test_faceless_frame_gives_an_empty_result_not_an_error(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_tiny_12x12_image_runs(detector, landmarker):
    tiny = _scene()[:12, :12]
    assert isinstance(detector.detect(tiny), list)
    points = landmarker.landmarks(tiny, np.array([[2.0, 2.0, 10.0, 10.0]]))
    assert points.shape == (1, 98, 2) and np.isfinite(points).all()


def test_box_partly_outside_the_frame_is_cropped_with_a_zero_border(landmarker, analyzer):
    frame = _scene()
    points = landmarker.landmarks(frame, np.array([[-40.0, -30.0, 60.0, 80.0]]))
    assert points.shape == (1, 98, 2) and np.isfinite(points).all()
    (attributes,) = analyzer.analyze([frame[:5, :7], frame[:, :, 0]])[:1]
    assert np.isfinite(attributes.emotion_probs).all()


def test_video_that_does_not_exist_or_is_not_a_video_is_a_clear_error(tmp_path):
    with pytest.raises(VideoError, match=r"missing\.mp4"):
        next(iter(read_frames(tmp_path / "missing.mp4")))
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(VideoError, match=r"notes\.mp4"):
        next(iter(read_frames(fake)))
