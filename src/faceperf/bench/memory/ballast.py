"""A real, numerically neutral memory regression: one extra intermediate tensor of a chosen size.

``add_ballast`` makes the graph tile its input into a tensor of about the asked size, reduce it
to one number, multiply that by zero and add it to the input before the first operator reads
it. Every output stays bit-identical (finite inputs: x + 0 * s = x), while the runtime must
hold the tiled tensor for real (its shape depends on the input, so nothing folds it away at
load). It is what a careless reconversion does (an unfused pattern, a debugging output left in,
weights kept twice), sized on purpose to measure the memory gates' power.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

_PREFIX = "faceperf_ballast"
_BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.FLOAT16: 2}


def add_ballast(model: onnx.ModelProto, megabytes: float) -> onnx.ModelProto:
    """``model`` (edited in place and returned) holding one extra tensor of about ``megabytes``
    MB (10^6 bytes) while it runs, its outputs unchanged.

    Raises:
        ValueError: ``megabytes`` not positive, or the first input is not a float tensor whose
            dimensions after the first are fixed (its one-sample size sets the tile count).
    """
    if not megabytes > 0:
        raise ValueError(f"ballast of {megabytes!r} MB: expected a positive size")
    graph = model.graph
    source = graph.input[0]
    tensor = source.type.tensor_type
    if tensor.elem_type not in _BYTES:
        raise ValueError(f"input {source.name!r}: expected a float or float16 tensor")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
        raise ValueError(f"input {source.name!r} shape {dims}: expected fixed dims after the first")
    per_copy = math.prod(dims[1:]) * _BYTES[tensor.elem_type]
    copies = max(1, round(megabytes * 1e6 / per_copy))
    repeats = np.array([copies] + [1] * (len(dims) - 1), np.int64)
    zero = np.zeros((), onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    names = {k: f"{_PREFIX}_{k}" for k in ("repeats", "zero", "big", "sum", "nothing", "input")}
    nodes = [
        helper.make_node("Tile", [source.name, names["repeats"]], [names["big"]]),
        helper.make_node("ReduceSum", [names["big"]], [names["sum"]], keepdims=0),
        helper.make_node("Mul", [names["sum"], names["zero"]], [names["nothing"]]),
        helper.make_node("Add", [source.name, names["nothing"]], [names["input"]]),
    ]
    for node in graph.node:
        node.input[:] = [names["input"] if name == source.name else name for name in node.input]
    for index, node in enumerate(nodes):
        graph.node.insert(index, node)
    graph.initializer.extend(
        [
            numpy_helper.from_array(repeats, names["repeats"]),
            numpy_helper.from_array(zero, names["zero"]),
        ]
    )
    return model
