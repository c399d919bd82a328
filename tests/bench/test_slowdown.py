"""The numerically neutral slowdown used to measure the gate's power."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from faceperf.artifacts.conformance import check_artifact
from faceperf.artifacts.manifest import read_manifest
from faceperf.bench.slowdown import (
    add_identity_convs,
    slowed_copy,
    split_grouped_convs,
    widest_feature_map,
)
from faceperf.bench.speedups.flops import count_flops
from faceperf.fixtures.samples import sample_batch
from faceperf.models.registry import default_registry
from faceperf.runtime.factory import open_runner


def test_identity_convolutions_cost_work_but_change_no_output(artifacts_dir, tmp_path):
    target = slowed_copy(artifacts_dir, tmp_path / "slow", "mtcnn_onet", "optimized", count=3)
    graph = onnx.load(target / "mtcnn_onet" / "optimized.onnx")
    original = onnx.load(artifacts_dir / "mtcnn_onet" / "optimized.onnx")
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    assert len(convs) == len([n for n in original.graph.node if n.op_type == "Conv"]) + 3
    feeds = {"image": np.array(sample_batch("mtcnn_onet")[:4])}
    slow = open_runner(target, "mtcnn_onet", "optimized").run(feeds)
    fast = open_runner(artifacts_dir, "mtcnn_onet", "optimized").run(feeds)
    for name, value in fast.items():
        np.testing.assert_array_equal(slow[name], value)
    # The copy is a valid candidate: its manifest agrees with the edited file.
    manifest = read_manifest(target)
    spec = default_registry()["mtcnn_onet"]
    assert check_artifact(target, manifest, spec, "optimized") == []


def test_the_convolutions_go_where_they_cost_most(artifacts_dir):
    name, channels = widest_feature_map(onnx.load(artifacts_dir / "star" / "optimized.onnx"))
    assert channels >= 256  # a 64x64 map of the hourglass (its coord-conv input has 261)
    model = add_identity_convs(onnx.load(artifacts_dir / "star" / "optimized.onnx"), 2)
    assert sum(1 for n in model.graph.node if name in n.input) == 1  # only the first added conv


def _depthwise_graph(channels: int = 8, bias: bool = True) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(channels, 1, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(size=channels).astype(np.float32), "b"))
        inputs.append("b")
    shape = [1, channels, 12, 12]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", inputs, ["y"], group=channels, pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["y"], ["z"]),
        ],
        "depthwise",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, shape)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("bias", [True, False])
def test_split_grouped_convolutions_keep_outputs_and_flops(bias: bool) -> None:
    original = _depthwise_graph(bias=bias)
    split = split_grouped_convs(_depthwise_graph(bias=bias), channels_per_conv=2)
    onnx.checker.check_model(split, full_check=True)
    assert [n.op_type for n in split.graph.node] == ["Split", *["Conv"] * 4, "Concat", "Relu"]
    x = np.random.default_rng(1).normal(size=(1, 8, 12, 12)).astype(np.float32)
    run = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x}
        )[0]
        for m in (original, split)
    ]
    np.testing.assert_allclose(run[1], run[0], rtol=1e-6, atol=1e-6)
    assert count_flops(split).flops == count_flops(original).flops
    # The original weights are not left behind (ONNX Runtime warns of unused initializers).
    assert all(i.name not in ("w", "b") for i in split.graph.initializer)


def test_split_refuses_a_size_that_does_not_divide_the_groups() -> None:
    with pytest.raises(ValueError, match="8 groups do not split into convolutions of 3 groups"):
        split_grouped_convs(_depthwise_graph(), channels_per_conv=3)
