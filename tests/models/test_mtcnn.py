"""MTCNN P/R/O-Net structure, export and conversion, on seeded random weights.

The real facenet-pytorch weights are exercised in tests/weights/test_packaged.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx_session import export_session
from torch import nn

from faceperf.models.mtcnn import (
    MTCNN_PARAMS,
    ONET_OUTPUTS,
    PNET_OUTPUTS,
    RNET_OUTPUTS,
    ONet,
    PNet,
    RNet,
    build_onet,
    build_pnet,
    build_rnet,
)

# (builder, output names, square input size or None for fully convolutional)
NETS = {
    "mtcnn_pnet": (build_pnet, PNET_OUTPUTS, 12),
    "mtcnn_rnet": (build_rnet, RNET_OUTPUTS, 24),
    "mtcnn_onet": (build_onet, ONET_OUTPUTS, 48),
}

# facenet-pytorch 2.6.0's state-dict layout: layer name -> parameter shapes.
EXPECTED_SHAPES = {
    "mtcnn_pnet": {
        "conv1": [(10, 3, 3, 3), (10,)],
        "prelu1": [(10,)],
        "conv2": [(16, 10, 3, 3), (16,)],
        "prelu2": [(16,)],
        "conv3": [(32, 16, 3, 3), (32,)],
        "prelu3": [(32,)],
        "conv4_1": [(2, 32, 1, 1), (2,)],
        "conv4_2": [(4, 32, 1, 1), (4,)],
    },
    "mtcnn_rnet": {
        "conv1": [(28, 3, 3, 3), (28,)],
        "prelu1": [(28,)],
        "conv2": [(48, 28, 3, 3), (48,)],
        "prelu2": [(48,)],
        "conv3": [(64, 48, 2, 2), (64,)],
        "prelu3": [(64,)],
        "dense4": [(128, 576), (128,)],
        "prelu4": [(128,)],
        "dense5_1": [(2, 128), (2,)],
        "dense5_2": [(4, 128), (4,)],
    },
    "mtcnn_onet": {
        "conv1": [(32, 3, 3, 3), (32,)],
        "prelu1": [(32,)],
        "conv2": [(64, 32, 3, 3), (64,)],
        "prelu2": [(64,)],
        "conv3": [(64, 64, 3, 3), (64,)],
        "prelu3": [(64,)],
        "conv4": [(128, 64, 2, 2), (128,)],
        "prelu4": [(128,)],
        "dense5": [(256, 1152), (256,)],
        "prelu5": [(256,)],
        "dense6_1": [(2, 256), (2,)],
        "dense6_2": [(4, 256), (4,)],
        "dense6_3": [(10, 256), (10,)],
    },
}


def _seeded(key: str) -> nn.Module:
    torch.manual_seed(0)
    return NETS[key][0]()


def _inputs(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    # Same range as real normalised pixels: (x - 127.5) / 128 lies in [-1, 1].
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1


@pytest.mark.parametrize("key", list(NETS))
def test_parameter_count_matches_pinned(key: str) -> None:
    net = _seeded(key)
    assert sum(p.numel() for p in net.parameters()) == MTCNN_PARAMS[key]


@pytest.mark.parametrize("key", list(NETS))
def test_state_dict_layout_matches_facenet(key: str) -> None:
    expected = {}
    for layer, shapes in EXPECTED_SHAPES[key].items():
        for suffix, shape in zip(("weight", "bias"), shapes, strict=False):
            expected[f"{layer}.{suffix}"] = shape
    got = {k: tuple(v.shape) for k, v in _seeded(key).state_dict().items()}
    assert got == expected


@pytest.mark.parametrize("key", list(NETS))
def test_builders_return_eval_mode(key: str) -> None:
    net = NETS[key][0]()
    assert not net.training
    assert isinstance(net, {"mtcnn_pnet": PNet, "mtcnn_rnet": RNet, "mtcnn_onet": ONet}[key])


@pytest.mark.parametrize(("h", "w"), [(12, 12), (13, 13), (37, 53), (100, 61)])
def test_pnet_is_fully_convolutional(h: int, w: int) -> None:
    x = _inputs((2, 3, h, w))
    with torch.no_grad():
        reg, prob = _seeded("mtcnn_pnet")(x)
    # conv3 -> ceil-mode pool 2 -> conv3 -> conv3: one cell per 12x12 window at stride 2.
    oh, ow = -(-(h - 2) // 2) - 4, -(-(w - 2) // 2) - 4
    assert reg.shape == (2, 4, oh, ow)
    assert prob.shape == (2, 2, oh, ow)
    torch.testing.assert_close(prob.sum(1), torch.ones(2, oh, ow))


@pytest.mark.parametrize("key", ["mtcnn_rnet", "mtcnn_onet"])
def test_crop_net_output_shapes_and_softmax(key: str) -> None:
    _, names, size = NETS[key]
    with torch.no_grad():
        outs = dict(zip(names, _seeded(key)(_inputs((5, 3, size, size))), strict=True))
    assert outs["reg"].shape == (5, 4)
    assert outs["prob"].shape == (5, 2)
    if key == "mtcnn_onet":
        assert outs["landmarks"].shape == (5, 10)
    assert bool(((outs["prob"] >= 0) & (outs["prob"] <= 1)).all())
    torch.testing.assert_close(outs["prob"].sum(1), torch.ones(5))


@pytest.mark.parametrize(
    ("key", "last_conv_act", "first_dense"),
    [("mtcnn_rnet", "prelu3", "dense4"), ("mtcnn_onet", "prelu4", "dense5")],
)
def test_dense_input_is_caffe_transposed_flatten(
    key: str, last_conv_act: str, first_dense: str
) -> None:
    # The Caffe-trained dense weights expect (W, H, C) order; a plain (C, H, W) flatten loads
    # fine and runs, but gives wrong outputs.
    net = _seeded(key)
    seen: dict[str, torch.Tensor] = {}
    getattr(net, last_conv_act).register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("fmap", out)
    )
    getattr(net, first_dense).register_forward_hook(
        lambda _m, inp, _o: seen.__setitem__("dense_in", inp[0])
    )
    size = NETS[key][2]
    with torch.no_grad():
        net(_inputs((3, 3, size, size)))
    fmap = seen["fmap"]
    assert fmap.shape[2] == fmap.shape[3] == 3
    _, c, h, w = fmap.shape
    expected = torch.stack(
        [fmap[:, ci, hi, wi] for wi in range(w) for hi in range(h) for ci in range(c)], dim=1
    )
    torch.testing.assert_close(seen["dense_in"], expected, rtol=0, atol=0)


@pytest.mark.parametrize("key", ["mtcnn_rnet", "mtcnn_onet"])
def test_dense_prelu_matches_functional_prelu(key: str) -> None:
    # The dense PReLUs run on a 4-D view for Core ML; it must be the same function.
    net = _seeded(key)
    prelu = net.prelu4 if key == "mtcnn_rnet" else net.prelu5
    with torch.no_grad():
        prelu.weight.copy_(torch.linspace(-0.5, 0.9, prelu.num_parameters))
        x = _inputs((4, prelu.num_parameters))
        torch.testing.assert_close(
            prelu(x), torch.nn.functional.prelu(x, prelu.weight), rtol=0, atol=0
        )


@pytest.mark.parametrize("key", list(NETS))
def test_batch_rows_are_independent(key: str) -> None:
    size = NETS[key][2]
    x = _inputs((4, 3, size, size))
    net = _seeded(key)
    with torch.no_grad():
        batched = net(x)
        single = [net(x[i : i + 1]) for i in range(4)]
    for j, out in enumerate(batched):
        torch.testing.assert_close(out, torch.cat([s[j] for s in single]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("key", list(NETS))
def test_torchscript_trace_matches_eager(key: str) -> None:
    size = NETS[key][2]
    net = _seeded(key)
    traced = torch.jit.trace(net, _inputs((1, 3, size, size)))
    x = _inputs((3, 3, size, size), seed=2)
    with torch.no_grad():
        for a, b in zip(traced(x), net(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def _export(net: nn.Module, x: torch.Tensor, names: tuple[str, ...], dyn: dict, path: Path):
    session = export_session(net, x, path, names, dyn)
    onnx.checker.check_model(str(path))
    return session


# torch's legacy exporter warns about its own internals; coremltools leaves a weights temp dir
# for the garbage collector. Both are third-party noise under the suite's warnings-as-errors.
LEGACY_EXPORTER_NOISE = pytest.mark.filterwarnings(
    "ignore:The feature will be removed:DeprecationWarning"
)
COREML_TEMPDIR_NOISE = pytest.mark.filterwarnings("ignore:Implicitly cleaning up:ResourceWarning")

# FP32 on both sides with the same op sequence; only summation order in conv/gemm kernels
# differs, which moves values of magnitude ~1 by a few ulp (measured max ~1e-6).
ORT_ATOL = 1e-5


@LEGACY_EXPORTER_NOISE
@pytest.mark.parametrize("key", list(NETS))
def test_onnx_export_matches_eager_with_dynamic_axes(key: str, tmp_path: Path) -> None:
    _, names, size = NETS[key]
    net = _seeded(key)
    if key == "mtcnn_pnet":
        dyn = {n: {0: "batch", 2: "height", 3: "width"} for n in ("image", *names)}
        x_run = _inputs((2, 3, 57, 40), seed=3)  # exported at 12x12: checks H, W are free
    else:
        dyn = {n: {0: "batch"} for n in ("image", *names)}
        x_run = _inputs((5, 3, size, size), seed=3)
    sess = _export(net, _inputs((1, 3, size, size)), names, dyn, tmp_path / f"{key}.onnx")
    assert [o.name for o in sess.get_outputs()] == list(names)
    assert [i.name for i in sess.get_inputs()] == ["image"]
    got = sess.run(None, {"image": x_run.numpy()})
    with torch.no_grad():
        want = net(x_run)
    for name, a, b in zip(names, got, want, strict=True):
        assert a.shape == tuple(b.shape), name
        np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=ORT_ATOL, err_msg=name)


@COREML_TEMPDIR_NOISE
@pytest.mark.parametrize("key", list(NETS))
def test_coreml_conversion_succeeds(key: str) -> None:
    import coremltools as ct  # imported here: it is slow to import and noisy on Linux

    _, names, size = NETS[key]
    x = _inputs((1, 3, size, size))
    model = ct.convert(
        torch.jit.trace(_seeded(key), x),
        inputs=[ct.TensorType(name="image", shape=x.shape)],
        # Naming outputs keeps the artifact contract and avoids coremltools' rename warning.
        outputs=[ct.TensorType(name=n) for n in names],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT32,
        minimum_deployment_target=ct.target.macOS13,
    )
    desc = model.get_spec().description
    assert [i.name for i in desc.input] == ["image"]
    assert [o.name for o in desc.output] == list(names)
