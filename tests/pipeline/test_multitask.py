"""MTL analyzer: softmax and label mapping, AU order, batching against per-face calls, fixed-batch
looping, input dtype, and the profiler operations it records."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceperf.artifacts.manifest import TensorInfo
from faceperf.fixtures.faces import load_image, reference_faces
from faceperf.models.inputs import crop_box, mtl_input
from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES
from faceperf.pipeline.multitask import FaceAttributes, MultitaskAnalyzer, softmax
from faceperf.pipeline.profiler import StageProfiler
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.base import Runner

DYNAMIC = ("batch", 3, 224, 224)
FIXED_1 = (1, 3, 224, 224)


class FakeMtl(Runner):
    """Answers from per-face rows chosen by the face's mean input value, so each face gets its
    own answer whatever the batching; records what it was fed."""

    def __init__(self, rows, shape=DYNAMIC, backend="ort-cpu", dtype="float32") -> None:
        self.backend, self.source = backend, "fake mtl"
        self.inputs = (TensorInfo("image", shape, dtype),)
        self.outputs = tuple(TensorInfo(n, (), "float32") for n in ("emotion", "gaze", "au"))
        self.rows = rows  # {key: (emotion logits (8,), gaze (2,), au (8,))}
        self.feeds: list[np.ndarray] = []

    def _run(self, feeds):
        image = feeds["image"]
        self.feeds.append(image)
        answers = [self.rows.get(_key(face), self.rows[None]) for face in image]
        return {
            name: np.array([a[i] for a in answers], np.float32)
            for i, name in enumerate(("emotion", "gaze", "au"))
        }

    @property
    def executed_on(self):
        return ("fake",)


def _key(face: np.ndarray) -> int:
    return round(float(face[0, 0, 0]), 2)


def _face(value: int, size=(40, 30)) -> np.ndarray:
    return np.full((*size, 3), value, np.uint8)


_ZERO = (np.zeros(8), np.zeros(2), np.zeros(8))


def test_logits_become_a_softmax_and_the_label_of_its_largest_entry():
    sad = np.array([0.0, 1.0, 5.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    # Huge logits: a naive exp overflows to inf/inf = nan.
    anger = np.array([1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1002.0, 1000.0])
    rows = {
        _key(mtl_input(_face(10))[0]): (sad, (0.25, -0.5), np.linspace(-0.8, 0.6, 8)),
        _key(mtl_input(_face(200))[0]): (anger, (1.0, 2.0), np.zeros(8)),
        None: _ZERO,
    }

    first, second = MultitaskAnalyzer(FakeMtl(rows)).analyze([_face(10), _face(200)])

    e = np.exp(sad)
    np.testing.assert_allclose(first.emotion_probs, e / e.sum(), rtol=1e-6)
    assert first.emotion == "Sad"
    assert first.gaze == (0.25, -0.5)
    assert list(first.aus) == list(AU_NAMES)
    np.testing.assert_allclose(list(first.aus.values()), np.linspace(-0.8, 0.6, 8), atol=1e-6)
    assert first.aus["AU01"] == pytest.approx(-0.8) and first.aus["AU25"] == pytest.approx(0.6)
    assert second.emotion == "Anger" == EMOTION_NAMES[6]
    expected = np.full(8, 1.0)
    expected[6] = np.exp(2.0)
    np.testing.assert_allclose(second.emotion_probs, expected / expected.sum(), rtol=1e-6)
    assert second.gaze == (1.0, 2.0)


def test_softmax_rows_sum_to_one():
    logits = np.random.default_rng(0).normal(0, 30, (5, 8))
    probs = softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert (np.argmax(probs, axis=1) == np.argmax(logits, axis=1)).all()


@pytest.mark.parametrize(
    ("shape", "calls"),
    [(DYNAMIC, [3]), (FIXED_1, [1, 1, 1]), ((2, 3, 224, 224), [2, 2])],
    ids=["dynamic", "fixed-1", "fixed-2"],
)
def test_faces_are_batched_as_the_runner_allows_and_answers_stay_with_their_face(shape, calls):
    faces = [_face(10, (50, 40)), _face(120, (200, 160)), _face(240, (20, 30))]
    keys = [_key(mtl_input(f)[0]) for f in faces]
    rows = {k: (np.eye(8)[i] * 4, (i, -i), np.full(8, i / 10)) for i, k in enumerate(keys)}
    runner = FakeMtl({**rows, None: _ZERO}, shape=shape)

    result = MultitaskAnalyzer(runner).analyze(faces)

    assert [len(feed) for feed in runner.feeds] == calls
    # A fixed batch of 2 pads the last call with zeros, whose answer is dropped.
    fed = np.concatenate(runner.feeds)[: len(faces)]
    np.testing.assert_array_equal(fed, np.concatenate([mtl_input(f) for f in faces]))
    assert [r.emotion for r in result] == list(EMOTION_NAMES[:3])
    assert [r.gaze for r in result] == [(0.0, 0.0), (1.0, -1.0), (2.0, -2.0)]
    assert [r.aus["AU12"] for r in result] == pytest.approx([0.0, 0.1, 0.2])


def test_a_float16_artifact_is_fed_float16():
    # Core ML artifacts declare float16 inputs; the runner refuses anything else.
    runner = FakeMtl({None: _ZERO}, shape=FIXED_1, dtype="float16")
    MultitaskAnalyzer(runner).analyze([_face(10)])
    assert runner.feeds[0].dtype == np.float16


def test_no_faces_means_no_call():
    runner = FakeMtl({None: _ZERO})
    assert MultitaskAnalyzer(runner).analyze([]) == [] and runner.feeds == []


def test_attributes_hold_a_read_only_float64_copy_of_the_probabilities():
    probs = np.full(8, 0.125, np.float32)
    attributes = FaceAttributes("Neutral", probs, (0.0, 0.0), dict.fromkeys(AU_NAMES, 0.0))
    probs[0] = 1
    assert attributes.emotion_probs.dtype == np.float64 and attributes.emotion_probs[0] == 0.125
    with pytest.raises(ValueError):
        attributes.emotion_probs[0] = 1
    with pytest.raises(ValueError, match="expected \\(8,\\)"):
        FaceAttributes("Neutral", np.zeros(7), (0.0, 0.0), {})


@pytest.mark.parametrize(("shape", "calls"), [(DYNAMIC, 1), (FIXED_1, 2)], ids=["dynamic", "fixed"])
def test_analyze_records_its_three_operations(shape, calls):
    # Each clock read advances one second: every timed block lasts 1 s. Inference is recorded per
    # model call (the application's count), pre- and postprocessing per analyze() call.
    profiler = StageProfiler(clock=itertools.count().__next__)
    analyzer = MultitaskAnalyzer(FakeMtl({None: _ZERO}, shape=shape), profiler=profiler)

    analyzer.analyze([_face(10), _face(20)])

    assert profiler.raw() == {
        "MTL_preprocess": {"category": "preprocessing", "seconds": [1]},
        "MTL_onnx": {"category": "model_inference", "seconds": [1] * calls},
        "MTL_postprocess": {"category": "postprocessing", "seconds": [1]},
    }


def test_a_batch_equals_single_calls_on_the_real_artifact(artifacts_dir):
    analyzer = MultitaskAnalyzer.open(ArtifactRef(artifacts_dir, "baseline", threads=1))
    frame = load_image("grace_hopper")
    face = crop_box(frame, reference_faces("grace_hopper")[0].box)
    # Different sizes and a mirrored face, as the Face Mirror loop sends.
    faces = [face, np.ascontiguousarray(face[:, ::-1]), face[20:, 10:-10]]

    batched = analyzer.analyze(faces)
    singles = [analyzer.analyze([f])[0] for f in faces]

    for b, s in zip(batched, singles, strict=True):
        assert b.emotion == s.emotion
        np.testing.assert_allclose(b.emotion_probs, s.emotion_probs, atol=1e-5)
        np.testing.assert_allclose(b.gaze, s.gaze, atol=1e-5)
        assert list(b.aus) == list(AU_NAMES)
        np.testing.assert_allclose(list(b.aus.values()), list(s.aus.values()), atol=1e-5)
        assert b.emotion_probs.sum() == pytest.approx(1.0)
        assert b.emotion == EMOTION_NAMES[int(np.argmax(b.emotion_probs))]
    # Distinct faces, distinct answers (a batch answering face 0 thrice would otherwise pass).
    assert not np.allclose(batched[0].gaze, batched[1].gaze, atol=1e-3)
