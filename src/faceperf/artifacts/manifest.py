"""The manifest: what each artifact file is, what made it, and what tensors it takes.

Read and written only through these typed records; the JSON layout is versioned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from faceperf.artifacts.layout import MANIFEST_NAME, VARIANTS
from faceperf.errors import ArtifactError
from faceperf.fileio import atomic_write_json
from faceperf.weights.provenance import WeightSource

SCHEMA_VERSION = 1
Dim = int | str  # a str is a symbolic (dynamic) dimension


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[Dim, ...]
    dtype: str  # numpy dtype name: "float32", "float16"

    @classmethod
    def from_json(cls, doc: dict) -> TensorInfo:
        return cls(doc["name"], tuple(doc["shape"]), doc["dtype"])

    def dims(self) -> tuple[int | None, ...]:
        """The shape with every symbolic dimension as None, whatever the exporter named it."""
        return tuple(d if isinstance(d, int) else None for d in self.shape)

    def contract(self) -> tuple[str, str, tuple[int | None, ...]]:
        """What two descriptions of one tensor must agree on: name, dtype, fixed dimensions."""
        return self.name, self.dtype, self.dims()

    def is_fixed(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


@dataclass(frozen=True)
class VariantRecord:
    """One artifact file."""

    file: str  # relative to the artifact directory
    format: str  # "onnx" | "mlpackage"
    sha256: str
    size: int
    precision: str  # "float32" | "float16"
    converter: dict
    settings: dict
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    @classmethod
    def from_json(cls, doc: dict) -> VariantRecord:
        return cls(
            file=doc["file"],
            format=doc["format"],
            sha256=doc["sha256"],
            size=doc["size"],
            precision=doc["precision"],
            converter=doc["converter"],
            settings=doc["settings"],
            inputs=tuple(TensorInfo.from_json(t) for t in doc["inputs"]),
            outputs=tuple(TensorInfo.from_json(t) for t in doc["outputs"]),
        )


@dataclass(frozen=True)
class ModelRecord:
    """One model: its weights' provenance and its variants."""

    family: str
    params: int
    weights: WeightSource  # in the JSON as WeightSource.to_json()
    fingerprint: str  # inputs of the build: code, weights, versions (staleness check)
    variants: dict[str, VariantRecord] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: dict) -> ModelRecord:
        return cls(
            family=doc["family"],
            params=doc["params"],
            weights=WeightSource.from_json(doc["weights"]),
            fingerprint=doc["fingerprint"],
            variants={k: VariantRecord.from_json(v) for k, v in doc["variants"].items()},
        )

    def to_json(self) -> dict:
        return {
            "family": self.family,
            "params": self.params,
            "weights": self.weights.to_json(),
            "fingerprint": self.fingerprint,
            "variants": {name: asdict(variant) for name, variant in self.variants.items()},
        }


@dataclass(frozen=True)
class Manifest:
    tools: dict  # versions of everything that produced the artifacts
    models: dict[str, ModelRecord]
    schema_version: int = SCHEMA_VERSION

    def record(self, model: str, variant: str) -> VariantRecord:
        if model not in self.models:
            raise ArtifactError(
                f"manifest has no model {model!r} (it has: {', '.join(self.models)})"
            )
        variants = self.models[model].variants
        if variant not in variants:
            raise ArtifactError(f"manifest has no variant '{variant}' of {model!r}")
        return variants[variant]

    def surrogate_models(self, models: Iterable[str]) -> list[str]:
        """Those of ``models`` built from surrogate weights: their numbers exercise the pipeline
        but are not real face analysis. Models the manifest lacks are left out."""
        return [m for m in models if m in self.models and self.models[m].weights.is_surrogate]

    def to_json(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "tools": self.tools,
            "models": {name: record.to_json() for name, record in self.models.items()},
        }


def manifest_path(directory: Path) -> Path:
    return directory / MANIFEST_NAME


def read_manifest(directory: Path) -> Manifest:
    """Load and validate ``<directory>/manifest.json``."""
    path = manifest_path(directory)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: no manifest; build with `faceperf artifacts build --out {directory}`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        found = doc.get("schema_version") if isinstance(doc, dict) else None
        raise ArtifactError(
            f"{path}: manifest schema_version {found!r}, expected {SCHEMA_VERSION}; rebuild it"
        )
    try:
        models = {name: ModelRecord.from_json(rec) for name, rec in doc["models"].items()}
    except (KeyError, TypeError) as err:
        raise ArtifactError(f"{path}: malformed manifest entry ({err!r})") from None
    for name, record in models.items():
        for variant in record.variants:
            if variant not in VARIANTS:
                raise ArtifactError(f"{path}: {name} has unknown variant {variant!r}")
    return Manifest(tools=doc.get("tools", {}), models=models)


def write_manifest(directory: Path, manifest: Manifest) -> None:
    atomic_write_json(manifest_path(directory), manifest.to_json())
