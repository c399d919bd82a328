"""Conformance of an artifact to its manifest and to its model's contract, checkable on Linux.

What a reconversion most often gets wrong without changing a single output value on the
developer's machine: a renamed tensor, a shape fixed to the wrong size, an "FP16" file that is
really FP32, a quantised or vendor-specific op that other runtimes refuse, a Core ML package that
is not an ML program. Each problem is one Finding naming the model, variant, check and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from faceperf.artifacts.layout import Variant, artifact_path
from faceperf.artifacts.manifest import Manifest, TensorInfo, VariantRecord, read_manifest
from faceperf.fileio import sha256_path
from faceperf.models.registry import ModelRegistry, ModelSpec, default_registry

# Share of floating-point weights that must be FP16 in a variant that claims FP16; the rest are
# the FP32 islands the export keeps on purpose (none of them hold weights of any size).
MIN_FP16_SHARE = 0.9
MIN_COREML_SPEC_VERSION = 7  # macOS 13 / iOS 16, the deployment target of the coreml variant
# Ops that mean integer quantisation: not what any variant of the contract is.
QUANTISATION_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "DynamicQuantizeMatMul",
    }
)


@dataclass(frozen=True)
class Finding:
    """One way an artifact breaks its contract."""

    model: str
    variant: str
    check: str  # "file", "tensors", "shape", "precision", "ops", "format"
    message: str

    def __str__(self) -> str:
        return f"{self.model}/{self.variant}: {self.check}: {self.message}"


def check_directory(directory: Path, registry: ModelRegistry | None = None) -> list[Finding]:
    """Every artifact the manifest lists, checked."""
    registry = registry or default_registry()
    manifest = read_manifest(directory)
    return [
        finding
        for model, record in manifest.models.items()
        for variant in record.variants
        for finding in check_artifact(directory, manifest, registry[model], variant)
    ]


def check_artifact(
    directory: Path, manifest: Manifest, spec: ModelSpec, variant: str
) -> list[Finding]:
    """The findings for ``<directory>/<model>/<variant>`` (empty when it conforms)."""
    record = manifest.record(spec.name, variant)
    path = artifact_path(directory, spec.name, variant)
    if not path.exists():
        return [Finding(spec.name, variant, "file", f"{path} is listed but missing")]
    findings = []
    if sha256_path(path) != record.sha256:
        findings.append(
            Finding(spec.name, variant, "file", f"{path.name} differs from its manifest sha256")
        )
    findings += _contract_findings(spec, variant, record)
    if record.format == "onnx":
        findings += _onnx_findings(spec, variant, record, path)
    else:
        findings += _coreml_findings(spec, variant, record, path)
    return findings


def expected_input(spec: ModelSpec, variant: str) -> tuple[int | None, ...]:
    """The input shape a variant must have, None where the axis must be dynamic."""
    dynamic = spec.baseline_dynamic if variant == Variant.BASELINE else spec.fixed_dynamic
    return tuple(None if axis in dynamic else size for axis, size in enumerate(spec.fixed_shape))


def _contract_findings(spec: ModelSpec, variant: str, record: VariantRecord) -> list[Finding]:
    found = []
    names = [t.name for t in record.inputs]
    if names != [spec.input_name]:
        found.append(
            Finding(
                spec.name, variant, "tensors", f"inputs {names}, expected [{spec.input_name!r}]"
            )
        )
    outputs = [t.name for t in record.outputs]
    if outputs != list(spec.output_names):
        found.append(
            Finding(
                spec.name,
                variant,
                "tensors",
                f"outputs {outputs}, expected {list(spec.output_names)}",
            )
        )
    if record.inputs and record.inputs[0].dims() != expected_input(spec, variant):
        found.append(
            Finding(
                spec.name,
                variant,
                "shape",
                f"input shape {_text(record.inputs[0].dims())}, expected "
                f"{_text(expected_input(spec, variant))} (None = dynamic)",
            )
        )
    return found


def _onnx_findings(
    spec: ModelSpec, variant: str, record: VariantRecord, path: Path
) -> list[Finding]:
    from faceperf.artifacts.onnx_export import describe_onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises several types for a damaged file
        return [Finding(spec.name, variant, "format", f"not a valid ONNX model: {err}")]
    found = []
    inputs, outputs = describe_onnx(path)
    for role, declared, actual in (
        ("inputs", record.inputs, inputs),
        ("outputs", record.outputs, outputs),
    ):
        if [t.contract() for t in declared] != [t.contract() for t in actual]:
            found.append(
                Finding(
                    spec.name,
                    variant,
                    "tensors",
                    f"graph {role} {_tensors(actual)} differ from the manifest's "
                    f"{_tensors(declared)}",
                )
            )
    share = fp16_weight_share(model)
    found += _fp16_claim(spec, variant, record, share, "weights")
    if record.precision == "float32" and share > 0:
        found.append(
            Finding(
                spec.name,
                variant,
                "precision",
                f"claims float32 but {share:.0%} of its weights are FP16",
            )
        )
    foreign = sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain})
    if foreign:
        found.append(
            Finding(
                spec.name,
                variant,
                "ops",
                f"non-standard ops other runtimes refuse: {', '.join(foreign)}",
            )
        )
    quantised = sorted({n.op_type for n in model.graph.node if n.op_type in QUANTISATION_OPS})
    if quantised:
        found.append(
            Finding(
                spec.name,
                variant,
                "ops",
                f"integer quantisation ops in a {record.precision} variant: {', '.join(quantised)}",
            )
        )
    return found


def _fp16_claim(
    spec: ModelSpec, variant: str, record: VariantRecord, share: float, what: str
) -> list[Finding]:
    """A finding when the record claims float16 but too little of ``what`` is FP16."""
    if record.precision == "float16" and share < MIN_FP16_SHARE:
        message = f"claims float16 but only {share:.0%} of its {what} are FP16"
        return [Finding(spec.name, variant, "precision", message)]
    return []


def fp16_weight_share(model: onnx.ModelProto) -> float:
    """Share of floating-point initializer elements stored as FP16 (0 when there are none)."""
    sizes = {onnx.TensorProto.FLOAT16: 0, onnx.TensorProto.FLOAT: 0, onnx.TensorProto.DOUBLE: 0}
    for tensor in model.graph.initializer:
        if tensor.data_type in sizes:
            sizes[tensor.data_type] += int(np.prod(tensor.dims, dtype=np.int64))
    total = sum(sizes.values())
    return sizes[onnx.TensorProto.FLOAT16] / total if total else 0.0


def _coreml_findings(
    spec: ModelSpec, variant: str, record: VariantRecord, path: Path
) -> list[Finding]:
    from faceperf.artifacts.coreml_export import load_coreml_spec

    try:
        package = load_coreml_spec(path)
    except Exception as err:  # coremltools raises many types for a broken package
        return [Finding(spec.name, variant, "format", f"not a readable mlpackage: {err}")]
    kind = package.WhichOneof("Type")
    if kind != "mlProgram":
        return [Finding(spec.name, variant, "format", f"a {kind} model, expected an mlProgram")]
    found = []
    if package.specificationVersion < MIN_COREML_SPEC_VERSION:
        found.append(
            Finding(
                spec.name,
                variant,
                "format",
                f"specification version {package.specificationVersion}, expected "
                f">= {MIN_COREML_SPEC_VERSION} (macOS 13)",
            )
        )
    found += _fp16_claim(spec, variant, record, coreml_fp16_const_share(package), "float constants")
    return found


def coreml_fp16_const_share(package: object) -> float:
    """Share of floating-point const values of the main function stored as FP16."""
    from coremltools.proto import MIL_pb2

    fp16, floats = 0, 0
    for function in package.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type != "const":
                    continue
                for output in op.outputs:
                    dtype = output.type.tensorType.dataType
                    if dtype in (MIL_pb2.FLOAT16, MIL_pb2.FLOAT32, MIL_pb2.FLOAT64):
                        floats += 1
                        fp16 += dtype == MIL_pb2.FLOAT16
    return fp16 / floats if floats else 0.0


def _text(dims: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _tensors(tensors: tuple[TensorInfo, ...]) -> str:
    return ", ".join(f"{t.name} {_text(t.dims())} {t.dtype}" for t in tensors)
