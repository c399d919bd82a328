"""A Core ML compute plan as plain data: per op, the device Core ML prefers, the devices that
could run it, and its estimated share of the work.

The structure mirrors what coremltools' ``MLComputePlan`` reports (macOS 14.4+): operations in
program order, each with ``preferred_compute_device``, ``supported_compute_devices`` and
``MLComputePlanCost.weight``. It is built on a Mac by ``plan_macos`` or read from JSON, so the
analysis, the gates and their tests run anywhere.

JSON layout (``schema`` is checked)::

    {"schema": "faceperf.computeplan/1", "model": "star", "compute_units": "CPU_AND_NE",
     "artifact_sha256": "..." | null, "provenance": "MLComputePlan on macOS 14.5 ...",
     "ops": [{"path": "main/3", "type": "ios16.conv", "outputs": ["x_1_cast_fp16"],
              "preferred": "neural_engine", "supported": ["cpu", "neural_engine"],
              "cost": 0.0123}, ...]}

Const ops have no device (``preferred`` null): Core ML folds them into the ops that use them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from faceperf.coreml.errors import ComputePlanError
from faceperf.fileio import atomic_write_json, read_json

SCHEMA = "faceperf.computeplan/1"
_OPSET_PREFIX = re.compile(r"^ios\d+\.")
_OP_KEYS = ("path", "type", "outputs", "preferred", "supported", "cost")
_PLAN_KEYS = ("schema", "model", "compute_units", "artifact_sha256", "provenance", "ops")


class Device(StrEnum):
    """A compute device of Apple Silicon as MLComputePlan names its classes."""

    CPU = "cpu"  # MLCPUComputeDevice
    GPU = "gpu"  # MLGPUComputeDevice
    NEURAL_ENGINE = "neural_engine"  # MLNeuralEngineComputeDevice


@dataclass(frozen=True)
class PlanOp:
    """One operation of the program, in program order.

    Args:
        path: where it sits: ``<function>/<op index>``, then ``/<block index>/<op index>`` per
            level of nesting (ops inside a ``cond`` or ``while_loop`` follow their parent).
        op_type: the operator name as the compiled model reports it, e.g. ``ios17.conv``.
        outputs: the names of its outputs.
        preferred: the device Core ML prefers to run it on; None when Core ML reports no device
            (const ops, which are folded into their consumers).
        supported: every device that could run it.
        cost: the estimated share of the model's work (``MLComputePlanCost.weight``, 0..1), or
            None when Core ML gives no estimate.
    """

    path: str
    op_type: str
    outputs: tuple[str, ...]
    preferred: Device | None = None
    supported: tuple[Device, ...] = ()
    cost: float | None = None

    @property
    def base_type(self) -> str:
        """The operator without its opset prefix: ``ios17.conv`` -> ``conv``."""
        return _OPSET_PREFIX.sub("", self.op_type)

    @property
    def identity(self) -> str:
        """A key that survives reconversion of the same graph: ``conv:x_1_cast_fp16``.

        The opset prefix is left out: a new deployment target renames ``ios16.conv`` to
        ``ios17.conv`` without making it another op.
        """
        return (
            f"{self.base_type}:{self.outputs[0]}"
            if self.outputs
            else f"{self.base_type}@{self.path}"
        )

    @property
    def computes(self) -> bool:
        """True for ops Core ML places on a device (everything but folded consts)."""
        return self.preferred is not None

    @property
    def on_neural_engine(self) -> bool:
        return self.preferred is Device.NEURAL_ENGINE


@dataclass(frozen=True)
class ComputePlan:
    """The compute plan of one Core ML model.

    Args:
        model: the model's name (``star``, ``mtl``, …).
        compute_units: the units the plan was made for, e.g. ``CPU_AND_NE``.
        ops: every operation in program order, const ops included.
        artifact_sha256: the sha256 of the .mlpackage the plan was made from, when known.
        provenance: where the plan came from: a device and OS, or "hand-written …".
    """

    model: str
    compute_units: str
    ops: tuple[PlanOp, ...]
    artifact_sha256: str | None = None
    provenance: str = ""

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "compute_units": self.compute_units,
            "artifact_sha256": self.artifact_sha256,
            "provenance": self.provenance,
            "ops": [_op_json(op) for op in self.ops],
        }

    @classmethod
    def from_json(cls, document: object, source: str) -> ComputePlan:
        """Check and read a plan document.

        Args:
            document: the parsed JSON.
            source: the file it came from, named in errors.

        Raises:
            ComputePlanError: a missing, unknown or invalid field, named with its place.
        """
        doc = _mapping(document, source, "the document")
        _check_keys(doc, _PLAN_KEYS, source, "the document")
        if doc.get("schema") != SCHEMA:
            raise ComputePlanError(
                f"{source}: schema = {doc.get('schema')!r}: expected {SCHEMA!r} "
                "(a faceperf compute plan)"
            )
        ops = doc.get("ops")
        if not isinstance(ops, list):
            raise ComputePlanError(f"{source}: ops: expected a list of operations")
        return cls(
            model=_text(doc, "model", source, "the document"),
            compute_units=_text(doc, "compute_units", source, "the document"),
            ops=tuple(_op_from_json(op, source, f"ops[{i}]") for i, op in enumerate(ops)),
            artifact_sha256=_optional_text(doc, "artifact_sha256", source),
            provenance=_optional_text(doc, "provenance", source) or "",
        )


def load_plan(path: str | os.PathLike[str]) -> ComputePlan:
    """Read a plan JSON file.

    Raises:
        ComputePlanError: missing, not JSON, or not a valid plan (the message names the field).
    """
    path = Path(path)
    document = read_json(path, "compute plan file", ComputePlanError)
    return ComputePlan.from_json(document, str(path))


def write_plan(path: str | os.PathLike[str], plan: ComputePlan) -> None:
    """Write a plan as JSON, atomically."""
    atomic_write_json(Path(path), plan.to_json())


def _op_json(op: PlanOp) -> dict:
    return {
        "path": op.path,
        "type": op.op_type,
        "outputs": list(op.outputs),
        "preferred": op.preferred.value if op.preferred else None,
        "supported": [d.value for d in op.supported],
        "cost": op.cost,
    }


def _op_from_json(document: object, source: str, where: str) -> PlanOp:
    doc = _mapping(document, source, where)
    _check_keys(doc, _OP_KEYS, source, where)
    outputs = doc.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) and o for o in outputs):
        raise ComputePlanError(
            f"{source}: {where}.outputs = {outputs!r}: expected a list of output names"
        )
    supported = doc.get("supported", [])
    if not isinstance(supported, list):
        raise ComputePlanError(f"{source}: {where}.supported = {supported!r}: expected a list")
    preferred = doc.get("preferred")
    return PlanOp(
        path=_text(doc, "path", source, where),
        op_type=_text(doc, "type", source, where),
        outputs=tuple(outputs),
        preferred=None if preferred is None else _device(preferred, source, f"{where}.preferred"),
        supported=tuple(
            _device(d, source, f"{where}.supported[{i}]") for i, d in enumerate(supported)
        ),
        cost=_cost(doc.get("cost"), source, f"{where}.cost"),
    )


def _device(value: object, source: str, where: str) -> Device:
    try:
        return Device(value)
    except ValueError:
        choices = ", ".join(d.value for d in Device)
        raise ComputePlanError(
            f"{source}: {where} = {value!r}: expected one of {choices}"
        ) from None


def _cost(value: object, source: str, where: str) -> float | None:
    if value is None:
        return None
    # JSON booleans are ints in Python; `cost: true` is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ComputePlanError(f"{source}: {where} = {value!r}: expected a number or null")
    if value < 0:
        raise ComputePlanError(f"{source}: {where} = {value!r}: expected a share >= 0")
    return float(value)


def _mapping(value: object, source: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise ComputePlanError(
            f"{source}: {where}: expected a JSON object, got {type(value).__name__}"
        )
    return value


def _check_keys(doc: dict, allowed: tuple[str, ...], source: str, where: str) -> None:
    for key in doc:
        if key not in allowed:
            raise ComputePlanError(
                f"{source}: {where}: unknown key {key!r}; expected one of {', '.join(allowed)}"
            )


def _text(doc: dict, key: str, source: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ComputePlanError(f"{source}: {where}: {key} = {value!r}: expected a non-empty string")
    return value


def _optional_text(doc: dict, key: str, source: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ComputePlanError(f"{source}: {key} = {value!r}: expected a string or null")
    return value
