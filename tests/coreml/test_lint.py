"""The static lint of ML program specs, on the default artifacts and on packages converted for
real with coremltools to carry each finding (FP32 island, FP32 program, flexible shapes), plus
the bad inputs: a neuralnetwork model, a truncated package, a truncated weights file."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path

import coremltools as ct
import pytest
import torch

from faceperf.artifacts.layout import artifact_path
from faceperf.cli import main
from faceperf.coreml.lint import FP32_COMPUTE, RANGE_SHAPE, lint_mlpackage
from faceperf.errors import ArtifactError
from faceperf.models.registry import default_registry

MODELS = default_registry().names()
MTCNN = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")


class _ConvSoftmaxConv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Conv2d(3, 4, 3)
        self.second = torch.nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.softmax(self.first(x), dim=1))


@pytest.fixture(scope="module")
def convert(tmp_path_factory):
    """Convert the tiny model for real and save it; returns the package path."""
    folder = tmp_path_factory.mktemp("coreml-lint")
    with torch.no_grad():
        traced = torch.jit.trace(_ConvSoftmaxConv().eval(), torch.zeros(1, 3, 16, 16))

    def _convert(name: str, shape=(1, 3, 16, 16), **options) -> Path:
        options.setdefault("convert_to", "mlprogram")
        if options["convert_to"] == "mlprogram":
            options.setdefault("minimum_deployment_target", ct.target.macOS13)
        # coremltools warns and draws progress bars on every conversion: not what is tested.
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=shape)], **options)
        path = folder / name
        model.save(str(path))
        return path

    return _convert


@pytest.mark.parametrize("model", MODELS)
def test_the_default_artifacts_are_fp16_programs_without_fp32_islands(artifacts_dir, model):
    report = lint_mlpackage(artifact_path(artifacts_dir, model, "coreml"))
    assert report.precision == "float16" and report.fp16_op_share == 1.0
    # Only scalar parameters MIL types as FP32 (upsample scale factors) may stay FP32.
    assert report.fp16_weight_share > 0.9999
    assert report.fp32_islands == ()
    assert report.op_count == sum(report.op_types.values()) > 0
    assert "const" not in report.op_types and report.const_count > 0
    fallbacks = [(f.subject, f.rule) for f in report.expected_fallbacks]
    if model in MTCNN:
        # Candidate counts and pyramid levels vary: their range-flexible axis is by design.
        assert [i.kind for i in report.flexible_inputs] == ["range"]
        assert fallbacks == [("input image", RANGE_SHAPE)]
    else:
        assert report.flexible_inputs == () and fallbacks == []


def test_an_op_kept_in_fp32_is_an_island_expected_to_fall_back(convert):
    path = convert(
        "island.mlpackage",
        compute_precision=ct.transform.FP16ComputePrecision(
            op_selector=lambda op: op.op_type != "softmax"
        ),
    )
    report = lint_mlpackage(path)
    assert report.precision == "mixed"
    assert report.op_types == {"conv": 2, "cast": 2, "softmax": 1}
    assert len(report.fp32_islands) == 1
    island = report.fp32_islands[0]
    assert [key.split(":")[0] for key in island] == ["cast", "softmax"]
    expected = [(f.op_type, f.rule) for f in report.expected_fallbacks]
    assert expected == [("cast", FP32_COMPUTE), ("softmax", FP32_COMPUTE)]
    assert report.fp16_op_share == pytest.approx(3 / 5)  # two convs and the cast back
    assert report.fp16_weight_share == 1.0


def test_an_fp32_program_has_no_islands_but_every_op_is_expected_to_fall_back(convert):
    report = lint_mlpackage(convert("fp32.mlpackage", compute_precision=ct.precision.FLOAT32))
    assert report.precision == "float32" and report.fp32_islands == ()
    assert (report.fp16_weight_share, report.fp16_op_share) == (0.0, 0.0)
    assert len(report.expected_fallbacks) == report.op_count == 3
    assert {f.rule for f in report.expected_fallbacks} == {FP32_COMPUTE}


def test_range_shapes_are_expected_to_fall_back_but_enumerated_ones_are_not(convert):
    ranged = lint_mlpackage(
        convert("range.mlpackage", shape=(1, 3, ct.RangeDim(8, 64, 16), ct.RangeDim(8, 32, 16)))
    )
    assert [(i.name, i.kind, i.shapes, i.default) for i in ranged.flexible_inputs] == [
        ("x", "range", "(1, 3, 8..64, 8..32)", "(1, 3, 16, 16)")
    ]
    assert [(f.subject, f.rule) for f in ranged.expected_fallbacks] == [("input x", RANGE_SHAPE)]
    enumerated = lint_mlpackage(
        convert(
            "enumerated.mlpackage",
            shape=ct.EnumeratedShapes(
                shapes=[(1, 3, 16, 16), (1, 3, 32, 32)], default=(1, 3, 16, 16)
            ),
        )
    )
    assert [(i.kind, i.shapes) for i in enumerated.flexible_inputs] == [
        ("enumerated", "(1, 3, 16, 16) | (1, 3, 32, 32)")
    ]
    assert enumerated.expected_fallbacks == ()


def test_a_neuralnetwork_model_is_refused_in_one_line(convert, capsys):
    path = convert("old.mlpackage", convert_to="neuralnetwork")
    with pytest.raises(ArtifactError) as raised:
        lint_mlpackage(path)
    assert str(raised.value) == (
        f"{path}: a neuralNetwork model, expected an mlProgram (convert with "
        "convert_to='mlprogram')"
    )
    assert main(["coreml", "lint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("faceperf: error: ") and err.count("\n") == 1


def _copy(artifacts_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "pnet.mlpackage"
    shutil.copytree(artifact_path(artifacts_dir, "mtcnn_pnet", "coreml"), copy)
    return copy


def test_a_truncated_model_spec_is_a_corrupt_package(artifacts_dir, tmp_path):
    package = _copy(artifacts_dir, tmp_path)
    spec = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec.write_bytes(spec.read_bytes()[: spec.stat().st_size // 2])
    with pytest.raises(ArtifactError) as raised:
        lint_mlpackage(package)
    message = str(raised.value)
    assert message.startswith(f"{package}: not a readable Core ML package (")
    assert "\n" not in message


def test_a_truncated_weights_file_is_caught_naming_it(artifacts_dir, tmp_path):
    package = _copy(artifacts_dir, tmp_path)
    weights = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(
        ArtifactError, match=r"weights/weight\.bin has 100 bytes but const .* truncated"
    ):
        lint_mlpackage(package)
    weights.unlink()
    with pytest.raises(ArtifactError, match=r"weights file weights/weight\.bin is missing"):
        lint_mlpackage(package)


def test_a_package_without_manifest_or_a_missing_path_is_one_line(artifacts_dir, tmp_path):
    package = _copy(artifacts_dir, tmp_path)
    (package / "Manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"not a readable Core ML package .*manifest"):
        lint_mlpackage(package)
    with pytest.raises(ArtifactError, match=r"nowhere\.mlpackage: not found"):
        lint_mlpackage(tmp_path / "nowhere.mlpackage")


def test_the_cli_lints_every_coreml_artifact_of_a_folder(artifacts_dir, capsys):
    assert main(["coreml", "lint", str(artifacts_dir), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["source"]).parent.name for r in reports) == sorted(MODELS)
    by_model = {Path(r["source"]).parent.name: r for r in reports}
    assert by_model["mtcnn_pnet"]["expected_fallbacks"] == [
        {"subject": "input image", "op_type": None, "rule": "range-shape"}
    ]
    assert main(["coreml", "lint", str(artifacts_dir)]) == 0
    text = capsys.readouterr().out
    assert text.count("coreml.mlpackage\n") == len(MODELS)
    assert "range-shape: expected to fall back" in text and "forums/thread/724930" in text


def test_linting_the_same_spec_twice_gives_the_same_report(artifacts_dir):
    path = artifact_path(artifacts_dir, "mtl", "coreml")
    assert lint_mlpackage(path) == lint_mlpackage(path)
