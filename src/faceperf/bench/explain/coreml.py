"""Which operations made a Core ML candidate slower, from the two packages' compute plans.

ONNX Runtime's profiler cannot read a Core ML package, and Core ML has no per-operation timer
faceperf can read. What Core ML does tell, on macOS 14.4+, is its compute plan
(``coreml/compute_plan.py``): per operation, the device it prefers and its estimated share of
the model's work (``MLComputePlanCost.weight``). Two plans are compared op by op:

1. Pairing. Compute ops only (const ops have no device and no cost): first by identity (the
   operator without its opset, and the first output: ``conv:x_1_cast_fp16``, as
   ``coreml/drift.py`` keys its snapshots); then what is left by operator along the program
   order (the longest common runs, as ``match.py`` pairs ORT's nodes), so an op whose output a
   reconversion renamed pairs with the one in its place.
2. Lines. A paired op is a line; the ops of one side only are grouped by the paired op before
   them, operator and device ("2 new conv on the Neural Engine after x_1_cast_fp16"): one
   inserted layer repeated is one cause.
3. Ranking. Ops whose preferred device changed come first, those that left the Neural Engine
   first of all: a fallback to the CPU or GPU is the classic Core ML slowdown (a slower device,
   and a hand-over each way) and outweighs any cost estimate. The rest by added estimated cost.

Units. A cost is a share of its own plan's total, so the shares of two plans are not on one
scale: an added conv lowers every other op's share though their work is unchanged. Given each
side's measured time per call, a share becomes estimated ms (share x time) and the sides
compare; without, lines are in points of each plan's estimated work, and say so.

These are Core ML's estimates, not measured times; every headline and table says so.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from faceperf.artifacts.layout import Variant, artifact_path
from faceperf.artifacts.manifest import manifest_path, read_manifest
from faceperf.bench.explain.diff import FLOOR_FRACTION, Change, ms
from faceperf.bench.explain.record import SCHEMA_VERSION
from faceperf.coreml import plan_macos
from faceperf.coreml.analysis import ane_coverage_by_cost, compute_ops
from faceperf.coreml.compute_plan import ComputePlan, Device, PlanOp
from faceperf.coreml.drift import MovedOp
from faceperf.errors import ArtifactError, BackendUnavailableError

ESTIMATES = (
    "Core ML's estimates from the compute plan (MLComputePlanCost.weight, each op's share of "
    "its model's work, and the preferred device), not measured times"
)
DEVICE_NAMES = {
    Device.NEURAL_ENGINE: "the Neural Engine",
    Device.CPU: "the CPU",
    Device.GPU: "the GPU",
}


class PairedBy(StrEnum):
    IDENTITY = "identity"  # same operator and first output
    POSITION = "operator and position"  # same operator in the same place, output renamed


@dataclass(frozen=True)
class PlanLine:
    """One row of a Core ML explanation: a paired op, or a group of ops on one side only.

    Args:
        change: what the line is (a pair is ``changed``, whether or not anything changed).
        op_type: the operator without its opset (``conv``).
        ops: the ops' first output names (their path when they have none); the candidate's,
            the reference's for gone ops.
        after: for new and gone ops, the paired op just before them on their side (None: at
            the start of the program).
        reference_device, candidate_device: the preferred device on each side (None: the op
            is not on that side).
        reference_cost, candidate_cost: the summed shares of each plan's estimated work.
        reference_ms, candidate_ms: the same in estimated ms (share x that side's measured
            time per call); None without measured times.
        floor: the smallest change of cost that counts, in the line's unit (0.5 % of the
            reference).
        share: the estimated ms added as a fraction of the measured slowdown; None without
            measured times or when the candidate is not slower.
        was: for a pair whose outputs differ, the reference op's name.
        uncosted: ops of the line for which Core ML gave no estimate (counted as 0).
    """

    change: Change
    op_type: str
    ops: tuple[str, ...]
    after: str | None
    reference_device: Device | None
    candidate_device: Device | None
    reference_cost: float
    candidate_cost: float
    reference_ms: float | None = None
    candidate_ms: float | None = None
    floor: float = 0.0
    share: float | None = None
    was: str | None = None
    uncosted: int = 0

    @property
    def estimated_ms(self) -> bool:
        return self.reference_ms is not None and self.candidate_ms is not None

    @property
    def delta(self) -> float:
        """The added estimated cost: ms with measured times, else a fraction of the plans' work."""
        if self.reference_ms is not None and self.candidate_ms is not None:
            return self.candidate_ms - self.reference_ms
        return self.candidate_cost - self.reference_cost

    @property
    def moved(self) -> bool:
        """A paired op whose preferred device changed."""
        return self.change is Change.CHANGED and self.reference_device != self.candidate_device

    @property
    def left_neural_engine(self) -> bool:
        return self.moved and self.reference_device is Device.NEURAL_ENGINE

    @property
    def stands_out(self) -> bool:
        """It moved device, or its estimated cost changed by more than the floor."""
        return self.moved or abs(self.delta) > self.floor

    def describe(self) -> str:
        """``mul x_7 moved from the Neural Engine to the CPU``, ``2 new conv on the Neural
        Engine after x_1``, ``conv x_1 (was x_0) on the Neural Engine``."""
        if self.change is Change.CHANGED:
            was = f" (was {self.was})" if self.was else ""
            where = f"on {_device(self.candidate_device)}"
            if self.moved:
                where = (
                    f"moved from {_device(self.reference_device)} to "
                    f"{_device(self.candidate_device)}"
                )
            return f"{self.op_type} {self.ops[0]}{was} {where}"
        device = self.candidate_device if self.change is Change.NEW else self.reference_device
        where = f"after {self.after}" if self.after else "at the start"
        return f"{len(self.ops)} {self.change} {self.op_type} on {_device(device)} {where}"

    def to_json(self) -> dict[str, object]:
        return {
            "change": str(self.change),
            "op_type": self.op_type,
            "ops": list(self.ops),
            "after": self.after,
            "reference_device": _device_json(self.reference_device),
            "candidate_device": _device_json(self.candidate_device),
            "moved": self.moved,
            "reference_cost": self.reference_cost,
            "candidate_cost": self.candidate_cost,
            "reference_ms": self.reference_ms,
            "candidate_ms": self.candidate_ms,
            "delta": self.delta,
            "unit": "estimated ms" if self.estimated_ms else "share of the plan's work",
            "floor": self.floor,
            "stands_out": self.stands_out,
            "share": self.share,
            "was": self.was,
            "uncosted": self.uncosted,
            "text": self.describe(),
        }


@dataclass(frozen=True)
class PlanExplanation:
    """Both compute plans, how their ops paired, and the ranked lines.

    The sibling of ``diff.Explanation`` for Core ML: the same ``headline``, ``lines`` and
    ``to_json``, so the merge gate reports either.

    Args:
        reference, candidate: the compute plans.
        ranked: every line, device changes first, then most added estimated cost first.
        paired: how many ops paired, per ``PairedBy``.
        measured_ms: the measured time per call of the reference and the candidate, or None.
        top: how many lines a table shows.
    """

    reference: ComputePlan
    candidate: ComputePlan
    ranked: tuple[PlanLine, ...]
    paired: dict[str, int]
    measured_ms: tuple[float, float] | None = None
    top: int = 5

    @property
    def label(self) -> str:
        return f"{self.candidate.model}/{Variant.COREML}"

    @property
    def slowdown_ms(self) -> float | None:
        """Measured candidate − reference per call; None without measured times."""
        if self.measured_ms is None:
            return None
        return self.measured_ms[1] - self.measured_ms[0]

    @property
    def ratio(self) -> float | None:
        if self.measured_ms is None:
            return None
        return self.measured_ms[1] / self.measured_ms[0]

    @property
    def moved(self) -> tuple[MovedOp, ...]:
        """Every paired op whose preferred device changed (drift.py's record of one)."""
        return tuple(
            MovedOp(f"{line.op_type}:{line.ops[0]}", line.reference_device, line.candidate_device)
            for line in self.ranked
            if line.moved and line.reference_device and line.candidate_device
        )

    def count(self, change: Change) -> int:
        return sum(len(line.ops) for line in self.ranked if line.change is change)

    def culprits(self) -> tuple[PlanLine, ...]:
        """The lines that did not move device and add estimated cost beyond the floor."""
        return tuple(
            line for line in self.ranked if not line.moved and line.stands_out and line.delta > 0
        )

    def headline(self) -> str:
        """``star/coreml x1.09 measured (compute plan: Core ML's estimates, not measured
        times): 3 ops moved from the Neural Engine to the CPU (mul, 2 add); 2 new conv on the
        Neural Engine after x_1: +4.1 ms est. of +8.0 ms measured``."""
        ratio = "" if self.ratio is None else f" x{self.ratio:.2f} measured"
        start = f"{self.label}{ratio} (compute plan: Core ML's estimates, not measured times)"
        # A move onto the Neural Engine is no cause of a slowdown: it stays in the table only.
        parts = _moves(
            line
            for line in self.ranked
            if line.moved and line.candidate_device is not Device.NEURAL_ENGINE
        )
        culprits = self.culprits()
        if culprits:
            first = culprits[0]
            parts.append(f"{first.describe()}: {self.amount(first.delta)} est.")
        if not parts:
            return (
                f"{start}: no op left the Neural Engine or changed device, and no estimated "
                "cost grew beyond 0.5 % of the reference's"
            )
        slowdown = self.slowdown_ms
        total = "" if slowdown is None else f" of {ms(slowdown)} ms measured"
        return f"{start}: {'; '.join(parts)}{total}"

    def amount(self, delta: float) -> str:
        """A line's change in its unit: ``+4.12 ms`` or ``+5.0 points of the plan's work``."""
        if self.measured_ms is None:
            return f"{100 * delta:+.1f} points of the plan's work"
        return f"{ms(delta)} ms"

    def lines(self) -> list[str]:
        """The headline and a markdown table of the ``top`` lines, with notes."""
        from faceperf.bench.explain.render import plan_explanation_lines

        return plan_explanation_lines(self)

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": "coreml compute plan",
            "estimates": ESTIMATES,
            "label": self.label,
            "headline": self.headline(),
            "reference": _plan_json(self.reference),
            "candidate": _plan_json(self.candidate),
            "measured_ms": None if self.measured_ms is None else list(self.measured_ms),
            "slowdown_ms": self.slowdown_ms,
            "ratio": self.ratio,
            "paired": dict(self.paired),
            "new": self.count(Change.NEW),
            "gone": self.count(Change.GONE),
            "moved": [
                {"identity": m.identity, "before": m.before.value, "after": m.after.value}
                for m in self.moved
            ],
            "lines": [line.to_json() for line in self.ranked],
        }


@dataclass(frozen=True)
class NotExplained:
    """Why a benchmark's Core ML package has no explanation here (no compute plans on this OS).

    Reported where an explanation would be (same ``headline``, ``lines``, ``to_json``), so the
    report says why there is none rather than nothing.
    """

    label: str
    reason: str

    def headline(self) -> str:
        return f"{self.label}: no Core ML explanation here: {self.reason}"

    def lines(self) -> list[str]:
        return [self.headline()]

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": SCHEMA_VERSION,
            "source": "coreml compute plan",
            "label": self.label,
            "explained": False,
            "reason": self.reason,
        }


def explain_plans(
    reference: ComputePlan,
    candidate: ComputePlan,
    measured_ms: tuple[float, float] | None = None,
    top: int = 5,
) -> PlanExplanation:
    """Rank what each op of ``candidate``'s compute plan adds over ``reference``'s.

    Args:
        reference, candidate: the compute plans of the two packages (plan_macos on a Mac, or
            load_plan).
        measured_ms: the measured time per call of the reference and the candidate, to turn
            shares into estimated ms; None: lines in points of each plan's estimated work.
        top: how many lines ``PlanExplanation.lines()`` shows.

    Raises:
        ValueError: ``top`` below 1, or a measured time not above 0.
    """
    if top < 1:
        raise ValueError(f"top {top}: expected at least 1")
    if measured_ms is not None and min(measured_ms) <= 0:
        raise ValueError(f"measured_ms {measured_ms}: expected two times per call above 0")
    ref_ops, cand_ops = compute_ops(reference), compute_ops(candidate)
    pairs = _pair(ref_ops, cand_ops)
    paired_ref = {id(r) for r, _, _ in pairs}
    paired_cand = {id(c) for _, c, _ in pairs}
    lines = [_pair_line(r, c) for r, c, _ in pairs]
    lines += _grouped(Change.NEW, cand_ops, paired_cand)
    lines += _grouped(Change.GONE, ref_ops, paired_ref)
    scaled = [_scaled(line, measured_ms) for line in lines]
    # sorted() is stable: equal lines keep program order.
    ranked = tuple(sorted(scaled, key=_rank))
    counts = {str(how): sum(1 for *_, by in pairs if by is how) for how in PairedBy}
    return PlanExplanation(reference, candidate, ranked, counts, measured_ms, top)


def explain_packages(
    reference_dir: Path,
    candidate_dir: Path,
    model: str,
    measured_ms: tuple[float, float] | None = None,
    compute_units: str | None = None,
    top: int = 5,
) -> PlanExplanation:
    """Explain ``candidate_dir``'s Core ML package of ``model`` against ``reference_dir``'s,
    from the compute plans Core ML makes for them on this Mac.

    Args:
        reference_dir, candidate_dir: artifact folders (``<dir>/manifest.json``,
            ``<dir>/<model>/coreml.mlpackage``).
        model: the model whose ``coreml`` variant to compare.
        measured_ms: the measured time per call of each side, or None (see ``explain_plans``).
        compute_units: the units to plan for (plan_macos.COMPUTE_UNITS); None: plan_macos's
            default, the units the coreml variant is converted for.
        top: lines the table shows.

    Raises:
        BackendUnavailableError: not macOS 14.4+ (the reason is
            ``plan_macos.compute_plan_unavailable_reason()``), or coremltools cannot reach
            Core ML.
        ArtifactError: a manifest, entry or package is missing, or Core ML cannot plan it.
    """
    # Checked before touching any file: on Linux there is no plan to read, and none is faked.
    reason = plan_macos.compute_plan_unavailable_reason()
    if reason:
        raise BackendUnavailableError(reason)
    units = compute_units or plan_macos.DEFAULT_COMPUTE_UNITS
    plans = [
        plan_macos.load_compute_plan(coreml_package(Path(directory), model), model, units)
        for directory in (reference_dir, candidate_dir)
    ]
    return explain_plans(plans[0], plans[1], measured_ms, top)


def explain_or_reason(
    reference_dir: Path,
    candidate_dir: Path,
    model: str,
    measured_ms: tuple[float, float] | None = None,
    compute_units: str | None = None,
) -> PlanExplanation | NotExplained:
    """``explain_packages``, or why it cannot run here (for the merge gate, which goes on).

    Raises:
        ArtifactError: as ``explain_packages``: a broken artifact is an error, not a reason.
    """
    try:
        return explain_packages(reference_dir, candidate_dir, model, measured_ms, compute_units)
    except BackendUnavailableError as err:
        return NotExplained(f"{model}/{Variant.COREML}", str(err))


def per_call_ms(
    reference_s: Sequence[float], candidate_s: Sequence[float]
) -> tuple[float, float] | None:
    """The median time per call of each side, in ms, from per-call seconds (the merge gate's
    samples); None when a side has none or a time is not above 0."""
    if not reference_s or not candidate_s:
        return None
    times = (1000 * statistics.median(reference_s), 1000 * statistics.median(candidate_s))
    return times if min(times) > 0 else None


def coreml_package(directory: Path, model: str) -> Path:
    """The .mlpackage (a folder) that ``directory``'s manifest lists for ``model``/coreml.

    Raises:
        ArtifactError: no manifest, no such entry, or the package is missing.
    """
    manifest = read_manifest(directory)
    try:
        manifest.record(model, Variant.COREML)
    except ArtifactError as err:
        raise ArtifactError(f"{manifest_path(directory)}: {err}") from None
    path = artifact_path(directory, model, Variant.COREML)
    if not path.is_dir():
        raise ArtifactError(f"{path}: missing; the manifest lists {model}/coreml as this package")
    return path


def _pair(
    reference: Sequence[PlanOp], candidate: Sequence[PlanOp]
) -> list[tuple[PlanOp, PlanOp, PairedBy]]:
    """Pairs by identity, then the rest by operator along the program order; in the
    candidate's program order."""
    # Reused rather than copied: the same longest-common-runs pairing the ORT nodes get. It
    # only calls the key on the items, so it pairs plan ops as well as profiled nodes.
    from faceperf.bench.explain.match import _in_order

    by_identity: dict[str, PlanOp] = {}
    for op in reference:
        by_identity.setdefault(op.identity, op)  # a repeated identity: the first keeps it
    pairs = []
    for op in candidate:
        found = by_identity.pop(op.identity, None)
        if found is not None:
            pairs.append((found, op, PairedBy.IDENTITY))
    taken = {id(op) for pair in pairs for op in pair[:2]}
    left_ref = [op for op in reference if id(op) not in taken]
    left_cand = [op for op in candidate if id(op) not in taken]
    by_type = _in_order(lambda op: op.base_type)
    pairs += [(r, c, PairedBy.POSITION) for r, c in by_type(left_ref, left_cand)]
    order = {id(op): index for index, op in enumerate(candidate)}
    return sorted(pairs, key=lambda pair: order[id(pair[1])])


def _name(op: PlanOp) -> str:
    return op.outputs[0] if op.outputs else op.path


def _pair_line(reference: PlanOp, candidate: PlanOp) -> PlanLine:
    return PlanLine(
        change=Change.CHANGED,
        op_type=candidate.base_type,
        ops=(_name(candidate),),
        after=None,
        reference_device=reference.preferred,
        candidate_device=candidate.preferred,
        reference_cost=reference.cost or 0.0,
        candidate_cost=candidate.cost or 0.0,
        was=_name(reference) if _name(reference) != _name(candidate) else None,
        uncosted=(reference.cost is None) + (candidate.cost is None),
    )


def _grouped(change: Change, order: Sequence[PlanOp], paired: set[int]) -> list[PlanLine]:
    """One line per (paired op before them, operator, device) of the ops of ``order`` (one
    side, in program order) that are not ``paired``."""
    groups: dict[tuple[str | None, str, Device | None], list[PlanOp]] = {}
    before: str | None = None
    for op in order:
        if id(op) in paired:
            before = _name(op)
        else:
            groups.setdefault((before, op.base_type, op.preferred), []).append(op)
    return [_group_line(change, after, ops) for (after, _, _), ops in groups.items()]


def _group_line(change: Change, after: str | None, ops: list[PlanOp]) -> PlanLine:
    cost = sum(op.cost or 0.0 for op in ops)
    device = ops[0].preferred
    new = change is Change.NEW
    return PlanLine(
        change=change,
        op_type=ops[0].base_type,
        ops=tuple(_name(op) for op in ops),
        after=after,
        reference_device=None if new else device,
        candidate_device=device if new else None,
        reference_cost=0.0 if new else cost,
        candidate_cost=cost if new else 0.0,
        uncosted=sum(op.cost is None for op in ops),
    )


def _scaled(line: PlanLine, measured_ms: tuple[float, float] | None) -> PlanLine:
    if measured_ms is None:
        return dataclasses.replace(line, floor=FLOOR_FRACTION)
    reference, candidate = measured_ms
    slowdown = candidate - reference
    scaled = dataclasses.replace(
        line,
        reference_ms=line.reference_cost * reference,
        candidate_ms=line.candidate_cost * candidate,
        floor=FLOOR_FRACTION * reference,
    )
    share = scaled.delta / slowdown if slowdown > 0 else None
    return dataclasses.replace(scaled, share=share)


def _rank(line: PlanLine) -> tuple[int, float]:
    # A device change first (off the Neural Engine before any other), then added cost.
    tier = 0 if line.left_neural_engine else 1 if line.moved else 2
    return (tier, -line.delta)


def _moves(lines: Iterable[PlanLine]) -> list[str]:
    """``3 ops moved from the Neural Engine to the CPU (mul, 2 add)``, per (from, to)."""
    groups: dict[tuple[Device | None, Device | None], list[str]] = {}
    for line in lines:
        groups.setdefault((line.reference_device, line.candidate_device), []).append(line.op_type)
    parts = []
    for (before, after), types in groups.items():
        counted = dict.fromkeys(types)
        kinds = ", ".join(
            f"{types.count(t)} {t}" if types.count(t) > 1 else f"{t}" for t in counted
        )
        noun = "op" if len(types) == 1 else "ops"
        parts.append(
            f"{len(types)} {noun} moved from {_device(before)} to {_device(after)} ({kinds})"
        )
    return parts


def _device(device: Device | None) -> str:
    return DEVICE_NAMES[device] if device is not None else "no device"


def _device_json(device: Device | None) -> str | None:
    return device.value if device is not None else None


def _plan_json(plan: ComputePlan) -> dict[str, object]:
    placed = compute_ops(plan)
    return {
        "model": plan.model,
        "compute_units": plan.compute_units,
        "artifact_sha256": plan.artifact_sha256,
        "provenance": plan.provenance,
        "compute_ops": len(placed),
        "neural_engine_ops": sum(op.on_neural_engine for op in placed),
        "neural_engine_cost": ane_coverage_by_cost(plan),
    }
