"""RetinaFace detector: prior decoding, letterbox mapping, NMS convention, thresholds, the real
surrogate artifact, and the profiler operations it records."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from faceperf.artifacts.manifest import TensorInfo
from faceperf.errors import ArtifactError
from faceperf.fixtures.faces import load_image
from faceperf.models.retinaface import prior_boxes
from faceperf.pipeline.nms import nms
from faceperf.pipeline.profiler import StageProfiler
from faceperf.pipeline.retinaface_detector import (
    Detection,
    RetinaFaceDetector,
    RetinaFaceSettings,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
    encode_landmarks,
)
from faceperf.pipeline.stage_names import backend_label
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner

DYNAMIC = ("batch", 3, "height", "width")
FIXED_640 = (1, 3, 640, 640)
HYPOTHESIS = settings(derandomize=True, database=None, deadline=None)


class FakeRetinaFace(Runner):
    """Every anchor scores 0.001 except the crafted faces: {prior index: (loc, score, landms)}."""

    def __init__(self, shape=DYNAMIC, faces=None, backend="ort-cpu", outputs=None) -> None:
        self.backend, self.source = backend, "fake retinaface"
        self.inputs = (TensorInfo("image", shape, "float32"),)
        self.outputs = tuple(TensorInfo(n, (), "float32") for n in ("loc", "conf", "landms"))
        self.faces = faces or {}
        self.fixed_outputs = outputs
        self.feeds: list[np.ndarray] = []

    def _run(self, feeds):
        image = feeds["image"]
        self.feeds.append(image)
        if self.fixed_outputs is not None:
            return self.fixed_outputs
        n = len(prior_boxes(*image.shape[2:]))
        loc = np.zeros((1, n, 4), np.float32)
        conf = np.tile(np.array([0.999, 0.001], np.float32), (1, n, 1))
        landms = np.zeros((1, n, 10), np.float32)
        for index, (offsets, score, points) in self.faces.items():
            loc[0, index] = offsets
            conf[0, index] = (1 - score, score)
            landms[0, index] = points
        return {"loc": loc, "conf": conf, "landms": landms}

    @property
    def executed_on(self):
        return ("fake",)


def _frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _face(index: int, box, score: float, input_hw=(64, 64), points=None):
    """Runner outputs that decode to ``box`` (input pixels) at prior ``index``."""
    height, width = input_hw
    prior = prior_boxes(height, width)[index : index + 1]
    box = np.asarray(box, np.float64)[None]
    if points is None:
        centre = (box[0, :2] + box[0, 2:]) / 2
        points = np.tile(centre, (5, 1))
    loc = encode_boxes(box, prior, (width, height))[0]
    landms = encode_landmarks(np.asarray(points)[None], prior, (width, height))[0]
    return index, (loc, score, landms)


# --- decoding ---------------------------------------------------------------------------------


def test_decode_matches_a_hand_computed_prior():
    # Prior centred at (0.5, 0.25) of a 200x100 input, 0.1 x 0.2 of it (20 x 20 px).
    prior = np.array([[0.5, 0.25, 0.1, 0.2]])
    loc = np.array([[1.0, -2.0, math.log(2.0) / 0.2, 0.0]])
    # centre x = 0.5 + 1·0.1·0.1 = 0.51 -> 102 px; y = 0.25 − 2·0.1·0.2 = 0.21 -> 21 px;
    # width 0.1·exp(ln 2) = 0.2 -> 40 px; height 0.2·exp(0) = 0.2 -> 20 px.
    np.testing.assert_allclose(
        decode_boxes(loc, prior, (200, 100)), [[82.0, 11.0, 122.0, 31.0]], atol=1e-12
    )
    landms = np.array([[1.0, 2.0, 0.0, 0.0, -1.0, 0.0, 0.0, -1.0, 3.0, 3.0]])
    # x = 0.5 + d·0.1·0.1, y = 0.25 + d·0.1·0.2, times (200, 100).
    expected = [[102.0, 29.0], [100.0, 25.0], [98.0, 25.0], [100.0, 23.0], [106.0, 31.0]]
    np.testing.assert_allclose(decode_landmarks(landms, prior, (200, 100)), [expected], atol=1e-12)


@settings(HYPOTHESIS, max_examples=60)
@given(
    priors=arrays(
        np.float64,
        (6, 4),
        elements=st.floats(0.01, 1.0, allow_nan=False),
    ),
    loc=arrays(np.float64, (6, 4), elements=st.floats(-5.0, 5.0, allow_nan=False)),
    landms=arrays(np.float64, (6, 10), elements=st.floats(-20.0, 20.0, allow_nan=False)),
    width=st.integers(16, 2000),
    height=st.integers(16, 2000),
)
def test_decode_then_encode_round_trips(priors, loc, landms, width, height):
    size = (width, height)
    boxes = decode_boxes(loc, priors, size)
    np.testing.assert_allclose(encode_boxes(boxes, priors, size), loc, rtol=1e-9, atol=1e-8)
    points = decode_landmarks(landms, priors, size)
    np.testing.assert_allclose(encode_landmarks(points, priors, size), landms, atol=1e-8)


# --- mapping back to the frame ------------------------------------------------------------------

# A face 60 x 80 px in the network input, centred on the size-32 prior of level 0 (stride 8) at
# row 12, column 16, i.e. centre (132, 100) px; landmarks at centre + d·0.1·32 px.
_LOC = [0.0, 0.0, math.log(60 / 32) / 0.2, math.log(80 / 32) / 0.2]
_D = np.array([(-5, -5), (5, -5), (0, 0), (-4, 5), (4, 5)], np.float64)
_INPUT_BOX = np.array([102.0, 60.0, 162.0, 140.0])
_INPUT_POINTS = np.array([132.0, 100.0]) + _D * 3.2


@pytest.mark.parametrize(
    ("shape", "input_size", "frame_hw", "input_hw", "scale"),
    [
        # optimized: fixed 640x640, a 480x960 frame letterboxed at 2/3.
        (FIXED_640, None, (480, 960), (640, 640), 2 / 3),
        # portrait frame: the height sets the scale.
        (FIXED_640, None, (1280, 400), (640, 640), 1 / 2),
        # baseline: dynamic, the full frame.
        (DYNAMIC, None, (480, 960), (480, 960), 1.0),
        # baseline asked to letterbox into 320.
        (DYNAMIC, 320, (480, 960), (320, 320), 1 / 3),
    ],
)
def test_a_face_at_a_known_prior_lands_where_the_letterbox_puts_it(
    shape, input_size, frame_hw, input_hw, scale
):
    cols = -(-input_hw[1] // 8)
    index = (12 * cols + 16) * 2 + 1
    h, w = input_hw
    np.testing.assert_allclose(
        prior_boxes(h, w)[index], [132 / w, 100 / h, 32 / w, 32 / h], rtol=1e-6
    )
    runner = FakeRetinaFace(shape, {index: (_LOC, 0.875, (_D).ravel())})
    detector = RetinaFaceDetector(runner, RetinaFaceSettings(input_size=input_size))

    detections = detector.detect(_frame(*frame_hw))

    (feed,) = runner.feeds
    assert feed.shape == (1, 3, *input_hw)
    if scale != 1.0:
        # The frame sits top-left; the rest is mean padding, zero after the mean subtraction.
        rows, cols_used = round(frame_hw[0] * scale), round(frame_hw[1] * scale)
        assert not feed[0, :, rows:, :].any() and not feed[0, :, :, cols_used:].any()
    (face,) = detections
    np.testing.assert_allclose(face.box, _INPUT_BOX / scale, atol=1e-3)
    np.testing.assert_allclose(face.landmarks, _INPUT_POINTS / scale, atol=1e-3)
    assert face.score == pytest.approx(0.875)


def test_fixed_non_square_input_is_refused():
    with pytest.raises(ArtifactError, match="letterboxes into a fixed square"):
        RetinaFaceDetector(FakeRetinaFace((1, 3, 480, 640)))


def test_input_size_must_match_a_fixed_input():
    with pytest.raises(ValueError, match="input_size 320 differs"):
        RetinaFaceDetector(FakeRetinaFace(FIXED_640), RetinaFaceSettings(input_size=320))


@pytest.mark.parametrize("name", ["confidence", "nms_threshold", "candidate_threshold"])
def test_thresholds_outside_0_1_are_refused(name):
    with pytest.raises(ValueError, match=name):
        RetinaFaceSettings(**{name: 1.5})


# --- NMS and thresholds -----------------------------------------------------------------------


@pytest.mark.parametrize(("nms_threshold", "expected"), [(0.4, 1), (0.45, 2)])
def test_nms_counts_areas_with_the_plus_one_pixel_convention(nms_threshold, expected):
    # Boxes 9 px apart corner to corner, shifted by 4 px. With "+1" areas the IoU is
    # 6·10 / (100 + 100 − 60) = 0.43 (suppressed at 0.4); without, 5·9 / (81 + 81 − 45) = 0.38.
    faces = dict([_face(0, [10, 10, 19, 19], 0.875), _face(40, [14, 10, 23, 19], 0.75)])
    detector = RetinaFaceDetector(
        FakeRetinaFace(faces=faces), RetinaFaceSettings(nms_threshold=nms_threshold)
    )

    detections = detector.detect(_frame(64, 64))

    assert len(detections) == expected
    np.testing.assert_allclose(detections[0].box, [10, 10, 19, 19], atol=1e-4)


_SPREAD = [[0, 0, 8, 8], [20, 0, 28, 8], [40, 0, 48, 8], [0, 30, 8, 38], [20, 30, 28, 38]]
# Scores exact in float32, so the boundary cases below are exact.
_SCORES = [0.25, 0.875, 0.375, 0.625, 0.5]


@pytest.mark.parametrize(
    ("confidence", "candidate_threshold", "expected"),
    [
        (0.5, 0.02, [0.875, 0.625, 0.5]),  # the confidence is inclusive
        (0.625, 0.02, [0.875, 0.625]),
        (0.0, 0.25, [0.875, 0.625, 0.5, 0.375]),  # the candidate threshold is strict
        (0.9, 0.02, []),
    ],
)
def test_thresholds_are_respected_and_results_sorted_by_score(
    confidence, candidate_threshold, expected
):
    faces = dict(
        _face(10 * i, box, score)
        for i, (box, score) in enumerate(zip(_SPREAD, _SCORES, strict=True))
    )
    settings = RetinaFaceSettings(confidence=confidence, candidate_threshold=candidate_threshold)
    detector = RetinaFaceDetector(FakeRetinaFace(faces=faces), settings)

    detections = detector.detect(_frame(64, 64))

    assert [d.score for d in detections] == expected
    for d in detections:
        np.testing.assert_allclose(d.box, _SPREAD[_SCORES.index(d.score)], atol=1e-4)


@settings(HYPOTHESIS, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), confidence=st.floats(0.05, 0.95))
def test_detections_equal_the_applications_nms_then_threshold_order(seed, confidence):
    # The application runs NMS on every anchor above 0.02 and thresholds after; the detector
    # thresholds first. Random overlapping anchors check that both give the same faces.
    rng = np.random.default_rng(seed)
    n = len(prior_boxes(64, 64))
    outputs = {
        "loc": rng.normal(0, 1, (1, n, 4)).astype(np.float32),
        "conf": np.zeros((1, n, 2), np.float32),
        "landms": rng.normal(0, 2, (1, n, 10)).astype(np.float32),
    }
    outputs["conf"][0, :, 1] = rng.uniform(0, 1, n) ** 3
    detector = RetinaFaceDetector(
        FakeRetinaFace(outputs=outputs), RetinaFaceSettings(confidence=confidence)
    )

    detections = detector.detect(_frame(64, 64))

    scores = outputs["conf"][0, :, 1].astype(np.float64)
    candidates = np.flatnonzero(scores > 0.02)
    priors = prior_boxes(64, 64)[candidates]
    boxes = decode_boxes(outputs["loc"][0, candidates], priors, (64, 64))
    keep = nms(boxes, scores[candidates], 0.4, plus_one=True)
    keep = keep[scores[candidates][keep] >= confidence]
    points = decode_landmarks(outputs["landms"][0, candidates[keep]], priors[keep], (64, 64))
    assert len(detections) == len(keep)
    np.testing.assert_array_equal([d.score for d in detections], scores[candidates[keep]])
    found_boxes = np.array([d.box for d in detections], np.float64).reshape(-1, 4)
    found_points = np.array([d.landmarks for d in detections], np.float64).reshape(-1, 5, 2)
    np.testing.assert_array_equal(found_boxes, boxes[keep].reshape(-1, 4))
    np.testing.assert_array_equal(found_points, points.reshape(-1, 5, 2))


def test_detection_holds_read_only_float64_copies():
    box = np.array([1, 2, 3, 4], np.float32)
    detection = Detection(box=box, score=np.float32(0.5), landmarks=np.zeros((5, 2)))
    box[0] = 100
    assert detection.box.dtype == np.float64 and detection.box[0] == 1
    assert type(detection.score) is float
    with pytest.raises(ValueError):
        detection.box[0] = 7
    with pytest.raises(ValueError, match="landmarks has shape"):
        Detection(box=box, score=0.5, landmarks=np.zeros(10))


# --- profiler -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "label"),
    [
        ("ort-cpu", "onnx"),
        ("ort-coreml", "onnx"),
        ("ort-cuda", "onnx"),
        ("coreml", "coreml"),
        ("torch", "pytorch"),
    ],
)
def test_backend_labels_are_the_applications_suffixes(backend, label):
    assert backend_label(backend) == label


def test_unknown_backend_has_no_label():
    with pytest.raises(ValueError, match="unknown runner backend 'tflite'"):
        backend_label("tflite")


@pytest.mark.parametrize(("backend", "inference"), [("ort-cpu", "onnx"), ("torch", "pytorch")])
def test_detect_records_its_three_operations(backend, inference):
    # Each clock read advances one second, so every timed block lasts exactly 1 s.
    profiler = StageProfiler(clock=itertools.count().__next__)
    detector = RetinaFaceDetector(FakeRetinaFace(backend=backend), profiler=profiler)

    detector.detect(_frame(64, 64))
    detector.detect(_frame(64, 64))

    assert profiler.raw() == {
        "RetinaFace_preprocess": {"category": "preprocessing", "seconds": [1, 1]},
        f"RetinaFace_{inference}": {"category": "model_inference", "seconds": [1, 1]},
        "RetinaFace_postprocess": {"category": "postprocessing", "seconds": [1, 1]},
    }


# --- the built artifact ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def optimized(artifacts_dir):
    return RetinaFaceDetector.open(ArtifactRef(artifacts_dir, "optimized", threads=1))


def _iou_plus_one(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = w * h
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area - inter)


def test_artifact_returns_a_few_scored_faces(optimized):
    # The artifact holds the committed trained weights, or a surrogate built with --weights
    # surrogate (calibrated so about a dozen anchors score above 0.5): only the shape of the
    # result is checked here; where the faces are is the accuracy suite's job.
    detections = optimized.detect(load_image("grace_hopper"))

    assert 1 <= len(detections) <= 40
    scores = [d.score for d in detections]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    for d in detections:
        assert d.box.shape == (4,) and d.landmarks.shape == (5, 2)
        assert np.isfinite(d.box).all() and np.isfinite(d.landmarks).all()
        assert d.box[2] > d.box[0] and d.box[3] > d.box[1]
    for a, b in itertools.combinations(detections, 2):
        assert _iou_plus_one(a.box, b.box) <= 0.4


def test_dynamic_artifact_letterboxed_to_640_agrees_with_the_fixed_one(artifacts_dir, optimized):
    # Same weights, same 640 letterbox: the two paths (fixed shape vs input_size) must agree on a
    # non-square photograph.
    baseline = RetinaFaceDetector.open(
        ArtifactRef(artifacts_dir, "baseline", threads=1), RetinaFaceSettings(input_size=640)
    )
    frame = load_image("obama")

    fixed, dynamic = optimized.detect(frame), baseline.detect(frame)

    assert len(fixed) == len(dynamic) > 0
    for a, b in zip(fixed, dynamic, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-4)
        np.testing.assert_allclose(a.box, b.box, atol=0.05)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)
