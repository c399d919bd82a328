"""Conformance: real faults a reconversion can introduce are each named; honest artifacts pass."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import onnx
import pytest

from faceperf.artifacts import onnx_export
from faceperf.artifacts.conformance import check_artifact, check_directory
from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.fileio import sha256_path
from faceperf.models.registry import default_registry
from faceperf.weights.sources import resolve_weights


def _candidate(artifacts_dir: Path, tmp_path: Path, model: str) -> Path:
    """A candidate folder holding one model copied from the default artifacts."""
    out = tmp_path / "candidate"
    shutil.copytree(artifacts_dir / model, out / model)
    manifest = json.loads((artifacts_dir / "manifest.json").read_text())
    manifest["models"] = {model: manifest["models"][model]}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _record_file(candidate: Path, model: str, variant: str) -> None:
    """Update the candidate's manifest to describe the file as it now is (as a reconversion's
    own tooling would), so only the contract can catch the fault."""
    manifest = json.loads((candidate / "manifest.json").read_text())
    entry = manifest["models"][model]["variants"][variant]
    path = artifact_path(candidate, model, variant)
    entry["sha256"] = sha256_path(path)
    if path.suffix == ".onnx":
        inputs, outputs = onnx_export.describe_onnx(path)
        entry["inputs"] = [dataclasses.asdict(t) for t in inputs]
        entry["outputs"] = [dataclasses.asdict(t) for t in outputs]
    (candidate / "manifest.json").write_text(json.dumps(manifest))


def _findings(candidate: Path, model: str, variant: str) -> list:
    spec = default_registry()[model]
    return check_artifact(candidate, read_manifest(candidate), spec, variant)


def test_every_default_artifact_conforms(artifacts_dir):
    assert check_directory(artifacts_dir) == []


def test_an_fp16_artifact_that_is_really_fp32_is_caught(artifacts_dir, tmp_path):
    candidate = _candidate(artifacts_dir, tmp_path, "mtcnn_onet")
    shutil.copy(
        artifact_path(candidate, "mtcnn_onet", "optimized"),
        artifact_path(candidate, "mtcnn_onet", "optimized_fp16"),
    )
    _record_file(candidate, "mtcnn_onet", "optimized_fp16")
    (finding,) = _findings(candidate, "mtcnn_onet", "optimized_fp16")
    assert finding.check == "precision"
    assert "claims float16 but only 0% of its weights are FP16" in finding.message


def test_a_model_exported_at_the_wrong_input_size_is_caught(artifacts_dir, tmp_path):
    candidate = _candidate(artifacts_dir, tmp_path, "mtl")
    spec = default_registry()["mtl"]
    wrong = dataclasses.replace(spec, fixed_shape=(1, 3, 192, 192))
    onnx_export.export_onnx(
        resolve_weights(spec).build_model(), wrong, artifact_path(candidate, "mtl", "optimized"), {}
    )
    _record_file(candidate, "mtl", "optimized")
    (finding,) = _findings(candidate, "mtl", "optimized")
    assert finding.check == "shape"
    assert "input shape (1, 3, 192, 192), expected (1, 3, 224, 224)" in finding.message


def test_a_renamed_output_is_caught(artifacts_dir, tmp_path):
    candidate = _candidate(artifacts_dir, tmp_path, "mtcnn_rnet")
    path = artifact_path(candidate, "mtcnn_rnet", "optimized")
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.output[:] = ["probability" if o == "prob" else o for o in node.output]
    for output in model.graph.output:
        if output.name == "prob":
            output.name = "probability"
    onnx.save(model, str(path))
    _record_file(candidate, "mtcnn_rnet", "optimized")
    (finding,) = _findings(candidate, "mtcnn_rnet", "optimized")
    assert finding.check == "tensors" and "'probability'" in finding.message


def test_dynamic_int8_quantisation_is_caught_as_foreign_ops(artifacts_dir, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    candidate = _candidate(artifacts_dir, tmp_path, "mtcnn_onet")
    path = artifact_path(candidate, "mtcnn_onet", "optimized")
    quantised = tmp_path / "int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it recommends pre-processing the model first
        quantize_dynamic(str(path), str(quantised), weight_type=QuantType.QInt8)
    shutil.copy(quantised, path)
    _record_file(candidate, "mtcnn_onet", "optimized")
    checks = {f.check: f.message for f in _findings(candidate, "mtcnn_onet", "optimized")}
    assert "integer quantisation ops in a float32 variant" in checks["ops"]


def test_a_file_changed_after_the_build_is_caught_by_its_hash(artifacts_dir, tmp_path):
    candidate = _candidate(artifacts_dir, tmp_path, "mtcnn_pnet")
    path = artifact_path(candidate, "mtcnn_pnet", "baseline")
    path.write_bytes(path.read_bytes() + b"\0")
    checks = [f.check for f in _findings(candidate, "mtcnn_pnet", "baseline")]
    assert "file" in checks


def test_a_coreml_package_converted_in_fp32_is_caught(artifacts_dir, tmp_path):
    ct = pytest.importorskip("coremltools")
    import torch

    candidate = _candidate(artifacts_dir, tmp_path, "mtcnn_rnet")
    spec = default_registry()["mtcnn_rnet"]
    example = torch.zeros(spec.fixed_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(resolve_weights(spec).build_model(), example)
        # The reconversion slip: FP32 compute precision in a package the manifest calls FP16.
        mlmodel = ct.convert(
            traced,
            inputs=[ct.TensorType(name="image", shape=example.shape)],
            outputs=[ct.TensorType(name=n) for n in spec.output_names],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.macOS13,
        )
    path = artifact_path(candidate, "mtcnn_rnet", "coreml")
    shutil.rmtree(path)
    mlmodel.save(str(path))
    _record_file(candidate, "mtcnn_rnet", "coreml")
    findings = _findings(candidate, "mtcnn_rnet", "coreml")
    precision = [f for f in findings if f.check == "precision"]
    assert precision and "0% of its float constants are FP16" in precision[0].message
