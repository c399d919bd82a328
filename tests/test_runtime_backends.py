"""Backend names with Core ML compute units."""

from __future__ import annotations

import pytest

from faceperf.errors import BackendUnavailableError
from faceperf.runtime.backends import BackendChoice, parse_backend
from faceperf.runtime.factory import open_runner


@pytest.mark.parametrize(
    ("name", "choice"),
    [
        ("ort-cpu", BackendChoice("ort-cpu", None)),
        ("coreml", BackendChoice("coreml", None)),
        ("coreml:CPU_ONLY", BackendChoice("coreml", "CPU_ONLY")),
        ("ort-coreml:ALL", BackendChoice("ort-coreml", "ALL")),
    ],
)
def test_names_parse(name, choice):
    assert parse_backend(name) == choice


def test_default_units_are_what_the_coreml_variant_is_converted_for():
    assert parse_backend("coreml").units == "CPU_AND_NE"
    assert parse_backend("coreml:CPU_AND_GPU").units == "CPU_AND_GPU"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tensorrt", "unknown backend 'tensorrt'"),
        ("ort-cpu:ALL", "compute units apply only to coreml and ort-coreml"),
        ("coreml:NEURAL", "unknown compute units 'NEURAL'"),
    ],
)
def test_bad_names_say_what_is_expected(name, message):
    with pytest.raises(BackendUnavailableError, match=message):
        parse_backend(name)


def test_an_onnx_file_refuses_a_coreml_backend_with_units(artifacts_dir):
    with pytest.raises(BackendUnavailableError, match="an ONNX file runs on"):
        open_runner(artifacts_dir, "mtcnn_rnet", "optimized", backend="coreml:CPU_ONLY")


def test_an_mlpackage_refuses_an_onnx_runtime_backend(artifacts_dir):
    with pytest.raises(BackendUnavailableError, match="an mlpackage runs on the coreml backend"):
        open_runner(artifacts_dir, "mtcnn_rnet", "coreml", backend="ort-coreml:CPU_ONLY")
