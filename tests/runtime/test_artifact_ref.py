"""ArtifactRef: the one validated record of which artifacts to open and how, and the one loader
every model wrapper opens its runners through."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from faceperf.artifacts.layout import artifact_path
from faceperf.errors import ArtifactError, BackendUnavailableError
from faceperf.pipeline.face_mirror import DetectionInterval, FaceMirrorLoop, LoopSettings
from faceperf.pipeline.landmarker import StarLandmarker
from faceperf.pipeline.mtcnn_detector import MODELS, OPENFACE_PRESET, MTCNNDetector
from faceperf.pipeline.multitask import MultitaskAnalyzer
from faceperf.pipeline.profiler import StageProfiler
from faceperf.pipeline.retinaface_detector import RetinaFaceDetector, RetinaFaceSettings
from faceperf.runtime.artifact_ref import ArtifactRef
from faceperf.runtime.backends import BackendChoice

SINGLE_MODEL_WRAPPERS = (RetinaFaceDetector, StarLandmarker, MultitaskAnalyzer)


# --- the record ---------------------------------------------------------------------------------


def test_defaults_are_the_optimized_variant_on_ort_cpu():
    ref = ArtifactRef(Path("build"))
    assert ref == ArtifactRef(Path("build"), "optimized", BackendChoice("ort-cpu", None), None)


def test_loose_forms_are_stored_parsed():
    ref = ArtifactRef("build", "coreml", "coreml:CPU_ONLY", 2)
    assert ref.directory == Path("build")
    assert ref.backend == BackendChoice("coreml", "CPU_ONLY")
    assert ref == ArtifactRef(Path("build"), "coreml", BackendChoice("coreml", "CPU_ONLY"), 2)


def test_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ArtifactRef(Path("build")).variant = "baseline"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"variant": "fp8"}, ArtifactError, r"unknown variant 'fp8'; expected one of: baseline"),
        ({"threads": 0}, ValueError, r"threads 0: expected at least 1"),
        ({"threads": -2}, ValueError, r"threads -2: expected at least 1"),
        ({"backend": "tpu"}, BackendUnavailableError, r"unknown backend 'tpu'"),
        ({"backend": "coreml:GPU_ONLY"}, BackendUnavailableError, r"unknown compute units"),
        ({"backend": "ort-cpu:ALL"}, BackendUnavailableError, r"'ort-cpu:ALL'"),
    ],
)
def test_bad_values_are_refused_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        ArtifactRef(Path("build"), **kwargs)


def test_replace_validates_again():
    with pytest.raises(ValueError, match="threads 0"):
        dataclasses.replace(ArtifactRef(Path("build")), threads=0)


# --- the loader ---------------------------------------------------------------------------------


def test_open_gives_a_runner_on_the_variant_file(artifacts_dir):
    runner = ArtifactRef(artifacts_dir, "baseline", threads=1).open("star")
    assert runner.backend == "ort-cpu"
    assert runner.source == str(artifact_path(artifacts_dir, "star", "baseline"))
    assert runner.executed_on == ("CPUExecutionProvider",)


def test_open_passes_the_threads_to_onnx_runtime(artifacts_dir):
    runner = ArtifactRef(artifacts_dir, threads=1).open("mtcnn_rnet")
    assert runner._session.get_session_options().intra_op_num_threads == 1


def test_open_checks_the_hash_unless_told_not_to(artifacts_dir, tmp_path):
    shutil.copytree(artifacts_dir / "mtcnn_rnet", tmp_path / "mtcnn_rnet")
    manifest = json.loads((artifacts_dir / "manifest.json").read_text())
    manifest["models"] = {"mtcnn_rnet": manifest["models"]["mtcnn_rnet"]}
    manifest["models"]["mtcnn_rnet"]["variants"]["optimized"]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    ref = ArtifactRef(tmp_path, threads=1)
    with pytest.raises(ArtifactError, match=r"optimized\.onnx: sha256 differs from the manifest"):
        ref.open("mtcnn_rnet")
    runner = ref.open("mtcnn_rnet", verify=False)
    assert runner.source == str(artifact_path(tmp_path, "mtcnn_rnet", "optimized"))


# --- the wrappers -------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", SINGLE_MODEL_WRAPPERS, ids=lambda w: w.__name__)
def test_open_gives_a_runner_on_the_referenced_file(artifacts_dir, wrapper):
    profiler = StageProfiler()
    opened = wrapper.open(ArtifactRef(artifacts_dir, "baseline", threads=1), profiler=profiler)
    assert opened.runner.source == str(artifact_path(artifacts_dir, wrapper.artifact, "baseline"))
    assert opened.profiler is profiler


def test_retinaface_open_takes_its_settings(artifacts_dir):
    settings = RetinaFaceSettings(confidence=0.7, input_size=320)
    detector = RetinaFaceDetector.open(ArtifactRef(artifacts_dir, "baseline", threads=1), settings)
    assert detector.settings is settings
    assert detector.input_size == 320


def test_mtcnn_open_takes_its_params_and_workers(artifacts_dir):
    detector = MTCNNDetector.open(ArtifactRef(artifacts_dir), OPENFACE_PRESET, workers=1)
    for model in MODELS:
        source = detector._nets[model].runner.source
        assert source == str(artifact_path(artifacts_dir, model, "optimized"))
    assert detector.params is OPENFACE_PRESET
    assert detector.workers == 1


def test_mtcnn_with_several_workers_gives_each_session_one_thread(artifacts_dir):
    # Two workers on two ONNX Runtime pools of all cores would contend (see default_workers).
    detector = MTCNNDetector.open(ArtifactRef(artifacts_dir), workers=2)
    for model in MODELS:
        session = detector._nets[model].runner._session
        assert session.get_session_options().intra_op_num_threads == 1


def test_face_mirror_open_shares_one_ref_and_profiler(artifacts_dir):
    profiler = StageProfiler()
    settings = LoopSettings(smoothing=5, interval=(3, 1, 6))
    loop = FaceMirrorLoop.open(ArtifactRef(artifacts_dir, threads=1), settings, profiler=profiler)
    for part, model in (("detector", "retinaface"), ("landmarker", "star"), ("analyzer", "mtl")):
        wrapper = getattr(loop, part)
        assert wrapper.runner.source == str(artifact_path(artifacts_dir, model, "optimized"))
        assert wrapper.profiler is profiler
    assert loop.settings.interval == DetectionInterval(3, 1, 6)
    assert loop.settings.smoothing == 5


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (lambda: RetinaFaceSettings(confidence=1.5), "confidence must lie in"),
        (lambda: RetinaFaceSettings(input_size=0), "input_size must be positive"),
        (lambda: LoopSettings(smoothing=0), "smoothing must be >= 1"),
        (lambda: LoopSettings(interval=(9, 1, 8)), "minimum <= start <= maximum"),
        (lambda: LoopSettings(track_margin=0), "must be positive"),
    ],
)
def test_settings_records_refuse_bad_values(settings, message):
    with pytest.raises(ValueError, match=message):
        settings()
