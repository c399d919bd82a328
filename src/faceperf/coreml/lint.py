"""A static lint of an ML program spec: what can be said about Neural Engine use without a Mac.

Reads the .mlpackage's protobuf (coremltools' spec loader, no Core ML framework needed) and
reports op count and histogram, FP16 share, flexible input shapes, FP32 islands in an FP16
program, and the ops it expects to fall back off the Neural Engine.

The fallback expectations are heuristics, each from a documented rule (``RULES``); only the
compute plan on a Mac (``faceperf coreml plan``) says where ops really run. Apple publishes no
list of operators the Neural Engine lacks, so no operator is listed by name alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from faceperf.errors import ArtifactError

_FLOAT_DTYPES = ("FLOAT16", "FLOAT32", "FLOAT64", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E5M2")
_NON_FLOAT_DTYPES = ("BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32")


@dataclass(frozen=True)
class FallbackRule:
    """A documented reason to expect ops to run off the Neural Engine.

    Args:
        name: short id shown in reports.
        expectation: what is expected, worded as the heuristic it is.
        source: where the rule is documented.
    """

    name: str
    expectation: str
    source: str


FP32_COMPUTE = FallbackRule(
    "fp32-compute",
    "expected to fall back to the CPU or GPU: the op computes in float32, and the Neural Engine "
    "runs float16-typed ops",
    "coremltools guide 'Typed Execution Workflow Example': a float 32 typed model 'will execute "
    "on a combination of the GPU and CPU', a float 16 one is eligible for the Neural Engine",
)
RANGE_SHAPE = FallbackRule(
    "range-shape",
    "expected to fall back to the CPU or GPU for every shape but the input's default: Core ML "
    "runs range-flexible models on the Neural Engine only at the default shape",
    "Apple engineer's answer, developer.apple.com/forums/thread/724930 ('we currently only "
    "support running on the Neural Engine for the input's default shape'); coremltools guide "
    "'Flexible Input Shapes' recommends EnumeratedShapes, each of which can use the Neural Engine",
)
RULES = (FP32_COMPUTE, RANGE_SHAPE)


@dataclass(frozen=True)
class FlexibleInput:
    """An input whose shape is not fixed.

    Args:
        name: the input's name.
        kind: ``range`` (a bounded or unbounded range per axis) or ``enumerated``.
        shapes: the allowed shapes, e.g. ``(1, 3, 12..1080, 12..1920)``.
        default: the default shape, the one Core ML specialises for.
    """

    name: str
    kind: str
    shapes: str
    default: str


@dataclass(frozen=True)
class ExpectedFallback:
    """Something the lint expects to run off the Neural Engine, and the rule why.

    Args:
        subject: an op identity (``softmax:var_12``) or ``input <name>`` for a whole-model rule.
        op_type: the op's type, or None for a whole-model rule.
        rule: the documented rule.
    """

    subject: str
    op_type: str | None
    rule: FallbackRule


@dataclass(frozen=True)
class LintReport:
    """What the spec of one ML program says.

    Args:
        source: the package linted.
        op_count: compute ops (everything but ``const`` and load-time ``constexpr_*`` ops).
        const_count: const and constexpr ops.
        op_types: compute ops per type, most frequent first.
        precision: ``float16``, ``float32`` or ``mixed``: the types compute ops produce
            (``none`` when no op produces a float tensor).
        fp16_weight_share: share of float constant elements stored as FP16 (None: no float
            constants).
        fp16_op_share: share of float-producing compute ops that produce only FP16 (None: none).
        flexible_inputs: inputs whose shape is not fixed.
        fp32_islands: groups of connected ops computing in FP32 inside a program that otherwise
            computes in FP16, as op identities in program order.
        expected_fallbacks: what the rules expect to run off the Neural Engine.
        non_float_ops: compute ops producing integer or bool tensors, per type: no documented
            rule says where they run, check them in the compute plan.
    """

    source: str
    op_count: int
    const_count: int
    op_types: Mapping[str, int]
    precision: str
    fp16_weight_share: float | None
    fp16_op_share: float | None
    flexible_inputs: tuple[FlexibleInput, ...] = ()
    fp32_islands: tuple[tuple[str, ...], ...] = ()
    expected_fallbacks: tuple[ExpectedFallback, ...] = ()
    non_float_ops: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "op_types", MappingProxyType(dict(self.op_types)))
        object.__setattr__(self, "non_float_ops", MappingProxyType(dict(self.non_float_ops)))

    def fallbacks_by_rule(self) -> dict[str, int]:
        return dict(Counter(f.rule.name for f in self.expected_fallbacks))

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "op_count": self.op_count,
            "const_count": self.const_count,
            "op_types": dict(self.op_types),
            "precision": self.precision,
            "fp16_weight_share": self.fp16_weight_share,
            "fp16_op_share": self.fp16_op_share,
            "flexible_inputs": [vars(i) for i in self.flexible_inputs],
            "fp32_islands": [list(island) for island in self.fp32_islands],
            "expected_fallbacks": [
                {"subject": f.subject, "op_type": f.op_type, "rule": f.rule.name}
                for f in self.expected_fallbacks
            ],
            "non_float_ops": dict(self.non_float_ops),
            "rules": {r.name: {"expectation": r.expectation, "source": r.source} for r in RULES},
        }


@dataclass(frozen=True)
class _Op:
    identity: str
    op_type: str
    output_dtypes: tuple[str, ...]
    input_names: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def is_const(self) -> bool:
        return self.op_type == "const" or self.op_type.startswith("constexpr_")

    @property
    def float_dtypes(self) -> tuple[str, ...]:
        return tuple(d for d in self.output_dtypes if d in _FLOAT_DTYPES)

    @property
    def computes_fp32(self) -> bool:
        return "FLOAT32" in self.float_dtypes


def lint_mlpackage(path: Path) -> LintReport:
    """Lint the ML program in an .mlpackage.

    Raises:
        ArtifactError: missing, unreadable or corrupt (including a weights file shorter than
            the spec says), or not an ML program; one line naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: not found")
    spec = _load_spec(path)
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise ArtifactError(
            f"{path}: a {kind or 'empty'} model, expected an mlProgram "
            "(convert with convert_to='mlprogram')"
        )
    report = lint_spec(spec, str(path))  # checks the program's shape before its weights
    _check_weight_blobs(spec, path)
    return report


def lint_spec(spec: object, source: str) -> LintReport:
    """Lint an ML program spec (``Model_pb2.Model``) already loaded.

    Args:
        spec: the protobuf spec.
        source: what to call it in the report and errors.
    """
    ops = list(_program_ops(spec, source))
    compute = [op for op in ops if not op.is_const]
    floating = [op for op in compute if op.float_dtypes]
    fp16_ops = sum(set(op.float_dtypes) == {"FLOAT16"} for op in floating)
    fp32_ops = [op for op in compute if op.computes_fp32]
    flexible = tuple(_flexible_inputs(spec))
    fallbacks = [ExpectedFallback(op.identity, op.op_type, FP32_COMPUTE) for op in fp32_ops]
    fallbacks += [
        ExpectedFallback(f"input {i.name}", None, RANGE_SHAPE)
        for i in flexible
        if i.kind == "range"
    ]
    return LintReport(
        source=source,
        op_count=len(compute),
        const_count=len(ops) - len(compute),
        op_types=dict(Counter(op.op_type for op in compute).most_common()),
        precision=_precision(fp16_ops, len(fp32_ops), len(floating)),
        fp16_weight_share=_fp16_weight_share(spec),
        fp16_op_share=fp16_ops / len(floating) if floating else None,
        flexible_inputs=flexible,
        fp32_islands=_fp32_islands(compute) if fp16_ops else (),
        expected_fallbacks=tuple(fallbacks),
        non_float_ops=dict(
            Counter(
                op.op_type
                for op in compute
                if any(d in _NON_FLOAT_DTYPES for d in op.output_dtypes)
            ).most_common()
        ),
    )


def report_json(reports: list[LintReport]) -> str:
    return json.dumps([r.to_json() for r in reports], indent=2)


def _load_spec(path: Path) -> object:
    from faceperf.artifacts.coreml_export import load_coreml_spec

    try:
        return load_coreml_spec(path)
    except Exception as err:  # coremltools raises many types for a broken package
        lines = str(err).strip().splitlines()
        detail = lines[0] if lines else type(err).__name__
        raise ArtifactError(f"{path}: not a readable Core ML package ({detail})") from None


def _program_ops(spec, source: str) -> Iterator[_Op]:
    functions = spec.mlProgram.functions
    if "main" not in functions:
        raise ArtifactError(f"{source}: ML program without a main function")
    function = functions["main"]
    if function.opset not in function.block_specializations:
        raise ArtifactError(f"{source}: main has no block for its opset {function.opset!r}")
    yield from _block_ops(function.block_specializations[function.opset])


def _block_ops(block) -> Iterator[_Op]:
    from coremltools.proto import MIL_pb2

    for op in block.operations:
        outputs = tuple(o.name for o in op.outputs)
        yield _Op(
            identity=f"{op.type}:{outputs[0]}" if outputs else op.type,
            op_type=op.type,
            output_dtypes=tuple(
                MIL_pb2.DataType.Name(o.type.tensorType.dataType)
                for o in op.outputs
                if o.type.WhichOneof("type") == "tensorType"
            ),
            input_names=tuple(
                binding.name
                for argument in op.inputs.values()
                for binding in argument.arguments
                if binding.WhichOneof("binding") == "name"
            ),
            outputs=outputs,
        )
        for nested in op.blocks:
            yield from _block_ops(nested)


def _precision(fp16_ops: int, fp32_ops: int, floating: int) -> str:
    if not floating:
        return "none"
    if not fp32_ops:
        return "float16" if fp16_ops == floating else "mixed"
    return "float32" if not fp16_ops else "mixed"


def _fp32_islands(compute: list[_Op]) -> tuple[tuple[str, ...], ...]:
    """Connected groups of FP32 ops holding at least one op that is not a cast.

    A lone cast to FP32 at the program's end converts an output; it is not FP32 compute.
    """
    fp32 = [op for op in compute if op.computes_fp32]
    producer = {name: op.identity for op in fp32 for name in op.outputs}
    parent = {op.identity: op.identity for op in fp32}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for op in fp32:
        for name in op.input_names:
            if name in producer:
                parent[root(producer[name])] = root(op.identity)
    groups: dict[str, list[_Op]] = {}
    for op in fp32:
        groups.setdefault(root(op.identity), []).append(op)
    return tuple(
        tuple(op.identity for op in group)
        for group in groups.values()
        if any(op.op_type != "cast" for op in group)
    )


def _fp16_weight_share(spec) -> float | None:
    from coremltools.proto import MIL_pb2

    fp16 = floats = 0
    function = spec.mlProgram.functions["main"]
    consts = _const_ops(function.block_specializations[function.opset])
    for output in (o for op in consts for o in op.outputs):
        if output.type.WhichOneof("type") != "tensorType":
            continue
        tensor = output.type.tensorType
        dtype = MIL_pb2.DataType.Name(tensor.dataType)
        if dtype not in _FLOAT_DTYPES:
            continue
        elements = 1
        for dim in tensor.dimensions:
            elements *= dim.constant.size if dim.WhichOneof("dimension") == "constant" else 1
        floats += elements
        fp16 += elements if dtype == "FLOAT16" else 0
    return fp16 / floats if floats else None


def _flexible_inputs(spec) -> Iterator[FlexibleInput]:
    for feature in spec.description.input:
        kind = feature.type.WhichOneof("Type")
        if kind == "multiArrayType":
            found = _flexible_array(feature.name, feature.type.multiArrayType)
        elif kind == "imageType":
            found = _flexible_image(feature.name, feature.type.imageType)
        else:
            found = None
        if found is not None:
            yield found


def _flexible_array(name: str, array) -> FlexibleInput | None:
    default = _shape(array.shape)
    flexibility = array.WhichOneof("ShapeFlexibility")
    if flexibility == "shapeRange":
        ranges = array.shapeRange.sizeRanges
        if all(r.lowerBound == r.upperBound for r in ranges):
            return None
        return FlexibleInput(name, "range", _shape(_bounds(r) for r in ranges), default)
    if flexibility == "enumeratedShapes":
        shapes = " | ".join(_shape(s.shape) for s in array.enumeratedShapes.shapes)
        return FlexibleInput(name, "enumerated", shapes, default)
    return None


def _flexible_image(name: str, image) -> FlexibleInput | None:
    default = f"({image.height}, {image.width})"
    flexibility = image.WhichOneof("SizeFlexibility")
    if flexibility == "imageSizeRange":
        sizes = image.imageSizeRange
        shapes = f"({_bounds(sizes.heightRange)}, {_bounds(sizes.widthRange)})"
        return FlexibleInput(name, "range", shapes, default)
    if flexibility == "enumeratedSizes":
        shapes = " | ".join(f"({s.height}, {s.width})" for s in image.enumeratedSizes.sizes)
        return FlexibleInput(name, "enumerated", shapes, default)
    return None


def _bounds(size_range) -> str:
    lower, upper = size_range.lowerBound, size_range.upperBound
    if lower == upper:
        return str(lower)
    return f"{lower}..{'' if upper < 0 else upper}"  # upper -1: unbounded


def _shape(dims) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ")"


def _check_weight_blobs(spec, path: Path) -> None:
    """Every const stored in a weights file must lie inside it: a truncated copy fails here."""
    model_dir = _model_dir(path)
    function = spec.mlProgram.functions["main"]
    sizes: dict[str, int] = {}
    for op in _const_ops(function.block_specializations[function.opset]):
        value = op.attributes.get("val")
        if value is None or value.WhichOneof("value") != "blobFileValue":
            continue
        blob = value.blobFileValue
        relative = blob.fileName.removeprefix("@model_path/")
        if relative not in sizes:
            file = model_dir / relative
            if not file.is_file():
                raise ArtifactError(f"{path}: weights file {relative} is missing")
            sizes[relative] = file.stat().st_size
        if blob.offset >= sizes[relative]:
            raise ArtifactError(
                f"{path}: weights file {relative} has {sizes[relative]} bytes but const "
                f"{op.outputs[0].name} is stored at offset {blob.offset}: truncated or corrupt"
            )


def _const_ops(block) -> Iterator[object]:
    for op in block.operations:
        if op.type == "const":
            yield op
        for nested in op.blocks:
            yield from _const_ops(nested)


def _model_dir(path: Path) -> Path:
    """The folder ``@model_path`` refers to: the one holding the package's root model spec."""
    manifest = path / "Manifest.json"
    if path.is_dir() and manifest.is_file():
        document = json.loads(manifest.read_text(encoding="utf-8"))
        root = document["itemInfoEntries"][document["rootModelIdentifier"]]["path"]
        return path / "Data" / Path(root).parent
    return path.parent
