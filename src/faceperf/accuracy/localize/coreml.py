"""Where the ``coreml`` variant diverges, through coremltools' ``MLModelComparator`` (macOS only).

The comparator pairs the operations of two ML programs made from one source by their output
names, walking back from the failing outputs and reporting operations that fail while their
inputs pass. Tensor names do not survive the Torch → Core ML conversion, so the ONNX baseline
cannot be its reference: the reference is the same program run on the CPU alone (or the
``coreml`` variant of another artifact folder), the target the candidate's program on the
compute units under test (by default CPU_AND_NE, what the variant is converted for). It thus
localises what the Neural Engine (or GPU) changes; the FP16 conversion itself is localised on the
``optimized_fp16`` ONNX variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceperf.accuracy.localize.inputs import (
    DEFAULT_CASES,
    check_model,
    fit_input,
    listed_artifact,
    model_inputs,
    snr_floor,
)
from faceperf.accuracy.localize.result import (
    DOWNSTREAM,
    INPUT_OP,
    FailingOperation,
    Localization,
    LocalizeError,
    OperationSnr,
    TensorSnr,
    format_snr,
    tensor_snr,
)
from faceperf.artifacts.layout import Variant
from faceperf.errors import BackendUnavailableError
from faceperf.runtime.backends import COMPUTE_UNITS

COREML_VARIANT = Variant.COREML
TARGET_UNITS = "CPU_AND_NE"
REFERENCE_UNITS = "CPU_ONLY"


def coreml_localization_unavailable() -> str | None:
    """Why Core ML localisation cannot run here, or None."""
    if platform.system() != "Darwin":
        return (
            f"Core ML localisation needs macOS (this is {platform.system()}: coremltools "
            "cannot predict here)"
        )
    return None


@dataclass(frozen=True)
class ProgramOp:
    """One operation of an ML program's main function."""

    name: str
    op_type: str
    position: int
    inputs: tuple[str, ...]  # the names it reads (constants included)
    outputs: tuple[str, ...]


def program_ops(spec: object) -> tuple[ProgramOp, ...]:
    """The operations of an mlprogram spec's main function, in program order."""
    function = spec.mlProgram.functions["main"]
    block = function.block_specializations[function.opset]
    return tuple(_program_op(op, position) for position, op in enumerate(block.operations))


def _program_op(op: object, position: int) -> ProgramOp:
    reads = tuple(
        binding.name
        for argument in op.inputs.values()
        for binding in argument.arguments
        if binding.WhichOneof("binding") == "name"
    )
    outputs = tuple(output.name for output in op.outputs)
    name = outputs[0] if outputs else f"op{position}"
    if "name" in op.attributes:
        names = op.attributes["name"].immediateValue.tensor.strings.values
        name = names[0] if names else name
    return ProgramOp(name, op.type, position, reads, outputs)


def coreml_result(
    model: str,
    ops: Sequence[ProgramOp],
    program_outputs: Sequence[str],
    failing: Sequence[str],
    recorded: Mapping[str, float],
    floor_db: float,
    *,
    reference_variant: str,
    cases: int,
) -> Localization:
    """The Localization of a comparator run.

    Args:
        ops: the program's operations.
        program_outputs: the names of the program's outputs.
        failing: first output names of the operations the comparator found failing (any case).
        recorded: first output name of every compared operation -> its worst SNR.
        floor_db: the floor the comparison used.
    """
    by_output = {name: op for op in ops for name in op.outputs}
    tensors = sorted(
        (
            TensorSnr(name, name, op.name, op.op_type, op.position, "name", snr)
            for name, snr in recorded.items()
            if (op := by_output.get(name)) is not None
        ),
        key=lambda tensor: tensor.position,
    )
    sources = sorted((by_output[n] for n in failing if n in by_output), key=_position)
    first = None
    if sources:
        op = sources[0]
        first = FailingOperation(
            node=op.name,
            op_type=op.op_type,
            snr_db=recorded.get(op.outputs[0], -math.inf),
            tensor=op.outputs[0],
            reference=op.outputs[0],
            input_snr_db={n: recorded[n] for n in op.inputs if n in recorded},
            downstream=_downstream(ops, op, recorded),
        )
    failing_outputs = tuple(n for n in program_outputs if recorded.get(n, math.inf) < floor_db)
    return Localization(
        model,
        COREML_VARIANT,
        reference_variant,
        floor_db,
        cases,
        first_failing=first,
        failing_outputs=failing_outputs,
        tensors=tuple(tensors),
        matched_operations=len(tensors),
        reference_operations=sum(op.op_type != "const" for op in ops),
    )


def _position(op: ProgramOp) -> int:
    return op.position


def _downstream(
    ops: Sequence[ProgramOp], source: ProgramOp, recorded: Mapping[str, float]
) -> tuple[OperationSnr, ...]:
    produced = set(source.outputs)
    found = []
    for op in ops[source.position + 1 :]:
        if produced.intersection(op.inputs):
            produced.update(op.outputs)
            found.append(op)
    return tuple(
        OperationSnr(op.name, op.op_type, op.position, recorded.get(op.outputs[0]))
        for op in found[:DOWNSTREAM]
    )


def _check_units(units: str) -> None:
    if units not in COMPUTE_UNITS:
        raise LocalizeError(
            f"unknown compute units {units!r}; expected one of {', '.join(COMPUTE_UNITS)}"
        )


def localize_coreml(
    candidate: Path,
    model: str,
    *,
    reference: Path | None = None,
    compute_units: str = TARGET_UNITS,
    reference_units: str = REFERENCE_UNITS,
    floor_db: float | None = None,
    candidate_context: Callable[[], AbstractContextManager[object]] | None = None,
    cases: int = DEFAULT_CASES,
) -> Localization:
    """Where the candidate's ``coreml`` program on ``compute_units`` diverges from the
    reference's (default: the same package) on ``reference_units``.

    Raises:
        BackendUnavailableError: off macOS.
        LocalizeError: unknown model, missing folder or package.
    """
    reason = coreml_localization_unavailable()
    if reason:
        raise BackendUnavailableError(reason)
    check_model(model)
    _check_units(compute_units)
    _check_units(reference_units)
    candidate_path = listed_artifact(Path(candidate), model, COREML_VARIANT)
    reference_path = listed_artifact(Path(reference or candidate), model, COREML_VARIANT)
    floor = snr_floor(model, COREML_VARIANT) if floor_db is None else floor_db
    reference_arrays = model_inputs(model, cases)
    context = candidate_context() if candidate_context else contextlib.nullcontext()
    with context:
        candidate_arrays = model_inputs(model, cases)
    label = f"{COREML_VARIANT} on {reference_units}"
    differing = _differing_inputs(reference_arrays, candidate_arrays, floor)
    if differing is not None:
        return _inputs_differ(model, label, floor, len(reference_arrays), differing)
    return _compare_programs(
        model,
        reference_path,
        candidate_path,
        candidate_arrays,
        floor,
        units=(reference_units, compute_units),
        label=label,
    )


def _differing_inputs(
    reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], floor_db: float
) -> float | None:
    """The worst input SNR when it is below the floor: the comparator feeds one input to both
    programs, so a pre-processing fault must be caught before it."""
    worst = min(tensor_snr(r, c) for r, c in zip(reference, candidate, strict=True))
    return worst if worst < floor_db else None


def _inputs_differ(model: str, label: str, floor: float, cases: int, snr: float) -> Localization:
    return Localization(
        model,
        COREML_VARIANT,
        label,
        floor,
        cases,
        inputs_note=f"model input at {format_snr(snr)}",
        tensors=(TensorSnr("input", "input", "input", INPUT_OP, -1, "input", snr),),
    )


def _compare_programs(
    model: str,
    reference_path: Path,
    candidate_path: Path,
    arrays: Sequence[np.ndarray],
    floor: float,
    *,
    units: tuple[str, str],
    label: str,
) -> Localization:
    import coremltools as ct
    from coremltools.models.ml_program.experimental.debugging_utils import MLModelComparator

    from faceperf.artifacts.coreml_export import describe_coreml

    try:
        reference_model = ct.models.MLModel(
            str(reference_path), compute_units=getattr(ct.ComputeUnit, units[0])
        )
        target_model = ct.models.MLModel(
            str(candidate_path), compute_units=getattr(ct.ComputeUnit, units[1])
        )
    except Exception as err:  # coremltools raises many types for a broken package
        raise LocalizeError(f"Core ML cannot load the packages: {err}") from None
    declared = describe_coreml(candidate_path)[0][0]
    dims = [d if isinstance(d, int) else None for d in declared.shape]
    comparator = MLModelComparator(reference_model, target_model)
    recorded: dict[str, float] = {}
    failing: list[str] = []

    def compare(op, reference_value: np.ndarray, target_value: np.ndarray) -> bool:
        if np.shape(reference_value) != np.shape(target_value):
            return True  # not comparable, so not blamed
        snr = tensor_snr(reference_value, target_value)
        name = op.outputs[0].name
        recorded[name] = min(recorded.get(name, math.inf), snr)
        return snr >= floor

    for array in arrays:
        feeds = {declared.name: fit_input(array, dims, np.dtype(declared.dtype))}
        # The comparator draws a progress bar on stderr; a library prints nothing.
        with contextlib.redirect_stderr(io.StringIO()):
            found = asyncio.run(comparator.find_failing_ops(inputs=feeds, compare_outputs=compare))
        failing.extend(op.outputs[0].name for op in found if op.outputs[0].name not in failing)
    spec = reference_model.get_spec()
    return coreml_result(
        model,
        program_ops(spec),
        [output.name for output in spec.description.output],
        failing,
        recorded,
        floor,
        reference_variant=label,
        cases=len(arrays),
    )
