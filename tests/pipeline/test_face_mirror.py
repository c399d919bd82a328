"""The Face Mirror frame loop with fake models (exact call logic), its CSV, and one real run."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from faceperf.models.mtl import AU_NAMES, EMOTION_NAMES
from faceperf.pipeline.face_mirror import (
    MIRROR_OPERATION,
    DetectionInterval,
    FaceMirrorLoop,
    FrameResult,
    LoopSettings,
    tracking_box,
)
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.multitask import FaceAttributes, MultitaskAnalyzer
from faceperf.pipeline.profiler import StageProfiler
from faceperf.pipeline.results_csv import header, write_results
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector
from faceperf.pipeline.symmetry import CHIN_POINT, GLABELLA_POINTS, mirror_faces
from faceperf.pipeline.video import synthetic_frames
from faceperf.runtime.artifact_ref import ArtifactRef

HEIGHT, WIDTH = 160, 640
FACE = 50.0  # the fake face's landmark box is about this many pixels on a side


def _template() -> np.ndarray:
    """98 points in a 50 x 50 box around (0, 0), upright: glabella above chin."""
    points = np.random.default_rng(7).uniform(-FACE / 2, FACE / 2, size=(98, 2))
    points[GLABELLA_POINTS[0]] = (-4.0, -15.0)
    points[GLABELLA_POINTS[1]] = (4.0, -15.0)
    points[CHIN_POINT] = (0.0, FACE / 2)
    points[0] = (-FACE / 2, -FACE / 2)  # pin the bounding box to exactly 50 x 50
    points[1] = (FACE / 2, FACE / 2)
    return points


TEMPLATE = _template()


def _frames(count: int) -> list[np.ndarray]:
    """Frames that carry their own index in pixel (0, 0) so the fakes know where they are."""
    frames = []
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i in range(count):
        frame = base.copy()
        frame[0, 0] = (i % 256, i // 256, 0)
        frames.append(frame)
    return frames


def _index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


@dataclass
class FakeDetection:
    box: np.ndarray
    score: float


class FakeDetector:
    """Finds the faces a scene function says are in frame ``i``: [(centre, score)]."""

    def __init__(self, scene: Callable[[int], list[tuple[np.ndarray, float]]]) -> None:
        self.scene = scene
        self.frames: list[int] = []

    def detect(self, frame: np.ndarray) -> list[FakeDetection]:
        i = _index(frame)
        self.frames.append(i)
        faces = [
            FakeDetection(np.concatenate([c - FACE / 2, c + FACE / 2]), s) for c, s in self.scene(i)
        ]
        return sorted(faces, key=lambda d: -d.score)


class FakeLandmarker:
    """Puts the template at the centre ``where(i, box)`` says, plus optional jitter."""

    def __init__(
        self,
        where: Callable[[int, np.ndarray], np.ndarray],
        jitter: float = 0.0,
        override: Callable[[int], np.ndarray | None] = lambda i: None,
    ) -> None:
        self.where = where
        self.jitter = jitter
        self.override = override
        self.calls: list[tuple[int, np.ndarray]] = []
        self.outputs: list[np.ndarray] = []

    def landmarks(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        i = _index(frame)
        boxes = np.asarray(boxes)
        assert boxes.shape == (1, 4)
        self.calls.append((i, boxes[0].copy()))
        points = self.override(i)
        if points is None:
            noise = np.random.default_rng(1000 + i).normal(0, self.jitter, size=(98, 2))
            points = TEMPLATE + self.where(i, boxes[0]) + noise
        self.outputs.append(points)
        return points[None]


def _attributes(value: float) -> FaceAttributes:
    probs = np.full(8, 0.5 / 7)
    probs[1] = 0.5
    return FaceAttributes(
        emotion=EMOTION_NAMES[1],
        emotion_probs=probs,
        gaze=(value, -value),
        aus={au: value + k / 100 for k, au in enumerate(AU_NAMES)},
    )


class FakeAnalyzer:
    def __init__(self) -> None:
        self.calls: list[list[np.ndarray]] = []

    def analyze(self, faces):
        self.calls.append([f.copy() for f in faces])
        return [_attributes(0.1 * k) for k in range(len(faces))]

    @property
    def faces(self) -> int:
        return sum(len(c) for c in self.calls)


def _still(i: int) -> np.ndarray:
    return np.array([200.0, 80.0])


def _run(count, scene, where, profiler=None, **kwargs):
    detector = FakeDetector(scene)
    landmarker = FakeLandmarker(
        where, **{k: kwargs.pop(k) for k in ("jitter", "override") if k in kwargs}
    )
    analyzer = FakeAnalyzer()
    loop = FaceMirrorLoop(detector, landmarker, analyzer, LoopSettings(**kwargs), profiler)
    frames = _frames(count)
    results = list(loop.run(frames))
    return results, detector, landmarker, analyzer, frames


def _one_face(position: Callable[[int], np.ndarray]):
    return lambda i: [(position(i), 0.9)]


def _follow(position: Callable[[int], np.ndarray]):
    """A perfect STAR: landmarks at the face's true position, whatever box it is given."""
    return lambda i, box: position(i)


def test_a_still_head_widens_the_interval_to_its_maximum():
    results, detector, landmarker, analyzer, _ = _run(60, _one_face(_still), _follow(_still))
    expected = [0, 2, 5, 9, 14, 20, 27, 35, 43, 51, 59]  # gaps 2, 3, 4, 5, 6, 7, 8, 8, ...
    assert detector.frames == expected
    assert [r.frame for r in results if r.detected] == expected
    assert [r.frame for r in results] == list(range(60))
    assert [i for i, _ in landmarker.calls] == list(range(60))  # STAR once per frame
    assert analyzer.faces == 120 and len(analyzer.calls) == 60  # MTL on two faces per frame


def test_a_moving_head_narrows_the_interval_again():
    def position(i: int) -> np.ndarray:
        # Still until frame 36, then 5 px (10 % of the face) per frame to the right.
        return np.array([100.0 + 5.0 * max(0, i - 36), 80.0])

    results, detector, *_ = _run(80, _one_face(position), _follow(position))
    # Widens to 8 while still, then every re-detection sees movement: 8 → 7 → ... → 1.
    assert detector.frames == [
        *[0, 2, 5, 9, 14, 20, 27, 35],  # up to interval 8 (35 still saw no movement)
        *[43, 50, 56, 61, 65, 68, 70, 71],  # moved: gaps 8, 7, 6, 5, 4, 3, 2, 1
        *range(72, 80),  # interval stays at its minimum, 1
    ]
    assert [r.frame for r in results if r.detected] == detector.frames


def test_tracking_between_detections_follows_the_previous_landmarks():
    def position(i: int) -> np.ndarray:
        return np.array([300.0 + 2.0 * i, 80.0 + np.sin(i)])

    results, detector, landmarker, *_ = _run(12, _one_face(position), _follow(position))
    detected = set(detector.frames)
    for (i, box), result in zip(landmarker.calls, results, strict=True):
        np.testing.assert_array_equal(result.box, box)  # the result reports STAR's box
        if i in detected:
            centre = position(i)
            np.testing.assert_allclose(box, [*(centre - FACE / 2), *(centre + FACE / 2)])
        else:
            previous = landmarker.outputs[i - 1]  # raw, unsmoothed
            np.testing.assert_allclose(box, tracking_box(previous, 1.1))
            centre = position(i - 1)
            np.testing.assert_allclose(box, [*(centre - 27.5), *(centre + 27.5)])


@pytest.mark.parametrize("failure", ["leaves the frame", "collapses", "is not finite"])
def test_lost_tracking_redetects_on_the_next_frame_and_restarts(failure):
    broken = {
        "leaves the frame": TEMPLATE + np.array([-100.0, 80.0]),
        "collapses": TEMPLATE * 0.2 + np.array([200.0, 80.0]),  # a 10 px face
        "is not finite": np.full((98, 2), np.nan),
    }[failure]
    results, detector, landmarker, analyzer, _ = _run(
        20, _one_face(_still), _follow(_still), override=lambda i: broken if i == 7 else None
    )
    # 0, 2, 5 (interval 4, next would be 9); lost at 7 → 8; a new track at interval 2 → 10, 13.
    assert detector.frames == [0, 2, 5, 8, 10, 13, 17]
    assert len(landmarker.calls) == 20
    # The new track starts its smoothing afresh: frame 8's landmarks are its raw landmarks.
    np.testing.assert_allclose(results[8].landmarks, landmarker.outputs[8])
    if failure == "is not finite":
        assert results[7].landmarks is None and results[7].left is None
        assert analyzer.faces == 2 * 19
    else:
        assert results[7].left is not None
        assert analyzer.faces == 40


def test_frames_without_a_face_are_reported_and_the_loop_keeps_going():
    def scene(i: int):
        return [] if i < 3 else [(_still(i), 0.9)]

    results, detector, landmarker, analyzer, _ = _run(16, scene, _follow(_still))
    no_face = [r.frame for r in results if not r.has_face]
    # Detection on every frame until the face appears at 3, then the usual widening schedule.
    assert no_face == [0, 1, 2]
    assert detector.frames == [0, 1, 2, 3, 5, 8, 12]
    for r in results[:3]:
        assert r.detected and r.box is None and r.landmarks is None
        assert r.left is None and r.right is None
    assert [i for i, _ in landmarker.calls] == list(range(3, 16))
    assert analyzer.faces == 2 * 13


def test_a_face_gone_at_a_scheduled_detection_yields_an_empty_frame_and_redetects():
    def scene(i: int):
        return [] if i == 5 else [(_still(i), 0.9)]

    results, detector, landmarker, _, _ = _run(12, scene, _follow(_still))
    assert detector.frames == [0, 2, 5, 6, 8, 11]
    assert not results[5].has_face and results[5].detected
    assert 5 not in [i for i, _ in landmarker.calls]


def test_a_second_face_does_not_steal_the_track():
    def near(i: int) -> np.ndarray:
        return np.array([150.0, 80.0])

    def far(i: int) -> np.ndarray:
        return np.array([450.0, 80.0])

    def scene(i: int):
        # The far face scores higher from frame 1 on.
        return [(near(i), 0.9), (far(i), 0.6 if i == 0 else 0.99)]

    def where(i: int, box: np.ndarray) -> np.ndarray:
        # STAR finds whichever face the box is on.
        centre = (box[:2] + box[2:]) / 2
        return near(i) if abs(centre[0] - 150) < abs(centre[0] - 450) else far(i)

    results, detector, *_ = _run(15, scene, where)
    assert all(abs(r.box[0] + 25 - 150) < 5 for r in results)
    assert detector.frames == [0, 2, 5, 9, 14]  # the track continued: the interval kept growing


def test_landmarks_are_a_moving_average_of_the_last_three_frames():
    results, _, landmarker, _, _ = _run(10, _one_face(_still), _follow(_still), jitter=1.5)
    raw = np.stack(landmarker.outputs)
    for i, result in enumerate(results):
        expected = raw[max(0, i - 2) : i + 1].mean(axis=0)
        np.testing.assert_allclose(result.landmarks, expected, rtol=0, atol=1e-12)
    # Smoothing really reduces the jitter.
    assert np.std(np.stack([r.landmarks for r in results[2:]]) - TEMPLATE - _still(0)) < 1.0


def test_smoothing_of_one_frame_is_the_raw_landmarks():
    results, _, landmarker, _, _ = _run(
        5, _one_face(_still), _follow(_still), jitter=1.5, smoothing=1
    )
    for result, raw in zip(results, landmarker.outputs, strict=True):
        np.testing.assert_array_equal(result.landmarks, raw)


def test_mtl_gets_the_two_mirrored_faces_of_the_smoothed_landmarks():
    profiler = StageProfiler()
    results, _, _, analyzer, frames = _run(
        6, _one_face(_still), _follow(_still), jitter=2.0, profiler=profiler
    )
    for result, call, frame in zip(results, analyzer.calls, frames, strict=True):
        left, right = mirror_faces(frame, result.landmarks, result.box)
        assert len(call) == 2
        np.testing.assert_array_equal(call[0], left)
        np.testing.assert_array_equal(call[1], right)
        assert result.left.gaze == (0.0, -0.0) and result.right.gaze[0] == pytest.approx(0.1)
    stats = {row.name: row for row in profiler.stats()}
    assert stats[MIRROR_OPERATION].count == 6
    assert stats[MIRROR_OPERATION].category == "preprocessing"


def test_n_frames_make_n_star_calls_and_2n_mtl_faces():
    """The application logged 1,111 frames → 1,111 STAR and 2,223 MTL calls.

    This loop makes exactly 2N MTL calls. The application's extra MTL call is not per frame:
    its 973-frame run logged 1,947 = 2 x 973 + 1 as well, so it is one call per run outside
    the frame loop (its AU extractor warms MTL up on a synthetic face before the video), which
    this loop does not reproduce.
    """
    n = 111
    results, _, landmarker, analyzer, _ = _run(n, _one_face(_still), _follow(_still))
    assert len(results) == n
    assert len(landmarker.calls) == n
    assert analyzer.faces == 2 * n


def test_the_loop_restarts_on_every_run():
    detector = FakeDetector(_one_face(_still))
    loop = FaceMirrorLoop(detector, FakeLandmarker(_follow(_still)), FakeAnalyzer())
    list(loop.run(_frames(6)))
    list(loop.run(_frames(6)))
    assert detector.frames == [0, 2, 5, 0, 2, 5]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="minimum <= start <= maximum"):
        LoopSettings(interval=(9, 1, 8))
    with pytest.raises(ValueError, match="smoothing"):
        LoopSettings(smoothing=0)
    assert LoopSettings(interval=(1, 1, 2)).interval == DetectionInterval(1, 1, 2)


def test_frame_results_are_frozen_and_read_only():
    result = FrameResult(0, True, np.zeros(4), np.zeros((98, 2)), None, None)
    with pytest.raises(AttributeError):
        result.frame = 1
    with pytest.raises(ValueError):
        result.box[0] = 1.0
    with pytest.raises(ValueError, match="expected"):
        FrameResult(0, True, np.zeros(5), None, None, None)


# --- the CSV --------------------------------------------------------------------------------


def test_csv_header():
    columns = header()
    assert columns[:6] == ["frame", "detected", "x1", "y1", "x2", "y2"]
    assert columns[6:10] == ["lm0_x", "lm0_y", "lm1_x", "lm1_y"]
    assert columns[200:202] == ["lm97_x", "lm97_y"]
    side = [
        "left_emotion",
        *(f"left_{e.lower()}_prob" for e in EMOTION_NAMES),
        "left_gaze_yaw",
        "left_gaze_pitch",
        *(f"left_{au}" for au in AU_NAMES),
    ]
    assert columns[202:221] == side
    assert columns[221:] == [c.replace("left_", "right_") for c in side]
    assert "left_neutral_prob" in columns and "right_AU25" in columns
    assert len(columns) == len(set(columns)) == 6 + 196 + 2 * 19


def test_csv_rows_read_back_exactly(tmp_path: Path):
    results, *_ = _run(
        6, lambda i: [] if i == 2 else [(_still(i), 0.9)], _follow(_still), jitter=0.7
    )
    path = tmp_path / "out" / "frames.csv"
    assert write_results(path, results) == 6
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert [row["frame"] for row in rows] == [str(i) for i in range(6)]
    assert [row["detected"] for row in rows] == ["1" if r.detected else "0" for r in results]
    assert [r.has_face for r in results] == [True, True, False, True, True, True]
    empty = rows[2]
    assert all(empty[c] == "" for c in header()[2:])
    full, result = rows[3], results[3]
    assert [float(full[c]) for c in ("x1", "y1", "x2", "y2")] == list(result.box)
    assert float(full["lm57_y"]) == result.landmarks[57, 1]  # exact: repr round-trips
    assert full["left_emotion"] == "Happy"
    assert float(full["right_gaze_yaw"]) == result.right.gaze[0]
    assert float(full["right_AU04"]) == result.right.aus["AU04"]
    assert float(full["left_happy_prob"]) == result.left.emotion_probs[1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["frames.csv"]  # no temp file


def test_csv_is_written_whole_or_not_at_all(tmp_path: Path):
    path = tmp_path / "frames.csv"
    path.write_text("previous\n")

    def failing():
        yield FrameResult(0, True, None, None, None, None)
        raise RuntimeError("the loop died")

    with pytest.raises(RuntimeError, match="the loop died"):
        write_results(path, failing())
    assert path.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.csv"]


# --- the real models --------------------------------------------------------------------------


def test_real_artifacts_run_the_loop_and_write_the_csv(artifacts_dir: Path, tmp_path: Path):
    profiler = StageProfiler()
    ref = ArtifactRef(artifacts_dir)
    loop = FaceMirrorLoop(
        RetinaFaceDetector.open(ref, profiler=profiler),
        StarLandmarker.open(ref, profiler=profiler),
        MultitaskAnalyzer.open(ref, profiler=profiler),
        profiler=profiler,
    )
    results = list(loop.run(synthetic_frames(6, seed=0, size=(360, 640))))
    assert [r.frame for r in results] == list(range(6))
    assert results[0].detected
    faces = [r for r in results if r.has_face]
    assert faces, "no face in any frame: the profile below would be missing STAR and MTL"
    stats = {row.name: row for row in profiler.stats()}
    assert set(stats) == {
        *(f"{m}_{op}" for m in ("RetinaFace", "STAR", "MTL") for op in ("preprocess", "onnx")),
        *(f"{m}_postprocess" for m in ("RetinaFace", "STAR", "MTL")),
        "Mirror_preprocess",
    }
    # The counts are the loop's calls: one detection per detected frame, one STAR per face
    # frame, two MTL runs (one per mirrored face) per face frame with attributes.
    assert stats["RetinaFace_onnx"].count == sum(r.detected for r in results)
    assert stats["STAR_onnx"].count == len(faces)
    analysed = [r for r in faces if r.left is not None]
    assert stats["MTL_onnx"].count == 2 * len(analysed)
    assert stats["Mirror_preprocess"].count == len(analysed)
    for r in analysed:
        assert r.landmarks.shape == (98, 2) and np.all(np.isfinite(r.landmarks))
        assert r.left.emotion in EMOTION_NAMES and set(r.right.aus) == set(AU_NAMES)
    path = tmp_path / "frames.csv"
    assert write_results(path, results) == 6
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == header()
    assert len(rows) == 7 and all(len(row) == len(header()) for row in rows)
