"""RetinaFace with a MobileNet-0.25 backbone (OpenFace 3.0 ``Alignment_RetinaFace.pth``).

The module tree mirrors the upstream ``mobilenet0.25_Final.pth`` checkpoint so that
``load_state_dict(strict=True)`` works on it once any ``module.`` prefix is stripped: Sequential
indices, the mixed-case SSH names (``conv7X7_2`` next to ``conv7x7_3``) and the capitalised head
lists are all part of the key names.

Input ``image`` is (B, 3, H, W) float32, BGR minus :data:`RETINAFACE_MEAN_BGR`, unscaled, any H
and W. Outputs, in order: ``loc`` (B, N, 4), ``conf`` (B, N, 2) softmaxed (face score is column
1), ``landms`` (B, N, 10), where N equals ``len(prior_boxes(H, W))``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RETINAFACE_MEAN_BGR = (104.0, 117.0, 123.0)
RETINAFACE_PARAMS = 426_608

# The checkpoint was trained with these; the prior generator and the heads must agree on them.
_STEPS = (8, 16, 32)
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_ANCHORS = 2
_OUT_CHANNELS = 64
# Upstream uses slope 0.1 wherever out_channels <= 64, which holds everywhere in this variant.
_LEAKY = 0.1


def _conv_bn(
    inp: int, oup: int, kernel: int = 3, stride: int = 1, leaky: float | None = _LEAKY
) -> nn.Sequential:
    # Indices 0/1/2 (conv, bn, act) are part of the checkpoint's key names.
    layers: list[nn.Module] = [
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(oup),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky))
    return nn.Sequential(*layers)


def _conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    # One flat Sequential (not two nested ones): keys are `.0`, `.1`, `.3`, `.4`.
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(_LEAKY),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(_LEAKY),
    )


class MobileNetV1Body(nn.Module):
    """MobileNetV1 x0.25 without its classifier; returns strides 8, 16 and 32."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, stride=2),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _conv_dw(64, 128, 2), *(_conv_dw(128, 128, 1) for _ in range(5))
        )
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return c1, c2, c3


class FPN(nn.Module):
    """Three-level feature pyramid with nearest-neighbour top-down merging."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_channels, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out_channels, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out_channels, kernel=1)
        self.merge1 = _conv_bn(out_channels, out_channels)
        self.merge2 = _conv_bn(out_channels, out_channels)

    def forward(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1 = self.output1(c1)
        p2 = self.output2(c2)
        p3 = self.output3(c3)
        # Target size comes from the finer map, not a factor of 2: with odd inputs the coarser map
        # is ceil(finer/2), so doubling it would overshoot by one.
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest"))
        return p1, p2, p3


class SSH(nn.Module):
    """Single-stage context module: 3x3, "5x5" and "7x7" branches built from stacked 3x3 convs."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        quarter = out_channels // 4
        self.conv3X3 = _conv_bn(in_channels, out_channels // 2, leaky=None)
        self.conv5X5_1 = _conv_bn(in_channels, quarter)
        self.conv5X5_2 = _conv_bn(quarter, quarter, leaky=None)
        self.conv7X7_2 = _conv_bn(quarter, quarter)
        self.conv7x7_3 = _conv_bn(quarter, quarter, leaky=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5_in = self.conv5X5_1(x)
        out = torch.cat(
            [
                self.conv3X3(x),
                self.conv5X5_2(branch5_in),
                self.conv7x7_3(self.conv7X7_2(branch5_in)),
            ],
            dim=1,
        )
        return F.relu(out)


class _Head(nn.Module):
    """1x1 conv predicting ``k`` values per anchor, flattened in prior order."""

    def __init__(self, in_channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv1x1 = nn.Conv2d(in_channels, _ANCHORS * k, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC then split channels per anchor: gives row -> column -> anchor order, as the priors.
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.k)


class RetinaFace(nn.Module):
    """RetinaFace MobileNet-0.25 detector (inference form: ``conf`` is softmaxed)."""

    def __init__(self) -> None:
        super().__init__()
        c = _OUT_CHANNELS
        self.body = MobileNetV1Body()
        self.fpn = FPN((64, 128, 256), c)
        self.ssh1 = SSH(c, c)
        self.ssh2 = SSH(c, c)
        self.ssh3 = SSH(c, c)
        self.ClassHead = nn.ModuleList(_Head(c, 2) for _ in _STEPS)
        self.BboxHead = nn.ModuleList(_Head(c, 4) for _ in _STEPS)
        self.LandmarkHead = nn.ModuleList(_Head(c, 10) for _ in _STEPS)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detect faces.

        Args:
            image: (B, 3, H, W) float32, BGR minus ``RETINAFACE_MEAN_BGR``, not scaled.

        Returns:
            ``loc`` (B, N, 4), ``conf`` (B, N, 2) after softmax, ``landms`` (B, N, 10).
        """
        return self.predict(self.features(image))

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three SSH feature maps the heads read (strides 8, 16, 32)."""
        p1, p2, p3 = self.fpn(*self.body(image))
        return self.ssh1(p1), self.ssh2(p2), self.ssh3(p3)

    def predict(
        self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply the 1x1 heads to SSH features: ``loc``, softmaxed ``conf``, ``landms``."""
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], dim=1)
        logits = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], dim=1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], dim=1)
        return loc, F.softmax(logits, dim=-1), landms


def build_retinaface() -> RetinaFace:
    """Build RetinaFace in eval mode with default init; callers load the checkpoint into it."""
    return RetinaFace().eval()


@functools.lru_cache(maxsize=32)
def prior_boxes(height: int, width: int) -> np.ndarray:
    """Anchor boxes matching the model's output order, for one input size.

    Args:
        height: input image height in pixels.
        width: input image width in pixels.

    Returns:
        Read-only float32 array (N, 4) of [cx, cy, s/W, s/H], normalised to the image size,
        ordered level -> row -> column -> min_size, not clipped. Cached per (height, width).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"prior_boxes needs a positive image size, got {height}x{width}")
    levels = []
    for step, sizes in zip(_STEPS, _MIN_SIZES, strict=True):
        rows, cols = -(-height // step), -(-width // step)
        # float64 with upstream's operation order, then float32: bit-identical to the reference.
        cx = (np.arange(cols, dtype=np.float64) + 0.5) * step / width
        cy = (np.arange(rows, dtype=np.float64) + 0.5) * step / height
        s = np.asarray(sizes, dtype=np.float64)
        grid = np.empty((rows, cols, len(sizes), 4), dtype=np.float64)
        grid[..., 0] = cx[None, :, None]
        grid[..., 1] = cy[:, None, None]
        grid[..., 2] = s / width
        grid[..., 3] = s / height
        levels.append(grid.reshape(-1, 4))
    priors = np.concatenate(levels).astype(np.float32)
    priors.setflags(write=False)
    return priors
