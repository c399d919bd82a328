"""EfficientNet-B0, TensorFlow variant (timm ``tf_efficientnet_b0[_ns]``), as a feature extractor.

Module and attribute names follow timm, so a timm state dict (classifier removed) loads with
``strict=True``. Unlike timm, "SAME" padding of the stride-2 convolutions is computed once for a
fixed input size: timm computes it from tensor sizes at run time, which Core ML conversion of a
traced model cannot handle.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# TensorFlow's BatchNorm default; the TF-ported weights were trained with it.
BN_EPS_TF = 1e-3


@dataclass(frozen=True)
class StageArgs:
    """One stage of identical blocks (only the first block strides).

    Args:
        expand: expansion ratio; 1 builds depthwise-separable blocks, more builds inverted
            residuals.
        kernel: depthwise kernel size.
        stride: stride of the first block of the stage.
        out_chs: output channels of every block of the stage.
        repeats: number of blocks.
    """

    expand: int
    kernel: int
    stride: int
    out_chs: int
    repeats: int


B0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(expand=1, kernel=3, stride=1, out_chs=16, repeats=1),
    StageArgs(expand=6, kernel=3, stride=2, out_chs=24, repeats=2),
    StageArgs(expand=6, kernel=5, stride=2, out_chs=40, repeats=2),
    StageArgs(expand=6, kernel=3, stride=2, out_chs=80, repeats=3),
    StageArgs(expand=6, kernel=5, stride=1, out_chs=112, repeats=3),
    StageArgs(expand=6, kernel=5, stride=2, out_chs=192, repeats=4),
    StageArgs(expand=6, kernel=3, stride=1, out_chs=320, repeats=1),
)


@dataclass(frozen=True)
class EfficientNetConfig:
    """Shape of the network.

    Args:
        stages: block arguments per stage.
        stem_chs: output channels of the stem convolution.
        head_chs: channels of the final 1x1 convolution, i.e. of the pooled feature.
        in_chans: input image channels.
        se_ratio: squeeze-excite reduction, as a fraction of the block's *input* channels
            (timm's rule for EfficientNet, not of the expanded channels).
        bn_eps: BatchNorm epsilon.
        input_size: side of the square input the static SAME padding is computed for.
    """

    stages: tuple[StageArgs, ...] = B0_STAGES
    stem_chs: int = 32
    head_chs: int = 1280
    in_chans: int = 3
    se_ratio: float = 0.25
    bn_eps: float = BN_EPS_TF
    input_size: int = 224


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding along one axis, as (before, after).

    Args:
        size: input length along the axis.
        kernel: kernel size.
        stride: convolution stride.
        dilation: convolution dilation.
    """
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    # TensorFlow puts the odd pixel after (bottom/right).
    return total // 2, total - total // 2


class StaticSameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding precomputed for one square input size.

    The pad is a tuple of Python ints, so tracing records constants rather than shape arithmetic.
    It is only correct for inputs of side ``input_size``.

    Args:
        in_chs: input channels.
        out_chs: output channels.
        kernel: kernel size.
        stride: stride.
        input_size: side of the square input this layer will see.
        groups: convolution groups.
    """

    def __init__(
        self, in_chs: int, out_chs: int, kernel: int, stride: int, input_size: int, groups: int = 1
    ) -> None:
        super().__init__(in_chs, out_chs, kernel, stride, padding=0, groups=groups, bias=False)
        before, after = same_padding(input_size, kernel, stride)
        self.pad = (before, after, before, after)  # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


def _conv(
    in_chs: int, out_chs: int, kernel: int, stride: int, size: int, groups: int = 1
) -> nn.Conv2d:
    if stride > 1:
        return StaticSameConv2d(in_chs, out_chs, kernel, stride, size, groups)
    # At stride 1 with an odd kernel, SAME is symmetric: timm uses a plain padded conv here too.
    return nn.Conv2d(
        in_chs, out_chs, kernel, stride, padding=kernel // 2, groups=groups, bias=False
    )


def _out_size(size: int, stride: int) -> int:
    return math.ceil(size / stride)  # SAME output size


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (timm names ``conv_reduce``/``conv_expand``)."""

    def __init__(self, chs: int, reduced_chs: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(chs, reduced_chs, 1, bias=True)
        self.conv_expand = nn.Conv2d(reduced_chs, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.conv_expand(F.silu(self.conv_reduce(s)))
        return x * torch.sigmoid(s)


class DepthwiseSeparable(nn.Module):
    """Depthwise conv, SE, pointwise projection (timm ``DepthwiseSeparableConv``)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int,
        size: int,
        se_chs: int,
        eps: float,
    ) -> None:
        super().__init__()
        self.conv_dw = _conv(in_chs, in_chs, kernel, stride, size, groups=in_chs)
        self.bn1 = nn.BatchNorm2d(in_chs, eps=eps)
        self.se = SqueezeExcite(in_chs, se_chs)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs, eps=eps)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.bn1(self.conv_dw(x)))
        y = self.bn2(self.conv_pw(self.se(y)))  # linear projection: no activation
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """Pointwise expansion, depthwise conv, SE, linear projection (timm ``InvertedResidual``)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel: int,
        stride: int,
        expand: int,
        size: int,
        se_chs: int,
        eps: float,
    ) -> None:
        super().__init__()
        mid = in_chs * expand
        self.conv_pw = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, eps=eps)
        self.conv_dw = _conv(mid, mid, kernel, stride, size, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid, eps=eps)
        self.se = SqueezeExcite(mid, se_chs)
        self.conv_pwl = nn.Conv2d(mid, out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_chs, eps=eps)
        self.has_skip = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.silu(self.bn1(self.conv_pw(x)))
        y = F.silu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(self.se(y)))
        # Drop path is a no-op at inference, so the skip is a plain add.
        return x + y if self.has_skip else y


class EfficientNetB0(nn.Module):
    """EfficientNet backbone returning globally average-pooled features (B, head_chs).

    Args:
        config: network shape; the default is B0 at 224x224.
    """

    def __init__(self, config: EfficientNetConfig = EfficientNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.num_features = config.head_chs
        eps = config.bn_eps
        size = config.input_size
        self.conv_stem = StaticSameConv2d(config.in_chans, config.stem_chs, 3, 2, size)
        self.bn1 = nn.BatchNorm2d(config.stem_chs, eps=eps)
        size = _out_size(size, 2)

        in_chs = config.stem_chs
        stages: list[nn.Sequential] = []
        for st in config.stages:
            blocks: list[nn.Module] = []
            for i in range(st.repeats):
                stride = st.stride if i == 0 else 1
                se_chs = max(1, round(in_chs * config.se_ratio))
                if st.expand == 1:
                    block: nn.Module = DepthwiseSeparable(
                        in_chs, st.out_chs, st.kernel, stride, size, se_chs, eps
                    )
                else:
                    block = InvertedResidual(
                        in_chs, st.out_chs, st.kernel, stride, st.expand, size, se_chs, eps
                    )
                blocks.append(block)
                size = _out_size(size, stride)
                in_chs = st.out_chs
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)

        self.conv_head = nn.Conv2d(in_chs, config.head_chs, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(config.head_chs, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = F.silu(self.bn2(self.conv_head(x)))
        return x.mean((2, 3))


def build_tf_efficientnet_b0(input_size: int = 224) -> EfficientNetB0:
    """Build the TF-variant EfficientNet-B0 feature extractor in eval mode, without weights.

    Args:
        input_size: side of the square input; fixes the SAME padding of the stride-2 convs.
    """
    return EfficientNetB0(EfficientNetConfig(input_size=input_size)).eval()
