"""Opening a runner for ``<artifact dir>/<model>/<variant>`` on a named backend."""

from __future__ import annotations

from pathlib import Path

from faceperf.artifacts.layout import artifact_path
from faceperf.artifacts.manifest import VariantRecord, read_manifest
from faceperf.errors import ArtifactError, BackendUnavailableError
from faceperf.fileio import sha256_path
from faceperf.runtime.backends import ORT_COREML_UNITS, BackendChoice, parse_backend
from faceperf.runtime.base import Runner
from faceperf.runtime.coreml_backend import CoreMLRunner
from faceperf.runtime.onnxruntime_backend import PROVIDERS, OrtRunner

BACKENDS = (*PROVIDERS, "coreml")  # each of ort-coreml and coreml also takes :UNITS


def verify_artifact(path: Path, record: VariantRecord) -> None:
    """Refuse an artifact whose bytes differ from its manifest record (sha256).

    Raises:
        ArtifactError: the file changed after the build.
    """
    if sha256_path(path) != record.sha256:
        raise ArtifactError(
            f"{path}: sha256 differs from the manifest; the file changed after the build "
            "(rebuild with `faceperf artifacts build`)"
        )


def open_runner(
    directory: Path,
    model: str,
    variant: str,
    backend: str | BackendChoice = "ort-cpu",
    threads: int | None = None,
    verify: bool = True,
    cpu_arena: bool = True,
) -> Runner:
    """Load one artifact on ``backend`` with its manifest's declared tensors.

    Args:
        directory: an artifact folder in the contract's layout.
        model: model name (``star``, ``mtcnn_pnet`` ...).
        variant: ``baseline``, ``optimized``, ``optimized_fp16`` or ``coreml``.
        backend: ``ort-cpu``, ``ort-coreml``, ``ort-cuda`` (ONNX files) or ``coreml`` (mlpackage);
            ``coreml`` and ``ort-coreml`` take compute units as ``coreml:CPU_ONLY`` (see
            ``runtime.backends``); a parsed ``BackendChoice`` is taken as well.
        threads: intra-op threads for ONNX Runtime.
        verify: refuse a file whose sha256 differs from its manifest record.
        cpu_arena: ONNX Runtime's CPU memory arena on (default) or off; Core ML has none.
    """
    choice = parse_backend(backend)
    record = read_manifest(directory).record(model, variant)
    path = artifact_path(directory, model, variant)
    if not path.exists():
        raise ArtifactError(f"{path}: listed in the manifest but missing")
    if verify:
        verify_artifact(path, record)
    if record.format == "mlpackage":
        if not choice.is_coreml:
            raise BackendUnavailableError(
                f"{path}: an mlpackage runs on the coreml backend, not {backend}"
            )
        return CoreMLRunner(path, record.inputs, record.outputs, compute_units=choice.units)
    if choice.base not in PROVIDERS:
        raise BackendUnavailableError(
            f"{path}: an ONNX file runs on {', '.join(PROVIDERS)}, not {backend}"
        )
    options = (
        {"MLComputeUnits": ORT_COREML_UNITS[choice.compute_units]} if choice.compute_units else None
    )
    return OrtRunner(
        path,
        record.inputs,
        record.outputs,
        backend=choice.base,
        threads=threads,
        provider_options=options,
        cpu_arena=cpu_arena,
    )
