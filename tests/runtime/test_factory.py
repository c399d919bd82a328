"""Runners: one interface over ONNX Runtime, Core ML and eager PyTorch; feeds are checked
against the manifest before anything runs."""

from __future__ import annotations

import json
import platform
import shutil

import numpy as np
import pytest
import torch

from faceperf.accuracy.metrics import snr_db
from faceperf.artifacts.layout import artifact_path
from faceperf.errors import ArtifactError, BackendUnavailableError, InputMismatchError
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.runtime.coreml_backend import coreml_unavailable_reason
from faceperf.runtime.factory import open_runner
from faceperf.runtime.onnxruntime_backend import available_backends
from faceperf.runtime.torch_backend import TorchRunner
from faceperf.weights.sources import resolve_weights

ON_MACOS = platform.system() == "Darwin"


@pytest.fixture(scope="module")
def star_runner(artifacts_dir):
    return open_runner(artifacts_dir, "star", "optimized")


def test_cpu_runner_reports_the_provider_that_serves_it(star_runner):
    assert star_runner.executed_on == ("CPUExecutionProvider",)
    assert star_runner.backend == "ort-cpu"


def test_wrong_input_name_is_refused_before_running(star_runner):
    with pytest.raises(InputMismatchError, match=r"inputs \['input'\] given, expected \['image'\]"):
        star_runner.run({"input": np.zeros((1, 3, 256, 256), np.float32)})


def test_wrong_fixed_shape_is_refused_with_the_expected_shape(star_runner):
    with pytest.raises(
        InputMismatchError,
        match=r"'image' has shape \(1, 3, 224, 224\), expected \(1, 3, 256, 256\)",
    ):
        star_runner.run({"image": np.zeros((1, 3, 224, 224), np.float32)})


def test_wrong_rank_is_refused(star_runner):
    with pytest.raises(InputMismatchError, match=r"shape \(3, 256, 256\)"):
        star_runner.run({"image": np.zeros((3, 256, 256), np.float32)})


def test_wrong_dtype_is_refused(star_runner):
    with pytest.raises(InputMismatchError, match="dtype float64, expected float32"):
        star_runner.run({"image": np.zeros((1, 3, 256, 256))})


def test_dynamic_axes_accept_any_size(artifacts_dir):
    runner = open_runner(artifacts_dir, "mtcnn_pnet", "baseline")
    out = runner.run({"image": np.zeros((2, 3, 30, 40), np.float32)})
    assert out["prob"].shape == (2, 2, 10, 15)


@pytest.fixture
def copied_onet(artifacts_dir, tmp_path):
    shutil.copytree(artifacts_dir / "mtcnn_onet", tmp_path / "mtcnn_onet")
    manifest = json.loads((artifacts_dir / "manifest.json").read_text())
    manifest["models"] = {"mtcnn_onet": manifest["models"]["mtcnn_onet"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_corrupt_onnx_file_is_caught_by_its_hash(copied_onet):
    path = artifact_path(copied_onet, "mtcnn_onet", "optimized")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"optimized\.onnx: sha256 differs from the manifest"):
        open_runner(copied_onet, "mtcnn_onet", "optimized")


def test_corrupt_onnx_file_is_reported_by_onnx_runtime_when_not_hash_checked(copied_onet):
    path = artifact_path(copied_onet, "mtcnn_onet", "optimized")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"optimized\.onnx: ONNX Runtime cannot load it"):
        open_runner(copied_onet, "mtcnn_onet", "optimized", verify=False)


def test_artifact_listed_but_missing_is_reported(copied_onet):
    artifact_path(copied_onet, "mtcnn_onet", "baseline").unlink()
    with pytest.raises(ArtifactError, match=r"baseline\.onnx: listed in the manifest but missing"):
        open_runner(copied_onet, "mtcnn_onet", "baseline")


def test_model_or_variant_missing_from_the_manifest_is_reported(copied_onet):
    with pytest.raises(ArtifactError, match="manifest has no model 'star'"):
        open_runner(copied_onet, "star", "optimized")


def test_missing_manifest_says_how_to_build_one(tmp_path):
    with pytest.raises(ArtifactError, match="no manifest; build with `faceperf artifacts build"):
        open_runner(tmp_path, "star", "optimized")


def test_mlpackage_is_not_handed_to_onnx_runtime(artifacts_dir):
    with pytest.raises(BackendUnavailableError, match="runs on the coreml backend"):
        open_runner(artifacts_dir, "mtcnn_rnet", "coreml", backend="ort-cpu")


@pytest.mark.skipif(ON_MACOS, reason="checks the refusal on hosts without Core ML")
def test_coreml_prediction_is_refused_off_macos_with_the_reason(artifacts_dir):
    with pytest.raises(BackendUnavailableError, match="Core ML prediction needs macOS"):
        open_runner(artifacts_dir, "mtcnn_rnet", "coreml", backend="coreml")


@pytest.mark.parametrize("backend", ["ort-coreml", "ort-cuda"])
def test_accelerated_ort_backend_is_refused_clearly_where_absent(backend, artifacts_dir):
    if backend in available_backends():
        pytest.skip(f"{backend} is available on this host")
    with pytest.raises(BackendUnavailableError, match=f"{backend}: this onnxruntime .* has no"):
        open_runner(artifacts_dir, "mtcnn_rnet", "optimized", backend=backend)


@pytest.mark.coreml
@pytest.mark.skipif(
    coreml_unavailable_reason() is not None, reason=coreml_unavailable_reason() or ""
)
@pytest.mark.parametrize("name", default_registry().names())
def test_coreml_prediction_matches_onnx_runtime(name, artifacts_dir):
    spec = default_registry()[name]
    sample = np.array(sample_batch(name)[:1])
    coreml = open_runner(artifacts_dir, name, "coreml", backend="coreml")
    assert coreml.executed_on == ("coreml:CPU_AND_NE",)
    got = coreml.run({spec.input_name: sample.astype(np.float16)})
    want = open_runner(artifacts_dir, name, "optimized").run({spec.input_name: sample})
    for output in spec.output_names:
        assert snr_db(want[output], got[output].astype(np.float32).reshape(want[output].shape)) > 25


@pytest.mark.skipif(
    "ort-coreml" not in available_backends(),
    reason="this onnxruntime build has no CoreML execution provider (macOS only)",
)
def test_ort_coreml_provider_runs_and_says_so(artifacts_dir):
    runner = open_runner(artifacts_dir, "mtcnn_rnet", "optimized", backend="ort-coreml")
    assert runner.executed_on[0] == "CoreMLExecutionProvider"
    out = runner.run({"image": np.array(sample_batch("mtcnn_rnet")[:2])})
    assert out["prob"].shape == (2, 2)


def test_torch_runner_is_the_eager_reference_with_the_same_checks():
    spec = default_registry()["mtcnn_rnet"]
    runner = TorchRunner(resolve_weights(spec).build_model(), spec, "mtcnn_rnet (packaged)")
    out = runner.run({"image": np.array(sample_batch("mtcnn_rnet"))})
    assert set(out) == {"reg", "prob"} and out["prob"].shape[1] == 2
    assert runner.executed_on[0].startswith("torch-")
    with pytest.raises(InputMismatchError, match="mtcnn_rnet \\(packaged\\): input 'image'"):
        runner.run({"image": np.zeros((1, 3, 48, 48), np.float32)})


def test_artifact_whose_graph_differs_from_its_manifest_is_refused(copied_onet, tmp_path):
    # A reconversion fixed the batch axis; its manifest still declares it dynamic.
    from onnx_session import export_session

    from faceperf.fileio import sha256_path

    spec = default_registry()["mtcnn_onet"]
    path = artifact_path(copied_onet, "mtcnn_onet", "optimized")
    model = resolve_weights(spec).build_model()
    export_session(model, torch.zeros(1, 3, 48, 48), path, spec.output_names)
    manifest_file = copied_onet / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["models"]["mtcnn_onet"]["variants"]["optimized"]["sha256"] = sha256_path(path)
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(
        ArtifactError,
        match=r"file's inputs image \(1, 3, 48, 48\) float32 differ "
        r"from the manifest's image \(batch, 3, 48, 48\)",
    ):
        open_runner(copied_onet, "mtcnn_onet", "optimized")
