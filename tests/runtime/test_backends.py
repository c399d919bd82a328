"""Backend names with Core ML compute units."""

from __future__ import annotations

import pytest

from faceperf.errors import BackendUnavailableError
from faceperf.runtime.backends import BackendChoice, backend_name, parse_backend
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


@pytest.mark.parametrize("name", ["ort-cpu", "coreml", "coreml:CPU_ONLY", "ort-coreml:ALL"])
def test_a_parsed_choice_reads_back_as_its_name(name):
    choice = parse_backend(name)
    assert choice.name == str(choice) == backend_name(choice) == name
    assert parse_backend(choice) is choice  # callers take either form
    assert backend_name(name) == name


def test_open_runner_takes_a_parsed_choice(artifacts_dir):
    runner = open_runner(artifacts_dir, "mtcnn_rnet", "optimized", parse_backend("ort-cpu"))
    assert runner.backend == "ort-cpu"


def test_a_parsed_choice_gets_the_same_detector_workers_and_profile_as_its_name():
    from faceperf.bench.hardware import detect_profile
    from faceperf.pipeline.mtcnn_detector import default_workers

    choice = parse_backend("ort-cpu")
    assert default_workers(choice) == default_workers("ort-cpu")
    assert detect_profile(choice).name == detect_profile("ort-cpu").name
    assert detect_profile(choice).backend == "ort-cpu"
