"""Reading a real compute plan from Core ML (macOS 14.4+), into the plain ``ComputePlan``.

The one module that calls coremltools' ``MLComputePlan``; kept thin so that everything else
about plans runs, and is tested, on any OS.
"""

from __future__ import annotations

import logging
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path

from faceperf.coreml.compute_plan import ComputePlan, Device, PlanOp
from faceperf.coreml.errors import ComputePlanError
from faceperf.errors import ArtifactError, BackendUnavailableError
from faceperf.fileio import sha256_path

MIN_MACOS = (14, 4)  # MLComputePlan's availability (Apple's docs: macOS 14.4, iOS 17.4)
COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
DEFAULT_COMPUTE_UNITS = "CPU_AND_NE"  # the units the coreml variant is converted for


def compute_plan_unavailable_reason(
    system: str | None = None, mac_version: str | None = None
) -> str | None:
    """Why compute plans cannot be read here, or None when they can.

    Args:
        system: ``platform.system()`` (injected in tests).
        mac_version: ``platform.mac_ver()[0]``, e.g. ``"14.4.1"`` (injected in tests).
    """
    system = platform.system() if system is None else system
    needs = "Core ML compute plans need macOS 14.4+ (MLComputePlan)"
    if system != "Darwin":
        return f"{needs}; this is {system}"
    version = platform.mac_ver()[0] if mac_version is None else mac_version
    if _release(version) < MIN_MACOS:
        return f"{needs}; this is macOS {version or 'of unknown version'}"
    return None


def neural_engine_unavailable_reason() -> str | None:
    """Why placement cannot be gated here, or None when Core ML sees a Neural Engine.

    A macOS virtual machine (hosted CI runners) or an Intel Mac makes compute plans, but with
    every op on the CPU: gating them would fail every floor for a reason unrelated to the model.
    """
    reason = compute_plan_unavailable_reason()
    if reason:
        return reason
    try:
        _coremltools()
    except BackendUnavailableError as err:
        return str(err)
    from coremltools.models.compute_device import MLComputeDevice, MLNeuralEngineComputeDevice

    devices = MLComputeDevice.get_all_compute_devices()
    if not any(isinstance(device, MLNeuralEngineComputeDevice) for device in devices):
        found = ", ".join(type(device).__name__ for device in devices) or "none"
        return (
            f"Core ML sees no Neural Engine on this Mac (devices: {found}); a virtual machine "
            "or an Intel Mac cannot be gated on Neural Engine placement"
        )
    return None


def load_compute_plan(
    path: Path, model: str | None = None, compute_units: str = DEFAULT_COMPUTE_UNITS
) -> ComputePlan:
    """The compute plan Core ML makes for an .mlpackage on this Mac.

    Args:
        path: the .mlpackage (compiled to a temporary .mlmodelc first, as MLComputePlan wants).
        model: the model's name (default: the folder holding ``coreml.mlpackage``).
        compute_units: one of COMPUTE_UNITS.

    Raises:
        BackendUnavailableError: not macOS 14.4+, or coremltools lacks its Core ML bindings.
        ArtifactError: missing, or Core ML cannot compile or plan it, or not an ML program.
    """
    reason = compute_plan_unavailable_reason()
    if reason:
        raise BackendUnavailableError(reason)
    if compute_units not in COMPUTE_UNITS:
        raise ComputePlanError(
            f"compute units {compute_units!r}: expected one of {', '.join(COMPUTE_UNITS)}"
        )
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: not found")
    ct = _coremltools()
    from coremltools.models.compute_plan import MLComputePlan

    with tempfile.TemporaryDirectory(prefix="faceperf-plan-") as tmp:
        try:
            compiled = ct.utils.compile_model(str(path), str(Path(tmp) / "model.mlmodelc"))
            plan = MLComputePlan.load_from_path(
                compiled, compute_units=getattr(ct.ComputeUnit, compute_units)
            )
            program = plan.model_structure.program
        except Exception as err:  # Core ML raises many types for a package it cannot use
            raise ArtifactError(f"{path}: Core ML cannot plan it ({_first_line(err)})") from None
        if program is None or "main" not in program.functions:
            raise ArtifactError(f"{path}: not an ML program with a main function")
        # Read everything before the compiled model is deleted.
        ops = tuple(_walk(plan, program.functions["main"].block, "main"))
    return ComputePlan(
        model=model or _model_name(path),
        compute_units=compute_units,
        ops=ops,
        artifact_sha256=sha256_path(path),
        provenance=(
            f"MLComputePlan on macOS {platform.mac_ver()[0]} ({platform.machine()}), "
            f"coremltools {ct.__version__}"
        ),
    )


def _walk(plan, block, prefix: str) -> Iterator[PlanOp]:
    for index, operation in enumerate(block.operations):
        path = f"{prefix}/{index}"
        usage = plan.get_compute_device_usage_for_mlprogram_operation(operation)
        cost = plan.get_estimated_cost_for_mlprogram_operation(operation)
        yield PlanOp(
            path=path,
            op_type=operation.operator_name,
            outputs=tuple(output.name for output in operation.outputs),
            preferred=_device(usage.preferred_compute_device) if usage else None,
            supported=tuple(_device(d) for d in usage.supported_compute_devices) if usage else (),
            cost=float(cost.weight) if cost is not None else None,
        )
        # Nested blocks (cond, while_loop) run where their parent runs them: after it in order.
        for number, nested in enumerate(operation.blocks):
            yield from _walk(plan, nested, f"{path}/{number}")


def _device(device: object) -> Device:
    from coremltools.models.compute_device import (
        MLCPUComputeDevice,
        MLGPUComputeDevice,
        MLNeuralEngineComputeDevice,
    )

    for kind, name in (
        (MLNeuralEngineComputeDevice, Device.NEURAL_ENGINE),
        (MLGPUComputeDevice, Device.GPU),
        (MLCPUComputeDevice, Device.CPU),
    ):
        if isinstance(device, kind):
            return name
    raise ComputePlanError(f"unknown compute device {type(device).__name__} in the compute plan")


def _coremltools():
    # Without its native bindings coremltools still imports (and logs a warning), then fails
    # later with an obscure message; say why up front instead.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    try:
        from coremltools import libcoremlpython  # noqa: F401
    except ImportError as err:
        raise BackendUnavailableError(
            f"coremltools {ct.__version__} has no Core ML bindings on this Mac ({err})"
        ) from None
    return ct


def _model_name(path: Path) -> str:
    # The artifact layout is <dir>/<model>/coreml.mlpackage.
    return path.parent.name if path.stem == "coreml" else path.stem


def _release(version: str) -> tuple[int, int]:
    numbers = []
    for part in version.split(".")[:2]:
        if not part.isdigit():
            return (0, 0)
        numbers.append(int(part))
    padded = [*numbers, 0, 0]
    return (padded[0], padded[1])


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
