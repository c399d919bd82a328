"""Reference outputs: what the baseline artifacts answer on the fixtures, stored with provenance.

``fixtures/references/<subject>.npz`` holds, per case, every array of ``cases.run_subject``
(stored as ``<case>/<name>``) and one ``provenance`` entry, a JSON document naming the artifacts
and weights they came from and the versions that produced them. The references are only
meaningful for the weights they were built from: ``check_weights`` tells a user who dropped in
other weights to rebuild, instead of letting the suite report a thousand mismatches.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from faceperf.accuracy.cases import (
    SUBJECT_MODELS,
    Candidate,
    Outputs,
    retinaface_anchor_sample,
    run_subject,
)
from faceperf.artifacts.layout import Variant
from faceperf.artifacts.manifest import Manifest, read_manifest
from faceperf.errors import FaceperfError
from faceperf.fileio import atomic_write_bytes
from faceperf.paths import fixtures_dir
from faceperf.weights.provenance import WeightSource

REFERENCE_VARIANT = Variant.BASELINE
FORMAT_VERSION = 1
_PROVENANCE = "provenance"
_VERSIONED = ("numpy", "onnxruntime", "opencv-python-headless", "faceperf")


class ReferenceError(FaceperfError):
    """A reference file is missing, unreadable, or was built from other weights."""


@dataclass(frozen=True)
class ReferenceSet:
    """One subject's stored reference outputs."""

    subject: str
    outputs: Outputs
    provenance: dict

    @property
    def weights(self) -> dict[str, WeightSource]:
        """The weights of each model the references were built from."""
        return {
            model: WeightSource.from_json(entry["weights"])
            for model, entry in self.provenance["models"].items()
        }


def references_dir() -> Path:
    return fixtures_dir() / "references"


def reference_path(subject: str, directory: Path | None = None) -> Path:
    return (directory or references_dir()) / f"{subject}.npz"


def build_reference(subject: str, artifacts: Path, backend: str = "ort-cpu") -> ReferenceSet:
    """Run the baseline artifacts of ``subject`` from ``artifacts`` and collect the reference."""
    manifest = read_manifest(artifacts)
    outputs = run_subject(subject, Candidate(artifacts, REFERENCE_VARIANT, backend))
    if subject == "retinaface":
        outputs = _thin_retinaface(outputs)
    provenance = {
        "format": FORMAT_VERSION,
        "subject": subject,
        "variant": REFERENCE_VARIANT,
        "backend": backend,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": f"{platform.system()}-{platform.machine()}",
        "versions": {name: _version(name) for name in _VERSIONED},
        "models": {
            model: {
                "artifact_sha256": manifest.record(model, REFERENCE_VARIANT).sha256,
                "weights": manifest.models[model].weights.to_json(),
            }
            for model in SUBJECT_MODELS[subject]
        },
        "cases": list(outputs),
    }
    return ReferenceSet(subject, outputs, provenance)


def _thin_retinaface(outputs: Outputs) -> Outputs:
    thinned: Outputs = {}
    for case, arrays in outputs.items():
        if "tensor/conf" not in arrays:  # detections only (the WIDER-threshold cases)
            thinned[case] = dict(arrays)
            continue
        keep = retinaface_anchor_sample(arrays["tensor/conf"][:, 1])
        thinned[case] = {
            name: (value[keep] if name.startswith("tensor/") else value)
            for name, value in arrays.items()
        }
        thinned[case]["anchors"] = keep.astype(np.int64)
    return thinned


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def write_reference(reference: ReferenceSet, path: Path) -> None:
    """Write ``reference`` to ``path`` atomically (a crash leaves any older file intact)."""
    arrays = {
        f"{case}/{name}": value
        for case, named in reference.outputs.items()
        for name, value in named.items()
    }
    arrays[_PROVENANCE] = np.array(json.dumps(reference.provenance, sort_keys=True))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_reference(subject: str, directory: Path | None = None) -> ReferenceSet:
    """Load ``<directory>/<subject>.npz`` (default: fixtures/references)."""
    path = reference_path(subject, directory)
    if not path.exists():
        raise ReferenceError(
            f"{path}: no reference outputs for {subject}; build them with "
            "`faceperf references build`"
        )
    try:
        with np.load(path, allow_pickle=False) as stored:
            provenance = json.loads(str(stored[_PROVENANCE]))
            outputs: Outputs = {}
            for key in stored.files:
                if key == _PROVENANCE:
                    continue
                case, _, name = key.partition("/")
                outputs.setdefault(case, {})[name] = stored[key]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ReferenceError(f"{path}: not a readable reference file ({error})") from None
    if provenance.get("format") != FORMAT_VERSION or provenance.get("subject") != subject:
        raise ReferenceError(
            f"{path}: reference format {provenance.get('format')} for "
            f"{provenance.get('subject')!r}, expected format {FORMAT_VERSION} for {subject!r}; "
            "rebuild with `faceperf references build`"
        )
    reference = ReferenceSet(subject, outputs, provenance)
    try:  # a malformed weights entry is named here, not deep inside a comparison
        reference.weights  # noqa: B018
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ReferenceError(
            f"{path}: malformed weights in the provenance ({error!r}); "
            "rebuild with `faceperf references build`"
        ) from None
    return reference


def weight_mismatches(reference: ReferenceSet, manifest: Manifest) -> list[str]:
    """One line per model whose weights in ``manifest`` differ from the reference's."""
    lines = []
    for model, expected in reference.weights.items():
        if model not in manifest.models:
            continue  # a missing model is the caller's concern (its tests skip)
        actual = manifest.models[model].weights
        if actual.identity() != expected.identity():
            lines.append(
                f"{model}: references from {_label(expected)}, artifacts from {_label(actual)}"
            )
    return lines


def check_weights(reference: ReferenceSet, artifacts: Path) -> None:
    """Raise ReferenceError, saying how to rebuild, when ``artifacts`` use other weights."""
    mismatches = weight_mismatches(reference, read_manifest(artifacts))
    if mismatches:
        raise ReferenceError(
            f"{reference_path(reference.subject)} was built from other weights than the "
            f"artifacts in {artifacts} ({'; '.join(mismatches)}): comparing them would only "
            f"list differences. Rebuild the references from your weights with `faceperf "
            f"references build --artifacts {artifacts}` (after `faceperf artifacts build`), "
            "review, and commit them"
        )


def _label(weights: WeightSource) -> str:
    if weights.is_surrogate:
        return f"surrogate seed {weights.seed}"
    if weights.is_real:
        return f"real checkpoint sha256 {str(weights.sha256)[:12]}"
    if weights.is_packaged:
        return f"packaged {weights.package or 'weights'} {weights.version or ''}".strip()
    return weights.kind
