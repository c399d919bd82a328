"""Memory budgets: the peak of every model, the MTCNN cascade and the Face Mirror process in
each variant, measured in fresh child processes (bench/memory/), against baselines/budgets.toml.

Memory does not depend on how fast the machine is, nor (within a few MiB) on what else runs on
it, so these budgets are judged under --benchmark-disable too (`make test`): a reconversion that
makes a model hold more memory fails there as well as in `make perf`.
"""

from __future__ import annotations

import pytest

from faceperf.artifacts.layout import VARIANTS, Variant
from faceperf.bench.budgets import MemoryBudget, load_budgets
from faceperf.bench.gate.paths import budgets_path
from faceperf.bench.memory.compare import MIB
from faceperf.bench.memory.peak import MTCNN, PIPELINE, MemoryPeaks, measure_without_arena
from faceperf.models.registry import default_registry
from faceperf.runtime.backends import parse_backend

pytestmark = pytest.mark.perf
SUBJECTS = [*default_registry().names(), MTCNN, PIPELINE]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("subject", SUBJECTS)
def test_memory_within_budget(
    memory_peaks, artifacts_dir, perf_profile, budget_report, subject, variant
):
    coreml = parse_backend(perf_profile.backend).is_coreml
    if coreml != (Variant(variant) == Variant.COREML):
        pytest.skip(f"{variant} is not measured on the {perf_profile.backend} backend")
    record = memory_peaks.get((subject, variant))
    if record is None:
        pytest.skip(f"the artifact folder has no {variant} of {subject}")
    budget = load_budgets(budgets_path()).memory_budget_for(perf_profile.name, subject, variant)
    where = _where(record)
    if budget is None:
        budget_report(f"{record.name} memory: {where}; no budget for {perf_profile.name}")
        pytest.skip(f"no memory budget of {subject} {variant} for {perf_profile.name}")
    passed = budget.allows(record)
    budget_report(
        f"{record.name} memory: {where}; budget {budget.describe()}: {'pass' if passed else 'FAIL'}"
    )
    assert passed, _failure(record, budget, where, measure_without_arena(artifacts_dir, record))


def _where(record: MemoryPeaks) -> str:
    """Where the memory went: the floor, what each phase added, the peak."""
    load, steady = record.phase("load"), record.phase("steady")
    return (
        f"peak {record.peak_bytes / MIB:.0f} MiB = floor {record.floor_bytes / MIB:.0f} + "
        f"load {load.above_floor_bytes / MIB:+.0f} / steady {steady.above_floor_bytes / MIB:+.0f} "
        f"MiB ({record.method})"
    )


def _failure(
    record: MemoryPeaks, budget: MemoryBudget, where: str, unpooled: MemoryPeaks | None
) -> str:
    text = (
        f"{record.name}: {budget.measured_mib(record):.0f} MiB breaks the memory budget "
        f"{budget.describe()} ({budget.reason}); {where}"
    )
    if unpooled is not None:
        # Measured again with the arena off: what is left is what the graph itself needs.
        held = [
            f"{phase} {round((_added(record, phase) - _added(unpooled, phase)) / MIB):+d}"
            for phase in ("load", "steady")
        ]
        text += (
            f"; ONNX Runtime's CPU arena held {' / '.join(held)} MiB of it (the same run "
            f"without the arena: load {unpooled.phase('load').above_floor_bytes / MIB:+.0f} / "
            f"steady {unpooled.phase('steady').above_floor_bytes / MIB:+.0f} MiB)"
        )
    return text


def _added(record: MemoryPeaks, phase: str) -> int:
    return record.phase(phase).above_floor_bytes
