"""RetinaFace MobileNet-0.25: checkpoint layout, output contract, priors, ONNX parity."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx_session import export_session
from torch import nn

from faceperf.models.retinaface import (
    RETINAFACE_MEAN_BGR,
    RETINAFACE_PARAMS,
    RetinaFace,
    build_retinaface,
    prior_boxes,
)

# (height, width) pairs: square, non-square, and odd (exercises ceil in strides and the FPN).
SIZES = [(640, 640), (480, 640), (481, 641)]
# Other tests reuse 64x96 and 81x113 inputs: every new input shape costs kernel set-up time.


def _expected_priors(height: int, width: int) -> int:
    return sum(math.ceil(height / s) * math.ceil(width / s) * 2 for s in (8, 16, 32))


@pytest.fixture(scope="module")
def model() -> RetinaFace:
    """Seeded model with trained-like statistics, so outputs depend on the input.

    PyTorch's default conv init shrinks the signal layer by layer until the outputs are nearly
    constant, which would make input-dependence and parity checks toothless. He-normal convs plus
    BN statistics gathered on seeded images keep activations near unit scale, as in a trained net.
    """
    torch.manual_seed(0)
    m = build_retinaface()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0.1, nonlinearity="leaky_relu")
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.momentum = None  # cumulative average over the calibration batches
        m.train()
        for seed in range(2):
            m(_image(64, 96, batch=2, seed=100 + seed))
    return m.eval()


@pytest.fixture(scope="module")
def fresh_state() -> dict[str, torch.Tensor]:
    return build_retinaface().state_dict()


def _image(h: int, w: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A random image in the model's input domain: BGR pixels minus the mean."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.rand(batch, 3, h, w, generator=gen) * 255
    return pixels - torch.tensor(RETINAFACE_MEAN_BGR).view(1, 3, 1, 1)


# --- checkpoint layout ------------------------------------------------------------------------


def test_parameter_count_matches_checkpoint() -> None:
    m = build_retinaface()
    assert sum(p.numel() for p in m.parameters()) == RETINAFACE_PARAMS == 426_608
    assert not m.training


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("body.stage1.0.0.weight", (8, 3, 3, 3)),
        ("body.stage1.0.1.running_mean", (8,)),
        ("body.stage1.1.0.weight", (8, 1, 3, 3)),  # depthwise
        ("body.stage1.1.1.running_var", (8,)),
        ("body.stage1.1.3.weight", (16, 8, 1, 1)),  # pointwise
        ("body.stage1.1.4.num_batches_tracked", ()),
        ("body.stage1.5.3.weight", (64, 64, 1, 1)),
        ("body.stage2.0.3.weight", (128, 64, 1, 1)),
        ("body.stage2.5.4.bias", (128,)),
        ("body.stage3.0.0.weight", (128, 1, 3, 3)),
        ("body.stage3.1.3.weight", (256, 256, 1, 1)),
        ("fpn.output1.0.weight", (64, 64, 1, 1)),
        ("fpn.output2.0.weight", (64, 128, 1, 1)),
        ("fpn.output3.0.weight", (64, 256, 1, 1)),
        ("fpn.merge1.0.weight", (64, 64, 3, 3)),
        ("fpn.merge2.1.running_mean", (64,)),
        ("ssh1.conv3X3.0.weight", (32, 64, 3, 3)),
        ("ssh2.conv5X5_1.0.weight", (16, 64, 3, 3)),
        ("ssh3.conv5X5_2.0.weight", (16, 16, 3, 3)),
        ("ssh1.conv7X7_2.1.weight", (16,)),
        ("ssh1.conv7x7_3.0.weight", (16, 16, 3, 3)),
        ("ClassHead.0.conv1x1.weight", (4, 64, 1, 1)),
        ("ClassHead.2.conv1x1.bias", (4,)),
        ("BboxHead.1.conv1x1.weight", (8, 64, 1, 1)),
        ("LandmarkHead.2.conv1x1.weight", (20, 64, 1, 1)),
        ("LandmarkHead.0.conv1x1.bias", (20,)),
    ],
)
def test_state_dict_key_shapes(
    fresh_state: dict[str, torch.Tensor], key: str, shape: tuple[int, ...]
) -> None:
    assert tuple(fresh_state[key].shape) == shape


def test_state_dict_has_no_extra_modules() -> None:
    m = build_retinaface()
    keys = m.state_dict().keys()
    # 47 conv+BN pairs x 6 tensors (conv weight, BN weight/bias/mean/var/count) + 9 heads x 2.
    assert len(keys) == 47 * 6 + 9 * 2
    # IntermediateLayerGetter dropped MobileNet's classifier from the checkpoint.
    assert not any(k.startswith(("body.fc", "body.avg")) for k in keys)
    # Only the heads' 1x1 convs own a bias; every other conv is followed by BatchNorm.
    with_bias = {n for n, c in m.named_modules() if isinstance(c, nn.Conv2d) and c.bias is not None}
    assert with_bias == {
        f"{h}.{i}.conv1x1" for h in ("ClassHead", "BboxHead", "LandmarkHead") for i in range(3)
    }


def test_strict_round_trip() -> None:
    """A checkpoint-shaped dict from one instance loads strictly into another."""
    torch.manual_seed(3)
    src = build_retinaface()
    dst = build_retinaface()
    dst.load_state_dict(src.state_dict(), strict=True)
    x = _image(64, 96)
    with torch.no_grad():
        for a, b in zip(src(x), dst(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- output contract ----------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_output_shapes_match_priors(model: RetinaFace, h: int, w: int) -> None:
    with torch.no_grad():
        loc, conf, landms = model(_image(h, w))
    n = _expected_priors(h, w)
    assert loc.shape == (1, n, 4)
    assert conf.shape == (1, n, 2)
    assert landms.shape == (1, n, 10)
    assert prior_boxes(h, w).shape == (n, 4)
    if (h, w) == (640, 640):
        assert n == 16_800


def test_conf_is_softmax_and_outputs_depend_on_input(model: RetinaFace) -> None:
    with torch.no_grad():
        loc_a, conf_a, lm_a = model(_image(64, 96, seed=0))
        loc_b, conf_b, lm_b = model(_image(64, 96, seed=1))
    torch.testing.assert_close(conf_a.sum(-1), torch.ones(conf_a.shape[:2]))
    assert conf_a.min() >= 0
    # Not saturated either: a random net should give scores away from 0 and 1.
    assert 0.01 < conf_a[..., 1].mean() < 0.99
    for a, b in [(loc_a, loc_b), (conf_a, conf_b), (lm_a, lm_b)]:
        assert (a - b).abs().max() > 1e-3


def test_batch_items_are_independent(model: RetinaFace) -> None:
    """Eval-mode BN: a sample's output must not depend on its batch mates."""
    x = _image(64, 96, batch=2)
    with torch.no_grad():
        batched = model(x)
        single = model(x[1:])
    for b, s in zip(batched, single, strict=True):
        # Batched and single convs take different kernels; see the ONNX test for the scale.
        torch.testing.assert_close(b[1:], s, rtol=1e-4, atol=1e-4)


def test_outputs_follow_prior_order(model: RetinaFace) -> None:
    """Row r of every output belongs to prior r: same level, cell and anchor size.

    The SSH outputs are replaced by maps that encode their own (row, col), and the box head is
    set to copy them out together with the level and the anchor index, so the flattening and
    the level concatenation can be read back and compared with `prior_boxes`.
    """
    h, w = 81, 113
    hooks = []
    for ssh in (model.ssh1, model.ssh2, model.ssh3):

        def encode(_mod: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
            coded = torch.zeros_like(out)
            coded[:, 0] = torch.arange(out.shape[2], dtype=out.dtype).view(-1, 1)
            coded[:, 1] = torch.arange(out.shape[3], dtype=out.dtype).view(1, -1)
            return coded

        hooks.append(ssh.register_forward_hook(encode))
    saved = {k: v.clone() for k, v in model.BboxHead.state_dict().items()}
    try:
        with torch.no_grad():
            for level, head in enumerate(model.BboxHead):
                weight = torch.zeros_like(head.conv1x1.weight)
                bias = torch.zeros_like(head.conv1x1.bias)
                for anchor in range(2):
                    weight[anchor * 4 + 0, 0] = 1.0  # row
                    weight[anchor * 4 + 1, 1] = 1.0  # col
                    bias[anchor * 4 + 2] = level
                    bias[anchor * 4 + 3] = anchor
                head.conv1x1.weight.copy_(weight)
                head.conv1x1.bias.copy_(bias)
            loc = model(_image(h, w, batch=2))[0][0].numpy()
    finally:
        for hook in hooks:
            hook.remove()
        model.BboxHead.load_state_dict(saved)

    priors = prior_boxes(h, w)
    steps = np.array([8, 16, 32])[loc[:, 2].round().astype(int)]
    min_sizes = np.array([[16, 32], [64, 128], [256, 512]])
    sizes = min_sizes[loc[:, 2].round().astype(int), loc[:, 3].round().astype(int)]
    np.testing.assert_allclose(priors[:, 0], (loc[:, 1] + 0.5) * steps / w, rtol=1e-6)
    np.testing.assert_allclose(priors[:, 1], (loc[:, 0] + 0.5) * steps / h, rtol=1e-6)
    np.testing.assert_allclose(priors[:, 2], sizes / w, rtol=1e-6)
    np.testing.assert_allclose(priors[:, 3], sizes / h, rtol=1e-6)


def _reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Independent functional RetinaFace written from the published description and key names.

    Catches wrong wiring that keeps key names and shapes intact: a misplaced activation, a
    wrong LeakyReLU slope, an SSH branch fed from the wrong tensor, a wrong stride.
    """

    def cbn(x: torch.Tensor, conv: str, bn: str, stride: int = 1, act: bool = True) -> torch.Tensor:
        weight = sd[conv]
        groups = x.shape[1] if weight.shape[1] == 1 and x.shape[1] > 1 else 1
        x = F.conv2d(x, weight, stride=stride, padding=weight.shape[-1] // 2, groups=groups)
        x = F.batch_norm(
            x,
            sd[bn + ".running_mean"],
            sd[bn + ".running_var"],
            sd[bn + ".weight"],
            sd[bn + ".bias"],
            training=False,
            eps=1e-5,
        )
        return F.leaky_relu(x, 0.1) if act else x

    def block(x: torch.Tensor, p: str, stride: int = 1, act: bool = True) -> torch.Tensor:
        return cbn(x, p + ".0.weight", p + ".1", stride, act)

    strides = {"stage1": [2, 1, 2, 1, 2, 1], "stage2": [2, 1, 1, 1, 1, 1], "stage3": [2, 1]}
    feats = []
    for stage, stage_strides in strides.items():
        for i, s in enumerate(stage_strides):
            p = f"body.{stage}.{i}"
            if stage == "stage1" and i == 0:
                x = block(x, p, s)
            else:
                x = cbn(x, p + ".0.weight", p + ".1", s)  # depthwise 3x3
                x = cbn(x, p + ".3.weight", p + ".4")  # pointwise 1x1
        feats.append(x)

    o1, o2, o3 = (block(f, f"fpn.output{i + 1}") for i, f in enumerate(feats))
    o2 = block(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"), "fpn.merge2")
    o1 = block(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"), "fpn.merge1")

    outs: dict[str, list[torch.Tensor]] = {"BboxHead": [], "ClassHead": [], "LandmarkHead": []}
    for i, f in enumerate((o1, o2, o3)):
        p = f"ssh{i + 1}"
        mid = block(f, p + ".conv5X5_1")
        out = torch.cat(
            [
                block(f, p + ".conv3X3", act=False),
                block(mid, p + ".conv5X5_2", act=False),
                block(block(mid, p + ".conv7X7_2"), p + ".conv7x7_3", act=False),
            ],
            1,
        ).relu()
        for name, k in (("BboxHead", 4), ("ClassHead", 2), ("LandmarkHead", 10)):
            y = F.conv2d(out, sd[f"{name}.{i}.conv1x1.weight"], sd[f"{name}.{i}.conv1x1.bias"])
            outs[name].append(y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, k))
    loc, logits, landms = (torch.cat(v, 1) for v in outs.values())
    return [loc, logits.softmax(-1), landms]


def test_matches_independent_reference(model: RetinaFace) -> None:
    x = _image(81, 113, batch=2, seed=5)
    with torch.no_grad():
        got = model(x)
        want = _reference_forward(model.state_dict(), x)
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)


# --- prior boxes --------------------------------------------------------------------------------


def test_prior_known_values_and_caching() -> None:
    priors = prior_boxes(640, 640)
    np.testing.assert_allclose(priors[0], [4 / 640, 4 / 640, 16 / 640, 16 / 640], rtol=1e-7)
    np.testing.assert_allclose(priors[1], [4 / 640, 4 / 640, 32 / 640, 32 / 640], rtol=1e-7)
    # Third prior is the next column of level 1 (column before row).
    np.testing.assert_allclose(priors[2], [12 / 640, 4 / 640, 16 / 640, 16 / 640], rtol=1e-7)
    # First prior of level 2 follows all 80*80*2 level-1 priors.
    np.testing.assert_allclose(priors[12_800], [8 / 640, 8 / 640, 64 / 640, 64 / 640], rtol=1e-7)
    np.testing.assert_allclose(priors[-1], [624 / 640, 624 / 640, 512 / 640, 512 / 640], rtol=1e-7)
    assert priors.dtype == np.float32
    assert prior_boxes(640, 640) is priors
    assert not priors.flags.writeable
    with pytest.raises(ValueError):
        priors[0, 0] = 1.0


def test_priors_non_square_use_own_axes() -> None:
    h, w = 481, 641
    priors = prior_boxes(h, w)
    assert len(priors) == _expected_priors(h, w)
    # Level 1 has ceil(641/8) = 81 columns: prior 2*81 starts row 1.
    np.testing.assert_allclose(priors[2 * 81, :2], [4 / w, 12 / h], rtol=1e-6)
    np.testing.assert_allclose(priors[0, 2:], [16 / w, 16 / h], rtol=1e-6)
    # No clipping: the last centres of an odd size lie past the image edge.
    assert priors[:, :2].max() > 1.0


# --- export -------------------------------------------------------------------------------------


def test_onnx_dynamic_export_matches_eager(model: RetinaFace, tmp_path) -> None:
    path = tmp_path / "retinaface.onnx"
    dyn = {"image": {0: "batch", 2: "height", 3: "width"}}
    dyn.update({name: {0: "batch", 1: "priors"} for name in ("loc", "conf", "landms")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter notice
        sess = export_session(model, _image(64, 96), path, ["loc", "conf", "landms"], dyn)
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["loc", "conf", "landms"]
    for batch, h, w in [(1, 481, 641), (2, 81, 113)]:
        x = _image(h, w, batch=batch, seed=h)
        with torch.no_grad():
            eager = model(x)
        onnx_out = sess.run(None, {"image": x.numpy()})
        for e, o in zip(eager, onnx_out, strict=True):
            assert o.shape == tuple(e.shape)
            # FP32 on both sides, but ORT folds BatchNorm into the conv weights and uses other
            # conv kernels, so rounding differs and grows over ~35 layers: measured up to 6e-4
            # on loc/landms values up to ~15 (4e-5 of the range), 1e-4 on conf. 2e-3 keeps a 3x
            # margin; a real graph difference (slope, upsampling, order) moves outputs by > 0.1.
            np.testing.assert_allclose(o, e.numpy(), rtol=1e-3, atol=2e-3)
