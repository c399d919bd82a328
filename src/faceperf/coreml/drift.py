"""Placement drift: where each op ran in the committed snapshot, against where it runs now.

A snapshot (``baselines/<machine>.computeplan.json``) holds, per model, the placement of every
compute op keyed by its identity (op type + first output name), so a reconversion that sends an
op off the Neural Engine is named, not just seen as a coverage dip::

    {"schema": "faceperf.computeplan-snapshot/1", "profile": "apple-m1-pro",
     "recorded_with": {"macos": "14.5", "coremltools": "9.0"},
     "models": {"star": {"artifact_sha256": "...", "compute_units": "CPU_AND_NE",
                         "op_count": 620, "placement": {"conv:x_1_cast_fp16": "neural_engine"}}}}

Placement depends on the chip and the OS, not on the runtime backend, so snapshots are kept per
machine class: the part of the hardware profile before the "/".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from faceperf.bench.gate.paths import baseline_path
from faceperf.coreml.analysis import compute_ops
from faceperf.coreml.compute_plan import ComputePlan, Device
from faceperf.coreml.errors import ComputePlanError, SnapshotMismatchError
from faceperf.fileio import atomic_write_json, read_json

SNAPSHOT_SCHEMA = "faceperf.computeplan-snapshot/1"
# Below this share of op identities in common, the snapshot is of another model version: a
# drift report op by op would only list the whole graph as added and removed.
MIN_SHARED_OPS = 0.5
_SNAPSHOT_KEYS = ("schema", "profile", "recorded_with", "models")
_MODEL_KEYS = ("artifact_sha256", "compute_units", "op_count", "placement")


@dataclass(frozen=True)
class ModelPlacement:
    """Where each compute op of one model ran when the snapshot was taken.

    Args:
        placement: op identity (``conv:x_1_cast_fp16``) -> preferred device.
        compute_units: the compute units of the plan.
        artifact_sha256: the .mlpackage it was planned from (informative: packages are not
            byte-reproducible, so a rebuild changes it without changing the model).
    """

    placement: Mapping[str, Device]
    compute_units: str
    artifact_sha256: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "placement", MappingProxyType(dict(self.placement)))

    @property
    def op_count(self) -> int:
        return len(self.placement)

    @property
    def ane_coverage(self) -> float | None:
        if not self.placement:
            return None
        return sum(d is Device.NEURAL_ENGINE for d in self.placement.values()) / len(self.placement)


@dataclass(frozen=True)
class PlanSnapshot:
    """The committed placements of every Core ML model on one machine class."""

    profile: str
    models: Mapping[str, ModelPlacement]
    recorded_with: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "recorded_with", MappingProxyType(dict(self.recorded_with)))

    def to_json(self) -> dict:
        return {
            "schema": SNAPSHOT_SCHEMA,
            "profile": self.profile,
            "recorded_with": dict(self.recorded_with),
            "models": {
                name: {
                    "artifact_sha256": entry.artifact_sha256,
                    "compute_units": entry.compute_units,
                    "op_count": entry.op_count,
                    "placement": {k: d.value for k, d in entry.placement.items()},
                }
                for name, entry in sorted(self.models.items())
            },
        }


@dataclass(frozen=True)
class MovedOp:
    """A compute op present in both plans whose preferred device changed."""

    identity: str
    before: Device
    after: Device

    @property
    def op_type(self) -> str:
        return self.identity.split(":", 1)[0]


@dataclass(frozen=True)
class PlacementDrift:
    """How one model's placement changed since its snapshot.

    Args:
        model: the model's name.
        moved: ops in both plans that changed device.
        added: ops only in the current plan, with their device.
        removed: op identities only in the snapshot.
        coverage_before: the snapshot's Neural Engine coverage by op count.
        coverage_after: the current plan's.
    """

    model: str
    moved: tuple[MovedOp, ...]
    added: tuple[tuple[str, Device], ...]
    removed: tuple[str, ...]
    coverage_before: float | None
    coverage_after: float | None

    @property
    def left_neural_engine(self) -> tuple[MovedOp, ...]:
        return tuple(m for m in self.moved if m.before is Device.NEURAL_ENGINE)

    @property
    def joined_neural_engine(self) -> tuple[MovedOp, ...]:
        return tuple(m for m in self.moved if m.after is Device.NEURAL_ENGINE)

    @property
    def added_off_neural_engine(self) -> tuple[tuple[str, Device], ...]:
        return tuple((k, d) for k, d in self.added if d is not Device.NEURAL_ENGINE)

    @property
    def regressed(self) -> bool:
        """True when work left the Neural Engine: an op moved off it, or a new op runs off it."""
        return bool(self.left_neural_engine or self.added_off_neural_engine)

    def describe(self) -> str:
        """Every change, one per line, the ones that regressed first."""
        lines = [
            f"{self.model}: Neural Engine coverage {_percent(self.coverage_before)} -> "
            f"{_percent(self.coverage_after)}"
        ]
        lines += [
            f"  left the Neural Engine: {m.identity} ({m.op_type}) now on {m.after.value}"
            for m in self.left_neural_engine
        ]
        lines += [
            f"  new op off the Neural Engine: {k} ({k.split(':', 1)[0]}) on {d.value}"
            for k, d in self.added_off_neural_engine
        ]
        lines += [
            f"  moved: {m.identity} ({m.op_type}) {m.before.value} -> {m.after.value}"
            for m in self.moved
            if m.before is not Device.NEURAL_ENGINE
        ]
        lines += [f"  new op: {k} on {d.value}" for k, d in self.added if d is Device.NEURAL_ENGINE]
        lines += [f"  removed op: {k}" for k in self.removed]
        return "\n".join(lines)


def placement_of(plan: ComputePlan) -> ModelPlacement:
    """The snapshot entry of a plan: each compute op's identity and preferred device."""
    placement: dict[str, Device] = {}
    for op in compute_ops(plan):
        key, n = op.identity, 2
        while key in placement:  # an op with no outputs, seen twice: keep both
            key, n = f"{op.identity}#{n}", n + 1
        placement[key] = op.preferred
    return ModelPlacement(placement, plan.compute_units, plan.artifact_sha256)


def compare_placement(
    snapshot: ModelPlacement, plan: ComputePlan, source: str = "snapshot"
) -> PlacementDrift:
    """The drift of ``plan`` from its snapshot.

    Args:
        snapshot: the committed placement of this model.
        plan: the current compute plan.
        source: the snapshot file, named in errors.

    Raises:
        SnapshotMismatchError: the two share too few ops to be the same model version, or were
            planned for different compute units.
    """
    current = placement_of(plan)
    if snapshot.compute_units != current.compute_units:
        raise SnapshotMismatchError(
            f"{source}: the {plan.model} snapshot was planned for {snapshot.compute_units}, the "
            f"current plan for {current.compute_units}; compare plans of the same compute units"
        )
    before, after = snapshot.placement, current.placement
    shared = before.keys() & after.keys()
    larger = max(len(before), len(after))
    if larger and len(shared) / larger < MIN_SHARED_OPS:
        raise SnapshotMismatchError(
            f"{source}: the {plan.model} snapshot ({len(before)} ops) and the current plan "
            f"({len(after)} ops) have only {len(shared)} ops in common: it is a snapshot of "
            "another model version; refresh it with `faceperf coreml snapshot`"
        )
    moved = tuple(
        MovedOp(key, before[key], after[key])
        for key in after
        if key in before and before[key] is not after[key]
    )
    return PlacementDrift(
        model=plan.model,
        moved=moved,
        added=tuple((key, device) for key, device in after.items() if key not in before),
        removed=tuple(key for key in before if key not in after),
        coverage_before=snapshot.ane_coverage,
        coverage_after=current.ane_coverage,
    )


def computeplan_snapshot_path(profile: str) -> Path:
    """``baselines/<machine class>.computeplan.json`` of a profile (``apple-m1-pro/coreml``)."""
    machine = profile.split("/", 1)[0]
    plain = baseline_path(machine)  # the same file-safe naming as the benchmark baselines
    return plain.with_name(plain.stem + ".computeplan.json")


def load_snapshot(path: str | os.PathLike[str]) -> PlanSnapshot:
    """Read and check a snapshot file.

    Raises:
        ComputePlanError: missing, not JSON, or a missing, unknown or invalid field (named).
    """
    path = Path(path)
    document = read_json(path, "compute-plan snapshot", ComputePlanError)
    return _snapshot_from_json(document, str(path))


def write_snapshot(path: str | os.PathLike[str], snapshot: PlanSnapshot) -> None:
    """Write a snapshot atomically: a crash leaves the previous file, never half of one."""
    atomic_write_json(Path(path), snapshot.to_json())


def update_snapshot(
    path: str | os.PathLike[str],
    profile: str,
    plans: Iterable[ComputePlan],
    recorded_with: Mapping[str, str],
) -> PlanSnapshot:
    """Replace the entries of ``plans`` in the snapshot at ``path`` (other models are kept).

    Args:
        path: the snapshot file (created when missing).
        profile: the machine class the plans were made on.
        plans: the current plans to record.
        recorded_with: OS and tool versions, for the reader.
    """
    path = Path(path)
    models: dict[str, ModelPlacement] = {}
    if path.exists():
        existing = load_snapshot(path)
        if existing.profile != profile:
            raise ComputePlanError(
                f"{path}: holds placements of {existing.profile!r}, not {profile!r}"
            )
        models.update(existing.models)
    models.update({plan.model: placement_of(plan) for plan in plans})
    snapshot = PlanSnapshot(profile, models, recorded_with)
    write_snapshot(path, snapshot)
    return snapshot


def _snapshot_from_json(document: object, source: str) -> PlanSnapshot:
    if not isinstance(document, dict):
        raise ComputePlanError(f"{source}: expected a JSON object")
    _check_keys(document, _SNAPSHOT_KEYS, source, "the document")
    if document.get("schema") != SNAPSHOT_SCHEMA:
        raise ComputePlanError(
            f"{source}: schema = {document.get('schema')!r}: expected {SNAPSHOT_SCHEMA!r}"
        )
    profile = document.get("profile")
    if not isinstance(profile, str) or not profile:
        raise ComputePlanError(f"{source}: profile = {profile!r}: expected a machine class name")
    recorded = document.get("recorded_with", {})
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise ComputePlanError(f"{source}: recorded_with: expected an object of version strings")
    models = document.get("models")
    if not isinstance(models, dict):
        raise ComputePlanError(f"{source}: models: expected an object keyed by model name")
    return PlanSnapshot(
        profile,
        {name: _model_from_json(entry, source, name) for name, entry in models.items()},
        recorded,
    )


def _model_from_json(entry: object, source: str, name: str) -> ModelPlacement:
    where = f"models.{name}"
    if not isinstance(entry, dict):
        raise ComputePlanError(f"{source}: {where}: expected an object")
    _check_keys(entry, _MODEL_KEYS, source, where)
    placement = entry.get("placement")
    if not isinstance(placement, dict):
        raise ComputePlanError(f"{source}: {where}.placement: expected an object op -> device")
    devices = {}
    for key, value in placement.items():
        try:
            devices[key] = Device(value)
        except ValueError:
            choices = ", ".join(d.value for d in Device)
            raise ComputePlanError(
                f"{source}: {where}.placement[{key!r}] = {value!r}: expected one of {choices}"
            ) from None
    count = entry.get("op_count")
    if count != len(devices) or isinstance(count, bool):
        raise ComputePlanError(
            f"{source}: {where}.op_count = {count!r}: expected {len(devices)}, the number of "
            "ops in its placement (edited by hand?)"
        )
    units = entry.get("compute_units")
    if not isinstance(units, str) or not units:
        raise ComputePlanError(f"{source}: {where}.compute_units = {units!r}: expected a name")
    sha = entry.get("artifact_sha256")
    if sha is not None and not isinstance(sha, str):
        raise ComputePlanError(f"{source}: {where}.artifact_sha256 = {sha!r}: expected a string")
    return ModelPlacement(devices, units, sha)


def _check_keys(doc: dict, allowed: tuple[str, ...], source: str, where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise ComputePlanError(
                f"{source}: {where}: unknown key {key!r}; expected one of {', '.join(allowed)}"
            )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
