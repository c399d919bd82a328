"""Parity of a candidate's artifacts with the stored reference outputs, and their conformance.

Run after every reconversion: ``pytest -m accuracy`` checks the default artifacts,
``pytest accuracy_tests --candidate DIR`` a folder under review. Limits: tolerances.toml.
"""

from __future__ import annotations

import pytest

from faceperf.accuracy.cases import SUBJECT_MODELS, SUBJECTS
from faceperf.accuracy.compare import CHECKS
from faceperf.accuracy.localize.suite import localize_for_suite
from faceperf.accuracy.references import ReferenceError
from faceperf.models.registry import default_registry
from faceperf.verdicts import Verdict

pytestmark = pytest.mark.accuracy
CANDIDATE_VARIANTS = ("optimized", "optimized_fp16", "coreml")
ALL_VARIANTS = ("baseline", *CANDIDATE_VARIANTS)
CHECK_CASES = [
    pytest.param(subject, variant, check, id=f"{subject}-{variant}-{check}")
    for subject in SUBJECTS
    for variant in CANDIDATE_VARIANTS
    for check in CHECKS[subject]
]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_references_match_the_weights(accuracy_session, subject):
    if accuracy_session.missing_models(subject):
        pytest.skip(accuracy_session.skip_reason(subject, "baseline"))
    accuracy_session.reference(subject)  # raises with the way out when they do not match


@pytest.mark.parametrize(("subject", "variant", "check"), CHECK_CASES)
def test_accuracy(accuracy_session, subject, variant, check):
    reason = accuracy_session.skip_reason(subject, variant)
    if reason:
        pytest.skip(reason)
    try:
        accuracy_session.reference(subject)
    except ReferenceError:
        pytest.skip(
            f"the {subject} references do not fit these weights; see "
            f"test_references_match_the_weights[{subject}]"
        )
    result = accuracy_session.result(subject, variant)
    if result.refused:
        pytest.fail(f"{subject} {variant}: the candidate does not run: {result.refused}")
    if check in result.unjudged:
        pytest.skip(result.unjudged[check])
    measured = [m for m in result.measurements if m.check == check]
    assert measured, f"{subject} {variant}: no {check} measurements"
    failures = [m for m in measured if not m.passed]
    # The message (and so the localisation, bounded in time) is only computed on a failure.
    assert not failures, (
        f"{subject} {variant}: {len(failures)} of {len(measured)} {check} measurements break "
        "their limits (accuracy_tests/tolerances.toml):\n"
        + "\n".join(f"  {m.describe()}" for m in failures)
        + "\n"
        + localize_for_suite(accuracy_session.candidate, SUBJECT_MODELS[subject], variant)
    )


@pytest.mark.parametrize("variant", ALL_VARIANTS)
@pytest.mark.parametrize("model", default_registry().names())
def test_conformance(accuracy_session, model, variant):
    conformance = accuracy_session.conformance(model, variant)
    if conformance.verdict is Verdict.SKIPPED:
        pytest.skip(conformance.skipped)
    assert conformance.verdict is Verdict.PASS, (
        f"{model} {variant} breaks its contract:\n"
        + "\n".join(f"  {finding}" for finding in conformance.findings)
    )
