"""Bytes on disk per artifact, two artifact folders compared, and the FP16 ratio.

What ships is the file (an ONNX file with its external data files, a Core ML package folder),
so size is counted on disk, not from the manifest: a manifest can be stale, the disk cannot.

An FP16 variant stores each weight in two bytes instead of four, so it should be about half
its FP32 sibling; ``FP16_LIMIT`` (0.55) leaves room for what does not halve (the graph, names,
integer tensors). A "FP16" file that is really FP32 (a converter that silently kept the
weights, a copy of the wrong file) is as large as its sibling and fails. Below
``FP16_MIN_BYTES`` the graph's own bytes dominate (MTCNN P-Net: 28 kB, FP16 at 0.58x) and the
ratio says nothing about precision: such models are not gated, and the verdict says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from faceperf.artifacts.layout import Variant, artifact_path
from faceperf.artifacts.manifest import read_manifest
from faceperf.errors import ArtifactError
from faceperf.verdicts import Verdict

GROWTH_TOLERANCE = 0.01  # beyond 1 % larger (or smaller) a change is flagged
FP16_LIMIT = 0.55
FP16_MIN_BYTES = 1_000_000
# Each FP16 variant and the FP32 sibling it must halve.
FP16_PAIRS = ((Variant.OPTIMIZED_FP16, Variant.OPTIMIZED), (Variant.COREML, Variant.OPTIMIZED))


def artifact_files(path: Path) -> tuple[Path, ...]:
    """The files an artifact is made of: a package folder's files, or an ONNX file and the
    external data files its initializers name.

    Raises:
        ArtifactError: the artifact, or an external data file it names, is missing.
    """
    if not path.exists():
        raise ArtifactError(f"{path}: no such artifact")
    if path.is_dir():
        return tuple(sorted(p for p in path.rglob("*") if p.is_file()))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, OSError ... for a file it cannot read
        raise ArtifactError(f"{path}: not a readable ONNX file ({err})") from None
    external = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            external.add(path.parent / entries["location"])
    missing = [p for p in sorted(external) if not p.is_file()]
    if missing:
        raise ArtifactError(f"{path}: external data file {missing[0]} is missing")
    return (path, *sorted(external))


@dataclass(frozen=True)
class ArtifactSize:
    """One artifact's bytes on disk, all its files together."""

    model: str
    variant: str
    bytes: int
    files: int

    @property
    def name(self) -> str:
        return f"{self.model}/{self.variant}"

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "variant": self.variant,
            "bytes": self.bytes,
            "files": self.files,
        }


def artifact_size(directory: Path, model: str, variant: str) -> ArtifactSize:
    """``<directory>/<model>/<variant>``'s bytes on disk."""
    files = artifact_files(artifact_path(Path(directory), model, variant))
    return ArtifactSize(model, str(variant), sum(f.stat().st_size for f in files), len(files))


def folder_sizes(directory: Path) -> dict[tuple[str, str], ArtifactSize]:
    """Every artifact the folder's manifest lists, by (model, variant)."""
    manifest = read_manifest(Path(directory))
    return {
        (model, variant): artifact_size(directory, model, variant)
        for model, record in manifest.models.items()
        for variant in record.variants
    }


@dataclass(frozen=True)
class SizeChange:
    """One artifact, reference against candidate (None on the side that lacks it)."""

    model: str
    variant: str
    reference_bytes: int | None
    candidate_bytes: int | None
    verdict: Verdict
    tolerance: float = GROWTH_TOLERANCE

    @property
    def ratio(self) -> float | None:
        """Candidate over reference; None when either is missing."""
        if not self.reference_bytes or self.candidate_bytes is None:
            return None
        return self.candidate_bytes / self.reference_bytes

    def describe(self) -> str:
        """``star/optimized: larger, 55.0 MB -> 110.0 MB (2.000x)``."""
        sides = " -> ".join(
            "-" if b is None else f"{b / 1e6:.1f} MB"
            for b in (self.reference_bytes, self.candidate_bytes)
        )
        ratio = "" if self.ratio is None else f" ({self.ratio:.3f}x)"
        return f"{self.model}/{self.variant}: {self.verdict}, {sides}{ratio}"

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "variant": self.variant,
            "reference_bytes": self.reference_bytes,
            "candidate_bytes": self.candidate_bytes,
            "ratio": self.ratio,
            "verdict": str(self.verdict),
            "tolerance": self.tolerance,
        }


def size_verdict(reference: int, candidate: int, tolerance: float = GROWTH_TOLERANCE) -> Verdict:
    """LARGER beyond ``tolerance`` growth, SMALLER beyond as much shrink, else SAME."""
    if candidate > reference * (1 + tolerance):
        return Verdict.LARGER
    if candidate < reference * (1 - tolerance):
        return Verdict.SMALLER
    return Verdict.SAME


def compare_sizes(
    reference: Path, candidate: Path, tolerance: float = GROWTH_TOLERANCE
) -> tuple[SizeChange, ...]:
    """Every artifact of either folder, the candidate's size against the reference's.

    Artifacts on one side only are ADDED or REMOVED (reported, not judged).
    """
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance {tolerance}: expected a fraction in [0, 1)")
    before, after = folder_sizes(reference), folder_sizes(candidate)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None:
            verdict = Verdict.ADDED
        elif new is None:
            verdict = Verdict.REMOVED
        else:
            verdict = size_verdict(old.bytes, new.bytes, tolerance)
        changes.append(
            SizeChange(
                *key,
                None if old is None else old.bytes,
                None if new is None else new.bytes,
                verdict,
                tolerance,
            )
        )
    return tuple(changes)


@dataclass(frozen=True)
class Fp16Check:
    """An FP16 variant's size over its FP32 sibling's, against the limit."""

    model: str
    variant: str
    sibling: str
    fp16_bytes: int
    fp32_bytes: int
    limit: float
    verdict: Verdict

    @property
    def ratio(self) -> float:
        return self.fp16_bytes / self.fp32_bytes

    def describe(self) -> str:
        """``star/optimized_fp16: pass, 27.6 MB / 55.0 MB = 0.503x (limit 0.55x)``."""
        text = (
            f"{self.model}/{self.variant}: {self.verdict}, {self.fp16_bytes / 1e6:.2f} MB / "
            f"{self.fp32_bytes / 1e6:.2f} MB ({self.sibling}) = {self.ratio:.3f}x "
            f"(limit {self.limit:.2f}x)"
        )
        if self.verdict is Verdict.NOT_GATED:
            text += f"; under {FP16_MIN_BYTES / 1e6:g} MB the graph, not the weights, sets it"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "variant": self.variant,
            "sibling": self.sibling,
            "fp16_bytes": self.fp16_bytes,
            "fp32_bytes": self.fp32_bytes,
            "ratio": self.ratio,
            "limit": self.limit,
            "verdict": str(self.verdict),
        }


def fp16_checks(
    directory: Path, limit: float = FP16_LIMIT, min_bytes: int = FP16_MIN_BYTES
) -> tuple[Fp16Check, ...]:
    """Every FP16 variant of the folder (``FP16_PAIRS``) whose FP32 sibling is there too:
    PASS at most ``limit`` times the sibling's bytes, FAIL above; NOT_GATED when the sibling
    is under ``min_bytes``."""
    if not 0 < limit < 1:
        raise ValueError(f"limit {limit}: expected a fraction between 0 and 1")
    manifest = read_manifest(Path(directory))
    checks = []
    for model, record in manifest.models.items():
        for fp16, fp32 in FP16_PAIRS:
            if fp16 not in record.variants or fp32 not in record.variants:
                continue
            half = artifact_size(directory, model, fp16).bytes
            full = artifact_size(directory, model, fp32).bytes
            if full < min_bytes:
                verdict = Verdict.NOT_GATED
            else:
                verdict = Verdict.PASS if half <= limit * full else Verdict.FAIL
            checks.append(Fp16Check(model, str(fp16), str(fp32), half, full, limit, verdict))
    return tuple(checks)
