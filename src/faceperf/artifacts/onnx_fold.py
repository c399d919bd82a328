"""Folding inference BatchNormalization into the Conv before it, in float64 NumPy.

PyTorch's exporter folds Conv+BatchNorm itself, but with ``torch.sqrt``, which on x86 goes
through MKL's vector math: its last bits depend on the CPU vendor, so the same weights gave
different ONNX bytes on an Intel Xeon and an AMD EPYC. Here every folded number comes from
correctly rounded float64 operations cast once to float32, which every machine computes alike.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper


def fold_batchnorm(model: onnx.ModelProto) -> int:
    """Fold every inference BatchNormalization that alone reads a Conv's output into that Conv.

    Returns the number of folds. BatchNorms after anything else stay as they are, as they do in
    PyTorch's own export.
    """
    graph = model.graph
    values = _initializer_values(graph)
    producers = {out: node for node in graph.node for out in node.output}
    readers = Counter(name for node in graph.node for name in node.input)
    graph_outputs = {v.name for v in graph.output}
    folded: list[onnx.NodeProto] = []
    for node in list(graph.node):
        conv = producers.get(node.input[0]) if node.op_type == "BatchNormalization" else None
        if conv is None or conv.op_type != "Conv" or not _foldable(node, conv, values):
            continue
        if readers[conv.output[0]] != 1 or conv.output[0] in graph_outputs:
            continue
        weight, bias = _folded(conv, node, values)
        stem = conv.output[0]
        graph.initializer.extend(
            [
                numpy_helper.from_array(weight, f"{stem}.folded_weight"),
                numpy_helper.from_array(bias, f"{stem}.folded_bias"),
            ]
        )
        conv.input[:] = [conv.input[0], f"{stem}.folded_weight", f"{stem}.folded_bias"]
        conv.output[0] = node.output[0]
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    _drop_unused(graph)
    return len(folded)


def _initializer_values(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers by name, also under the names of Identity nodes that merely alias them
    (the exporter shares equal tensors, e.g. the all-ones BatchNorm scales, that way)."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def _foldable(norm: onnx.NodeProto, conv: onnx.NodeProto, values: dict[str, np.ndarray]) -> bool:
    training = next((a.i for a in norm.attribute if a.name == "training_mode"), 0)
    return (
        not training
        and len(norm.output) == 1
        and all(name in values for name in norm.input[1:5])
        and all(name in values for name in conv.input[1:] if name)
        and values[conv.input[1]].dtype == np.float32
    )


def _folded(
    conv: onnx.NodeProto, norm: onnx.NodeProto, values: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    scale, shift, mean, var = (values[name].astype(np.float64) for name in norm.input[1:5])
    epsilon = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
    weight = values[conv.input[1]].astype(np.float64)
    has_bias = len(conv.input) > 2 and conv.input[2]
    bias = values[conv.input[2]].astype(np.float64) if has_bias else np.zeros(len(weight))
    factor = scale / np.sqrt(var + np.float64(np.float32(epsilon)))
    folded_weight = weight * factor.reshape(-1, *([1] * (weight.ndim - 1)))
    folded_bias = (bias - mean) * factor + shift
    return folded_weight.astype(np.float32), folded_bias.astype(np.float32)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove the initializers and aliasing Identity nodes nothing reads any more."""
    while True:
        read = {name for node in graph.node for name in node.input} | {v.name for v in graph.output}
        dead = [n for n in graph.node if n.op_type == "Identity" and n.output[0] not in read]
        for node in dead:
            graph.node.remove(node)
        if not dead:
            break
    read = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
