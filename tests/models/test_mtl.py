"""MTL multitask model and its EfficientNet-B0 backbone: structure, padding, graph head, export.

No checkpoint is needed: the structure tests pin the state-dict contract the real checkpoint must
meet, and the numerical tests run on a seeded, BatchNorm-calibrated random model.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx_session import export_session
from torch import nn

from faceperf.models.efficientnet import StaticSameConv2d, build_tf_efficientnet_b0
from faceperf.models.mtl import (
    AU_NAMES,
    EMOTION_NAMES,
    MTL_BACKBONE_PARAMS,
    MTL_INPUT_SIZE,
    MTL_PARAMS,
    AUGraphHead,
    MultitaskModel,
    build_mtl,
    neighbour_adjacency,
)

SEED = 1234
N = MTL_INPUT_SIZE


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _calibrate(model: nn.Module, seed: int) -> nn.Module:
    # Default init with unit running variance shrinks the pooled feature to ~1e-12, which would
    # make every numerical comparison pass vacuously (and runs ~6x slower on subnormal floats);
    # BatchNorm statistics taken from one batch of noise keep activations at order 1.
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = None  # running stats = this batch's stats
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, N, N, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> MultitaskModel:
    torch.manual_seed(SEED)
    return _calibrate(build_mtl(), SEED)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, N, N, generator=torch.Generator().manual_seed(SEED + 1))


@pytest.fixture(scope="module")
def outputs(model: MultitaskModel, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(images)


# --- structure: the checkpoint contract -----------------------------------------------------


def test_parameter_counts() -> None:
    model = build_mtl()
    assert _n_params(model) == MTL_PARAMS == 25_346_454
    assert _n_params(model.base_model) == MTL_BACKBONE_PARAMS == 4_007_548
    assert _n_params(build_tf_efficientnet_b0()) == MTL_BACKBONE_PARAMS


def test_built_in_eval_mode() -> None:
    assert not build_mtl().training
    assert not build_tf_efficientnet_b0().training


EXPECTED_SHAPES = {
    "base_model.conv_stem.weight": (32, 3, 3, 3),
    "base_model.bn1.weight": (32,),
    "base_model.blocks.0.0.conv_dw.weight": (32, 1, 3, 3),
    "base_model.blocks.0.0.bn1.running_mean": (32,),
    "base_model.blocks.0.0.se.conv_reduce.weight": (8, 32, 1, 1),
    "base_model.blocks.0.0.se.conv_expand.bias": (32,),
    "base_model.blocks.0.0.conv_pw.weight": (16, 32, 1, 1),
    "base_model.blocks.0.0.bn2.num_batches_tracked": (),
    "base_model.blocks.1.0.conv_pw.weight": (96, 16, 1, 1),
    "base_model.blocks.1.0.se.conv_reduce.weight": (4, 96, 1, 1),
    "base_model.blocks.1.0.conv_pwl.weight": (24, 96, 1, 1),
    "base_model.blocks.2.1.conv_dw.weight": (240, 1, 5, 5),
    "base_model.blocks.5.3.bn3.running_var": (192,),
    "base_model.blocks.6.0.se.conv_reduce.weight": (48, 1152, 1, 1),
    "base_model.blocks.6.0.conv_pwl.weight": (320, 1152, 1, 1),
    "base_model.conv_head.weight": (1280, 320, 1, 1),
    "base_model.bn2.running_var": (1280,),
    "fc_emotion.weight": (1280, 1280),
    "fc_gaze.bias": (1280,),
    "fc_au.weight": (1280, 1280),
    "emotion_classifier.weight": (8, 1280),
    "gaze_regressor.weight": (2, 1280),
    "gaze_regressor.bias": (2,),
    "au_regressor.class_linears.0.weight": (1280, 1280),
    "au_regressor.class_linears.7.bias": (1280,),
    "au_regressor.gnn.U.weight": (1280, 1280),
    "au_regressor.gnn.V.bias": (1280,),
    "au_regressor.gnn.bnv.running_var": (8,),
    "au_regressor.sc": (8, 1280),
}


def test_state_dict_keys_and_shapes() -> None:
    sd = build_mtl().state_dict()
    for key, shape in EXPECTED_SHAPES.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    # The checkpoint replaces timm's classifier by Identity, so it has no classifier keys.
    assert not [k for k in sd if "classifier." in k and k.startswith("base_model.")]
    assert "au_regressor.class_linears.8.weight" not in sd
    assert not [k for k in sd if k.startswith("au_regressor.class_linears.0.") and ".bn" in k]
    prefixes = {k.split(".")[0] for k in sd}
    assert prefixes == {
        "base_model",
        "fc_emotion",
        "fc_gaze",
        "fc_au",
        "emotion_classifier",
        "gaze_regressor",
        "au_regressor",
    }


def test_backbone_stage_layout() -> None:
    net = build_tf_efficientnet_b0()
    assert [len(stage) for stage in net.blocks] == [1, 2, 2, 3, 3, 4, 1]
    sd = net.state_dict()
    assert "blocks.0.0.conv_pwl.weight" not in sd  # stage 0 is depthwise-separable
    assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, nn.BatchNorm2d)), (
        "TF variant uses BatchNorm eps 1e-3"
    )
    # Skip only where the block keeps stride 1 and width: the first block of stages 1-6 has none.
    skips = [[b.has_skip for b in stage] for stage in net.blocks]
    assert skips == [
        [False],
        [False, True],
        [False, True],
        [False, True, True],
        [False, True, True],
        [False, True, True, True],
        [False],
    ]


def test_load_state_dict_strict_round_trip(model: MultitaskModel) -> None:
    fresh = build_mtl()
    fresh.load_state_dict(model.state_dict(), strict=True)


# --- TensorFlow "SAME" padding --------------------------------------------------------------


def _tf_same_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2  # TensorFlow: extra pixel at bottom/right


def _reference_same_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    # Zero canvas plus slice assignment: independent of F.pad and of the module's pad tuple.
    k, s = conv.kernel_size[0], conv.stride[0]
    top, bottom = _tf_same_pad(x.shape[2], k, s)
    left, right = _tf_same_pad(x.shape[3], k, s)
    canvas = x.new_zeros(
        x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right
    )
    canvas[:, :, top : top + x.shape[2], left : left + x.shape[3]] = x
    return F.conv2d(canvas, conv.weight, conv.bias, s, 0, 1, conv.groups)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "groups"),
    [
        (224, 3, 2, 1),
        (112, 3, 2, 4),
        (56, 5, 2, 4),
        (28, 3, 2, 1),
        (14, 5, 2, 4),
        (15, 5, 2, 1),
        (9, 3, 2, 1),
        (10, 5, 3, 4),
        (8, 1, 2, 1),
    ],
)
def test_static_same_conv_matches_tf_padding(
    size: int, kernel: int, stride: int, groups: int
) -> None:
    gen = torch.Generator().manual_seed(size * 31 + kernel)
    conv = StaticSameConv2d(4, 8, kernel, stride, size, groups=groups)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        x = torch.randn(2, 4, size, size, generator=gen)
        got = conv(x)
        want = _reference_same_conv(x, conv)
    assert got.shape[-2:] == (math.ceil(size / stride),) * 2
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_backbone_stride2_convs_are_static_same() -> None:
    net = build_tf_efficientnet_b0(224)
    strided = {
        n: m for n, m in net.named_modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)
    }
    assert list(strided) == [
        "conv_stem",
        "blocks.1.0.conv_dw",
        "blocks.2.0.conv_dw",
        "blocks.3.0.conv_dw",
        "blocks.5.0.conv_dw",
    ]
    # Hand-worked for 224 -> 112 -> 56 -> 28 -> 14 (k3, k3, k5, k3, k5): (before, after).
    expected = [(0, 1), (0, 1), (1, 2), (0, 1), (1, 2)]
    for m, (lo, hi) in zip(strided.values(), expected, strict=True):
        assert isinstance(m, StaticSameConv2d)
        assert m.pad == (lo, hi, lo, hi) and m.padding == (0, 0)
    for n, m in net.named_modules():
        if isinstance(m, nn.Conv2d) and n not in strided:
            assert m.padding == (m.kernel_size[0] // 2,) * 2, n


# --- AU graph head --------------------------------------------------------------------------


def _brute_adjacency(sim: np.ndarray, k: int) -> np.ndarray:
    adj = np.zeros_like(sim)
    for b in range(sim.shape[0]):
        for i in range(sim.shape[1]):
            kth = sorted(sim[b, i].tolist(), reverse=True)[k - 1]
            adj[b, i] = [1.0 if v >= kth else 0.0 for v in sim[b, i]]
    return adj


@pytest.mark.parametrize("ties", [False, True])
def test_neighbour_adjacency_matches_brute_force(ties: bool) -> None:
    gen = torch.Generator().manual_seed(7)
    if ties:  # small integers force ties at the k-th value
        sim = torch.randint(-2, 3, (16, 8, 8), generator=gen).float()
    else:
        sim = torch.randn(16, 8, 8, generator=gen)
    adj = neighbour_adjacency(sim, 4)
    np.testing.assert_array_equal(adj.numpy(), _brute_adjacency(sim.numpy(), 4))
    assert (adj.sum(-1) >= 4).all()


def test_au_head_matches_float64_reference() -> None:
    torch.manual_seed(SEED)
    head = AUGraphHead().eval()
    gen = torch.Generator().manual_seed(SEED + 2)
    bn = head.gnn.bnv
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(8, generator=gen) * 0.1)
        bn.running_var.copy_(torch.rand(8, generator=gen) + 0.5)
        bn.weight.copy_(torch.rand(8, generator=gen) + 0.5)
        bn.bias.copy_(torch.randn(8, generator=gen) * 0.1)
        x = torch.relu(torch.randn(3, 1280, generator=gen))
        got = head(x).numpy()

    p = {k: v.double().numpy() for k, v in head.state_dict().items()}
    xd = x.double().numpy()
    # Node i = class_linears[i](x), no activation (openface-test 0.1.26).
    nodes = np.stack(
        [xd @ p[f"class_linears.{i}.weight"].T + p[f"class_linears.{i}.bias"] for i in range(8)],
        axis=1,
    )
    want = np.empty((3, 8))
    for b in range(3):
        v = nodes[b]
        adj = _brute_adjacency((v @ v.T)[None], 4)[0]
        d = np.diag(adj.sum(1) ** -0.5)
        a = d @ adj @ d
        agg = (
            a @ (v @ p["gnn.V.weight"].T + p["gnn.V.bias"])
            + v @ p["gnn.U.weight"].T
            + p["gnn.U.bias"]
        )
        bnv = (agg - p["gnn.bnv.running_mean"][:, None]) / np.sqrt(
            p["gnn.bnv.running_var"][:, None] + bn.eps
        ) * p["gnn.bnv.weight"][:, None] + p["gnn.bnv.bias"][:, None]
        out = np.maximum(v + bnv, 0)
        sc = np.maximum(p["sc"], 0)
        # F.normalize semantics: an all-zero node gives cosine 0, not NaN.
        norms = np.maximum(np.linalg.norm(out, axis=1), 1e-12) * np.linalg.norm(sc, axis=1)
        want[b] = (out * sc).sum(1) / norms
    assert (want > 0).mean() > 0.5, "reference case is degenerate"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


# --- whole model ----------------------------------------------------------------------------


def test_output_shapes_and_ranges(
    model: MultitaskModel, outputs: tuple[torch.Tensor, ...], images: torch.Tensor
) -> None:
    emotion, gaze, au = outputs
    assert emotion.shape == (2, len(EMOTION_NAMES)) == (2, 8)
    assert gaze.shape == (2, 2)
    assert au.shape == (2, len(AU_NAMES)) == (2, 8)
    for t in outputs:
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    # Cosines lie in [-1, 1]; both factors are rectified, so in fact in [0, 1].
    assert (au >= -1e-6).all() and (au <= 1 + 1e-6).all()
    with torch.no_grad():
        feat = model.base_model(images)
    assert feat.shape == (2, 1280)
    assert feat.std() > 1e-2, "calibration failed: comparisons below would be vacuous"
    assert not torch.allclose(au[0], au[1]), "samples should give different AU values"


def test_batch_of_two_equals_single_samples(
    model: MultitaskModel, images: torch.Tensor, outputs: tuple[torch.Tensor, ...]
) -> None:
    with torch.no_grad():
        for i in range(2):
            single = model(images[i : i + 1])
            for got, want in zip(single, outputs, strict=True):
                # Batched conv kernels may block work differently: float32 rounding only.
                torch.testing.assert_close(got[0], want[i], rtol=1e-4, atol=1e-5)


# The legacy exporter warns about its own deprecated internals, and cannot constant-fold the
# step -1 Slice it emits to reorder F.pad's constant pads (ONNX Runtime folds it at load).
@pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Constant folding - Only steps=1:UserWarning")
def test_onnx_export_matches_eager(
    model: MultitaskModel, images: torch.Tensor, outputs: tuple[torch.Tensor, ...], tmp_path
) -> None:
    path = tmp_path / "mtl.onnx"
    names = ["image", "emotion", "gaze", "au"]
    dynamic = {n: {0: "batch"} for n in names}
    sess = export_session(model, images[:1], path, names[1:], dynamic)
    got = sess.run(None, {"image": images.numpy()})  # batch 2 through a batch-1 trace
    for name, g, want in zip(names[1:], got, outputs, strict=True):
        # Both run float32; only summation order differs (oneDNN vs MLAS over ~80 layers),
        # measured ~5e-7 on outputs of order 0.1-1. A semantic slip such as padding on the wrong
        # side moves outputs by ~1e-2, far outside 1e-4.
        np.testing.assert_allclose(g, want.numpy(), rtol=0, atol=1e-4, err_msg=name)


def _import_timm():
    try:
        return pytest.importorskip(
            "timm", reason="timm is not installed (it needs torchvision, absent beside this torch)"
        )
    except Exception as exc:  # torchvision built for another torch fails with non-ImportErrors
        pytest.skip(f"timm is installed but not importable: {exc}")


def test_backbone_matches_timm(model: MultitaskModel, images: torch.Tensor) -> None:
    timm = _import_timm()
    try:
        ref = timm.create_model("tf_efficientnet_b0.ns_jft_in1k", pretrained=False, num_classes=0)
    except RuntimeError:  # timm < 0.9 only knows the old name
        ref = timm.create_model("tf_efficientnet_b0_ns", pretrained=False, num_classes=0)
    ref.load_state_dict(model.base_model.state_dict(), strict=True)
    ref.eval()
    with torch.no_grad():
        want = ref(images)
        got = model.base_model(images)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
