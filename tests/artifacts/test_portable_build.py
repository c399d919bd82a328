"""Surrogate weights and FP32 exports are the same bytes on every machine.

The digests below were computed on an AMD EPYC (AVX2) and must hold on any other CPU, the
Apple runner included: a mismatch means some build step's last bits depend on the machine
(weights/surrogates.py and artifacts/onnx_fold.py say which steps were and how they are made
portable), and the accuracy references, built on one machine, would no longer fit another's
artifacts.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceperf.artifacts.onnx_export import export_onnx
from faceperf.artifacts.onnx_fold import fold_batchnorm
from faceperf.bench.hardware import probe_system
from faceperf.fileio import sha256_path
from faceperf.models.registry import default_registry
from faceperf.models.star import coord_grid
from faceperf.weights.checkpoint import state_dict_sha256
from faceperf.weights.sources import WeightPolicy, resolve_weights

SURROGATE_STATE_DICTS = {
    "retinaface": "fce75ea32874f8f7dbd4e906549101699cc64eb92bb3178c03877da1c046651c",
    "star": "afe7e05d03b1ab775674e8d3f5520ce0a3023155e072678a4615a43a17f26b53",
    "mtl": "27af29843c63bde7f9d4ceac02567dc57581db7cf1a1a48a33731b22486bf238",
}
# The default build's baseline export (retinaface: the committed real weights).
BASELINE_EXPORTS = {
    "retinaface": "a3d44c6802cb66dd4c81bdb1cbb5a9006ee0c115ef9c310c067b5b4f7804ef1d",
    "star": "cc8b4de407af67486a5389a0807c5f03532af3e8dfc17229c7aa3420409e5262",
    "mtl": "943f7c99f82181237d9c3bc2e0eb642ebbf0c1c38933c50bd604bc25eac7a82c",
    "mtcnn_pnet": "c075f277ee1e97ec15cc8c87c5fcdf084d733bb93374edacd0676876669cabe4",
    "mtcnn_rnet": "f1062f3348726506aec4b50b49863266c2f3e08bf3a46bc125004ce911f824d2",
    "mtcnn_onet": "a9181e1bd1437241d170d187e3eaf3ac2e08ca64bdef85cb0040e361bc90c09e",
}
SURROGATE_RETINAFACE_EXPORT = "6f0a5a659a748730f52736189a0b1f24bc9d43443a38a43b5a2d5513cca86e42"


def _drift(what: str, got: str, pinned: str) -> str:
    return (
        f"{what} is {got[:16]}... on this machine ({probe_system().describe_cpu()}), pinned "
        f"{pinned[:16]}...: a build step depends on the CPU"
    )


@pytest.mark.parametrize("name", sorted(SURROGATE_STATE_DICTS))
def test_surrogate_state_dict_is_pinned(name):
    spec = default_registry()[name]
    state = resolve_weights(spec, WeightPolicy.SURROGATE).state_dict
    got = state_dict_sha256(state)
    assert got == SURROGATE_STATE_DICTS[name], _drift(
        f"{name}'s surrogate", got, SURROGATE_STATE_DICTS[name]
    )


@pytest.mark.parametrize("name", sorted(BASELINE_EXPORTS))
def test_baseline_export_is_pinned(name, tmp_path):
    spec = default_registry()[name]
    path = tmp_path / "baseline.onnx"
    export_onnx(resolve_weights(spec).build_model(), spec, path, spec.baseline_dynamic)
    got = sha256_path(path)
    assert got == BASELINE_EXPORTS[name], _drift(
        f"{name}'s baseline export", got, BASELINE_EXPORTS[name]
    )


def test_surrogate_retinaface_export_is_pinned(tmp_path):
    spec = default_registry()["retinaface"]
    path = tmp_path / "baseline.onnx"
    model = resolve_weights(spec, WeightPolicy.SURROGATE).build_model()
    export_onnx(model, spec, path, spec.baseline_dynamic)
    got = sha256_path(path)
    assert got == SURROGATE_RETINAFACE_EXPORT, _drift(
        "the surrogate RetinaFace export", got, SURROGATE_RETINAFACE_EXPORT
    )


def _conv_bn_graph(rng: np.random.RandomState, with_bias: bool) -> onnx.ModelProto:
    weight = rng.normal(0, 1, (4, 3, 3, 3)).astype(np.float32)
    stats = [
        rng.uniform(0.5, 2.0, 4),
        rng.normal(0, 1, 4),
        rng.normal(0, 1, 4),
        rng.uniform(0.1, 3, 4),
    ]
    inits = [numpy_helper.from_array(weight, "w")]
    conv_inputs = ["x", "w"]
    if with_bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 1, 4).astype(np.float32), "b"))
        conv_inputs.append("b")
    names = ["scale", "shift", "mean", "var"]
    inits += [
        numpy_helper.from_array(s.astype(np.float32), n) for s, n in zip(stats, names, strict=True)
    ]
    nodes = [
        helper.make_node("Conv", conv_inputs, ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", *names], ["y"], epsilon=1e-5),
        helper.make_node("Relu", ["y"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("with_bias", [False, True])
def test_fold_batchnorm_is_the_float64_fold_and_keeps_the_outputs(with_bias):
    rng = np.random.RandomState(0)
    model = _conv_bn_graph(rng, with_bias)
    x = rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    before = _run(model, x)
    assert fold_batchnorm(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert set(values) == {"c.folded_weight", "c.folded_bias"}  # the originals are gone
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-5)
    # The folded numbers are exactly float64 arithmetic rounded once to float32.
    original = {
        t.name: numpy_helper.to_array(t)
        for t in _conv_bn_graph(np.random.RandomState(0), with_bias).graph.initializer
    }
    scale, shift, mean, var = (
        original[k].astype(np.float64) for k in ("scale", "shift", "mean", "var")
    )
    factor = scale / np.sqrt(var + np.float64(np.float32(1e-5)))
    bias = original["b"].astype(np.float64) if with_bias else 0.0
    expected_w = (original["w"].astype(np.float64) * factor[:, None, None, None]).astype(np.float32)
    assert np.array_equal(values["c.folded_weight"], expected_w)
    assert np.array_equal(
        values["c.folded_bias"], ((bias - mean) * factor + shift).astype(np.float32)
    )


def test_fold_batchnorm_leaves_a_conv_output_read_twice():
    model = _conv_bn_graph(np.random.RandomState(1), with_bias=True)
    model.graph.node.append(helper.make_node("Relu", ["c"], ["other"]))
    model.graph.output.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, None))
    assert fold_batchnorm(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "BatchNormalization", "Relu", "Relu"]


def test_star_coord_grid_is_float64_rounded_once():
    grid = coord_grid(64).numpy()[0].astype(np.float64)
    ramp = np.arange(64, dtype=np.float32) / np.float32(63) * np.float32(2) - np.float32(1)
    xx, yy = np.meshgrid(ramp.astype(np.float64), ramp.astype(np.float64), indexing="ij")
    radius = np.sqrt(xx * xx + yy * yy)
    assert np.array_equal(grid[2], (radius / radius.max()).astype(np.float32).astype(np.float64))
