"""What a localisation finds: the frozen records of compared tensors and operations
(``TensorSnr``, ``OperationSnr``, ``FailingOperation``, ``Localization``), the errors it raises,
the suite's SNR of two tensor values (``tensor_snr``) and how an SNR is written for people and
for JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from faceperf.accuracy import metrics
from faceperf.errors import FaceperfError

DOWNSTREAM = 3
INPUT_OP = "input"


class LocalizeError(FaceperfError):
    """The localisation cannot run: bad model, folder, variant, or graphs that do not match."""


class LocalizeBudgetError(LocalizeError):
    """The localisation ran out of its time budget."""


@dataclass(frozen=True)
class TensorSnr:
    """One candidate tensor compared with the reference tensor it was paired with."""

    name: str  # the candidate tensor, as its node computes it (before any Cast)
    reference: str  # the reference tensor it is compared with
    node: str  # the candidate node computing it; the tensor's name for a graph input
    op_type: str  # that node's op type; INPUT_OP for a graph input
    position: int  # the node's index in the candidate's topological order; -1 for inputs
    match: str  # "input", "name", "structure" or "slot"
    snr_db: float | None  # worst over the cases; None when the two cannot be compared
    note: str = ""  # why they cannot be compared, or how they were
    discrete: bool = False  # boolean or integer: reported, not judged (see the package doc)


# Operations that only move or reshape values repeat their input's SNR: they cannot lose
# precision themselves, so they would crowd the list of where precision is lost.
DATA_MOVEMENT = frozenset(
    {
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Slice",
        "Gather",
        "Identity",
        "Expand",
        "Split",
    }
)


@dataclass(frozen=True)
class OperationSnr:
    """One candidate operation: the worst SNR of its paired outputs (None: none is paired)."""

    node: str
    op_type: str
    position: int
    snr_db: float | None
    discrete: bool = False  # every paired output is boolean or integer


@dataclass(frozen=True)
class FailingOperation:
    """The earliest operation below the floor whose paired inputs are all at or above it."""

    node: str
    op_type: str
    snr_db: float
    tensor: str  # its output below the floor
    reference: str  # the reference tensor that output is compared with
    input_snr_db: Mapping[str, float]  # paired non-constant inputs -> SNR
    downstream: tuple[OperationSnr, ...]  # the next DOWNSTREAM operations fed by it


@dataclass(frozen=True)
class Localization:
    """Where ``variant`` of ``model`` starts to diverge from ``reference_variant``."""

    model: str
    variant: str
    reference_variant: str
    floor_db: float
    cases: int
    first_failing: FailingOperation | None = None
    inputs_note: str = ""  # how the inputs differ ("" when they do not)
    failing_outputs: tuple[str, ...] = ()  # the candidate's outputs below the floor
    tensors: tuple[TensorSnr, ...] = ()  # in the candidate's topological order
    matched_operations: int = 0
    reference_operations: int = 0

    @property
    def inputs_differ(self) -> bool:
        """The pre-processing, not the graph, is at fault: the inputs already differ."""
        return bool(self.inputs_note)

    def operations(self) -> tuple[OperationSnr, ...]:
        """Every candidate operation with a paired output, in topological order; its SNR is
        the worst of its float outputs (of its discrete ones when it has no float output)."""
        outputs: dict[tuple[int, str], list[TensorSnr]] = {}
        for tensor in self.tensors:
            if tensor.op_type != INPUT_OP:
                outputs.setdefault((tensor.position, tensor.node), []).append(tensor)
        found = []
        for (position, node), tensors in sorted(outputs.items()):
            judged = [t for t in tensors if not t.discrete] or tensors
            worst = None
            for tensor in judged:
                worst = _worse(worst, tensor.snr_db)
            discrete = judged[0].discrete
            found.append(OperationSnr(node, tensors[0].op_type, position, worst, discrete))
        return tuple(found)

    def lowest(self, count: int = 5) -> tuple[OperationSnr, ...]:
        """The ``count`` float operations with the lowest SNR: where the candidate costs
        accuracy (equal ones, at infinity, and masks or indices left out)."""
        ranked = [
            op
            for op in self.operations()
            if op.snr_db is not None
            and op.snr_db != math.inf
            and not op.discrete
            and op.op_type not in DATA_MOVEMENT
        ]
        return tuple(sorted(ranked, key=lambda op: (op.snr_db, op.position))[:count])

    def verdict(self) -> str:
        """One line: where it diverges, or that it does not."""
        head = f"{self.model} {self.variant}"
        if self.inputs_differ:
            return (
                f"{head}: the inputs already differ ({self.inputs_note}): the fault is in the "
                "pre-processing, not in the graph"
            )
        failing = self.first_failing
        if failing is None and not self.failing_outputs:
            return (
                f"{head}: every output holds {self.floor_db:g} dB on {self.cases} fixture "
                "case(s): the graph and its inputs agree with the reference"
            )
        if failing is None:
            return (
                f"{head}: {', '.join(self.failing_outputs)} below {self.floor_db:g} dB but no "
                "single operation starts it (every candidate has an input below the floor)"
            )
        inputs = ", ".join(format_snr(v) for v in failing.input_snr_db.values())
        return (
            f"{head}: first failing operation {failing.node} ({failing.op_type}) at "
            f"{format_snr(failing.snr_db)} < {self.floor_db:g} dB"
            + (f" (its inputs: {inputs})" if inputs else "")
        )

    def to_json(self) -> dict:
        """The JSON document of ``faceperf accuracy localize --json`` (see ``snr_json``)."""
        failing = self.first_failing
        return {
            "model": self.model,
            "variant": self.variant,
            "first_failing": None
            if failing is None
            else {
                "node": failing.node,
                "op_type": failing.op_type,
                "snr_db": snr_json(failing.snr_db),
                "input_snr_db": {k: snr_json(v) for k, v in failing.input_snr_db.items()},
            },
            "inputs_differ": self.inputs_differ,
            "tensors": [
                {
                    "name": t.name,
                    "node": t.node,
                    "op_type": t.op_type,
                    "snr_db": snr_json(t.snr_db),
                    "reference": t.reference,
                    "match": t.match,
                    "position": t.position,
                    "note": t.note,
                    "discrete": t.discrete,
                }
                for t in self.tensors
            ],
        }


def _worse(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def format_snr(value: float | None) -> str:
    """An SNR for people: "41.2 dB", "equal" (infinite), "-inf dB", "n/a" (not comparable)."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "equal" if value > 0 else "-inf dB"
    return f"{value:.1f} dB"


def snr_json(value: float | None) -> float | str | None:
    """JSON has no infinity: +inf (the tensors are equal) is the string "inf", -inf (the
    reference is zero, the candidate is not) is "-inf", None (not comparable) is null."""
    if value is None or not math.isinf(value):
        return value
    return "inf" if value > 0 else "-inf"


def tensor_snr(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The suite's SNR of two values of one tensor, compared as float32.

    Equal tensors (all-zero ones included) give +inf, never a failure. Non-finite values that
    the reference does not have at the same place give -inf; places where both hold the same
    non-finite value are left out.
    """
    ref = np.asarray(reference).astype(np.float32)
    cand = np.asarray(candidate).astype(np.float32)
    if ref.shape != cand.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
    finite = np.isfinite(ref) & np.isfinite(cand)
    if not finite.all():
        agree = (ref == cand) | (np.isnan(ref) & np.isnan(cand))
        if not (finite | agree).all():
            return -math.inf
        ref, cand = ref[finite], cand[finite]
    if ref.size == 0:
        return math.inf
    return metrics.snr_db(ref, cand)
