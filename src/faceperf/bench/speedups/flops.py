"""Floating-point operations of one inference, counted from an ONNX graph's shapes.

Only the ops that carry the arithmetic of these models are counted: Conv, ConvTranspose, Gemm
and MatMul (standard ONNX domain), each as 2 x its multiply-accumulates. Activations,
normalisation, pooling, resizing and element-wise ops are left out: they are memory-bound and a
rounding error in FLOPs (STAR's 59 BatchNorms are < 0.5 % of its convolutions), so "achieved
GFLOP/s" stays comparable with a matrix-multiply peak, which counts the same way. Bias additions
are left out for the same reason. Ops inside subgraphs (If, Loop) are not counted; none of
these models has one.

Shapes come from ``onnx.shape_inference`` on the graph with its inputs fixed, so a graph with
dynamic axes (P-Net's height and width, R-/O-Net's batch) is counted for the input shape it is
measured with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import onnx

from faceperf.bench.errors import FlopCountError

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class FlopCount:
    """What one inference of a graph costs.

    Args:
        flops: floating-point operations of the counted ops (2 x multiply-accumulates).
        by_op_type: op type → its share of ``flops``.
        nodes: how many nodes were counted.
    """

    flops: int
    by_op_type: Mapping[str, int] = field(default_factory=dict)
    nodes: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_op_type", MappingProxyType(dict(self.by_op_type)))

    @property
    def gflop(self) -> float:
        return self.flops / 1e9


def count_flops(
    model: onnx.ModelProto | str | os.PathLike[str],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> FlopCount:
    """Count the FLOPs of one run of ``model``.

    Args:
        model: an ONNX model or the path of an .onnx file.
        input_shapes: graph input name → the concrete shape it is run with; needed for every
            input with a dynamic axis, optional (and checked) for fixed ones.

    Raises:
        FlopCountError: the file cannot be read, an input name or rank is wrong, shape
            inference fails, or a counted node's shapes are still unknown (a dynamic axis
            without an input shape); the message names the node or input.
    """
    proto, source = _load(model)
    fixed = _with_input_shapes(proto, dict(input_shapes or {}), source)
    try:
        inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and plain RuntimeErrors
        raise FlopCountError(f"{source}: shape inference failed ({_first_line(exc)})") from None
    shapes = _shapes(inferred.graph)
    totals: dict[str, int] = {}
    nodes = 0
    for index, node in enumerate(inferred.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type not in COUNTED_OPS:
            continue
        macs = _macs(node, shapes, f"{source}: node {node.name or index} ({node.op_type})")
        totals[node.op_type] = totals.get(node.op_type, 0) + 2 * macs
        nodes += 1
    return FlopCount(sum(totals.values()), totals, nodes)


def _load(model: onnx.ModelProto | str | os.PathLike[str]) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "<model>"
    path = Path(model)
    try:
        # The weights' values are not needed, only their dims, which the graph itself holds.
        return onnx.load(str(path), load_external_data=False), str(path)
    except FileNotFoundError:
        raise FlopCountError(f"{path}: no such ONNX file") from None
    except Exception as exc:  # protobuf's DecodeError and friends
        raise FlopCountError(f"{path}: not a readable ONNX file ({_first_line(exc)})") from None


def _with_input_shapes(
    proto: onnx.ModelProto, input_shapes: dict[str, Sequence[int]], source: str
) -> onnx.ModelProto:
    inputs = {value.name: value for value in proto.graph.input}
    unknown = sorted(set(input_shapes) - set(inputs))
    if unknown:
        raise FlopCountError(
            f"{source}: no graph input named {', '.join(map(repr, unknown))}; "
            f"inputs are {', '.join(map(repr, inputs))}"
        )
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for value in copy.graph.input:
        if value.name not in input_shapes:
            continue
        wanted = tuple(input_shapes[value.name])
        dims = value.type.tensor_type.shape.dim
        declared = tuple(_dim(d) for d in dims)
        if len(declared) != len(wanted) or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in wanted
        ):
            raise FlopCountError(
                f"{source}: input {value.name!r} is declared {_shape_text(declared)}; "
                f"cannot run it with shape {wanted}"
            )
        if any(d is not None and d != size for d, size in zip(declared, wanted, strict=True)):
            raise FlopCountError(
                f"{source}: input {value.name!r} has fixed shape {_shape_text(declared)}, "
                f"not {wanted}"
            )
        for dim, size in zip(dims, wanted, strict=True):
            dim.Clear()
            dim.dim_value = size
    return copy


def _shapes(graph: onnx.GraphProto) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    for initializer in graph.initializer:
        shapes[initializer.name] = tuple(int(d) for d in initializer.dims)
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape"):
            shapes[value.name] = tuple(_dim(d) for d in tensor.shape.dim)
    return shapes


def _dim(dim: onnx.TensorShapeProto.Dimension) -> int | None:
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def _macs(node: onnx.NodeProto, shapes: dict[str, Shape], where: str) -> int:
    def known(name: str) -> tuple[int, ...]:
        shape = shapes.get(name)
        if shape is None or any(d is None for d in shape):
            shown = "unknown" if shape is None else _shape_text(shape)
            raise FlopCountError(
                f"{where}: shape of {name!r} is {shown} after shape inference; "
                "give the graph's dynamic inputs a concrete shape"
            )
        return shape  # type: ignore[return-value]

    if node.op_type == "Conv":
        # Every output element sums over its group's input channels and the kernel window.
        return math.prod(known(node.output[0])) * math.prod(known(node.input[1])[1:])
    if node.op_type == "ConvTranspose":
        # The mirror image: every input element is scattered over (out channels / group) x
        # kernel outputs. Weight layout is (C_in, C_out / group, k...).
        return math.prod(known(node.input[0])) * math.prod(known(node.input[1])[1:])
    a = known(node.input[0])
    if node.op_type == "Gemm":
        trans_a = any(att.name == "transA" and att.i for att in node.attribute)
        inner = a[0] if trans_a else a[1]
    else:  # MatMul, numpy semantics: the contracted axis is A's last, whatever the ranks
        inner = a[-1]
    return math.prod(known(node.output[0])) * inner


def _shape_text(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
