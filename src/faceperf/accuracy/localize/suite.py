"""The accuracy suite's line: ``localize_for_suite`` localises a failing check's models within
a time budget, or says how to run the localisation by hand (``hand_command``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from faceperf.accuracy.localize.api import localize
from faceperf.accuracy.localize.execution import Deadline
from faceperf.accuracy.localize.result import LocalizeBudgetError
from faceperf.artifacts.layout import ONNX_VARIANTS
from faceperf.artifacts.manifest import read_manifest
from faceperf.errors import FaceperfError
from faceperf.paths import default_artifacts_dir

# The accuracy suite localises a failure only within this many seconds (all nets of a subject).
SUITE_BUDGET_S = 30.0


def hand_command(candidate: Path, model: str, variant: str) -> str:
    return f"faceperf accuracy localize --candidate {candidate} --model {model} --variant {variant}"


def suite_reference(candidate: Path, model: str) -> Path:
    """The candidate folder when it has its own baseline of ``model`` (the same build, so the
    same weights), else the default artifact folder."""
    try:
        manifest = read_manifest(candidate)
    except FaceperfError:
        return default_artifacts_dir()
    record = manifest.models.get(model)
    if record is not None and "baseline" in record.variants:
        return Path(candidate)
    return default_artifacts_dir()


def localize_for_suite(
    candidate: Path,
    models: Sequence[str],
    variant: str,
    *,
    reference: Path | None = None,
    budget_s: float = SUITE_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """The line a failing accuracy check appends: its models localised within ``budget_s``.

    Names the models with a first failing operation or differing inputs (else says that none
    has one). Over budget, on any error, and for the Core ML variant (whose comparator predicts
    the program many times over), it says how to run the localisation by hand instead.
    """
    hint = "; ".join(hand_command(candidate, m, variant) for m in models)
    if variant not in ONNX_VARIANTS:
        return f"localisation: not run for {variant} in the suite; by hand: {hint}"
    deadline = Deadline.after(budget_s, clock)
    results = []
    try:
        for model in models:
            deadline.check(f"starting {model}")
            reference_dir = reference or suite_reference(candidate, model)
            results.append(
                localize(candidate, model, variant, reference=reference_dir, deadline=deadline)
            )
    except LocalizeBudgetError:
        return f"localisation: over {budget_s:g} s; run it by hand: {hint}"
    except FaceperfError as err:
        return f"localisation: failed ({err}); run it by hand: {hint}"
    found = [r for r in results if r.inputs_differ or r.first_failing is not None]
    return "localisation: " + "; ".join(r.verdict() for r in found or results)
