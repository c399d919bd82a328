"""STAR landmarker: inverse crop transform, batching against per-face calls, fixed-batch looping,
and the profiler operations it records."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceperf.artifacts.manifest import TensorInfo
from faceperf.fixtures.faces import load_image, reference_faces
from faceperf.models.inputs import star_input
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.profiler import StageProfiler
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner

DYNAMIC = ("batch", 3, 256, 256)
FIXED_1 = (1, 3, 256, 256)

# Normalised points the fake model returns for every face (the rest of the 98 are 0).
_POINTS = np.zeros((98, 2), np.float32)
_POINTS[1] = (-1, -1)
_POINTS[2] = (1, 1)
_POINTS[3] = (0.5, -0.25)


class FakeStar(Runner):
    """Returns _POINTS for every face of the batch; records what it was fed."""

    def __init__(self, shape=DYNAMIC, backend="ort-cpu") -> None:
        self.backend, self.source = backend, "fake star"
        self.inputs = (TensorInfo("image", shape, "float32"),)
        self.outputs = (TensorInfo("landmarks", (), "float32"),)
        self.feeds: list[np.ndarray] = []

    def _run(self, feeds):
        image = feeds["image"]
        self.feeds.append(image)
        return {"landmarks": np.repeat(_POINTS[None], len(image), axis=0)}

    @property
    def executed_on(self):
        return ("fake",)


def _frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)


def test_points_map_back_through_the_hand_computed_inverse_crop():
    # Box 200 x 160 centred on (200, 130): scale = 160/200·1.05, zoom = 256/(scale·200), so the
    # crop spans 256/zoom = 168 px. Soft-argmax −1 is crop pixel ((−1+1)·256−1)/2 = −0.5, which is
    # 128 crop px left of the centre 127.5: 128/zoom = 84 frame px; +1 is crop pixel 255.5.
    box = np.array([[100.0, 50.0, 300.0, 210.0]])

    points = StarLandmarker(FakeStar()).landmarks(_frame(), box)

    assert points.shape == (1, 98, 2)
    np.testing.assert_allclose(points[0, 0], (200, 130), atol=1e-9)  # 0 -> the box centre
    np.testing.assert_allclose(points[0, 1], (116, 46), atol=1e-9)
    np.testing.assert_allclose(points[0, 2], (284, 214), atol=1e-9)
    # (0.5, −0.25): crop ((1.5·256−1)/2, (0.75·256−1)/2) = (191.5, 95.5) -> centre + (64, −32)/zoom.
    np.testing.assert_allclose(points[0, 3], (242, 109), atol=1e-9)


def test_the_runner_gets_the_openface_crops_in_one_call_when_its_batch_is_dynamic():
    boxes = np.array([[100.0, 50.0, 300.0, 210.0], [10, 10, 90, 120], [250, 150, 390, 290]])
    runner = FakeStar(DYNAMIC)
    frame = _frame()

    points = StarLandmarker(runner).landmarks(frame, boxes)

    (feed,) = runner.feeds
    np.testing.assert_array_equal(feed, star_input(frame, boxes)[0])
    # Each face's points follow its own box: the centre point is each box's centre.
    np.testing.assert_allclose(points[:, 0], (boxes[:, :2] + boxes[:, 2:]) / 2, atol=1e-9)


def test_a_fixed_batch_runner_is_called_once_per_face_with_the_same_result():
    boxes = np.array([[100.0, 50.0, 300.0, 210.0], [10, 10, 90, 120], [250, 150, 390, 290]])
    frame = _frame()
    fixed, dynamic = FakeStar(FIXED_1), FakeStar(DYNAMIC)

    looped = StarLandmarker(fixed).landmarks(frame, boxes)
    batched = StarLandmarker(dynamic).landmarks(frame, boxes)

    assert [f.shape for f in fixed.feeds] == [(1, 3, 256, 256)] * 3
    np.testing.assert_array_equal(np.concatenate(fixed.feeds), dynamic.feeds[0])
    np.testing.assert_array_equal(looped, batched)


def test_no_boxes_means_no_call_and_an_empty_result():
    runner = FakeStar()
    points = StarLandmarker(runner).landmarks(_frame(), np.zeros((0, 4)))
    assert points.shape == (0, 98, 2) and runner.feeds == []


@pytest.mark.parametrize(("shape", "calls"), [(DYNAMIC, 1), (FIXED_1, 2)], ids=["dynamic", "fixed"])
def test_landmarks_records_its_three_operations(shape, calls):
    # Each clock read advances one second: every timed block lasts 1 s. Inference is recorded per
    # model call, pre- and postprocessing per landmarks() call.
    profiler = StageProfiler(clock=itertools.count().__next__)
    landmarker = StarLandmarker(FakeStar(shape, backend="coreml"), profiler=profiler)

    landmarker.landmarks(_frame(), np.array([[10.0, 10, 90, 120], [200, 100, 300, 200]]))

    assert profiler.raw() == {
        "STAR_preprocess": {"category": "preprocessing", "seconds": [1]},
        "STAR_coreml": {"category": "model_inference", "seconds": [1] * calls},
        "STAR_postprocess": {"category": "postprocessing", "seconds": [1]},
    }


def test_a_batch_of_three_equals_three_single_calls_on_the_real_artifact(artifacts_dir):
    # baseline has a dynamic batch: one call of 3 against 3 calls of 1 on the same session.
    landmarker = StarLandmarker.open(ArtifactRef(artifacts_dir, "baseline", threads=1))
    frame = load_image("grace_hopper")
    face = reference_faces("grace_hopper")[0].box
    boxes = np.stack([face, face + np.array([-20, 10, -20, 10]), face * (0.9, 0.95, 1.05, 1.0)])

    batched = landmarker.landmarks(frame, boxes)
    singles = np.concatenate([landmarker.landmarks(frame, b[None]) for b in boxes])

    assert batched.shape == (3, 98, 2)
    # 1e-3 frame px: only floating-point reassociation between batch sizes is allowed.
    np.testing.assert_allclose(batched, singles, atol=1e-3)
    # The three crops differ, so the three answers must too (a batch answering face 0 thrice
    # would otherwise pass).
    assert np.abs(batched[1] - batched[0]).max() > 1.0
