"""One accuracy run over a candidate folder: which subjects and variants it can check, and the
measurements of each, computed once.

Shared by the pytest suite (accuracy_tests/) and ``faceperf accuracy check``. Anything that
makes a check meaningless (a model or variant the candidate lacks, Core ML off macOS, an
artifact that fails its file check) becomes a skip with its reason; weights that differ from
the references' are an error with the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceperf.accuracy.cases import SUBJECT_MODELS, SUBJECTS, Candidate, run_subject
from faceperf.accuracy.compare import Measurement, compare, unjudged_checks
from faceperf.accuracy.references import ReferenceSet, check_weights, read_reference
from faceperf.accuracy.tolerances import Tolerances, load_tolerances
from faceperf.artifacts.conformance import Finding, check_artifact
from faceperf.artifacts.layout import Variant
from faceperf.artifacts.manifest import Manifest, read_manifest
from faceperf.models.registry import default_registry
from faceperf.runtime.backends import BackendChoice, backend_name, parse_backend
from faceperf.runtime.coreml_backend import coreml_unavailable_reason

COREML_VARIANT = Variant.COREML


@dataclass(frozen=True)
class SubjectResult:
    """The measurements of one subject and variant, or why there are none."""

    subject: str
    variant: str
    measurements: tuple[Measurement, ...] = ()
    skipped: str | None = None
    unjudged: dict[str, str] = field(default_factory=dict)  # check -> why it is not judged

    @property
    def failures(self) -> list[Measurement]:
        return [m for m in self.measurements if not m.passed]


class AccuracySession:
    """Checks of the artifacts in ``candidate`` against the stored references.

    Args:
        candidate: an artifact folder in the contract's layout.
        backend: the backend the ONNX variants run on (the ``coreml`` variant runs on Core ML).
        references: folder of the reference files (default: fixtures/references).
        tolerances: the limits (default: accuracy_tests/tolerances.toml).
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(
        self,
        candidate: Path,
        backend: str | BackendChoice = "ort-cpu",
        references: Path | None = None,
        tolerances: Tolerances | None = None,
        threads: int | None = None,
    ) -> None:
        self.candidate = Path(candidate)
        self.backend = backend_name(backend)
        self.references_dir = references
        self.tolerances = tolerances or load_tolerances()
        self.threads = threads
        self.manifest: Manifest = read_manifest(self.candidate)
        self._references: dict[str, ReferenceSet] = {}
        self._results: dict[tuple[str, str], SubjectResult] = {}
        self._findings: dict[tuple[str, str], list[Finding]] = {}

    def subjects(self) -> list[str]:
        """Subjects whose models are all in the candidate."""
        return [s for s in SUBJECTS if not self.missing_models(s)]

    def missing_models(self, subject: str) -> list[str]:
        return [m for m in SUBJECT_MODELS[subject] if m not in self.manifest.models]

    def reference(self, subject: str) -> ReferenceSet:
        """The subject's references; ReferenceError when they are missing or from other weights."""
        if subject not in self._references:
            reference = read_reference(subject, self.references_dir)
            check_weights(reference, self.candidate)
            self._references[subject] = reference
        return self._references[subject]

    def conformance(self, model: str, variant: str) -> list[Finding]:
        """The artifact's contract findings (empty when it conforms)."""
        key = (model, variant)
        if key not in self._findings:
            spec = default_registry()[model]
            self._findings[key] = check_artifact(self.candidate, self.manifest, spec, variant)
        return self._findings[key]

    def skip_reason(self, subject: str, variant: str) -> str | None:
        """Why ``subject`` cannot be checked in ``variant`` here, or None."""
        missing = self.missing_models(subject)
        if missing:
            return f"{self.candidate} has no {', '.join(missing)}: {subject} is not checked"
        for model in SUBJECT_MODELS[subject]:
            if variant not in self.manifest.models[model].variants:
                return f"{self.candidate} has no {variant} variant of {model}"
        unavailable = coreml_unavailable_reason() if variant == COREML_VARIANT else None
        if unavailable:
            return (
                f"{unavailable}; the mlpackage's conversion, spec and precision are checked by "
                "the conformance tests"
            )
        for model in SUBJECT_MODELS[subject]:
            broken = [f for f in self.conformance(model, variant) if f.check == "file"]
            if broken:
                return (
                    f"{model}/{variant} fails its file check ({broken[0].message}); see conformance"
                )
        return None

    def result(self, subject: str, variant: str) -> SubjectResult:
        """Run (once) and judge ``subject`` in ``variant``."""
        key = (subject, variant)
        if key not in self._results:
            self._results[key] = self._judge(subject, variant)
        return self._results[key]

    def _backend_for(self, variant: str) -> str:
        """The session's backend where it fits the variant's format, else that format's default:
        ``--accuracy-backend coreml:CPU_ONLY`` runs the mlpackage on the CPU and the ONNX
        variants on ONNX Runtime CPU."""
        coreml = parse_backend(self.backend).is_coreml
        if variant == COREML_VARIANT:
            return self.backend if coreml else "coreml"
        return "ort-cpu" if coreml else self.backend

    def _judge(self, subject: str, variant: str) -> SubjectResult:
        reason = self.skip_reason(subject, variant)
        if reason:
            return SubjectResult(subject, variant, skipped=reason)
        reference = self.reference(subject)
        backend = self._backend_for(variant)
        candidate = Candidate(self.candidate, variant, backend, self.threads)
        outputs = run_subject(subject, candidate)
        measurements = compare(subject, variant, reference, outputs, self.tolerances)
        return SubjectResult(
            subject, variant, tuple(measurements), unjudged=unjudged_checks(reference)
        )
