"""One accuracy run over a candidate folder: which subjects and variants it can check, and the
verdict of each, computed once.

Shared by the pytest suite (accuracy_tests/) and ``faceperf accuracy check``: both judge a model's
conformance with ``AccuracySession.conformance`` and a subject's outputs with
``AccuracySession.result`` (``check`` gives both for one subject and variant): against the
references (compare.py), within their absolute ranges (ranges.py), for RetinaFace and STAR
by the jitter of their answers on still and slowly moving clips (jitter.py), and per bin of face
size and pose against the reference's answers there (bins.py). Anything that
makes a check meaningless (a model or variant the candidate lacks, Core ML off macOS, an
artifact that fails its file check) becomes a skip with its reason; a candidate the runner
refuses (ONNX Runtime cannot load it, its tensors are not the declared ones) fails that subject
alone; weights that differ from the references' are an error with the way out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from faceperf.accuracy.bins import measure_bins
from faceperf.accuracy.cases import SUBJECT_MODELS, SUBJECTS, Candidate, Outputs, run_subject
from faceperf.accuracy.compare import (
    BINS,
    COSTLY_CHECKS,
    JITTER,
    Measurement,
    OutputMismatchError,
    compare,
    unjudged_checks,
)
from faceperf.accuracy.jitter import measure_jitter_outputs
from faceperf.accuracy.ranges import judge_ranges
from faceperf.accuracy.references import (
    BINS_SUBJECTS,
    JITTER_SUBJECTS,
    ReferenceSet,
    check_weights,
    read_reference,
)
from faceperf.accuracy.tolerances import Tolerances, load_tolerances
from faceperf.artifacts.conformance import Finding, check_artifact
from faceperf.artifacts.layout import Variant
from faceperf.artifacts.manifest import Manifest, read_manifest
from faceperf.errors import ArtifactError, InputMismatchError
from faceperf.models.registry import ModelSpec, default_registry
from faceperf.runtime.backends import BackendChoice, backend_name, parse_backend
from faceperf.runtime.coreml_backend import coreml_unavailable_reason
from faceperf.verdicts import Verdict, combine

COREML_VARIANT = Variant.COREML
# What a candidate's own artifacts can make the run refuse: ONNX Runtime cannot load a file (or
# the manifest lists it but it is gone), a graph's tensors are not the declared ones or not what
# the pipeline feeds, outputs the reference cannot be set against. Each is that subject's
# failing verdict; anything else (an unavailable backend, a bug) still stops the run.
CANDIDATE_REFUSALS = (ArtifactError, InputMismatchError, OutputMismatchError)


@dataclass(frozen=True)
class Conformance:
    """The conformance verdict of one model in one variant of an artifact folder: ``pass``,
    ``fail`` with its findings, or ``skipped`` with why (the folder does not hold it)."""

    model: str
    variant: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    skipped: str | None = None


def judge_conformance(
    directory: Path, manifest: Manifest, spec: ModelSpec, variant: str
) -> Conformance:
    """Whether ``<directory>/<model>/<variant>`` keeps its contract (artifacts.conformance):
    the one decision the pytest suite, ``faceperf accuracy check`` and the fault catalogue share.
    Skipped when the manifest lists no such artifact (a candidate may hold only some models)."""
    record = manifest.models.get(spec.name)
    if record is None:
        return _unlisted(spec.name, variant, f"{directory} has no {spec.name}")
    if variant not in record.variants:
        why = f"{directory} has no {variant} variant of {spec.name}"
        return _unlisted(spec.name, variant, why)
    findings = tuple(check_artifact(directory, manifest, spec, variant))
    return Conformance(spec.name, variant, Verdict.FAIL if findings else Verdict.PASS, findings)


def _unlisted(model: str, variant: str, why: str) -> Conformance:
    return Conformance(model, variant, Verdict.SKIPPED, skipped=why)


@dataclass(frozen=True)
class SubjectResult:
    """The measurements of one subject and variant, or why there are none: skipped (nothing to
    judge here) or refused (the candidate would not run, which fails it)."""

    subject: str
    variant: str
    measurements: tuple[Measurement, ...] = ()
    skipped: str | None = None
    unjudged: dict[str, str] = field(default_factory=dict)  # check -> why it is not judged
    refused: str | None = None  # the runner's one-line reason, naming the file
    # What the candidate answered, kept so that the accuracy report (report.py) draws it
    # without running the models again: per case, and per jitter clip when the clips ran.
    outputs: Outputs = field(default_factory=dict, repr=False, compare=False)
    jitter_outputs: Outputs = field(default_factory=dict, repr=False, compare=False)

    @property
    def failures(self) -> list[Measurement]:
        return [m for m in self.measurements if not m.passed]

    @property
    def verdict(self) -> Verdict:
        if self.skipped is not None:
            return Verdict.SKIPPED
        return Verdict.FAIL if self.refused is not None or self.failures else Verdict.PASS


@dataclass(frozen=True)
class SubjectCheck:
    """All the check says of one subject in one variant: the conformance of each of its models,
    then its outputs against the references."""

    conformance: tuple[Conformance, ...]
    accuracy: SubjectResult

    @property
    def verdict(self) -> Verdict:
        """``fail`` when any part fails, ``skipped`` when nothing was judged, else ``pass``."""
        return combine([*(c.verdict for c in self.conformance), self.accuracy.verdict])


def judge_subject(
    subject: str,
    candidate: Candidate,
    reference: ReferenceSet,
    tolerances: Tolerances,
    costly: Collection[str] = COSTLY_CHECKS,
) -> SubjectResult:
    """Run ``subject``'s cases on ``candidate``, measure them against ``reference`` and within
    their ranges, its jitter clips against the reference's jitter (jitter.py) and its face-size
    and pose bins against the reference's answers there (bins.py). ``costly`` names which of
    those two (``COSTLY_CHECKS``) to run: the fault catalogue runs them only for the faults
    that name them, as they cost STAR 36 and 20 calls. A refusal of the candidate's artifacts
    (``CANDIDATE_REFUSALS``) is the result, not raised."""
    unjudged = unjudged_checks(reference)
    for check in COSTLY_CHECKS:
        if check not in costly:
            unjudged.pop(check, None)
    if JITTER in costly and subject in JITTER_SUBJECTS and reference.jitter is None:
        # read_reference always brings it: only a reference built or made without it lacks it
        unjudged[JITTER] = (
            f"no jitter references for {subject}; build them with `faceperf references build "
            "--only jitter`"
        )
    if BINS in costly and subject in BINS_SUBJECTS and reference.bins is None:
        unjudged[BINS] = (
            f"no bins references for {subject}; build them with `faceperf references build "
            "--only bins`"
        )
    shaken = JITTER in costly and reference.jitter is not None and JITTER not in unjudged
    binned = BINS in costly and reference.bins is not None and BINS not in unjudged
    jitter_outputs: Outputs = {}
    try:
        outputs = run_subject(subject, candidate)
        measurements = compare(subject, candidate.variant, reference, outputs, tolerances)
        # Judged even where a check against the reference is not (an untrained detector's
        # detections): a range holds whatever the weights.
        measurements += judge_ranges(subject, candidate.variant, outputs, tolerances)
        if shaken:
            shaking, jitter_outputs = measure_jitter_outputs(
                subject, candidate, reference.jitter, tolerances
            )
            measurements += shaking
        if binned:
            measurements += measure_bins(subject, candidate, reference.bins, tolerances)
    except CANDIDATE_REFUSALS as err:
        return SubjectResult(subject, candidate.variant, refused=str(err))
    return SubjectResult(
        subject,
        candidate.variant,
        tuple(measurements),
        unjudged=unjudged,
        outputs=outputs,
        jitter_outputs=jitter_outputs,
    )


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
        self._conformance: dict[tuple[str, str], Conformance] = {}

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

    def conformance(self, model: str, variant: str) -> Conformance:
        """The artifact's conformance verdict (skipped when the candidate lacks it), judged once."""
        key = (model, variant)
        if key not in self._conformance:
            spec = default_registry()[model]
            self._conformance[key] = judge_conformance(self.candidate, self.manifest, spec, variant)
        return self._conformance[key]

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
            findings = self.conformance(model, variant).findings
            broken = [f for f in findings if f.check == "file"]
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

    def check(self, subject: str, variant: str) -> SubjectCheck:
        """The conformance of ``subject``'s models in ``variant`` and the subject's result."""
        conformance = tuple(self.conformance(m, variant) for m in SUBJECT_MODELS[subject])
        return SubjectCheck(conformance, self.result(subject, variant))

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
        candidate = Candidate(self.candidate, variant, self._backend_for(variant), self.threads)
        return judge_subject(subject, candidate, self.reference(subject), self.tolerances)
