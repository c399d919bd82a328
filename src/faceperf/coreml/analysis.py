"""What a compute plan says about Neural Engine use: coverage, partitions, fallbacks.

Pure functions over ``ComputePlan``. Only ops Core ML places on a device count ("compute ops");
const ops have no device and are left out, as Xcode's performance report leaves them out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import groupby

from faceperf.coreml.compute_plan import ComputePlan, Device, PlanOp


@dataclass(frozen=True)
class FallbackCount:
    """How many ops of one type Core ML prefers to run off the Neural Engine, on which device."""

    op_type: str
    device: Device
    count: int


@dataclass(frozen=True)
class PlanSummary:
    """The figures the gates and the CLI report for one plan.

    Args:
        model: the model's name.
        ops: every op of the plan, const ops included.
        compute_ops: ops placed on a device.
        ane_ops: compute ops whose preferred device is the Neural Engine.
        coverage_by_count: ane_ops / compute_ops (None without compute ops).
        coverage_by_cost: the Neural Engine's share of the estimated cost of the costed ops
            (None when no op has a cost).
        costed_ops: compute ops with a cost estimate (coverage_by_cost covers only these).
        partitions: runs of consecutive compute ops on one device, in program order.
        fallbacks: the compute ops off the Neural Engine, in program order.
        fallback_counts: the same, counted per op type and device.
        unplaced: non-const ops for which Core ML reported no device (normally none).
    """

    model: str
    ops: int
    compute_ops: int
    ane_ops: int
    coverage_by_count: float | None
    coverage_by_cost: float | None
    costed_ops: int
    partitions: int
    fallbacks: tuple[PlanOp, ...]
    fallback_counts: tuple[FallbackCount, ...]
    unplaced: tuple[PlanOp, ...]

    @property
    def device_switches(self) -> int:
        """Hand-overs between devices along the program: partitions - 1 (0 without ops)."""
        return max(self.partitions - 1, 0)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "ops": self.ops,
            "compute_ops": self.compute_ops,
            "ane_ops": self.ane_ops,
            "coverage_by_count": self.coverage_by_count,
            "coverage_by_cost": self.coverage_by_cost,
            "costed_ops": self.costed_ops,
            "partitions": self.partitions,
            "fallbacks": [
                {"op_type": c.op_type, "device": c.device.value, "count": c.count}
                for c in self.fallback_counts
            ],
            "fallback_ops": [op.identity for op in self.fallbacks],
            "unplaced_ops": [op.identity for op in self.unplaced],
        }


def compute_ops(plan: ComputePlan) -> tuple[PlanOp, ...]:
    """The ops Core ML places on a device, in program order."""
    return tuple(op for op in plan.ops if op.computes)


def ane_coverage_by_count(plan: ComputePlan) -> float | None:
    """Share of compute ops whose preferred device is the Neural Engine (None without any)."""
    placed = compute_ops(plan)
    if not placed:
        return None
    return sum(op.on_neural_engine for op in placed) / len(placed)


def ane_coverage_by_cost(plan: ComputePlan) -> float | None:
    """The Neural Engine's share of the estimated cost, over the compute ops that have one.

    Cost is what matters for speed: one large convolution on the CPU weighs more than ten
    reshapes. None when no op has an estimate or the estimates sum to zero.
    """
    costed = [op for op in compute_ops(plan) if op.cost is not None]
    total = sum(op.cost for op in costed)
    if not costed or total <= 0:
        return None
    return sum(op.cost for op in costed if op.on_neural_engine) / total


def partitions(plan: ComputePlan) -> int:
    """Runs of consecutive compute ops on the same preferred device, in program order.

    Each boundary between runs is a hand-over (synchronisation, and often a copy between memory
    layouts), so k device switches make k + 1 partitions. Const ops do not break a run.
    """
    return sum(1 for _ in groupby(op.preferred for op in compute_ops(plan)))


def fallbacks(plan: ComputePlan) -> tuple[PlanOp, ...]:
    """Compute ops whose preferred device is not the Neural Engine, in program order."""
    return tuple(op for op in compute_ops(plan) if not op.on_neural_engine)


def fallback_counts(plan: ComputePlan) -> tuple[FallbackCount, ...]:
    """Fallbacks counted per (op type, device), most frequent first, then by name."""
    counts = Counter((op.base_type, op.preferred) for op in fallbacks(plan))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1].value))
    return tuple(FallbackCount(op_type, device, n) for (op_type, device), n in ordered)


def unplaced_ops(plan: ComputePlan) -> tuple[PlanOp, ...]:
    """Non-const ops without a device: Core ML could not say where they run."""
    return tuple(op for op in plan.ops if not op.computes and op.base_type != "const")


def summarize(plan: ComputePlan) -> PlanSummary:
    """Every figure of a plan in one record."""
    placed = compute_ops(plan)
    return PlanSummary(
        model=plan.model,
        ops=len(plan.ops),
        compute_ops=len(placed),
        ane_ops=sum(op.on_neural_engine for op in placed),
        coverage_by_count=ane_coverage_by_count(plan),
        coverage_by_cost=ane_coverage_by_cost(plan),
        costed_ops=sum(op.cost is not None for op in placed),
        partitions=partitions(plan),
        fallbacks=fallbacks(plan),
        fallback_counts=fallback_counts(plan),
        unplaced=unplaced_ops(plan),
    )
