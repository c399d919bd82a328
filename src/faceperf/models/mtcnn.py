"""MTCNN's three cascaded networks (P-Net, R-Net, O-Net).

Attribute names follow facenet-pytorch 2.6.0 so its packaged state dicts load with
``strict=True``. The nets expect RGB input already normalised as (x - 127.5) * 0.0078125;
that step lives outside the graphs so every backend sees identical tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MTCNN_PARAMS: dict[str, int] = {
    "mtcnn_pnet": 6632,
    "mtcnn_rnet": 100178,
    "mtcnn_onet": 389040,
}

PNET_OUTPUTS: tuple[str, ...] = ("reg", "prob")
RNET_OUTPUTS: tuple[str, ...] = ("reg", "prob")
ONET_OUTPUTS: tuple[str, ...] = ("reg", "landmarks", "prob")


def _caffe_flatten(x: Tensor) -> Tensor:
    """Flatten a (B, C, H, W) map in (B, W, H, C) order.

    The dense weights were trained in Caffe, whose flatten order differs from PyTorch's.
    """
    return torch.flatten(x.permute(0, 3, 2, 1), 1)


class _DensePReLU(nn.PReLU):
    """PReLU for (B, C) activations, applied on a (B, C, 1, 1) view.

    coremltools refuses a per-channel PReLU on a (B, C) tensor ("prelu op: rank 3 or rank 5
    input is only supported when all the values of alpha are same"); on the 4-D view it converts,
    and the result is identical. The parameter is still ``weight``, so state dicts load as is.
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[:, :, None, None]).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Args: x: (B, 3, H, W) normalised RGB. Returns reg (B, 4, h, w), prob (B, 2, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)
        reg = self.conv4_2(x)
        return reg, prob


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = _DensePReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Args: x: (B, 3, 24, 24) normalised RGB. Returns reg (B, 4), prob (B, 2)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_caffe_flatten(x)))
        prob = torch.softmax(self.dense5_1(x), dim=1)
        reg = self.dense5_2(x)
        return reg, prob


class ONet(nn.Module):
    """Output net on 48x48 crops: box refinement, five landmarks and the final score."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = _DensePReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Args: x: (B, 3, 48, 48) normalised RGB.

        Returns reg (B, 4), landmarks (B, 10) as 5 x-values then 5 y-values, prob (B, 2).
        """
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_caffe_flatten(x)))
        prob = torch.softmax(self.dense6_1(x), dim=1)
        reg = self.dense6_2(x)
        landmarks = self.dense6_3(x)
        return reg, landmarks, prob


def build_pnet() -> PNet:
    """Build an untrained P-Net in eval mode."""
    return PNet().eval()


def build_rnet() -> RNet:
    """Build an untrained R-Net in eval mode."""
    return RNet().eval()


def build_onet() -> ONet:
    """Build an untrained O-Net in eval mode."""
    return ONet().eval()
