"""Reference outputs: what the baseline artifacts answer on the fixtures, stored with provenance.

``fixtures/references/<subject>.npz`` holds, per case, every array of ``cases.run_subject``
(stored as ``<case>/<name>``) and one ``provenance`` entry, a JSON document naming the artifacts
and weights they came from and the versions that produced them. The references are only
meaningful for the weights they were built from: ``check_weights`` tells a user who dropped in
other weights to rebuild, instead of letting the suite report a thousand mismatches.

The subjects with a jitter check (``JITTER_SUBJECTS``) also have
``fixtures/references/jitter/<subject>.npz``, in the same format: per clip of
``accuracy.clips`` the baseline's outputs, jitter and scale (``accuracy.jitter``), with the same
provenance plus ``"kind": "jitter"``, the clips' recipes and, for STAR, the RetinaFace its boxes
came from. It is a file of its own so that it can be built (``faceperf references build --only
jitter``) without rewriting the per-case outputs: ONNX Runtime picks its kernels by the CPU's
instruction set, so a rebuild on another machine moves every stored float by up to 1e-4 px.
Every subject also has ``fixtures/references/bins/<subject>.npz``, in the same format: per face
of each face-size and pose bin of ``accuracy.poses`` the baseline's answers (``accuracy.bins``),
with the same provenance plus ``"kind": "bins"`` and the bins' recipes; a file of its own for
the same reason (``faceperf references build --only bins``).
``read_reference`` reads them into one ``ReferenceSet`` and refuses a jitter or bins reference
built from other recipes than ``accuracy.clips`` and ``accuracy.poses`` have today.
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from faceperf.accuracy import clips, poses
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
OUTPUTS, JITTER, BINS = "outputs", "jitter", "bins"  # the kinds of reference file
KINDS = (OUTPUTS, JITTER, BINS)
JITTER_SUBJECTS = ("retinaface", "star")
BINS_SUBJECTS = tuple(SUBJECT_MODELS)
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
    jitter: ReferenceSet | None = None  # the jitter clips' reference (JITTER_SUBJECTS)
    bins: ReferenceSet | None = None  # the face-size and pose bins' reference (BINS_SUBJECTS)

    @property
    def kind(self) -> str:
        return self.provenance.get("kind", OUTPUTS)

    @property
    def weights(self) -> dict[str, WeightSource]:
        """The weights of each model the references were built from."""
        return {
            model: WeightSource.from_json(entry["weights"])
            for model, entry in self.provenance["models"].items()
        }


def references_dir() -> Path:
    return fixtures_dir() / "references"


def reference_path(subject: str, directory: Path | None = None, kind: str = OUTPUTS) -> Path:
    """``<directory>/<subject>.npz``, or ``<directory>/<kind>/<subject>.npz`` for ``JITTER`` and
    ``BINS``."""
    directory = directory or references_dir()
    return (directory if kind == OUTPUTS else directory / kind) / f"{subject}.npz"


def build_reference(
    subject: str,
    artifacts: Path,
    backend: str = "ort-cpu",
    with_jitter: bool = True,
    with_bins: bool = True,
) -> ReferenceSet:
    """Run the baseline artifacts of ``subject`` from ``artifacts`` and collect the reference
    (with its jitter reference, for ``JITTER_SUBJECTS``, unless ``with_jitter`` is False, and
    its bins reference unless ``with_bins`` is False)."""
    manifest = read_manifest(artifacts)
    outputs = run_subject(subject, Candidate(artifacts, REFERENCE_VARIANT, backend))
    if subject == "retinaface":
        outputs = _thin_retinaface(outputs)
    provenance = _provenance(subject, manifest, backend, list(outputs))
    shaken = with_jitter and subject in JITTER_SUBJECTS
    jitter = build_jitter_reference(subject, artifacts, backend) if shaken else None
    binned = build_bins_reference(subject, artifacts, backend) if with_bins else None
    return ReferenceSet(subject, outputs, provenance, jitter, binned)


def build_jitter_reference(subject: str, artifacts: Path, backend: str = "ort-cpu") -> ReferenceSet:
    """Run ``subject``'s jitter clips on the baseline artifacts of ``artifacts``. STAR's boxes
    are the baseline RetinaFace's detections (``jitter.reference_boxes``)."""
    # jitter.py judges with compare.py, which reads this module's ReferenceSet: imported here.
    from faceperf.accuracy import jitter

    if subject not in JITTER_SUBJECTS:
        raise KeyError(f"{subject!r} has no jitter check; expected {', '.join(JITTER_SUBJECTS)}")
    manifest = read_manifest(artifacts)
    baseline = Candidate(artifacts, REFERENCE_VARIANT, backend)
    boxes = None
    extra: dict = {"kind": JITTER, "clips": {c.name: clips.recipe_json(c) for c in clips.CLIPS}}
    if subject == "star" and "retinaface" not in manifest.models:
        boxes = {c.name: np.array(c.face_boxes) for c in jitter.clips()}
        extra["boxes"] = dict.fromkeys(boxes, "fixture face box")
    elif subject == "star":
        detector = jitter.open_detector(baseline)
        chosen = {
            c.name: jitter.reference_boxes(jitter.detect_faces(detector, c), c)
            for c in jitter.clips()
        }
        boxes = {name: found for name, (found, _) in chosen.items()}
        extra["detector"] = {"model": "retinaface", **_model_entry(manifest, "retinaface")}
        extra["boxes"] = {name: source for name, (_, source) in chosen.items()}
    outputs = jitter.reference_outputs(subject, jitter.run_jitter(subject, baseline, boxes))
    provenance = {**_provenance(subject, manifest, backend, list(outputs)), **extra}
    return ReferenceSet(subject, outputs, provenance)


def build_bins_reference(subject: str, artifacts: Path, backend: str = "ort-cpu") -> ReferenceSet:
    """Run ``subject``'s face-size and pose bins on the baseline artifacts of ``artifacts``."""
    # bins.py judges with compare.py, which reads this module's ReferenceSet: imported here.
    from faceperf.accuracy import bins

    if subject not in BINS_SUBJECTS:
        raise KeyError(f"unknown accuracy subject {subject!r}; expected {', '.join(BINS_SUBJECTS)}")
    manifest = read_manifest(artifacts)
    baseline = Candidate(artifacts, REFERENCE_VARIANT, backend)
    outputs = bins.reference_outputs(bins.run_bins(subject, baseline))
    provenance = {
        **_provenance(subject, manifest, backend, list(outputs)),
        "kind": BINS,
        "bins": _bin_recipes(),
    }
    return ReferenceSet(subject, outputs, provenance)


def _bin_recipes() -> dict:
    # through JSON, so that today's recipes compare equal to stored ones (tuples become lists)
    return json.loads(json.dumps({r.name: poses.recipe_json(r) for r in poses.BINS}))


def _provenance(subject: str, manifest: Manifest, backend: str, cases: list[str]) -> dict:
    return {
        "format": FORMAT_VERSION,
        "subject": subject,
        "variant": REFERENCE_VARIANT,
        "backend": backend,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": f"{platform.system()}-{platform.machine()}",
        "versions": {name: _version(name) for name in _VERSIONED},
        "models": {model: _model_entry(manifest, model) for model in SUBJECT_MODELS[subject]},
        "cases": cases,
    }


def _model_entry(manifest: Manifest, model: str) -> dict:
    return {
        "artifact_sha256": manifest.record(model, REFERENCE_VARIANT).sha256,
        "weights": manifest.models[model].weights.to_json(),
    }


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
    """Load ``<directory>/<subject>.npz`` (default: fixtures/references), for
    ``JITTER_SUBJECTS`` its jitter reference ``<directory>/jitter/<subject>.npz`` and, when it
    exists, its bins reference ``<directory>/bins/<subject>.npz`` (without it the bins check is
    not judged, saying how to build it: a folder of references made before the bins existed
    still serves every other check)."""
    reference = _read(subject, directory, OUTPUTS)
    if subject in JITTER_SUBJECTS:
        reference = replace(reference, jitter=_read(subject, directory, JITTER))
    if subject in BINS_SUBJECTS and reference_path(subject, directory, BINS).exists():
        reference = replace(reference, bins=_read(subject, directory, BINS))
    return reference


def _read(subject: str, directory: Path | None, kind: str) -> ReferenceSet:
    path = reference_path(subject, directory, kind)
    what = "reference outputs" if kind == OUTPUTS else f"{kind} references"
    only = "" if kind == OUTPUTS else f" --only {kind}"
    if not path.exists():
        raise ReferenceError(
            f"{path}: no {what} for {subject}; build them with `faceperf references build{only}`"
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
            f"rebuild with `faceperf references build{only}`"
        )
    reference = ReferenceSet(subject, outputs, provenance)
    if reference.kind != kind:
        raise ReferenceError(
            f"{path}: holds {reference.kind} references, expected {kind}; rebuild with "
            f"`faceperf references build{only}`"
        )
    if kind == JITTER:
        _check_recipes(reference, path)
    if kind == BINS:
        _check_bin_recipes(reference, path)
    try:  # a malformed weights entry is named here, not deep inside a comparison
        reference.weights  # noqa: B018
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ReferenceError(
            f"{path}: malformed weights in the provenance ({error!r}); "
            f"rebuild with `faceperf references build{only}`"
        ) from None
    return reference


def _check_recipes(reference: ReferenceSet, path: Path) -> None:
    """A jitter reference is only comparable on the clips it was built on: the same recipes
    (clips.recipe_json) and every clip. The frames' sha256 is stored but not checked: another
    CPU's or OpenCV build's warp may round a few pixels differently without changing the clip."""
    today = json.loads(json.dumps({c.name: clips.recipe_json(c) for c in clips.CLIPS}))
    stored = reference.provenance.get("clips")
    changed = [name for name in today if (stored or {}).get(name) != today[name]]
    missing = [name for name in today if name not in reference.outputs]
    if changed or missing:
        raise ReferenceError(
            f"{path}: built on other jitter clips than faceperf.accuracy.clips makes today "
            f"({', '.join(sorted({*changed, *missing}))}: recipe changed or missing); rebuild "
            "with `faceperf references build --only jitter`"
        )


def _check_bin_recipes(reference: ReferenceSet, path: Path) -> None:
    """A bins reference is only comparable on the frames it was built on: the same recipes
    (poses.recipe_json) and every bin face. The frames' sha256 is stored but not checked, as
    for the jitter clips."""
    today = _bin_recipes()
    stored = reference.provenance.get("bins") or {}
    changed = sorted({*today, *stored} - {n for n in today if stored.get(n) == today[n]})
    missing = [case for case in poses.case_names() if case not in reference.outputs]
    if changed or missing:
        raise ReferenceError(
            f"{path}: built on other face-size and pose bins than faceperf.accuracy.poses makes "
            f"today ({', '.join([*changed, *missing][:4])}: recipe changed or missing); rebuild "
            "with `faceperf references build --only bins`"
        )


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
    """Raise ReferenceError, saying how to rebuild, when ``artifacts`` use other weights than
    ``reference`` (or its jitter or bins reference) was built from."""
    manifest = read_manifest(artifacts)
    for part in (reference, reference.jitter, reference.bins):
        if part is None:
            continue
        mismatches = weight_mismatches(part, manifest)
        if mismatches:
            raise ReferenceError(
                f"{reference_path(part.subject, kind=part.kind)} was built from other weights "
                f"than the artifacts in {artifacts} ({'; '.join(mismatches)}): comparing them "
                f"would only list differences. Rebuild the references from your weights with "
                f"`faceperf references build --artifacts {artifacts}` (after `faceperf artifacts "
                "build`), review, and commit them"
            )


def _label(weights: WeightSource) -> str:
    if weights.is_surrogate:
        return f"surrogate seed {weights.seed}"
    if weights.is_real:
        return f"real checkpoint sha256 {str(weights.sha256)[:12]}"
    if weights.is_packaged:
        return f"packaged {weights.package or 'weights'} {weights.version or ''}".strip()
    return weights.kind
