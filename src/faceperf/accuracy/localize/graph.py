"""What the pairing needs of one ONNX graph: ``GraphView`` (nodes in topological order,
tensors' roots through Identity and float-to-float Cast aliases, producers, consumers, types and
shapes inferred for the fed input) and ``analyse``, which builds it; ``node_label`` names a node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, shape_inference

from faceperf.accuracy.localize.result import LocalizeError

_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
)
# Initializers up to this many elements may be shapes or indices, which shape inference reads.
_SMALL_INITIALIZER = 64
# Their outputs depend on the shape of their input only, not on its values.
_SHAPE_OPS = frozenset({"Shape", "Size"})


@dataclass(frozen=True)
class GraphView:
    """What the pairing needs of one ONNX graph, with shapes inferred for the fed input
    (see ``analyse``)."""

    model: onnx.ModelProto  # as given: run with its nodes' outputs exposed
    nodes: tuple[onnx.NodeProto, ...]  # topological order
    inputs: tuple[str, ...]  # graph inputs that are not initializers
    outputs: tuple[str, ...]
    root: dict[str, str]  # tensor -> the tensor it is an Identity/float Cast of (itself if none)
    names: dict[str, list[str]]  # root -> its own name, then the names of its aliases
    producer: dict[str, int]  # root -> index of the node computing it
    data: frozenset[str]  # roots whose values depend on the graph inputs' values
    consumers: dict[str, list[tuple[int, int]]]  # root -> (node index, input slot)
    types: dict[str, int]
    shapes: dict[str, tuple[int | None, ...]]

    def is_alias(self, index: int) -> bool:
        node = self.nodes[index]
        return node.output[0] in self.root and self.root[node.output[0]] != node.output[0]

    def operations(self) -> list[int]:
        """Indices of the nodes computing data (not constants, shapes or aliases)."""
        return [
            i
            for i, node in enumerate(self.nodes)
            if not self.is_alias(i) and any(o in self.data for o in node.output if o)
        ]

    def data_inputs(self, index: int) -> list[tuple[int, str]]:
        """(slot, root) of the node's inputs that carry data."""
        node = self.nodes[index]
        return [
            (slot, self.root.get(name, name))
            for slot, name in enumerate(node.input)
            if name and self.root.get(name, name) in self.data
        ]

    def nbytes(self, name: str) -> int | None:
        """The size of the tensor's value, when shape inference knows it."""
        shape = self.shapes.get(name)
        if shape is None or any(d is None for d in shape) or name not in self.types:
            return None
        itemsize = helper.tensor_dtype_to_np_dtype(self.types[name]).itemsize
        return itemsize * int(np.prod(shape, dtype=np.int64))

    def is_float(self, name: str) -> bool:
        return self.types.get(name) in _FLOAT_TYPES

    def ancestors(self, names: Sequence[str]) -> set[int]:
        """Indices of the nodes that ``names`` (roots) depend on, aliases skipped."""
        found: set[int] = set()
        pending = [self.root.get(n, n) for n in names]
        while pending:
            index = self.producer.get(pending.pop())
            if index is None or index in found:
                continue
            found.add(index)
            pending.extend(self.root.get(n, n) for n in self.nodes[index].input if n)
        return found


def _shape_model(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """Shape inference of ``model`` with its inputs fixed to ``shapes``, run on a copy whose
    large initializers are typed graph inputs: inference needs their shapes only (and the values
    of the small shape tensors), and serialising megabytes of weights is most of its time."""
    light = onnx.ModelProto()
    light.CopyFrom(model)
    for graph_input in light.graph.input:
        if graph_input.name in shapes:
            dims = graph_input.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[graph_input.name], strict=False):
                dim.Clear()
                dim.dim_value = int(size)
    kept = [t for t in light.graph.initializer if np.prod(t.dims) <= _SMALL_INITIALIZER]
    moved = [t for t in light.graph.initializer if np.prod(t.dims) > _SMALL_INITIALIZER]
    del light.graph.initializer[:]
    light.graph.initializer.extend(kept)
    known = {i.name for i in light.graph.input}
    light.graph.input.extend(
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in moved
        if t.name not in known
    )
    # Stale value_info (an edited graph's) would contradict the fixed input; infer afresh.
    del light.graph.value_info[:]
    return shape_inference.infer_shapes(light)


def _value_infos(graph: onnx.GraphProto) -> tuple[dict[str, int], dict[str, tuple]]:
    types, shapes = {}, {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if not tensor.elem_type:
            continue
        types[info.name] = tensor.elem_type
        if tensor.HasField("shape"):
            shapes[info.name] = tuple(
                d.dim_value if d.dim_value > 0 else None for d in tensor.shape.dim
            )
    for init in graph.initializer:
        types[init.name] = init.data_type
        shapes[init.name] = tuple(init.dims)
    return types, shapes


def _topological(graph: onnx.GraphProto) -> tuple[onnx.NodeProto, ...]:
    """Nodes in a topological order, keeping the file's order where it already is one."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    produced = {o for node in graph.node for o in node.output}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        left = []
        for node in pending:
            # An input nothing produces comes from outside the graph: treat it as available.
            if all(name in ready or name not in produced for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                left.append(node)
        if len(left) == len(pending):
            raise LocalizeError(f"graph {graph.name!r} has a cycle or a dangling input")
        pending = left
    return tuple(ordered)


def node_label(node: onnx.NodeProto) -> str:
    """A node's name, or its first output's for an unnamed node (graph edits leave some)."""
    return node.name or node.output[0]


def _is_alias_node(node: onnx.NodeProto, types: Mapping[str, int]) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Cast":
        return False
    target = next((a.i for a in node.attribute if a.name == "to"), None)
    return types.get(node.input[0]) in _FLOAT_TYPES and target in _FLOAT_TYPES


def analyse(model: onnx.ModelProto, input_shapes: Mapping[str, tuple[int, ...]]) -> GraphView:
    """The pairing's view of ``model`` for inputs of ``input_shapes``."""
    graph = _shape_model(model, input_shapes).graph
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = tuple(i.name for i in model.graph.input if i.name not in initializers)
    types, shapes = _value_infos(graph)
    for init in model.graph.initializer:
        types[init.name] = init.data_type
        shapes[init.name] = tuple(init.dims)
    nodes = _topological(graph)
    root = {name: name for name in graph_inputs}
    names = {name: [name] for name in graph_inputs}
    producer: dict[str, int] = {}
    data = set(graph_inputs)
    consumers: dict[str, list[tuple[int, int]]] = {}
    for index, node in enumerate(nodes):
        if _is_alias_node(node, types):
            source = root.get(node.input[0], node.input[0])
            root[node.output[0]] = source
            names.setdefault(source, [source]).append(node.output[0])
            continue
        for slot, name in enumerate(node.input):
            if name:
                consumers.setdefault(root.get(name, name), []).append((index, slot))
        reads_data = node.op_type not in _SHAPE_OPS and any(
            root.get(name, name) in data for name in node.input if name
        )
        for output in node.output:
            if output:
                root[output] = output
                names[output] = [output]
                producer[output] = index
                if reads_data:
                    data.add(output)
    return GraphView(
        model=model,
        nodes=nodes,
        inputs=graph_inputs,
        outputs=tuple(o.name for o in graph.output),
        root=root,
        names=names,
        producer=producer,
        data=frozenset(data),
        consumers=consumers,
        types=types,
        shapes=shapes,
    )
