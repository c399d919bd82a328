"""FLOP counting on tiny hand-built ONNX graphs whose cost is known by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceperf.bench.errors import FlopCountError
from faceperf.bench.speedups.flops import count_flops


def _graph(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, Sequence[int | str]],
    output: str,
    weights: dict[str, Sequence[int]] | None = None,
) -> onnx.ModelProto:
    """A model whose output shape is left for shape inference to find."""
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=[
            numpy_helper.from_array(np.zeros(shape, np.float32), name)
            for name, shape in (weights or {}).items()
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_conv_counts_two_flops_per_multiply_accumulate():
    # 4 out channels x 8 x 8 positions, each a 3 x 3 x 3 window: 256 x 27 MACs.
    model = _graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
        {"x": (1, 3, 8, 8)},
        "y",
        {"w": (4, 3, 3, 3), "b": (4,)},
    )
    count = count_flops(model)
    assert count.flops == 2 * 256 * 27
    assert dict(count.by_op_type) == {"Conv": 2 * 256 * 27}
    assert count.nodes == 1


def test_depthwise_strided_conv_sums_over_its_group_only():
    # group 4: each of 4 x 4 x 4 outputs sums one channel's 3 x 3 window.
    model = _graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=4, strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": (1, 4, 8, 8)},
        "y",
        {"w": (4, 1, 3, 3)},
    )
    assert count_flops(model).flops == 2 * 64 * 9


def test_conv_transpose_scatters_each_input_over_its_outputs():
    # 2 x 4 x 4 inputs, each to 3 channels x a 2 x 2 kernel (stride 2: no overlap, 8 x 8 out).
    model = _graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
        {"x": (1, 2, 4, 4)},
        "y",
        {"w": (2, 3, 2, 2)},
    )
    assert count_flops(model).flops == 2 * 32 * 12


@pytest.mark.parametrize(
    ("a", "b", "attributes"),
    [((2, 5), (5, 3), {}), ((2, 5), (3, 5), {"transB": 1}), ((5, 2), (5, 3), {"transA": 1})],
)
def test_gemm_is_m_n_k_whatever_is_transposed(a, b, attributes):
    model = _graph(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], **attributes)],
        {"a": a},
        "y",
        {"b": b, "c": (3,)},
    )
    assert count_flops(model).flops == 2 * 2 * 3 * 5


@pytest.mark.parametrize(
    ("a", "b", "macs"),
    [
        ((4, 5), (5, 6), 4 * 6 * 5),
        ((2, 1, 4, 5), (3, 5, 6), 2 * 3 * 4 * 6 * 5),  # batch dims broadcast to (2, 3)
        ((5,), (5, 6), 6 * 5),  # a vector on the left
        ((4, 5), (5,), 4 * 5),  # a vector on the right
    ],
)
def test_matmul_follows_numpy_broadcasting(a, b, macs):
    model = _graph([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, "y")
    assert count_flops(model).flops == 2 * macs


def test_shapes_propagate_through_uncounted_ops():
    # Conv -> Relu -> Flatten -> Gemm: the Gemm's K comes from the inferred Flatten shape.
    model = _graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("Flatten", ["r"], ["f"]),
            helper.make_node("Gemm", ["f", "g"], ["y"], transB=1),
        ],
        {"x": (1, 1, 5, 5)},
        "y",
        {"w": (2, 1, 3, 3), "g": (10, 18)},
    )
    count = count_flops(model)
    conv, gemm = 2 * 18 * 9, 2 * 10 * 18
    assert dict(count.by_op_type) == {"Conv": conv, "Gemm": gemm}
    assert count.flops == conv + gemm and count.nodes == 2


def test_a_graph_without_counted_ops_costs_nothing():
    model = _graph([helper.make_node("Relu", ["x"], ["y"])], {"x": (1, 3, 8, 8)}, "y")
    assert count_flops(model).flops == 0


def _dynamic_conv() -> onnx.ModelProto:
    return _graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        {"x": ("batch", 3, "height", "width")},
        "y",
        {"w": (4, 3, 3, 3)},
    )


def test_dynamic_axes_are_counted_for_the_given_input_shape():
    assert count_flops(_dynamic_conv(), {"x": (2, 3, 8, 8)}).flops == 2 * 2 * 256 * 27


def test_dynamic_axes_without_a_shape_name_the_node_and_tensor():
    with pytest.raises(FlopCountError, match=r"\(Conv\): shape of 'y' is \(\?, 4, \?, \?\)"):
        count_flops(_dynamic_conv())


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        ({"image": (1, 3, 8, 8)}, "no graph input named 'image'; inputs are 'x'"),
        ({"x": (3, 8, 8)}, r"input 'x' is declared \(\?, 3, \?, \?\); cannot run it with"),
        ({"x": (1, 4, 8, 8)}, r"'x' has fixed shape \(\?, 3, \?, \?\), not \(1, 4, 8, 8\)"),
        ({"x": (1, 3, 0, 8)}, "cannot run it with shape"),
    ],
)
def test_wrong_input_shapes_are_refused(shapes, expected):
    with pytest.raises(FlopCountError, match=expected):
        count_flops(_dynamic_conv(), shapes)


def test_reads_a_file_and_names_a_bad_one(tmp_path: Path):
    path = tmp_path / "conv.onnx"
    onnx.save(_dynamic_conv(), str(path))
    assert count_flops(path, {"x": (1, 3, 8, 8)}).flops == 2 * 256 * 27
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf")
    with pytest.raises(FlopCountError, match=f"^{broken}: not a readable ONNX file"):
        count_flops(broken)
    with pytest.raises(FlopCountError, match="no such ONNX file"):
        count_flops(tmp_path / "missing.onnx")


def test_inconsistent_shapes_fail_inference_with_the_file_named():
    model = _graph([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": (4, 5), "b": (6, 7)}, "y")
    with pytest.raises(FlopCountError, match="shape inference failed"):
        count_flops(model)


@pytest.mark.parametrize(("model", "gflop"), [("star", 34.7), ("mtl", 0.86)])
def test_real_graphs_agree_with_the_figures_in_models_md(artifacts_dir, model, gflop):
    # MODELS.md: "STAR is 34.7 GFLOP per 256x256 face; MTL 0.86 GFLOP", counted independently.
    from faceperf.fixtures.samples import sample_batch

    shape = sample_batch(model)[:1].shape
    count = count_flops(artifacts_dir / model / "optimized.onnx", {"image": shape})
    assert count.gflop == pytest.approx(gflop, abs=0.05)
