"""The merge gate as the pytest plugin sets it up at collection: which reference, which
benchmarks, or why it is skipped. Parametrising needs the benchmark names before any test runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from faceperf.bench.ab.pairings import AbPlan, AbRequest, default_variants, plan, read_sides
from faceperf.bench.ab.reference import merge_base, resolve_reference
from faceperf.paths import default_artifacts_dir

MERGE_BASE = "merge-base"


@dataclass(frozen=True)
class AbSetup:
    """A planned merge gate, or the reason there is none.

    Args:
        request: both sides and the settings (None when skipped).
        plan: the benchmarks to judge (None when skipped).
        skip_reason: why the merge gate does not run, for the skip message.
    """

    request: AbRequest | None = None
    plan: AbPlan | None = None
    skip_reason: str | None = None

    def request_for(self, candidate: Path) -> AbRequest:
        """The request with the candidate folder the session really uses (a stale default
        build is rebuilt into a private folder by the ``artifacts_dir`` fixture)."""
        if self.request is None:
            raise ValueError(f"the merge gate is skipped: {self.skip_reason}")
        return dataclasses.replace(self.request, candidate=candidate)


def ab_setup(
    reference: str | None,
    candidate: Path | None = None,
    backend: str = "ort-cpu",
    threads: int = 1,
    models: tuple[str, ...] | None = None,
    say: Callable[[str], None] | None = None,
) -> AbSetup:
    """Resolve the reference (``merge-base``, a git revision or a folder) and plan the gate.

    Raises:
        FaceperfError: the reference is neither a folder nor a revision, fails to build, or
            either artifact set cannot be read.
    """
    if reference is None:
        return AbSetup(
            skip_reason="no --perf-reference: the merge gate needs a reference (an artifact "
            f"folder, a git revision, or {MERGE_BASE})"
        )
    if reference == MERGE_BASE:
        base, why = merge_base()
        if base is None:
            return AbSetup(skip_reason=why)
        if say is not None:
            say(f"faceperf merge gate: reference = {why}")
        reference = base
    request = AbRequest(
        reference=resolve_reference(reference, say=say),
        candidate=candidate or default_artifacts_dir(),
        models=models,
        variants=default_variants(backend),
        backend=backend,
        threads=threads,
    )
    return AbSetup(request=request, plan=plan(request, *read_sides(request)))
