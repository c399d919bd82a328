"""Core ML placement gates on Apple Silicon (macOS 14.4+): Neural Engine coverage and partitions
of every Core ML artifact against ``[[computeplan]]`` in baselines/budgets.toml, and placement
drift against the committed ``baselines/<machine>.computeplan.json``.

Placement is decided by Core ML when it compiles the model, not timed, so these gates are exact
and run the same under --benchmark-disable. Off macOS 14.4+, and on a Mac where Core ML sees no
Neural Engine (a virtual machine, an Intel Mac), they are collected and skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from faceperf.artifacts.layout import artifact_path
from faceperf.bench.gate.paths import budgets_path
from faceperf.coreml.analysis import PlanSummary, summarize
from faceperf.coreml.compute_plan import ComputePlan
from faceperf.coreml.drift import compare_placement, computeplan_snapshot_path, load_snapshot
from faceperf.coreml.errors import SnapshotMismatchError
from faceperf.coreml.plan_budgets import PlanBudget, load_plan_budgets
from faceperf.coreml.plan_macos import load_compute_plan, neural_engine_unavailable_reason
from faceperf.models.registry import default_registry

UNAVAILABLE = neural_engine_unavailable_reason()
pytestmark = [
    pytest.mark.perf,
    pytest.mark.coreml,
    pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or ""),
]
MODELS = default_registry().names()


@pytest.fixture(scope="module")
def plan_of(artifacts_dir) -> Callable[[str], ComputePlan]:
    """The compute plan of a model's coreml artifact, made once per module (compiling is slow)."""
    plans: dict[str, ComputePlan] = {}

    def plan(model: str) -> ComputePlan:
        if model not in plans:
            path = artifact_path(artifacts_dir, model, "coreml")
            if not path.exists():
                pytest.skip(f"no coreml artifact for {model} in {artifacts_dir}")
            plans[model] = load_compute_plan(path, model=model)
        return plans[model]

    return plan


def _budget(profile: str, model: str, key: str) -> PlanBudget:
    budget = load_plan_budgets(budgets_path()).for_model(profile, model)
    if budget is None or getattr(budget, key) is None:
        pytest.skip(f"no {key} for {model} on {profile} in {budgets_path()} ([[computeplan]])")
    return budget


def _off_ane(summary: PlanSummary) -> str:
    counts = ", ".join(
        f"{c.op_type} x{c.count} on {c.device.value}" for c in summary.fallback_counts
    )
    return counts or "nothing"


@pytest.mark.parametrize("model", MODELS)
def test_neural_engine_coverage_at_or_above_floor(plan_of, perf_profile, record_property, model):
    budget = _budget(perf_profile.name, model, "min_ane_coverage")
    summary = summarize(plan_of(model))
    record_property("ane_coverage", summary.coverage_by_count)
    coverage = summary.coverage_by_count or 0.0
    assert coverage >= budget.min_ane_coverage, (
        f"{model} on {perf_profile.name}: {summary.ane_ops} of {summary.compute_ops} compute ops "
        f"on the Neural Engine ({coverage:.1%}), below the floor {budget.min_ane_coverage:.2%} "
        f"({budget.reason}); off the Neural Engine: {_off_ane(summary)}"
    )


@pytest.mark.parametrize("model", MODELS)
def test_partitions_at_or_below_ceiling(plan_of, perf_profile, record_property, model):
    budget = _budget(perf_profile.name, model, "max_partitions")
    summary = summarize(plan_of(model))
    record_property("partitions", summary.partitions)
    assert summary.partitions <= budget.max_partitions, (
        f"{model} on {perf_profile.name}: {summary.partitions} partitions, more than "
        f"{budget.max_partitions} ({budget.reason}); off the Neural Engine: {_off_ane(summary)}"
    )


@pytest.mark.parametrize("model", MODELS)
def test_no_op_left_the_neural_engine_since_the_snapshot(plan_of, perf_profile, model):
    path = computeplan_snapshot_path(perf_profile.name)
    machine = perf_profile.name.split("/", 1)[0]
    if not path.exists():
        pytest.skip(
            f"no compute-plan snapshot committed for {machine} ({path}); "
            "record one with `faceperf coreml snapshot`"
        )
    snapshot = load_snapshot(path)
    if model not in snapshot.models:
        pytest.skip(f"{path} has no placement of {model}; add it with `faceperf coreml snapshot`")
    try:
        drift = compare_placement(snapshot.models[model], plan_of(model), str(path))
    except SnapshotMismatchError as err:
        pytest.fail(str(err), pytrace=False)
    assert not drift.regressed, f"placement drift against {path}:\n{drift.describe()}"
