"""For the explain tests: fabricated profiles (nodes with chosen per-call times, no ONNX
Runtime) and small ONNX graphs built with onnx.helper, to profile for real."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from faceperf.bench.explain.record import NodeTiming, OpProfile, TensorShape

# A chain of elementwise layers that ONNX Runtime's optimiser leaves as they are (no fusion,
# no layout change), so each node of the file is one node of the run, under its own name.
SHAPE = (1, 16, 32, 32)


class Fabricate:
    """Builds ``NodeTiming``s and ``OpProfile``s (times given in milliseconds), and small graphs."""

    @staticmethod
    def chain(path: Path, layers: Sequence[tuple[str, str]]) -> Path:
        """Save a graph ``x`` → layers (name, op type) → ReduceMean ``head`` → ``y``."""
        nodes, source = [], "x"
        for index, (name, op_type) in enumerate(layers):
            nodes.append(helper.make_node(op_type, [source], [f"t{index}"], name=name))
            source = f"t{index}"
        nodes.append(helper.make_node("ReduceMean", [source], ["y"], name="head", keepdims=1))
        graph = helper.make_graph(
            nodes,
            "chain",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        )
        # IR 8: the newest this onnxruntime reads.
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        onnx.save(model, path)
        return path

    @staticmethod
    def feeds() -> dict[str, np.ndarray]:
        return {"x": np.random.default_rng(0).random(SHAPE, dtype=np.float32)}

    @staticmethod
    def node(
        name: str,
        op_type: str,
        ms: Sequence[float],
        shape: tuple[int, ...] = (1, 8, 4, 4),
        weight: tuple[int, ...] = (),
    ) -> NodeTiming:
        inputs = (TensorShape("float", shape),)
        if weight:
            inputs += (TensorShape("float", weight),)
        return NodeTiming(
            name=name,
            op_type=op_type,
            domain="",
            provider="CPUExecutionProvider",
            position=-1,  # set by profile()
            inputs=inputs,
            outputs=(TensorShape("float", shape),),
            durations_us=tuple(1000.0 * v for v in ms),
        )

    @staticmethod
    def profile(nodes: Sequence[NodeTiming], label: str = "m/optimized") -> OpProfile:
        placed = tuple(
            dataclasses.replace(node, position=position) for position, node in enumerate(nodes)
        )
        return OpProfile(label=label, nodes=placed, calls=len(placed[0].durations_us))


@pytest.fixture
def fab() -> Fabricate:
    return Fabricate()
